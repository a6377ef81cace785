//! Boxes and greedy non-maximum suppression, as torchvision's `batched_nms` with a single
//! category computes them (in `f32`), plus a deterministic tie-break.

use crate::masks::BBox;

/// A box as segment-anything's `batched_mask_to_box` gives it: the first and the **last**
/// set column and row (inclusive), so a one-pixel-wide mask has zero width.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct XyxyBox {
    pub x0: f32,
    pub y0: f32,
    pub x1: f32,
    pub y1: f32,
}

impl XyxyBox {
    /// The box of a mask's bounding box (a non-empty mask).
    pub fn of_bbox(b: &BBox) -> XyxyBox {
        XyxyBox {
            x0: b.x as f32,
            y0: b.y as f32,
            x1: (b.x + b.width.max(1) - 1) as f32,
            y1: (b.y + b.height.max(1) - 1) as f32,
        }
    }

    /// torchvision's `box_area`: `(x1 − x0) · (y1 − y0)`.
    pub fn area(&self) -> f32 {
        (self.x1 - self.x0) * (self.y1 - self.y0)
    }
}

/// torchvision's `box_iou` of two boxes. NaN when both have zero area and do not overlap,
/// which never suppresses anything (NaN > t is false), as in torchvision.
pub fn box_iou(a: &XyxyBox, b: &XyxyBox) -> f32 {
    let w = (a.x1.min(b.x1) - a.x0.max(b.x0)).max(0.0);
    let h = (a.y1.min(b.y1) - a.y0.max(b.y0)).max(0.0);
    let inter = w * h;
    inter / (a.area() + b.area() - inter)
}

/// The order NMS visits boxes in: scores descending, equal scores by index ascending (the
/// reference's sort is not stable; ours is, so results are reproducible).
pub fn score_order(scores: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order
}

/// Greedy NMS: visits boxes in [`score_order`], keeps a box unless a kept one overlaps it
/// with IoU above `iou_thresh`. Returns the kept indices in visiting order (as torchvision
/// does: highest score first).
pub fn nms(boxes: &[XyxyBox], scores: &[f32], iou_thresh: f32) -> Vec<usize> {
    debug_assert_eq!(boxes.len(), scores.len());
    nms_in_order(boxes, &score_order(scores), iou_thresh)
}

/// Greedy NMS visiting boxes in the given `order`.
pub fn nms_in_order(boxes: &[XyxyBox], order: &[usize], iou_thresh: f32) -> Vec<usize> {
    let mut kept: Vec<usize> = Vec::new();
    for &i in order {
        if !kept
            .iter()
            .any(|&k| box_iou(&boxes[k], &boxes[i]) > iou_thresh)
        {
            kept.push(i);
        }
    }
    kept
}

/// NMS between crops. The reference scores each mask `1 / area of its crop`, so masks from
/// smaller crops (deeper layers, finer views) win over the same object seen in a larger crop;
/// equal crop areas fall back to the order the masks come in (crop order, then score order
/// within the crop). We order by crop area ascending directly, which is the same order
/// without `f32` rounding of the reciprocal.
pub fn crop_nms(boxes: &[XyxyBox], crop_areas: &[u64], iou_thresh: f32) -> Vec<usize> {
    debug_assert_eq!(boxes.len(), crop_areas.len());
    let mut order: Vec<usize> = (0..boxes.len()).collect();
    order.sort_by(|&a, &b| crop_areas[a].cmp(&crop_areas[b]).then(a.cmp(&b)));
    nms_in_order(boxes, &order, iou_thresh)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(x0: f32, y0: f32, x1: f32, y1: f32) -> XyxyBox {
        XyxyBox { x0, y0, x1, y1 }
    }

    #[test]
    fn iou_of_known_boxes() {
        let a = bx(0.0, 0.0, 10.0, 10.0);
        assert_eq!(box_iou(&a, &a), 1.0);
        let b = bx(5.0, 0.0, 15.0, 10.0);
        assert!((box_iou(&a, &b) - 50.0 / 150.0).abs() < 1e-6);
        assert_eq!(box_iou(&a, &bx(20.0, 20.0, 30.0, 30.0)), 0.0);
        let bbox = BBox {
            x: 3,
            y: 4,
            width: 1,
            height: 2,
        };
        assert_eq!(XyxyBox::of_bbox(&bbox), bx(3.0, 4.0, 3.0, 5.0));
    }

    #[test]
    fn nms_keeps_best_and_breaks_ties_by_index() {
        let boxes = vec![
            bx(0.0, 0.0, 10.0, 10.0),
            bx(1.0, 1.0, 10.0, 10.0),
            bx(50.0, 50.0, 60.0, 60.0),
            bx(0.0, 0.0, 10.0, 10.0),
        ];
        assert_eq!(nms(&boxes, &[0.5, 0.9, 0.7, 0.9], 0.7), vec![1, 2]);
        // Ties: the lower index wins.
        assert_eq!(nms(&boxes, &[0.9, 0.1, 0.1, 0.9], 0.7), vec![0, 2]);
        // Nothing overlaps enough at a high threshold.
        assert_eq!(nms(&boxes, &[0.9, 0.8, 0.7, 0.6], 1.0), vec![0, 1, 2, 3]);
    }

    #[test]
    fn crop_nms_prefers_smaller_crops() {
        let boxes = vec![bx(0.0, 0.0, 10.0, 10.0), bx(0.0, 0.0, 10.0, 11.0)];
        assert_eq!(crop_nms(&boxes, &[1000, 100], 0.7), vec![1]);
        assert_eq!(crop_nms(&boxes, &[100, 100], 0.7), vec![0]);
    }
}
