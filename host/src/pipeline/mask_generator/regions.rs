//! `min_mask_region_area` clean-up (segment-anything's `remove_small_regions`, "holes" then
//! "islands", 8-connected as OpenCV's `connectedComponentsWithStats(.., 8)`), computed on the
//! mask's bounding box grown by one pixel rather than on the whole image.
//!
//! The reference counts the hole components of the *whole* image, so the unset area outside
//! the box is part of whichever component touches the box's border. We add the area of the
//! outside pieces to the components touching them; when an outside piece is itself smaller
//! than the threshold (a mask covering nearly the whole image) we work on the whole image.

use super::nms::{nms, XyxyBox};
use super::parallel::parallel_map;
use crate::masks::Mask;

/// A rectangle of the image: columns `x0..x1`, rows `y0..y1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Region {
    x0: u32,
    y0: u32,
    x1: u32,
    y1: u32,
}

impl Region {
    fn width(&self) -> usize {
        (self.x1 - self.x0) as usize
    }
    fn height(&self) -> usize {
        (self.y1 - self.y0) as usize
    }
}

/// A connected piece of the image outside the region, with its area and the region sides it
/// borders (top, bottom, left, right).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Piece {
    area: u64,
    sides: [bool; 4],
}

/// The connected pieces of the image outside `r`: none when `r` is the whole image, two
/// when it spans the full width (above and below) or the full height (left and right), one
/// otherwise.
fn outside_pieces(r: &Region, width: u32, height: u32) -> Vec<Piece> {
    let (w, h) = (width as u64, height as u64);
    let spans_w = r.x0 == 0 && r.x1 == width;
    let spans_h = r.y0 == 0 && r.y1 == height;
    let open = [r.y0 > 0, r.y1 < height, r.x0 > 0, r.x1 < width];
    let mut pieces = Vec::new();
    let mut push = |area: u64, sides: [bool; 4]| {
        if area > 0 {
            pieces.push(Piece { area, sides });
        }
    };
    match (spans_w, spans_h) {
        (true, true) => {}
        (true, false) => {
            push(w * r.y0 as u64, [true, false, false, false]);
            push(w * (h - r.y1 as u64), [false, true, false, false]);
        }
        (false, true) => {
            push(h * r.x0 as u64, [false, false, true, false]);
            push(h * (w - r.x1 as u64), [false, false, false, true]);
        }
        (false, false) => {
            let inside = r.width() as u64 * r.height() as u64;
            push(w * h - inside, open);
        }
    }
    pieces
}

/// Labels the 8-connected components of the set pixels of a `w`×`h` grid, numbered from 1
/// in raster order of their first pixel (0 = unset). Returns the labels and each
/// component's size (`sizes[k - 1]` for label `k`).
fn components(pixels: &[bool], w: usize, h: usize) -> (Vec<u32>, Vec<u64>) {
    let mut labels = vec![0u32; pixels.len()];
    let mut sizes = Vec::new();
    let mut stack = Vec::new();
    for start in 0..pixels.len() {
        if !pixels[start] || labels[start] != 0 {
            continue;
        }
        let label = sizes.len() as u32 + 1;
        let mut size = 0u64;
        labels[start] = label;
        stack.push(start);
        while let Some(i) = stack.pop() {
            size += 1;
            let (x, y) = (i % w, i / w);
            for ny in y.saturating_sub(1)..(y + 2).min(h) {
                for nx in x.saturating_sub(1)..(x + 2).min(w) {
                    let j = ny * w + nx;
                    if pixels[j] && labels[j] == 0 {
                        labels[j] = label;
                        stack.push(j);
                    }
                }
            }
        }
        sizes.push(size);
    }
    (labels, sizes)
}

/// Labels found along the sides of a `w`×`h` grid (top, bottom, left, right) that `sides`
/// selects, without duplicates.
fn labels_on_sides(labels: &[u32], w: usize, h: usize, sides: [bool; 4]) -> Vec<u32> {
    let mut found = Vec::new();
    let mut take = |l: u32| {
        if l != 0 && !found.contains(&l) {
            found.push(l);
        }
    };
    if sides[0] {
        (0..w).for_each(|x| take(labels[x]));
    }
    if sides[1] {
        (0..w).for_each(|x| take(labels[(h - 1) * w + x]));
    }
    if sides[2] {
        (0..h).for_each(|y| take(labels[y * w]));
    }
    if sides[3] {
        (0..h).for_each(|y| take(labels[y * w + w - 1]));
    }
    found
}

