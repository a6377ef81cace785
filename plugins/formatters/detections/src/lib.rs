//! Formatter plugin `detections`: one bounding box per label as a GeoJSON FeatureCollection
//! in map coordinates (the seed's `output_format=detections`).
//!
//! Detections are the same as the `json` formatter's (painted label raster, one per visible
//! label, ascending, exclusive pixel extents). Each Feature is the box as a `Polygon` whose
//! four corners go through the geotransform (so a rotated raster gives a rotated box; pixel
//! coordinates without one), exterior counter-clockwise. Properties: `id`, `value`, `score`,
//! `bbox_pixel` = `[xmin, ymin, xmax, ymax]`. Top level: `num_detections`, and `crs` as the
//! seed writes it (rasterio's `CRS.to_string()`: `EPSG:<code>`, else the WKT) when the image
//! has a CRS. Parameter `output_crs` reprojects the corners through the host (one call) and
//! then names the `crs`.

use samgeo_plugin_sdk::geometry::orient;
use samgeo_plugin_sdk::json::{push_f32, push_int, push_key, push_point, push_str};
use samgeo_plugin_sdk::labels::{label_scores, painted_extents};
use samgeo_plugin_sdk::{Formatter, Host, Output, ParamType, PluginInfo, Request};

/// The plugin.
pub struct Detections;

impl Formatter for Detections {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "detections",
            "GeoJSON FeatureCollection of per-label bounding boxes in map coordinates",
        )
        .param(
            "output_crs",
            ParamType::String,
            None,
            "CRS of the output coordinates (EPSG:xxxx, WKT, PROJ); default: the image's",
        )
    }

    fn format(req: Request, host: &dyn Host) -> Result<Output, String> {
        Ok(Output {
            content_type: "application/json".into(),
            file_name: "detections.geojson".into(),
            bytes: to_detections(&req, host)?.into_bytes(),
        })
    }
}

/// The FeatureCollection text.
pub fn to_detections(req: &Request, host: &dyn Host) -> Result<String, String> {
    let extents = painted_extents(&req.masks)?;
    let scores = label_scores(&req.masks);
    let mut crs = req.georef.crs_string();

    let mut points: Vec<(f64, f64)> = Vec::with_capacity(extents.len() * 5);
    for e in &extents {
        let (x0, y0) = (f64::from(e.bbox.x), f64::from(e.bbox.y));
        let (x1, y1) = (f64::from(e.bbox.x_end()), f64::from(e.bbox.y_end()));
        for (c, r) in [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)] {
            points.push(req.georef.to_map(c, r));
        }
    }
    if let Some(target) = req.params.get("output_crs") {
        let source = match (&req.georef.geotransform, &crs) {
            (Some(_), Some(s)) => s.clone(),
            _ => {
                return Err(format!(
                    "output_crs {target:?} needs a georeferenced image (a geotransform and a CRS)"
                ))
            }
        };
        if !points.is_empty() && !source.eq_ignore_ascii_case(target) {
            let moved = host.transform_points(&source, target, &points)?;
            if moved.len() != points.len() {
                return Err(format!(
                    "transform-points returned {} points for {}",
                    moved.len(),
                    points.len()
                ));
            }
            points = moved;
        }
        crs = Some(target.to_owned());
    }

    let mut s = String::with_capacity(64 + extents.len() * 256);
    s.push_str("{\"type\":\"FeatureCollection\",\"features\":[");
    for (i, (e, ring)) in extents.iter().zip(points.chunks_mut(5)).enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str("{\"type\":\"Feature\",\"geometry\":{\"type\":\"Polygon\",\"coordinates\":[[");
        orient(ring, true);
        for (j, &p) in ring.iter().enumerate() {
            if j > 0 {
                s.push(',');
            }
            push_point(&mut s, p);
        }
        s.push_str("]]},\"properties\":{");
        push_key(&mut s, "id");
        push_int(&mut s, i as u64 + 1);
        s.push(',');
        push_key(&mut s, "value");
        push_int(&mut s, e.label);
        if let Some(sc) = scores.get(&e.label) {
            s.push(',');
            push_key(&mut s, "score");
            push_f32(&mut s, sc.score);
        }
        s.push(',');
        push_key(&mut s, "bbox_pixel");
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
        s.push_str("]}}");
    }
    s.push_str("],");
    push_key(&mut s, "num_detections");
    push_int(&mut s, extents.len() as u64);
    if let Some(c) = crs {
        s.push(',');
        push_key(&mut s, "crs");
        push_str(&mut s, &c);
    }
    s.push('}');
    Ok(s)
}

