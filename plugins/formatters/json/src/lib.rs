//! Formatter plugin `json`: one bounding box per label, in pixel coordinates (the seed's
//! `output_format=json`).
//!
//! ```json
//! {"image_width": W, "image_height": H, "num_detections": N,
//!  "detections": [{"id": 1, "value": 3, "bbox": [xmin, ymin, xmax, ymax],
//!                  "width": 10, "height": 4, "score": 0.97}]}
//! ```
//!
//! Like the seed, detections come from the painted label raster (later masks win where they
//! overlap): one per label still visible, in ascending label order, `id` counting from 1 and
//! `value` the label. The box is the exclusive pixel extent of the label's painted pixels
//! (`xmax = xmin + width`; the seed uses inclusive maxima, which is off by one). `score` is the
//! highest score among the masks with that label. No parameters.

use samgeo_plugin_sdk::json::{push_f32, push_int, push_key};
use samgeo_plugin_sdk::labels::{label_scores, painted_extents};
use samgeo_plugin_sdk::{Formatter, Host, Output, PluginInfo, Request};

/// The plugin.
pub struct Json;

impl Formatter for Json {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "json",
            "JSON bounding boxes per label in pixel coordinates, with scores",
        )
    }

    fn format(req: Request, _host: &dyn Host) -> Result<Output, String> {
        Ok(Output {
            content_type: "application/json".into(),
            file_name: "detections.json".into(),
            bytes: to_json(&req)?.into_bytes(),
        })
    }
}

/// The JSON text.
pub fn to_json(req: &Request) -> Result<String, String> {
    let extents = painted_extents(&req.masks)?;
    let scores = label_scores(&req.masks);
    let mut s = String::with_capacity(96 + extents.len() * 96);
    s.push('{');
    push_key(&mut s, "image_width");
    push_int(&mut s, req.masks.width);
    s.push(',');
    push_key(&mut s, "image_height");
    push_int(&mut s, req.masks.height);
    s.push(',');
    push_key(&mut s, "num_detections");
    push_int(&mut s, extents.len() as u64);
    s.push(',');
    push_key(&mut s, "detections");
    s.push('[');
    for (i, e) in extents.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push('{');
        push_key(&mut s, "id");
        push_int(&mut s, i as u64 + 1);
        s.push(',');
        push_key(&mut s, "value");
        push_int(&mut s, e.label);
        s.push(',');
        push_key(&mut s, "bbox");
        s.push('[');
        for (k, v) in [e.bbox.x, e.bbox.y, e.bbox.x_end(), e.bbox.y_end()]
            .iter()
            .enumerate()
        {
            if k > 0 {
                s.push(',');
            }
            push_int(&mut s, *v);
        }
        s.push_str("],");
        push_key(&mut s, "width");
        push_int(&mut s, e.bbox.width);
        s.push(',');
        push_key(&mut s, "height");
        push_int(&mut s, e.bbox.height);
        if let Some(sc) = scores.get(&e.label) {
            s.push(',');
            push_key(&mut s, "score");
            push_f32(&mut s, sc.score);
        }
        s.push('}');
    }
    s.push_str("]}");
    Ok(s)
}

samgeo_plugin_sdk::export_formatter!(Json);

#[cfg(test)]
mod tests {
    use super::*;
    use samgeo_plugin_sdk::testutil::{mask_from_rows, rect_mask};
    use samgeo_plugin_sdk::{Georef, MaskSet, NoHost, Params};
    use serde_json::{json, Value};

    #[test]
    fn boxes_per_label() {
        let mut a = rect_mask(1, 7, 2, 1, 3, 2);
        a.score = 0.75;
        let b = mask_from_rows(2, 3, 0, 4, &[".1", "11"]);
        let req = Request {
            masks: MaskSet {
                width: 10,
                height: 8,
                masks: vec![a, b],
            },
            georef: Georef::default(),
            params: Params::default(),
        };
        let v: Value = serde_json::from_str(&to_json(&req).unwrap()).unwrap();
        assert_eq!(
            v,
            json!({
                "image_width": 10, "image_height": 8, "num_detections": 2,
                "detections": [
                    {"id": 1, "value": 3, "bbox": [0, 4, 2, 6], "width": 2, "height": 2,
                     "score": 0.9},
                    {"id": 2, "value": 7, "bbox": [2, 1, 5, 3], "width": 3, "height": 2,
                     "score": 0.75},
                ]
            })
        );
        let out = Json::format(req, &NoHost).unwrap();
        assert_eq!(out.content_type, "application/json");
    }
}