/// Fills holes smaller than `min_area` pixels, then removes islands smaller than `min_area`
/// (keeping the largest island when all are small), on a mask of a `width`×`height` image.
/// Returns the new mask (same id, score and stability) when anything changed, `None` when
/// the mask is already clean.
pub fn remove_small_regions(mask: &Mask, min_area: u64, width: u32, height: u32) -> Option<Mask> {
    if min_area == 0 || mask.area == 0 {
        return None;
    }
    let b = mask.bbox;
    let full = Region {
        x0: 0,
        y0: 0,
        x1: width,
        y1: height,
    };
    let mut region = Region {
        x0: b.x.saturating_sub(1),
        y0: b.y.saturating_sub(1),
        x1: (b.x + b.width + 1).min(width),
        y1: (b.y + b.height + 1).min(height),
    };
    let mut pieces = outside_pieces(&region, width, height);
    if pieces.iter().any(|p| p.area < min_area) {
        region = full;
        pieces.clear();
    }
    let (rw, rh) = (region.width(), region.height());
    if rw == 0 || rh == 0 {
        return None;
    }
    let mut dense = vec![false; rw * rh];
    mask.for_each_pixel(|x, y| {
        if x >= region.x0 && x < region.x1 && y >= region.y0 && y < region.y1 {
            dense[(y - region.y0) as usize * rw + (x - region.x0) as usize] = true;
        }
    });
    let mut changed = false;

    // Holes: small components of the unset pixels (the outside counted in) become set.
    let inverse: Vec<bool> = dense.iter().map(|&p| !p).collect();
    let (labels, mut sizes) = components(&inverse, rw, rh);
    for piece in &pieces {
        for l in labels_on_sides(&labels, rw, rh, piece.sides) {
            sizes[l as usize - 1] += piece.area;
        }
    }
    if sizes.iter().any(|&s| s < min_area) {
        changed = true;
        for (p, &l) in dense.iter_mut().zip(&labels) {
            if l != 0 && sizes[l as usize - 1] < min_area {
                *p = true;
            }
        }
    }

    // Islands: small components of the set pixels become unset; the largest always stays.
    let (labels, sizes) = components(&dense, rw, rh);
    if sizes.iter().any(|&s| s < min_area) {
        changed = true;
        let mut keep: Vec<bool> = sizes.iter().map(|&s| s >= min_area).collect();
        if !keep.iter().any(|&k| k) {
            let largest =
                sizes.iter().enumerate().fold(
                    0usize,
                    |best, (i, &s)| if s > sizes[best] { i } else { best },
                );
            keep[largest] = true;
        }
        for (p, &l) in dense.iter_mut().zip(&labels) {
            if l != 0 && !keep[l as usize - 1] {
                *p = false;
            }
        }
    }
    if !changed {
        return None;
    }
    let mut cleaned = Mask::from_dense(
        mask.id,
        mask.score,
        mask.stability,
        rw as u32,
        rh as u32,
        &dense,
    )?;
    cleaned.label = mask.label;
    cleaned.bbox.x += region.x0;
    cleaned.bbox.y += region.y0;
    Some(cleaned)
}

