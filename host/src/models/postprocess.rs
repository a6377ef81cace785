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
    let mut region = vec![false; rw * rh];
    let mut blended = vec![0f32; gw];
    let (mut above_high, mut above_low) = (0u64, 0u64);
    for (ry, out_row) in region.chunks_exact_mut(rw).enumerate() {
        let (a, b, wy) = ys[y0 as usize + ry];
        let (row_a, row_b) = (&logits[a * gw..(a + 1) * gw], &logits[b * gw..(b + 1) * gw]);
        for c in cx0.saturating_sub(1)..(cx1 + 2).min(gw) {
            blended[c] = row_a[c] + (row_b[c] - row_a[c]) * wy;
        }
        for (rx, px) in out_row.iter_mut().enumerate() {
            let (l, r, wx) = xs[x0 as usize + rx];
            let (vl, vr) = (blended[l], blended[r]);
            let v = vl + (vr - vl) * wx;
            above_high += (v > high) as u64;
            above_low += (v > low) as u64;
            *px = v > threshold;
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
