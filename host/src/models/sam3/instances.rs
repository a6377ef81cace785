//! SAM3 decoder output → [`Mask`]s: boolean instance planes to bbox-local RLE (scaled up to the
//! original frame where the decoder ran on a smaller one), mask IoU, NMS and the final ordering.

use crate::masks::{BBox, Mask};

/// Size of the frame the decoder produced its masks in, and of the original image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Frames {
    pub frame_width: u32,
    pub frame_height: u32,
    pub width: u32,
    pub height: u32,
}

impl Frames {
    /// The decoder's frame for an image of `width`×`height`: the image itself, or its size
    /// scaled so the longest side is `max_side`.
    pub fn new(width: u32, height: u32, max_side: u32) -> Frames {
        let longest = width.max(height);
        let (frame_width, frame_height) = if longest <= max_side || max_side == 0 {
            (width, height)
        } else {
            let s = max_side as f64 / longest as f64;
            (
                ((width as f64 * s).round() as u32).clamp(1, max_side),
                ((height as f64 * s).round() as u32).clamp(1, max_side),
            )
        };
        Frames {
            frame_width,
            frame_height,
            width,
            height,
        }
    }

    fn is_identity(&self) -> bool {
        self.frame_width == self.width && self.frame_height == self.height
    }
}

/// Whether any value of `row` is set (branch-free over chunks so it vectorises).
fn any_set(row: &[bool]) -> bool {
    row.chunks(64)
        .any(|chunk| chunk.iter().fold(false, |acc, &b| acc | b))
}

/// Extent `(x0, y0, x1, y1)` (exclusive ends) of the set values of a `width`-wide plane.
fn extent(plane: &[bool], width: usize) -> Option<(usize, usize, usize, usize)> {
    let rows: Vec<&[bool]> = plane.chunks_exact(width.max(1)).collect();
    let y0 = rows.iter().position(|r| any_set(r))?;
    let y1 = rows.iter().rposition(|r| any_set(r))? + 1;
    let (mut x0, mut x1) = (usize::MAX, 0usize);
    for row in &rows[y0..y1] {
        if let Some(first) = row[..x0.min(width)].iter().position(|&b| b) {
            x0 = first;
        }
        if let Some(last) = row[x1..].iter().rposition(|&b| b) {
            x1 = x1 + last + 1;
        }
    }
    Some((x0.min(x1), y0, x1, y1))
}

/// Encodes one instance plane (`frame_width * frame_height` booleans) as a [`Mask`] over the
/// original image. Only the instance's extent is visited after a fast scan for it; a plane from
/// a smaller frame is scaled up with nearest-neighbour sampling. `None` for an empty plane.
pub(crate) fn plane_to_mask(plane: &[bool], frames: Frames, id: u32, score: f32) -> Option<Mask> {
    let fw = frames.frame_width as usize;
    if plane.len() != fw * frames.frame_height as usize {
        return None;
    }
    let (x0, y0, x1, y1) = extent(plane, fw)?;
    let (ox0, oy0, ox1, oy1, crop) = if frames.is_identity() {
        let mut crop = Vec::with_capacity((x1 - x0) * (y1 - y0));
        for y in y0..y1 {
            crop.extend_from_slice(&plane[y * fw + x0..y * fw + x1]);
        }
        (x0, y0, x1, y1, crop)
    } else {
        let sx = frames.width as f64 / frames.frame_width as f64;
        let sy = frames.height as f64 / frames.frame_height as f64;
        let (w, h) = (frames.width as usize, frames.height as usize);
        let ox0 = ((x0 as f64 * sx).floor() as usize).min(w);
        let ox1 = ((x1 as f64 * sx).ceil() as usize).clamp(ox0, w);
        let oy0 = ((y0 as f64 * sy).floor() as usize).min(h);
        let oy1 = ((y1 as f64 * sy).ceil() as usize).clamp(oy0, h);
        let source = |o: usize, s: f64, n: usize| (((o as f64 + 0.5) / s) as usize).min(n - 1);
        let columns: Vec<usize> = (ox0..ox1).map(|x| source(x, sx, fw)).collect();
        let mut crop = Vec::with_capacity((ox1 - ox0) * (oy1 - oy0));
        for y in oy0..oy1 {
            let row = &plane[source(y, sy, frames.frame_height as usize) * fw..][..fw];
            crop.extend(columns.iter().map(|&c| row[c]));
        }
        (ox0, oy0, ox1, oy1, crop)
    };
    let mut mask = Mask::from_dense(
        id,
        score,
        1.0,
        (ox1 - ox0) as u32,
        (oy1 - oy0) as u32,
        &crop,
    )?;
    mask.bbox.x += ox0 as u32;
    mask.bbox.y += oy0 as u32;
    Some(mask)
}

fn intersect(a: &BBox, b: &BBox) -> Option<BBox> {
    let x0 = a.x.max(b.x);
    let y0 = a.y.max(b.y);
    let x1 = (a.x + a.width).min(b.x + b.width);
    let y1 = (a.y + a.height).min(b.y + b.height);
    (x1 > x0 && y1 > y0).then(|| BBox {
        x: x0,
        y: y0,
        width: x1 - x0,
        height: y1 - y0,
    })
}

