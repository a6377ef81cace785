//! Low-resolution mask logits → a mask at the original image size: bilinear sampling of the
//! logits for every original pixel inside the mask's neighbourhood only, thresholding, and the
//! stability score, in one pass.

use crate::masks::{BBox, Mask};

/// How a `width`×`height` grid of low-resolution logits lies over the original image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LowResFrame {
    /// Logit grid size (256×256 for SAM and SAM2).
    pub width: u32,
    pub height: u32,
    /// Low-res cells per original pixel, along x and y.
    pub scale_x: f64,
    pub scale_y: f64,
    /// Original image size.
    pub image_width: u32,
    pub image_height: u32,
}

/// Per output coordinate: the two grid cells to blend and the weight of the second.
fn axis_taps(count: u32, scale: f64, grid: u32) -> Vec<(usize, usize, f32)> {
    (0..count)
        .map(|i| {
            let g = ((i as f64 + 0.5) * scale - 0.5).clamp(0.0, (grid - 1) as f64);
            let i0 = g.floor() as usize;
            let i1 = (i0 + 1).min(grid as usize - 1);
            (i0, i1, (g - i0 as f64) as f32)
        })
        .collect()
}

/// Pixels `start..end` (of a row of the region) all blend grid columns `left` and `right`.
struct Segment {
    start: usize,
    end: usize,
    left: usize,
    right: usize,
}

/// Groups consecutive pixels with the same pair of grid columns.
fn column_segments(taps: &[(usize, usize, f32)]) -> Vec<Segment> {
    let mut segments: Vec<Segment> = Vec::new();
    for (i, &(left, right, _)) in taps.iter().enumerate() {
        match segments.last_mut() {
            Some(s) if s.left == left && s.right == right => s.end = i + 1,
            _ => segments.push(Segment {
                start: i,
                end: i + 1,
                left,
                right,
            }),
        }
    }
    segments
}

/// Rounding allowance when a whole run is decided from its ends.
fn margin(value: f32) -> f32 {
    1e-4 * (1.0 + value.abs())
}

