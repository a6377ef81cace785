//! Low-resolution mask logits → a mask at the original image size, as the reference predictors
//! upsample them (bilinear, `align_corners=False`, in `f32`): SAM2 straight to the image size;
//! SAM first to the padded 1024² encoder frame, then the padding cropped off, then to the image
//! size. Both steps are fused into one set of per-axis weights (at most three grid cells per
//! output pixel), evaluated only inside the mask's neighbourhood, with thresholding and the
//! stability score in the same pass.

use crate::masks::{BBox, Mask};

/// How the logits reach the image size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Upsampling {
    /// Bilinear straight to the image size (SAM2's `postprocess_masks`).
    Direct,
    /// Bilinear to `side`×`side`, keep the top-left `input_width`×`input_height` (the resized
    /// image before padding), bilinear to the image size (segment-anything's
    /// `Sam.postprocess_masks`).
    ViaPadded {
        side: u32,
        input_width: u32,
        input_height: u32,
    },
}

/// How a `width`×`height` grid of low-resolution logits lies over the original image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LowResFrame {
    /// Logit grid size (256×256 for SAM and SAM2).
    pub width: u32,
    pub height: u32,
    /// Original image size.
    pub image_width: u32,
    pub image_height: u32,
    pub upsampling: Upsampling,
}

impl LowResFrame {
    /// A `grid`² logit grid upsampled straight to `image_width`×`image_height` (SAM2).
    pub fn direct(grid: u32, image_width: u32, image_height: u32) -> LowResFrame {
        LowResFrame {
            width: grid,
            height: grid,
            image_width,
            image_height,
            upsampling: Upsampling::Direct,
        }
    }

    /// A `grid`² logit grid upsampled to `side`², cropped to `input_width`×`input_height`,
    /// then upsampled to the image size (SAM).
    pub fn via_padded(
        grid: u32,
        side: u32,
        (input_width, input_height): (u32, u32),
        (image_width, image_height): (u32, u32),
    ) -> LowResFrame {
        LowResFrame {
            width: grid,
            height: grid,
            image_width,
            image_height,
            upsampling: Upsampling::ViaPadded {
                side,
                input_width,
                input_height,
            },
        }
    }

    fn x_taps(&self) -> Vec<Taps> {
        match self.upsampling {
            Upsampling::Direct => direct_taps(self.image_width, self.width),
            Upsampling::ViaPadded {
                side, input_width, ..
            } => two_step_taps(self.image_width, input_width, side, self.width),
        }
    }

    fn y_taps(&self) -> Vec<Taps> {
        match self.upsampling {
            Upsampling::Direct => direct_taps(self.image_height, self.height),
            Upsampling::ViaPadded {
                side, input_height, ..
            } => two_step_taps(self.image_height, input_height, side, self.height),
        }
    }
}

/// One output coordinate's blend: grid cells `start`, `start + 1`, `start + 2` with these
/// (non-negative, summing to 1) weights. Cells past the grid have weight 0.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Taps {
    start: usize,
    weights: [f32; 3],
}

/// PyTorch's bilinear source index for output `i` (`align_corners=False`, computed in `f32`
/// as its CPU kernel does): the lower input index, whether there is an upper one, and the
/// weight of the upper one.
fn source(i: u32, in_size: u32, out_size: u32) -> (usize, usize, f32) {
    let scale = in_size as f32 / out_size as f32;
    let real = (scale * (i as f32 + 0.5) - 0.5).max(0.0);
    let i0 = (real.floor() as usize).min(in_size as usize - 1);
    let i1 = if i0 + 1 < in_size as usize {
        i0 + 1
    } else {
        i0
    };
    let lambda = (real - i0 as f32).clamp(0.0, 1.0);
    (i0, i1, lambda)
}

/// Taps of a single bilinear step from a `grid` axis to `count` outputs.
fn direct_taps(count: u32, grid: u32) -> Vec<Taps> {
    (0..count)
        .map(|i| {
            let (i0, i1, l) = source(i, grid, count);
            let mut weights = [1.0 - l, 0.0, 0.0];
            weights[i1 - i0] += l;
            Taps { start: i0, weights }
        })
        .collect()
}

