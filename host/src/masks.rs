//! Masks as they travel from the models through the filter chain to the formatters: a compact,
//! bbox-local run-length encoding (the same one the WIT package `samgeo:plugin` uses).

/// A pixel rectangle: columns `x .. x + width`, rows `y .. y + height` (exclusive ends).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BBox {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// One mask over an image, run-length encoded inside its bounding box.
#[derive(Debug, Clone, PartialEq)]
pub struct Mask {
    /// Identifier, unique within a mask set (1-based).
    pub id: u32,
    /// Value in label rasters and vector output; `id` unless a filter changed it.
    pub label: u32,
    /// The model's predicted IoU.
    pub score: f32,
    /// Stability score; 1.0 where none was computed.
    pub stability: f32,
    /// Number of set pixels.
    pub area: u64,
    /// Smallest rectangle holding every set pixel.
    pub bbox: BBox,
    /// Row-major runs inside `bbox`, alternating unset, set, unset, ...; the first run counts
    /// unset pixels and may be 0.
    pub runs: Vec<u32>,
}

impl Mask {
    /// Encodes a dense mask (`width * height` booleans, row-major; `true` = set). Returns `None`
    /// for an empty mask.
    pub fn from_dense(
        id: u32,
        score: f32,
        stability: f32,
        width: u32,
        height: u32,
        pixels: &[bool],
    ) -> Option<Mask> {
        debug_assert_eq!(pixels.len(), width as usize * height as usize);
        let w = width as usize;
        let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0usize, 0usize);
        let mut area = 0u64;
        for (row_index, row) in pixels.chunks_exact(w.max(1)).enumerate() {
            let Some(first) = row.iter().position(|&p| p) else {
                continue;
            };
            let last = row.iter().rposition(|&p| p).unwrap_or(first);
            area += row[first..=last].iter().filter(|&&p| p).count() as u64;
            x0 = x0.min(first);
            x1 = x1.max(last + 1);
            y0 = y0.min(row_index);
            y1 = row_index + 1;
        }
        if area == 0 {
            return None;
        }
        let bbox = BBox {
            x: x0 as u32,
            y: y0 as u32,
            width: (x1 - x0) as u32,
            height: (y1 - y0) as u32,
        };
        let mut runs = Vec::new();
        let mut current = false;
        let mut run = 0u32;
        for row in y0..y1 {
            for &p in &pixels[row * w + x0..row * w + x1] {
                if p != current {
                    runs.push(run);
                    run = 0;
                    current = p;
                }
                run += 1;
            }
        }
        runs.push(run);
        Some(Mask {
            id,
            label: id,
            score,
            stability,
            area,
            bbox,
            runs,
        })
    }

    /// Calls `f(x, y)` for every set pixel, in image coordinates.
    pub fn for_each_pixel(&self, mut f: impl FnMut(u32, u32)) {
        let w = self.bbox.width.max(1);
        let mut offset = 0u32;
        for (i, &run) in self.runs.iter().enumerate() {
            if i % 2 == 1 {
                for k in offset..offset + run {
                    f(self.bbox.x + k % w, self.bbox.y + k / w);
                }
            }
            offset += run;
        }
    }

    /// Decodes into a dense `width * height` boolean raster.
    pub fn to_dense(&self, width: u32, height: u32) -> Vec<bool> {
        let mut out = vec![false; width as usize * height as usize];
        self.for_each_pixel(|x, y| {
            if x < width && y < height {
                out[y as usize * width as usize + x as usize] = true;
            }
        });
        out
    }
}

/// The masks of one request, in painting order (later masks win where they overlap).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MaskSet {
    pub width: u32,
    pub height: u32,
    pub masks: Vec<Mask>,
}

/// Where a raster lies on Earth; all `None` for an image without georeferencing.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Georef {
    /// GDAL's six affine coefficients.
    pub geotransform: Option<[f64; 6]>,
    /// The CRS as WKT.
    pub crs_wkt: Option<String>,
    /// The CRS's EPSG code where one matches.
    pub epsg: Option<u32>,
}

/// What the filters and the formatter of one request see.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PluginRequest {
    pub masks: MaskSet,
    pub georef: Georef,
    /// Form fields and configured plugin options, as strings.
    pub params: Vec<(String, String)>,
}

/// A formatter's result: the response body and how to label it.
#[derive(Debug, Clone, PartialEq)]
pub struct FormattedOutput {
    pub content_type: String,
    pub file_name: String,
    pub bytes: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_an_l_shape() {
        let (w, h) = (5u32, 4u32);
        let mut dense = vec![false; 20];
        for &(x, y) in &[(1, 1), (1, 2), (2, 2), (3, 2)] {
            dense[y * 5 + x] = true;
        }
        let m = Mask::from_dense(7, 0.9, 1.0, w, h, &dense).unwrap();
        assert_eq!(
            m.bbox,
            BBox {
                x: 1,
                y: 1,
                width: 3,
                height: 2
            }
        );
        assert_eq!(m.area, 4);
        assert_eq!(m.runs, vec![0, 1, 2, 3]);
        assert_eq!(m.label, 7);
        assert_eq!(m.to_dense(w, h), dense);
    }

    #[test]
    fn empty_mask_is_none() {
        assert!(Mask::from_dense(1, 0.5, 1.0, 3, 3, &[false; 9]).is_none());
    }

    #[test]
    fn runs_sum_to_bbox_area() {
        let dense: Vec<bool> = (0..64).map(|i| (i * 7) % 5 == 0).collect();
        let m = Mask::from_dense(1, 0.5, 1.0, 8, 8, &dense).unwrap();
        let total: u32 = m.runs.iter().sum();
        assert_eq!(total, m.bbox.width * m.bbox.height);
        assert_eq!(m.to_dense(8, 8), dense);
    }
}