/// Builds the mask where the upsampled logits exceed `threshold`, with the stability score
/// (pixels above `threshold + offset` over pixels above `threshold - offset`). Returns `None`
/// when no pixel is set.
pub fn mask_from_logits(
    logits: &[f32],
    frame: &LowResFrame,
    id: u32,
    score: f32,
    threshold: f32,
    stability_offset: f32,
) -> Option<Mask> {
    let (gw, gh) = (frame.width as usize, frame.height as usize);
    debug_assert_eq!(logits.len(), gw * gh);
    let low = threshold - stability_offset.abs();
    // Grid cells that can contribute: any cell above the lowest threshold, plus one cell around.
    let (mut cx0, mut cy0, mut cx1, mut cy1) = (usize::MAX, usize::MAX, 0, 0);
    for (gy, row) in logits.chunks_exact(gw).enumerate() {
        if let Some(first) = row.iter().position(|&v| v > low) {
            let last = row.iter().rposition(|&v| v > low).unwrap_or(first);
            cx0 = cx0.min(first);
            cx1 = cx1.max(last);
            cy0 = cy0.min(gy);
            cy1 = gy;
        }
    }
    if cx0 == usize::MAX {
        return None;
    }
    // Original pixels whose sample can touch those cells.
    let to_pixels = |c0: usize, c1: usize, scale: f64, limit: u32| {
        let p0 = (((c0 as f64 - 1.0 + 0.5) / scale) - 0.5).floor().max(0.0) as u32;
        let p1 = ((((c1 as f64 + 1.0 + 0.5) / scale) - 0.5).ceil() as u32 + 1).min(limit);
        (p0.min(limit), p1)
    };
    let (x0, x1) = to_pixels(cx0, cx1, frame.scale_x, frame.image_width);
    let (y0, y1) = to_pixels(cy0, cy1, frame.scale_y, frame.image_height);
    if x0 >= x1 || y0 >= y1 {
        return None;
    }
    let xs = axis_taps(frame.image_width, frame.scale_x, frame.width);
    let ys = axis_taps(frame.image_height, frame.scale_y, frame.height);
    let (rw, rh) = ((x1 - x0) as usize, (y1 - y0) as usize);
    let high = threshold + stability_offset.abs();
    // Pixels of the region that blend the same two grid columns, as runs.
    let segments = column_segments(&xs[x0 as usize..x1 as usize]);
    let mut region = vec![false; rw * rh];
    let mut blended = vec![0f32; gw];
    let (mut above_high, mut above_low) = (0u64, 0u64);
    for (ry, out_row) in region.chunks_exact_mut(rw).enumerate() {
        let (a, b, wy) = ys[y0 as usize + ry];
        let (row_a, row_b) = (&logits[a * gw..(a + 1) * gw], &logits[b * gw..(b + 1) * gw]);
        for c in cx0.saturating_sub(1)..(cx1 + 2).min(gw) {
            blended[c] = row_a[c] + (row_b[c] - row_a[c]) * wy;
        }
        for seg in &segments {
            let (vl, vr) = (blended[seg.left], blended[seg.right]);
            let (lo, hi) = (vl.min(vr), vl.max(vr));
            let pixels = &mut out_row[seg.start..seg.end];
            // A blend lies between its two ends: whole runs above the high threshold or below
            // the low one need no per-pixel work (with a margin for rounding).
            if lo > high + margin(high) {
                pixels.fill(true);
                above_high += pixels.len() as u64;
                above_low += pixels.len() as u64;
            } else if hi < low - margin(low) {
                // Unset and uncounted: the region starts all false.
            } else {
                for (k, px) in pixels.iter_mut().enumerate() {
                    let wx = xs[x0 as usize + seg.start + k].2;
                    let v = vl + (vr - vl) * wx;
                    above_high += (v > high) as u64;
                    above_low += (v > low) as u64;
                    *px = v > threshold;
                }
            }
        }
    }
    let stability = if above_low == 0 {
        0.0
    } else {
        above_high as f32 / above_low as f32
    };
    let mut mask = Mask::from_dense(id, score, stability, rw as u32, rh as u32, &region)?;
    mask.bbox = BBox {
        x: mask.bbox.x + x0,
        y: mask.bbox.y + y0,
        ..mask.bbox
    };
    Some(mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(iw: u32, ih: u32) -> LowResFrame {
        LowResFrame {
            width: 8,
            height: 8,
            scale_x: 8.0 / iw as f64,
            scale_y: 8.0 / ih as f64,
            image_width: iw,
            image_height: ih,
        }
    }

    #[test]
    fn block_upsamples_to_block() {
        // Cells 2..6 × 2..6 positive on an 8×8 grid over a 64×64 image → pixels ~16..48.
        let mut logits = vec![-10f32; 64];
        for y in 2..6 {
            for x in 2..6 {
                logits[y * 8 + x] = 10.0;
            }
        }
        let m = mask_from_logits(&logits, &frame(64, 64), 1, 0.9, 0.0, 1.0).unwrap();
        assert!((m.bbox.x as i32 - 16).abs() <= 1, "{:?}", m.bbox);
        assert!((m.bbox.width as i32 - 32).abs() <= 2, "{:?}", m.bbox);
        assert!(m.stability > 0.9 && m.stability <= 1.0, "{}", m.stability);
        let dense = m.to_dense(64, 64);
        assert!(dense[32 * 64 + 32]);
        assert!(!dense[5 * 64 + 5]);
    }

    /// The per-pixel reference the fast path must equal.
    fn slow(logits: &[f32], f: &LowResFrame) -> (Vec<bool>, f32) {
        let xs = axis_taps(f.image_width, f.scale_x, f.width);
        let ys = axis_taps(f.image_height, f.scale_y, f.height);
        let gw = f.width as usize;
        let (mut hi, mut lo) = (0u64, 0u64);
        let mut out = Vec::new();
        for &(a, b, wy) in &ys {
            for &(l, r, wx) in &xs {
                let vl = logits[a * gw + l] + (logits[b * gw + l] - logits[a * gw + l]) * wy;
                let vr = logits[a * gw + r] + (logits[b * gw + r] - logits[a * gw + r]) * wy;
                let v = vl + (vr - vl) * wx;
                hi += (v > 1.0) as u64;
                lo += (v > -1.0) as u64;
                out.push(v > 0.0);
            }
        }
        (out, hi as f32 / lo.max(1) as f32)
    }

    #[test]
    fn fast_path_equals_per_pixel_sampling() {
        let f = frame(123, 77);
        let logits: Vec<f32> = (0..64)
            .map(|i| (((i * 37) % 11) as f32 - 5.0) * 1.7 + if i % 9 == 0 { 30.0 } else { 0.0 })
            .collect();
        let (dense, stability) = slow(&logits, &f);
        let m = mask_from_logits(&logits, &f, 1, 0.5, 0.0, 1.0).unwrap();
        assert_eq!(m.to_dense(123, 77), dense);
        assert!(
            (m.stability - stability).abs() < 1e-6,
            "{} vs {stability}",
            m.stability
        );
    }

    #[test]
    fn all_negative_is_none() {
        assert!(mask_from_logits(&[-5.0; 64], &frame(10, 10), 1, 0.5, 0.0, 1.0).is_none());
    }

    #[test]
    fn soft_edges_lower_stability() {
        let logits: Vec<f32> = (0..64).map(|i| (i % 8) as f32 - 3.5).collect();
        let m = mask_from_logits(&logits, &frame(64, 64), 1, 0.5, 0.0, 1.0).unwrap();
        assert!(m.stability < 0.9, "{}", m.stability);
    }
}