/// segment-anything's `postprocess_small_regions`: cleans every mask with
/// [`remove_small_regions`] (on `threads` threads), then runs NMS at `nms_thresh` over the
/// new boxes with score 1 for masks that needed no change and 0 for changed ones (equal
/// scores keep the incoming order), so a clean mask wins over a cleaned duplicate. Returns
/// the kept masks in NMS order.
pub fn clean_small_regions(
    masks: Vec<Mask>,
    min_area: u64,
    nms_thresh: f32,
    threads: usize,
    width: u32,
    height: u32,
) -> Vec<Mask> {
    if masks.is_empty() || min_area == 0 {
        return masks;
    }
    let cleaned = parallel_map(&masks, threads, |m| {
        remove_small_regions(m, min_area, width, height)
    });
    let scores: Vec<f32> = cleaned
        .iter()
        .map(|c| if c.is_none() { 1.0 } else { 0.0 })
        .collect();
    let mut merged: Vec<Option<Mask>> = masks
        .into_iter()
        .zip(cleaned)
        .map(|(original, cleaned)| Some(cleaned.unwrap_or(original)))
        .collect();
    let boxes: Vec<XyxyBox> = merged
        .iter()
        .flatten()
        .map(|m| XyxyBox::of_bbox(&m.bbox))
        .collect();
    nms(&boxes, &scores, nms_thresh)
        .into_iter()
        .filter_map(|i| merged[i].take())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask_of(w: u32, h: u32, set: impl Fn(u32, u32) -> bool) -> Mask {
        let dense: Vec<bool> = (0..h)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .map(|(x, y)| set(x, y))
            .collect();
        Mask::from_dense(3, 0.9, 0.97, w, h, &dense).unwrap()
    }

    #[test]
    fn removes_small_island_and_fills_small_hole() {
        // A 20×20 square at (10,10) with a 2×2 hole, plus a 3×3 island at (40,40).
        let m = mask_of(64, 64, |x, y| {
            let square = (10..30).contains(&x) && (10..30).contains(&y);
            let hole = (18..20).contains(&x) && (18..20).contains(&y);
            let island = (40..43).contains(&x) && (40..43).contains(&y);
            (square && !hole) || island
        });
        assert_eq!(m.area, 400 - 4 + 9);
        let c = remove_small_regions(&m, 20, 64, 64).unwrap();
        assert_eq!(c.area, 400);
        assert_eq!(
            (c.bbox.x, c.bbox.y, c.bbox.width, c.bbox.height),
            (10, 10, 20, 20)
        );
        assert_eq!((c.id, c.score, c.stability), (3, 0.9, 0.97));
        // Already clean: unchanged.
        assert!(remove_small_regions(&c, 20, 64, 64).is_none());
        // A threshold below every region changes nothing.
        assert!(remove_small_regions(&m, 4, 64, 64).is_none());
    }

    #[test]
    fn diagonal_pixels_are_connected() {
        // Two 10×10 squares touching at one corner form one 8-connected island.
        let m = mask_of(40, 40, |x, y| {
            ((5..15).contains(&x) && (5..15).contains(&y))
                || ((15..25).contains(&x) && (15..25).contains(&y))
        });
        assert!(remove_small_regions(&m, 150, 40, 40).is_none());
        // Below the threshold but the only island: kept, and reported as changed (as the reference).
        assert_eq!(
            remove_small_regions(&m, 250, 40, 40).map(|c| c.area),
            Some(200)
        );
    }

    #[test]
    fn gap_open_to_the_outside_is_not_a_hole() {
        // A U shape: the notch reaches the box edge, so it joins the outside and stays open.
        let m = mask_of(50, 50, |x, y| {
            (10..30).contains(&x) && (10..30).contains(&y) && !((18..22).contains(&x) && y < 20)
        });
        assert!(remove_small_regions(&m, 30, 50, 50).is_none());
    }

    #[test]
    fn small_outside_of_a_nearly_full_mask_is_filled() {
        // The mask covers all but a 3-pixel-wide strip at the right of a 40×40 image; that
        // strip (120 px) is a "hole" smaller than 200, as the reference sees it.
        let m = mask_of(40, 40, |x, _| x < 37);
        let c = remove_small_regions(&m, 200, 40, 40).unwrap();
        assert_eq!(c.area, 1600);
        // Touching both side edges: the pieces above and below are counted separately.
        let band = mask_of(30, 30, |_, y| (10..20).contains(&y));
        assert!(remove_small_regions(&band, 200, 30, 30).is_none());
        let c = remove_small_regions(&band, 400, 30, 30).unwrap();
        assert_eq!(c.area, 900);
    }

    #[test]
    fn all_small_islands_keep_the_largest() {
        let m = mask_of(40, 40, |x, y| {
            ((2..5).contains(&x) && (2..5).contains(&y))
                || ((20..24).contains(&x) && (20..24).contains(&y))
        });
        let c = remove_small_regions(&m, 100, 40, 40).unwrap();
        assert_eq!(c.area, 16);
        assert_eq!((c.bbox.x, c.bbox.y), (20, 20));
    }
}
