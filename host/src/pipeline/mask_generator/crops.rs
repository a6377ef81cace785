//! Crop boxes: the whole image, then layer `i` (1-based) cut into `2^i × 2^i` overlapping
//! crops (segment-anything's `generate_crop_boxes`), and the test for masks cut off by a crop.

use super::nms::XyxyBox;

/// A crop in original pixel coordinates, columns `x0..x1` and rows `y0..y1` (exclusive ends).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CropBox {
    pub x0: u32,
    pub y0: u32,
    pub x1: u32,
    pub y1: u32,
}

impl CropBox {
    /// The whole `width`×`height` image.
    pub fn full(width: u32, height: u32) -> CropBox {
        CropBox {
            x0: 0,
            y0: 0,
            x1: width,
            y1: height,
        }
    }

    pub fn width(&self) -> u32 {
        self.x1.saturating_sub(self.x0)
    }

    pub fn height(&self) -> u32 {
        self.y1.saturating_sub(self.y0)
    }

    /// Pixels covered.
    pub fn area(&self) -> u64 {
        self.width() as u64 * self.height() as u64
    }

    /// True when the crop is the whole `width`×`height` image.
    pub fn is_full(&self, width: u32, height: u32) -> bool {
        *self == CropBox::full(width, height)
    }
}

/// A crop and the layer it belongs to (0 = the whole image).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerCrop {
    pub crop: CropBox,
    pub layer: u32,
}

/// Every crop of a `width`×`height` image: the whole image first, then each layer's crops in
/// the reference's order (x offsets outer, y offsets inner). Neighbouring crops of layer `i`
/// overlap by `overlap_ratio · short_side · 2 / 2^i` pixels. Empty crops (possible only for
/// tiny images) are left out.
pub fn crop_boxes(width: u32, height: u32, n_layers: u32, overlap_ratio: f64) -> Vec<LayerCrop> {
    let mut out = vec![LayerCrop {
        crop: CropBox::full(width, height),
        layer: 0,
    }];
    let short_side = width.min(height) as f64;
    let crop_len = |orig: u32, n: u64, overlap: u64| -> u64 {
        ((overlap * (n - 1) + orig as u64) as f64 / n as f64).ceil() as u64
    };
    for layer in 0..n_layers {
        let n = 1u64 << (layer + 1);
        let overlap = (overlap_ratio * short_side * (2.0 / n as f64)) as u64;
        let crop_w = crop_len(width, n, overlap);
        let crop_h = crop_len(height, n, overlap);
        let starts =
            |len: u64| -> Vec<u64> { (0..n).map(|i| len.saturating_sub(overlap) * i).collect() };
        let (xs, ys) = (starts(crop_w), starts(crop_h));
        for &x0 in &xs {
            for &y0 in &ys {
                let crop = CropBox {
                    x0: x0.min(width as u64) as u32,
                    y0: y0.min(height as u64) as u32,
                    x1: (x0 + crop_w).min(width as u64) as u32,
                    y1: (y0 + crop_h).min(height as u64) as u32,
                };
                if crop.area() > 0 {
                    out.push(LayerCrop {
                        crop,
                        layer: layer + 1,
                    });
                }
            }
        }
    }
    out
}

/// Distance within which a box edge counts as lying on a crop or image edge (the reference's
/// `atol`).
pub const EDGE_TOLERANCE: f32 = 20.0;

/// segment-anything's `is_box_near_crop_edge`: true when some edge of `b` (image coordinates)
/// lies within [`EDGE_TOLERANCE`] of the crop's edge without also lying that close to the
/// `width`×`height` image's edge. Such masks are probably cut off by the crop.
pub fn is_box_near_crop_edge(b: &XyxyBox, crop: &CropBox, width: u32, height: u32) -> bool {
    let close = |a: f32, b: f32| (a - b).abs() <= EDGE_TOLERANCE;
    let edges = [
        (b.x0, crop.x0, 0),
        (b.y0, crop.y0, 0),
        (b.x1, crop.x1, width),
        (b.y1, crop.y1, height),
    ];
    edges
        .iter()
        .any(|&(v, c, i)| close(v, c as f32) && !close(v, i as f32))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x0: u32, y0: u32, x1: u32, y1: u32) -> CropBox {
        CropBox { x0, y0, x1, y1 }
    }

    #[test]
    fn no_layers_is_whole_image() {
        let c = crop_boxes(640, 480, 0, 512.0 / 1500.0);
        assert_eq!(
            c,
            vec![LayerCrop {
                crop: b(0, 0, 640, 480),
                layer: 0
            }]
        );
    }

    #[test]
    fn matches_reference_values() {
        // Values from segment-anything's generate_crop_boxes((480, 640), 2, 512/1500).
        // Layer 1: overlap int(0.3413*480*1) = 163, crop_w = ceil((163+640)/2) = 402,
        // crop_h = ceil((163+480)/2) = 322; starts 0, 239 and 0, 159.
        let c = crop_boxes(640, 480, 2, 512.0 / 1500.0);
        assert_eq!(c.len(), 1 + 4 + 16);
        let layer1: Vec<CropBox> = c.iter().filter(|l| l.layer == 1).map(|l| l.crop).collect();
        assert_eq!(
            layer1,
            vec![
                b(0, 0, 402, 322),
                b(0, 159, 402, 480),
                b(239, 0, 640, 322),
                b(239, 159, 640, 480)
            ]
        );
        // Layer 2: overlap int(0.3413*480*0.5) = 81, crop_w = ceil((243+640)/4) = 221,
        // crop_h = ceil((243+480)/4) = 181; x starts 0, 140, 280, 420.
        let layer2: Vec<CropBox> = c.iter().filter(|l| l.layer == 2).map(|l| l.crop).collect();
        assert_eq!(layer2[0], b(0, 0, 221, 181));
        assert_eq!(layer2[1], b(0, 100, 221, 281));
        assert_eq!(layer2[15], b(420, 300, 640, 480));
    }

    #[test]
    fn near_crop_edge_but_not_image_edge() {
        let crop = b(0, 0, 402, 322);
        let bx = |x0: f32, y0: f32, x1: f32, y1: f32| XyxyBox { x0, y0, x1, y1 };
        // Touches the crop's left/top edges, which are image edges: kept.
        assert!(!is_box_near_crop_edge(
            &bx(0.0, 0.0, 100.0, 100.0),
            &crop,
            640,
            480
        ));
        // Right edge within 20 px of the crop's right edge (an interior edge): dropped.
        assert!(is_box_near_crop_edge(
            &bx(50.0, 50.0, 385.0, 100.0),
            &crop,
            640,
            480
        ));
        assert!(!is_box_near_crop_edge(
            &bx(50.0, 50.0, 380.0, 100.0),
            &crop,
            640,
            480
        ));
        // The whole image is never cut off.
        let full = CropBox::full(640, 480);
        assert!(!is_box_near_crop_edge(
            &bx(0.0, 0.0, 639.0, 479.0),
            &full,
            640,
            480
        ));
    }
}