/// Taps of two bilinear steps: `grid` → `side`, keep the first `input` samples, → `count`.
fn two_step_taps(count: u32, input: u32, side: u32, grid: u32) -> Vec<Taps> {
    let input = input.clamp(1, side);
    // The intermediate sample `j` as a blend of grid cells.
    let stage1 = |j: usize| source(j as u32, grid, side);
    (0..count)
        .map(|i| {
            let (j0, j1, a) = source(i, input, count);
            let (k00, k01, b0) = stage1(j0);
            let (k10, k11, b1) = stage1(j1);
            let start = k00;
            let mut weights = [0f32; 3];
            for (k, w) in [
                (k00, (1.0 - a) * (1.0 - b0)),
                (k01, (1.0 - a) * b0),
                (k10, a * (1.0 - b1)),
                (k11, a * b1),
            ] {
                weights[k - start] += w;
            }
            Taps { start, weights }
        })
        .collect()
}

/// Pixels `start..end` (of a row of the region) all blend grid cells from `cell` on.
struct Segment {
    start: usize,
    end: usize,
    cell: usize,
}

/// Groups consecutive pixels whose taps start at the same grid cell.
fn cell_segments(taps: &[Taps]) -> Vec<Segment> {
    let mut segments: Vec<Segment> = Vec::new();
    for (i, t) in taps.iter().enumerate() {
        match segments.last_mut() {
            Some(s) if s.cell == t.start => s.end = i + 1,
            _ => segments.push(Segment {
                start: i,
                end: i + 1,
                cell: t.start,
            }),
        }
    }
    segments
}

/// Output coordinates whose taps can touch grid cells `c0..=c1`.
fn touching(taps: &[Taps], c0: usize, c1: usize) -> (usize, usize) {
    let first = taps.iter().position(|t| t.start + 2 >= c0);
    let last = taps.iter().rposition(|t| t.start <= c1);
    match (first, last) {
        (Some(f), Some(l)) if f <= l => (f, l + 1),
        _ => (0, 0),
    }
}

/// Rounding allowance when a whole run is decided from its ends.
fn margin(value: f32) -> f32 {
    1e-4 * (1.0 + value.abs())
}

