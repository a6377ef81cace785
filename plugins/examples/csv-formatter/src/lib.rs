//! Example formatter plugin `csv`: one row per mask.
//!
//! Columns: `id,label,score,stability,area,bbox_x,bbox_y,bbox_width,bbox_height,centroid_x,
//! centroid_y`. The bbox is in pixels (exclusive extent); the centroid is the mean of the
//! mask's pixel centres mapped through the geotransform (map coordinates; pixel coordinates
//! when the image has none). Content type `text/csv`, file `masks.csv`. No parameters.
//!
//! Self-contained on purpose: only `wit-bindgen`, no helper crates.

/// A mask as this plugin needs it (decoupled from the generated bindings for native tests).
pub struct MaskRow<'a> {
    pub id: u32,
    pub label: u32,
    pub score: f32,
    pub stability: f32,
    pub area: u64,
    /// x, y, width, height
    pub bbox: [u32; 4],
    /// Run lengths inside the bbox, alternating unset/set, first unset.
    pub runs: &'a [u32],
}

/// The header line.
pub const HEADER: &str =
    "id,label,score,stability,area,bbox_x,bbox_y,bbox_width,bbox_height,centroid_x,centroid_y\n";

/// Mean pixel centre `(col, row)` of the set pixels, in image pixel coordinates.
pub fn centroid(bbox: [u32; 4], runs: &[u32]) -> Option<(f64, f64)> {
    let w = u64::from(bbox[2]);
    if w == 0 {
        return None;
    }
    let (mut n, mut sx, mut sy) = (0f64, 0f64, 0f64);
    let mut pos = 0u64;
    for (i, &len) in runs.iter().enumerate() {
        let end = pos + u64::from(len);
        if i % 2 == 1 {
            // Split the run per row; sum of (c + 0.5) for c in x0..x1 is (x1-x0)(x0+x1)/2.
            let mut p = pos;
            while p < end {
                let (row, col) = (p / w, p % w);
                let take = (end - p).min(w - col);
                let (x0, x1) = (col as f64, (col + take) as f64);
                let k = take as f64;
                n += k;
                sx += k * (x0 + x1) / 2.0;
                sy += k * (row as f64 + 0.5);
                p += take;
            }
        }
        pos = end;
    }
    (n > 0.0).then(|| (f64::from(bbox[0]) + sx / n, f64::from(bbox[1]) + sy / n))
}

/// One CSV row; `to_map` maps pixel coordinates to map coordinates.
pub fn row(m: &MaskRow, to_map: impl Fn(f64, f64) -> (f64, f64)) -> String {
    let (cx, cy) = match centroid(m.bbox, m.runs) {
        Some((c, r)) => {
            let (x, y) = to_map(c, r);
            (x.to_string(), y.to_string())
        }
        None => (String::new(), String::new()),
    };
    format!(
        "{},{},{},{},{},{},{},{},{},{},{}\n",
        m.id,
        m.label,
        m.score,
        m.stability,
        m.area,
        m.bbox[0],
        m.bbox[1],
        m.bbox[2],
        m.bbox[3],
        cx,
        cy
    )
}

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ world: "formatter-plugin", path: "../../../wit/0.1.0" });

    use samgeo::plugin::types::{Output, PluginInfo, Request};

    struct Csv;

    impl exports::samgeo::plugin::formatter::Guest for Csv {
        fn info() -> PluginInfo {
            PluginInfo {
                name: "csv".into(),
                description: "CSV: one row per mask with scores, bbox and map centroid".into(),
            }
        }

        fn format(req: Request) -> Result<Output, String> {
            let gt = req.georef.geotransform;
            let to_map = |c: f64, r: f64| match gt {
                Some(g) => (g.c0 + c * g.c1 + r * g.c2, g.c3 + c * g.c4 + r * g.c5),
                None => (c, r),
            };
            let mut body = String::from(super::HEADER);
            for m in &req.masks.masks {
                let row = super::MaskRow {
                    id: m.id,
                    label: m.label,
                    score: m.score,
                    stability: m.stability,
                    area: m.area,
                    bbox: [m.bbox.x, m.bbox.y, m.bbox.width, m.bbox.height],
                    runs: &m.runs,
                };
                body.push_str(&super::row(&row, to_map));
            }
            Ok(Output {
                content_type: "text/csv".into(),
                file_name: "masks.csv".into(),
                bytes: body.into_bytes(),
            })
        }
    }

    export!(Csv);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centroid_of_an_l_shape() {
        // bbox 2x2 at (10, 20): pixels (10,20), (10,21), (11,21).
        let c = centroid([10, 20, 2, 2], &[0, 1, 1, 2]).unwrap();
        assert!((c.0 - (10.5 + 10.5 + 11.5) / 3.0).abs() < 1e-12);
        assert!((c.1 - (20.5 + 21.5 + 21.5) / 3.0).abs() < 1e-12);
        assert_eq!(centroid([0, 0, 0, 0], &[0]), None);
    }

    #[test]
    fn row_format() {
        let m = MaskRow {
            id: 1,
            label: 2,
            score: 0.5,
            stability: 1.0,
            area: 1,
            bbox: [3, 4, 1, 1],
            runs: &[0, 1],
        };
        assert_eq!(
            row(&m, |c, r| (100.0 + c, 200.0 - r)),
            "1,2,0.5,1,1,3,4,1,1,103.5,195.5\n"
        );
    }
}
