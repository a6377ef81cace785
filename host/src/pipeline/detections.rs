//! `/segment/text` with `output_format` `json` or `detections`: the seed builds these from the
//! detector's boxes and scores, not from the mask raster, and so do we. The masks still pass the
//! filter chain (size limits, ...); a detection is listed when its mask survives.
//!
//! - `json`: `{image_width, image_height, num_detections, detections: [{id, bbox, width, height,
//!   score}]}`, `bbox` `[x1, y1, x2, y2]` rounded to whole pixels, `width = x2 - x1`.
//! - `detections`: a GeoJSON FeatureCollection of box polygons (map coordinates where the image
//!   has a geotransform, else pixels), properties `{id, score, bbox_pixel}`, with
//!   `num_detections` and `crs` (`EPSG:n`, or the WKT) where the image has one.

use serde_json::{json, Value};

use crate::masks::{FormattedOutput, Georef};
use crate::models::sam3::Detection;
use crate::raster::RasterInfo;

/// The output formats built here.
pub const FORMATS: [&str; 2] = ["json", "detections"];

/// The response body for `format` (one of [`FORMATS`]) from the detections kept.
pub fn format(format: &str, info: &RasterInfo, detections: &[&Detection]) -> FormattedOutput {
    let body = if format == "json" {
        pixel_json(info, detections)
    } else {
        feature_collection(&info.georef, detections)
    };
    FormattedOutput {
        content_type: "application/json".into(),
        file_name: format!("{format}.json"),
        bytes: serde_json::to_vec(&body).unwrap_or_default(),
    }
}

fn pixel_json(info: &RasterInfo, detections: &[&Detection]) -> Value {
    let items: Vec<Value> = detections
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let [x1, y1, x2, y2] = d.bbox.map(|v| v.round() as i64);
            json!({
                "id": i + 1,
                "bbox": [x1, y1, x2, y2],
                "width": x2 - x1,
                "height": y2 - y1,
                "score": d.mask.score,
            })
        })
        .collect();
    json!({
        "image_width": info.width,
        "image_height": info.height,
        "num_detections": items.len(),
        "detections": items,
    })
}

fn feature_collection(georef: &Georef, detections: &[&Detection]) -> Value {
    let to_map = |x: f64, y: f64| match georef.geotransform {
        Some(g) => [g[0] + x * g[1] + y * g[2], g[3] + x * g[4] + y * g[5]],
        None => [x, y],
    };
    let features: Vec<Value> = detections
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let [x1, y1, x2, y2] = d.bbox;
            let ring = [
                to_map(x1, y1),
                to_map(x2, y1),
                to_map(x2, y2),
                to_map(x1, y2),
                to_map(x1, y1),
            ];
            json!({
                "type": "Feature",
                "geometry": { "type": "Polygon", "coordinates": [ring] },
                "properties": { "id": i + 1, "score": d.mask.score, "bbox_pixel": [x1, y1, x2, y2] },
            })
        })
        .collect();
    let mut collection = json!({
        "type": "FeatureCollection",
        "features": features,
        "num_detections": detections.len(),
    });
    let crs = match (georef.epsg, &georef.crs_wkt) {
        (Some(code), _) => Some(format!("EPSG:{code}")),
        (None, Some(wkt)) => Some(wkt.clone()),
        (None, None) => None,
    };
    if let (Some(crs), true) = (crs, georef.geotransform.is_some()) {
        collection["crs"] = json!(crs);
    }
    collection
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::masks::Mask;

    fn detection(score: f32, bbox: [f64; 4]) -> Detection {
        let mask = Mask::from_dense(1, score, 1.0, 2, 2, &[true; 4]).unwrap();
        Detection { mask, bbox }
    }

    fn info(georef: Georef) -> RasterInfo {
        RasterInfo {
            width: 100,
            height: 80,
            band_count: 3,
            data_type: "Byte".into(),
            driver: "GTiff".into(),
            georef,
        }
    }

    #[test]
    fn pixel_json_uses_the_detector_box() {
        let d = detection(0.75, [10.4, 20.6, 30.5, 41.0]);
        let out = format("json", &info(Georef::default()), &[&d]);
        let v: Value = serde_json::from_slice(&out.bytes).unwrap();
        assert_eq!(v["image_width"], 100);
        assert_eq!(v["num_detections"], 1);
        let det = &v["detections"][0];
        assert_eq!(det["bbox"], json!([10, 21, 31, 41]));
        assert_eq!(
            (det["width"].as_i64(), det["height"].as_i64()),
            (Some(21), Some(20))
        );
        assert_eq!(det["score"], 0.75);
        assert_eq!(det["id"], 1);
    }

    #[test]
    fn detections_are_map_polygons_with_the_crs() {
        let georef = Georef {
            geotransform: Some([500000.0, 10.0, 0.0, 4000000.0, 0.0, -10.0]),
            crs_wkt: Some("PROJCS[...]".into()),
            epsg: Some(32618),
        };
        let d = detection(0.5, [1.0, 2.0, 3.0, 4.0]);
        let out = format("detections", &info(georef), &[&d]);
        let v: Value = serde_json::from_slice(&out.bytes).unwrap();
        assert_eq!(v["crs"], "EPSG:32618");
        assert_eq!(v["num_detections"], 1);
        let ring = &v["features"][0]["geometry"]["coordinates"][0];
        assert_eq!(ring[0], json!([500010.0, 3999980.0]));
        assert_eq!(ring[2], json!([500030.0, 3999960.0]));
        assert_eq!(
            v["features"][0]["properties"]["bbox_pixel"],
            json!([1.0, 2.0, 3.0, 4.0])
        );
        let plain = format("detections", &info(Georef::default()), &[&d]);
        let v: Value = serde_json::from_slice(&plain.bytes).unwrap();
        assert!(v.get("crs").is_none());
        assert_eq!(
            v["features"][0]["geometry"]["coordinates"][0][0],
            json!([1.0, 2.0])
        );
    }
}