/// Intersection over union of two masks.
pub(crate) fn mask_iou(a: &Mask, b: &Mask) -> f64 {
    let Some(common) = intersect(&a.bbox, &b.bbox) else {
        return 0.0;
    };
    let (w, h) = (common.width as usize, common.height as usize);
    let mut grid = vec![false; w * h];
    let inside = |x: u32, y: u32| {
        x >= common.x
            && y >= common.y
            && x < common.x + common.width
            && y < common.y + common.height
    };
    a.for_each_pixel(|x, y| {
        if inside(x, y) {
            grid[(y - common.y) as usize * w + (x - common.x) as usize] = true;
        }
    });
    let mut intersection = 0u64;
    b.for_each_pixel(|x, y| {
        if inside(x, y) && grid[(y - common.y) as usize * w + (x - common.x) as usize] {
            intersection += 1;
        }
    });
    let union = a.area + b.area - intersection;
    if union == 0 {
        0.0
    } else {
        intersection as f64 / union as f64
    }
}

/// Sorts by descending score, then by bounding box (top, left, height, width).
pub(crate) fn sort_masks(masks: &mut [Mask]) {
    masks.sort_by(|a, b| {
        b.score.total_cmp(&a.score).then_with(|| {
            (a.bbox.y, a.bbox.x, a.bbox.height, a.bbox.width).cmp(&(
                b.bbox.y,
                b.bbox.x,
                b.bbox.height,
                b.bbox.width,
            ))
        })
    });
}

/// Greedy non-maximum suppression: keeps masks in score order, dropping any whose IoU with a
/// kept one exceeds `threshold`.
pub(crate) fn nms(mut masks: Vec<Mask>, threshold: f64) -> Vec<Mask> {
    sort_masks(&mut masks);
    let mut kept: Vec<Mask> = Vec::with_capacity(masks.len());
    for m in masks {
        if kept.iter().all(|k| mask_iou(k, &m) <= threshold) {
            kept.push(m);
        }
    }
    kept
}

/// Final order and ids 1..n (labels follow the ids).
pub(crate) fn finish(mut masks: Vec<Mask>) -> Vec<Mask> {
    sort_masks(&mut masks);
    for (i, m) in masks.iter_mut().enumerate() {
        m.id = i as u32 + 1;
        m.label = m.id;
    }
    masks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plane(w: usize, h: usize, rect: (usize, usize, usize, usize)) -> Vec<bool> {
        let mut p = vec![false; w * h];
        for y in rect.1..rect.3 {
            for x in rect.0..rect.2 {
                p[y * w + x] = true;
            }
        }
        p
    }

    #[test]
    fn identity_frame_keeps_pixels() {
        let p = plane(10, 8, (2, 3, 6, 5));
        let frames = Frames::new(10, 8, 4096);
        let m = plane_to_mask(&p, frames, 1, 0.9).expect("mask");
        assert_eq!(
            m.bbox,
            BBox {
                x: 2,
                y: 3,
                width: 4,
                height: 2
            }
        );
        assert_eq!(m.area, 8);
        assert_eq!(m.to_dense(10, 8), p);
        assert!(plane_to_mask(&[false; 80], frames, 1, 0.9).is_none());
    }

    #[test]
    fn l_shape_extent_is_exact() {
        let mut p = plane(9, 9, (1, 1, 2, 7));
        p[6 * 9 + 7] = true;
        let m = plane_to_mask(&p, Frames::new(9, 9, 100), 1, 0.5).expect("mask");
        assert_eq!(
            m.bbox,
            BBox {
                x: 1,
                y: 1,
                width: 7,
                height: 6
            }
        );
        assert_eq!(m.to_dense(9, 9), p);
    }

    #[test]
    fn smaller_frame_is_scaled_up() {
        let frames = Frames::new(400, 200, 100);
        assert_eq!((frames.frame_width, frames.frame_height), (100, 50));
        let p = plane(100, 50, (10, 10, 20, 30));
        let m = plane_to_mask(&p, frames, 1, 0.9).expect("mask");
        assert_eq!(
            m.bbox,
            BBox {
                x: 40,
                y: 40,
                width: 40,
                height: 80
            }
        );
        assert_eq!(m.area, 40 * 80);
    }

    #[test]
    fn nms_drops_duplicates_and_ids_follow_score() {
        let frames = Frames::new(20, 20, 100);
        let a = plane_to_mask(&plane(20, 20, (0, 0, 10, 10)), frames, 1, 0.8).expect("a");
        let b = plane_to_mask(&plane(20, 20, (0, 0, 10, 9)), frames, 2, 0.9).expect("b");
        let c = plane_to_mask(&plane(20, 20, (12, 12, 18, 18)), frames, 3, 0.7).expect("c");
        assert!((mask_iou(&a, &b) - 0.9).abs() < 1e-9);
        assert_eq!(mask_iou(&a, &c), 0.0);
        let kept = finish(nms(vec![a, b, c], 0.5));
        assert_eq!(kept.len(), 2);
        assert_eq!((kept[0].id, kept[0].score), (1, 0.9));
        assert_eq!((kept[1].id, kept[1].label, kept[1].score), (2, 2, 0.7));
    }
}