samgeo_plugin_sdk::export_formatter!(Detections);

#[cfg(test)]
mod tests {
    use super::*;
    use samgeo_plugin_sdk::geometry::signed_area2;
    use samgeo_plugin_sdk::testutil::rect_mask;
    use samgeo_plugin_sdk::{Georef, Geotransform, LogLevel, MaskSet, NoHost, Params};
    use serde_json::{json, Value};

    fn req(georef: Georef, p: &[(&str, &str)]) -> Request {
        Request {
            masks: MaskSet {
                width: 10,
                height: 10,
                masks: vec![rect_mask(1, 2, 1, 2, 3, 4)],
            },
            georef,
            params: Params::from_pairs(p),
        }
    }

    fn utm() -> Georef {
        Georef {
            geotransform: Some(Geotransform([500000.0, 10.0, 0.0, 4000000.0, 0.0, -10.0])),
            crs_wkt: Some("PROJCS[...]".into()),
            epsg: Some(32618),
        }
    }

    fn ring(v: &Value) -> Vec<(f64, f64)> {
        v["geometry"]["coordinates"][0]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_f64().unwrap(), p[1].as_f64().unwrap()))
            .collect()
    }

    #[test]
    fn boxes_in_map_coordinates() {
        let v: Value =
            serde_json::from_str(&to_detections(&req(utm(), &[]), &NoHost).unwrap()).unwrap();
        assert_eq!(v["type"], "FeatureCollection");
        assert_eq!(v["num_detections"], 1);
        assert_eq!(v["crs"], "EPSG:32618");
        let f = &v["features"][0];
        assert_eq!(
            f["properties"],
            json!({"id": 1, "value": 2, "score": 0.9, "bbox_pixel": [1, 2, 4, 6]})
        );
        let r = ring(f);
        assert_eq!(r.len(), 5);
        assert_eq!(r[0], r[4]);
        assert!(signed_area2(&r) > 0.0);
        for corner in [(500010.0, 3999980.0), (500040.0, 3999940.0)] {
            assert!(r.contains(&corner), "{r:?}");
        }
    }

    #[test]
    fn pixel_coordinates_without_georef() {
        let v: Value =
            serde_json::from_str(&to_detections(&req(Georef::default(), &[]), &NoHost).unwrap())
                .unwrap();
        assert!(v.get("crs").is_none());
        assert!(ring(&v["features"][0]).contains(&(4.0, 6.0)));
    }

    struct Halve;
    impl Host for Halve {
        fn log(&self, _: LogLevel, _: &str) {}
        fn transform_points(
            &self,
            _: &str,
            _: &str,
            p: &[(f64, f64)],
        ) -> Result<Vec<(f64, f64)>, String> {
            Ok(p.iter().map(|&(x, y)| (x / 2.0, y / 2.0)).collect())
        }
    }

    #[test]
    fn output_crs() {
        let r = req(utm(), &[("output_crs", "EPSG:4326")]);
        let v: Value = serde_json::from_str(&to_detections(&r, &Halve).unwrap()).unwrap();
        assert_eq!(v["crs"], "EPSG:4326");
        assert!(ring(&v["features"][0]).contains(&(250005.0, 1999990.0)));
        assert!(to_detections(
            &req(Georef::default(), &[("output_crs", "EPSG:4326")]),
            &Halve
        )
        .is_err());
    }
}