/// One pixel's value from the row blend of the grid cells.
fn blend(t: &Taps, row: &[f32]) -> f32 {
    let mut v = 0f32;
    for (k, &w) in t.weights.iter().enumerate() {
        if w != 0.0 {
            v += w * row[t.start + k];
        }
    }
    v
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
    // Grid cells that can contribute: any cell above the lowest threshold.
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
    let xs = frame.x_taps();
    let ys = frame.y_taps();
    // Original pixels whose blend can touch those cells.
    let (x0, x1) = touching(&xs, cx0, cx1);
    let (y0, y1) = touching(&ys, cy0, cy1);
    if x0 >= x1 || y0 >= y1 {
        return None;
    }
    let (rw, rh) = (x1 - x0, y1 - y0);
    let high = threshold + stability_offset.abs();
    // Pixels of the region that blend the same grid cells, as runs.
    let segments = cell_segments(&xs[x0..x1]);
    let (c_lo, c_hi) = (xs[x0].start, (xs[x1 - 1].start + 3).min(gw));
    let mut region = vec![false; rw * rh];
    let mut blended = vec![0f32; gw + 2];
    let (mut above_high, mut above_low) = (0u64, 0u64);
    for (ry, out_row) in region.chunks_exact_mut(rw).enumerate() {
        let t = ys[y0 + ry];
        for c in c_lo..c_hi {
            let mut v = 0f32;
            for (k, &w) in t.weights.iter().enumerate() {
                if w != 0.0 {
                    v += w * logits[(t.start + k).min(gh - 1) * gw + c];
                }
            }
            blended[c] = v;
        }
        for seg in &segments {
            let cells = &blended[seg.cell..(seg.cell + 3).min(c_hi)];
            let lo = cells.iter().copied().fold(f32::INFINITY, f32::min);
            let hi = cells.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let pixels = &mut out_row[seg.start..seg.end];
            // A blend (non-negative weights summing to 1) lies between its cells' extremes:
            // whole runs above the high threshold or below the low one need no per-pixel work
            // (with a margin for rounding).
            if lo > high + margin(high) {
                pixels.fill(true);
                above_high += pixels.len() as u64;
                above_low += pixels.len() as u64;
            } else if hi < low - margin(low) {
                // Unset and uncounted: the region starts all false.
            } else {
                for (k, px) in pixels.iter_mut().enumerate() {
                    let v = blend(&xs[x0 + seg.start + k], &blended);
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
        x: mask.bbox.x + x0 as u32,
        y: mask.bbox.y + y0 as u32,
        ..mask.bbox
    };
    Some(mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(iw: u32, ih: u32) -> LowResFrame {
        LowResFrame::direct(8, iw, ih)
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

    /// PyTorch's `F.interpolate(mode="bilinear", align_corners=False)` of a row-major
    /// `w`×`h` plane to `ow`×`oh`, written out literally.
    fn interpolate(plane: &[f32], w: u32, h: u32, ow: u32, oh: u32) -> Vec<f32> {
        let mut out = Vec::with_capacity((ow * oh) as usize);
        for y in 0..oh {
            let (a, b, ly) = source(y, h, oh);
            for x in 0..ow {
                let (l, r, lx) = source(x, w, ow);
                let at = |yy: usize, xx: usize| plane[yy * w as usize + xx];
                let top = (1.0 - lx) * at(a, l) + lx * at(a, r);
                let bottom = (1.0 - lx) * at(b, l) + lx * at(b, r);
                out.push((1.0 - ly) * top + ly * bottom);
            }
        }
        out
    }

    /// The reference's steps one after the other: the dense logits at the image size.
    fn reference(logits: &[f32], f: &LowResFrame) -> Vec<f32> {
        match f.upsampling {
            Upsampling::Direct => {
                interpolate(logits, f.width, f.height, f.image_width, f.image_height)
            }
            Upsampling::ViaPadded {
                side,
                input_width,
                input_height,
            } => {
                let padded = interpolate(logits, f.width, f.height, side, side);
                let cropped: Vec<f32> = (0..input_height as usize)
                    .flat_map(|y| {
                        padded[y * side as usize..y * side as usize + input_width as usize].to_vec()
                    })
                    .collect();
                interpolate(
                    &cropped,
                    input_width,
                    input_height,
                    f.image_width,
                    f.image_height,
                )
            }
        }
    }

    fn wavy_logits(n: usize) -> Vec<f32> {
        (0..n * n)
            .map(|i| {
                let (x, y) = ((i % n) as f32, (i / n) as f32);
                (x * 0.7).sin() * 3.0 + (y * 0.45).cos() * 2.5 - 0.8
                    + if i % 13 == 0 { 9.0 } else { 0.0 }
            })
            .collect()
    }

    fn check_against_reference(logits: &[f32], f: &LowResFrame) {
        let dense = reference(logits, f);
        let expected: Vec<bool> = dense.iter().map(|&v| v > 0.0).collect();
        let hi = dense.iter().filter(|&&v| v > 1.0).count() as f32;
        let lo = dense.iter().filter(|&&v| v > -1.0).count() as f32;
        let m = mask_from_logits(logits, f, 1, 0.5, 0.0, 1.0).unwrap();
        let got = m.to_dense(f.image_width, f.image_height);
        // Fused weights round differently from two f32 passes: only pixels whose logit is
        // within rounding of the threshold may differ.
        let differing: Vec<usize> = (0..got.len()).filter(|&i| got[i] != expected[i]).collect();
        assert!(
            differing.iter().all(|&i| dense[i].abs() < 1e-4),
            "{} pixels differ, e.g. logit {:?}",
            differing.len(),
            differing.first().map(|&i| dense[i])
        );
        assert!(
            (m.stability - hi / lo).abs() < 1e-3,
            "{} vs {}",
            m.stability,
            hi / lo
        );
    }

    #[test]
    fn direct_upsampling_equals_reference() {
        let logits = wavy_logits(8);
        check_against_reference(&logits, &frame(123, 77));
        check_against_reference(&logits, &frame(5, 6));
    }

    #[test]
    fn padded_upsampling_equals_reference() {
        let logits = wavy_logits(16);
        // A 16² grid → 64² frame, keep 64×45 (a landscape image), → 300×211 and a shrink.
        check_against_reference(
            &logits,
            &LowResFrame::via_padded(16, 64, (64, 45), (300, 211)),
        );
        check_against_reference(
            &logits,
            &LowResFrame::via_padded(16, 64, (40, 64), (25, 40)),
        );
        check_against_reference(
            &logits,
            &LowResFrame::via_padded(16, 64, (64, 64), (64, 64)),
        );
    }

    #[test]
    fn taps_sum_to_one() {
        for t in two_step_taps(718, 929, 1024, 256)
            .into_iter()
            .chain(direct_taps(4096, 256))
        {
            let s: f32 = t.weights.iter().sum();
            assert!((s - 1.0).abs() < 1e-5 && t.weights.iter().all(|&w| w >= 0.0));
            assert!(t.start < 256);
        }
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
