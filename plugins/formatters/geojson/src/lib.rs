//! Formatter plugin `geojson`: the masks as a GeoJSON FeatureCollection of polygons.
//!
//! Like the seed (which vectorises its label raster with `rasterio.features.shapes`), the masks
//! are painted into one label raster (later masks win where they overlap) and every 4-connected
//! region of one label becomes one Feature with a `Polygon` geometry (holes included). Several
//! masks sharing a label (as after the `unique=false` filter) therefore merge. The raster is
//! never held whole: each label is vectorised in its own box, so an image of `max_pixels`
//! with any number of labels fits the plugin memory limit.
//!
//! Feature properties: `value` (the label), `score` and `stability` (the highest among the
//! masks carrying that label), `area` (pixels in this region, after overlaps are resolved).
//!
//! Parameters: `output_crs` (e.g. `EPSG:4326`: every vertex is reprojected through the host's
//! `transform-points`, in one batched call), `simplify` (Douglas–Peucker tolerance in output
//! units, applied after reprojection; 0 or absent: exact pixel edges).
//!
//! Coordinates are in the raster's CRS (pixel corners when the image has no geotransform).
//! The top-level `crs` member is written the way GDAL's GeoJSON driver writes it for an EPSG
//! CRS: `{"type":"name","properties":{"name":"urn:ogc:def:crs:EPSG::<code>"}}`, omitted for
//! EPSG:4326 (GeoJSON's default) and for CRSs without an EPSG code.

use samgeo_plugin_sdk::geometry::signed_area2;
use samgeo_plugin_sdk::json::{push_f32, push_f64, push_int, push_key, push_point, push_str};
use samgeo_plugin_sdk::labels::label_scores;
use samgeo_plugin_sdk::simplify::simplified_indices;
use samgeo_plugin_sdk::transform::{epsg_of, geojson_crs_name};
use samgeo_plugin_sdk::vectorize::{polygonize_labels, PixelPolygon};
use samgeo_plugin_sdk::{Formatter, Georef, Host, Output, ParamType, PluginInfo, Request};

/// The plugin.
pub struct GeoJson;

impl Formatter for GeoJson {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "geojson",
            "GeoJSON FeatureCollection: one Polygon per connected region of each label",
        )
        .param(
            "output_crs",
            ParamType::String,
            None,
            "CRS of the output coordinates (EPSG:xxxx, WKT, PROJ); default: the image's",
        )
        .param(
            "simplify",
            ParamType::Number,
            Some("0"),
            "Douglas-Peucker tolerance in output coordinate units (metres, degrees or pixels), applied after reprojection (0: none)",
        )
    }

    fn format(req: Request, host: &dyn Host) -> Result<Output, String> {
        Ok(Output {
            content_type: "application/json".into(),
            file_name: "mask.geojson".into(),
            bytes: to_geojson(&req, host)?.into_bytes(),
        })
    }
}

/// The regions of the painted label raster, in scan order. Vectorised label by label in each
/// label's own box, so no image-sized label raster is held (see `polygonize_labels`).
pub fn regions(req: &Request) -> Result<Vec<PixelPolygon>, String> {
    polygonize_labels(&req.masks)
}

/// The FeatureCollection text.
pub fn to_geojson(req: &Request, host: &dyn Host) -> Result<String, String> {
    write_geojson(req, host, true)
}

/// [`to_geojson`]; `axis_tables = false` formats every coordinate on its own (the tests check
/// that the per-axis tables give the same text).
fn write_geojson(req: &Request, host: &dyn Host, axis_tables: bool) -> Result<String, String> {
    let output_crs = req.params.get("output_crs").map(str::to_owned);
    let tolerance = req.params.get_f64("simplify")?.unwrap_or(0.0);
    if tolerance < 0.0 {
        return Err("parameter `simplify`: must not be negative".into());
    }

    let polys = regions(req)?;
    let scores = label_scores(&req.masks);

    // All vertices in map coordinates, ring after ring, with the pixel corners they come
    // from; `ring_ends` marks where each ring ends.
    let mut corners: Vec<(u32, u32)> = Vec::new();
    let mut ring_ends: Vec<usize> = Vec::new();
    for p in &polys {
        for ring in std::iter::once(&p.exterior).chain(&p.holes) {
            corners.extend_from_slice(ring);
            ring_ends.push(corners.len());
        }
    }
    let mut points: Vec<(f64, f64)> = corners
        .iter()
        .map(|&(c, r)| req.georef.to_map(f64::from(c), f64::from(r)))
        .collect();

    let mut out_epsg = req.georef.epsg;
    let mut reprojected = false;
    if let Some(target) = &output_crs {
        let source = match (&req.georef.geotransform, req.georef.crs_string()) {
            (Some(_), Some(s)) => s,
            _ => {
                return Err(format!(
                    "output_crs {target:?} needs a georeferenced image (a geotransform and a CRS)"
                ))
            }
        };
        out_epsg = epsg_of(target);
        let same = out_epsg.is_some() && out_epsg == req.georef.epsg;
        if !same && !points.is_empty() {
            let moved = host.transform_points(&source, target, &points)?;
            if moved.len() != points.len() {
                return Err(format!(
                    "transform-points returned {} points for {}",
                    moved.len(),
                    points.len()
                ));
            }
            points = moved;
            reprojected = true;
        }
    }
    // Map x depends on the column only and y on the row only: each distinct number is
    // formatted once (a ragged mask has hundreds of thousands of vertices on ~2000 lines).
    let tables = if axis_tables && !reprojected {
        AxisTables::new(&req.georef, &corners)
    } else {
        None
    };

    // About 2 × 18 digits and 4 punctuation bytes per vertex, written into one buffer.
    let per_vertex = if tables.is_some() || output_crs.is_some() {
        40
    } else {
        12
    };
    let mut s = String::with_capacity(256 + polys.len() * 128 + points.len() * per_vertex);
    s.push_str("{\"type\":\"FeatureCollection\",");
    if let Some(name) = geojson_crs_name(out_epsg) {
        s.push_str("\"crs\":{\"type\":\"name\",\"properties\":{\"name\":");
        push_str(&mut s, &name);
        s.push_str("}},");
    }
    s.push_str("\"features\":[");
    let mut ring_idx = 0;
    let mut start = 0;
    for (i, p) in polys.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str("{\"type\":\"Feature\",\"properties\":{");
        push_key(&mut s, "value");
        push_int(&mut s, p.value);
        if let Some(sc) = scores.get(&p.value) {
            s.push(',');
            push_key(&mut s, "score");
            push_f32(&mut s, sc.score);
            s.push(',');
            push_key(&mut s, "stability");
            push_f32(&mut s, sc.stability);
        }
        s.push(',');
        push_key(&mut s, "area");
        push_int(&mut s, p.area);
        s.push_str("},\"geometry\":{\"type\":\"Polygon\",\"coordinates\":[");
        for k in 0..=p.holes.len() {
            let end = ring_ends[ring_idx];
            ring_idx += 1;
            let (pts, pix) = (&points[start..end], &corners[start..end]);
            start = end;
            // The kept vertices (all without simplification), in the orientation RFC 7946
            // asks for: exteriors counter-clockwise, holes clockwise.
            let kept: Option<Vec<usize>> =
                (tolerance > 0.0).then(|| simplified_indices(pts, tolerance));
            let area2 = match &kept {
                None => signed_area2(pts),
                Some(idx) => signed_area2(&idx.iter().map(|&j| pts[j]).collect::<Vec<_>>()),
            };
            let reverse = area2 != 0.0 && (area2 > 0.0) != (k == 0);
            if k > 0 {
                s.push(',');
            }
            s.push('[');
            let n = kept.as_ref().map_or(pts.len(), Vec::len);
            for j in 0..n {
                let at = if reverse { n - 1 - j } else { j };
                let v = kept.as_ref().map_or(at, |idx| idx[at]);
                if j > 0 {
                    s.push(',');
                }
                match &tables {
                    Some(t) => t.push_vertex(&mut s, pix[v]),
                    None => push_point(&mut s, pts[v]),
                }
            }
            s.push(']');
        }
        s.push_str("]}}");
    }
    s.push_str("]}");
    Ok(s)
}

/// The formatted map coordinate of every pixel column (x) and row (y) that vertices use,
/// when x depends on the column only and y on the row only (no geotransform, or a north-up
/// one). Each entry is the text [`push_f64`] writes for `to_map(col, 0).0` / `to_map(0,
/// row).1`, which are the same numbers as `to_map(col, row)` gives: the rotation terms are 0.
struct AxisTables {
    x: AxisText,
    y: AxisText,
}

impl AxisTables {
    fn new(georef: &Georef, corners: &[(u32, u32)]) -> Option<AxisTables> {
        if let Some(gt) = &georef.geotransform {
            if gt.0[2] != 0.0 || gt.0[4] != 0.0 {
                return None;
            }
        }
        let (max_x, max_y) = corners
            .iter()
            .fold((0, 0), |(mx, my), &(c, r)| (mx.max(c), my.max(r)));
        Some(AxisTables {
            x: AxisText::new(max_x, |c| georef.to_map(c, 0.0).0),
            y: AxisText::new(max_y, |r| georef.to_map(0.0, r).1),
        })
    }

    fn push_vertex(&self, out: &mut String, (c, r): (u32, u32)) {
        out.push('[');
        out.push_str(self.x.get(c));
        out.push(',');
        out.push_str(self.y.get(r));
        out.push(']');
    }
}

/// Numbers `0..=last` of one axis, formatted into one string.
struct AxisText {
    text: String,
    ends: Vec<usize>,
}

impl AxisText {
    fn new(last: u32, map: impl Fn(f64) -> f64) -> AxisText {
        let mut text = String::with_capacity((last as usize + 1) * 18);
        let mut ends = Vec::with_capacity(last as usize + 1);
        for i in 0..=last {
            push_f64(&mut text, map(f64::from(i)));
            ends.push(text.len());
        }
        AxisText { text, ends }
    }

    fn get(&self, i: u32) -> &str {
        let i = i as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }
}

samgeo_plugin_sdk::export_formatter!(GeoJson);

#[cfg(test)]
mod tests {
    use super::*;
    use samgeo_plugin_sdk::geometry::signed_area2;
    use samgeo_plugin_sdk::testutil::{mask_from_rows, rect_mask};
    use samgeo_plugin_sdk::{Georef, Geotransform, LogLevel, MaskSet, NoHost, Params};
    use serde_json::Value;
    use std::cell::Cell;

    fn request(
        masks: Vec<samgeo_plugin_sdk::Mask>,
        w: u32,
        h: u32,
        georef: Georef,
        p: &[(&str, &str)],
    ) -> Request {
        Request {
            masks: MaskSet {
                width: w,
                height: h,
                masks,
            },
            georef,
            params: Params::from_pairs(p),
        }
    }

    fn utm() -> Georef {
        Georef {
            geotransform: Some(Geotransform([500000.0, 10.0, 0.0, 4000000.0, 0.0, -10.0])),
            crs_wkt: None,
            epsg: Some(32618),
        }
    }

    fn run(req: &Request, host: &dyn Host) -> Value {
        serde_json::from_str(&to_geojson(req, host).unwrap()).unwrap()
    }

    fn ring(v: &Value) -> Vec<(f64, f64)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_f64().unwrap(), p[1].as_f64().unwrap()))
            .collect()
    }

    #[test]
    fn square_in_utm() {
        let req = request(vec![rect_mask(1, 1, 2, 3, 4, 5)], 10, 10, utm(), &[]);
        let v = run(&req, &NoHost);
        assert_eq!(v["type"], "FeatureCollection");
        assert_eq!(
            v["crs"]["properties"]["name"],
            "urn:ogc:def:crs:EPSG::32618"
        );
        let f = &v["features"].as_array().unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0]["properties"]["value"], 1);
        assert_eq!(f[0]["properties"]["area"], 20);
        assert_eq!(f[0]["properties"]["score"].as_f64().unwrap(), 0.9);
        assert_eq!(f[0]["geometry"]["type"], "Polygon");
        let ext = ring(&f[0]["geometry"]["coordinates"][0]);
        assert_eq!(ext.len(), 5);
        assert_eq!(ext[0], ext[4]);
        assert!(
            signed_area2(&ext) > 0.0,
            "exterior must be counter-clockwise"
        );
        assert_eq!(signed_area2(&ext) / 2.0, 20.0 * 100.0);
        let xs: Vec<f64> = ext.iter().map(|p| p.0).collect();
        let ys: Vec<f64> = ext.iter().map(|p| p.1).collect();
        assert_eq!(xs.iter().cloned().fold(f64::MAX, f64::min), 500020.0);
        assert_eq!(xs.iter().cloned().fold(f64::MIN, f64::max), 500060.0);
        assert_eq!(ys.iter().cloned().fold(f64::MIN, f64::max), 3999970.0);
        assert_eq!(ys.iter().cloned().fold(f64::MAX, f64::min), 3999920.0);
    }

    #[test]
    fn holes_are_clockwise_and_labels_group() {
        let ring_mask = mask_from_rows(1, 4, 0, 0, &["111", "1.1", "111"]);
        let other = rect_mask(2, 4, 5, 0, 1, 1);
        let req = request(vec![ring_mask, other], 8, 4, utm(), &[]);
        let v = run(&req, &NoHost);
        let f = v["features"].as_array().unwrap();
        assert_eq!(f.len(), 2, "same label, two regions");
        let coords = f[0]["geometry"]["coordinates"].as_array().unwrap();
        assert_eq!(coords.len(), 2);
        assert!(signed_area2(&ring(&coords[0])) > 0.0);
        assert!(signed_area2(&ring(&coords[1])) < 0.0);
        assert_eq!(f[0]["properties"]["area"], 8);
    }

    #[test]
    fn no_georef_gives_pixel_coordinates_and_no_crs() {
        let req = request(
            vec![rect_mask(1, 1, 1, 1, 1, 1)],
            3,
            3,
            Georef::default(),
            &[],
        );
        let v = run(&req, &NoHost);
        assert!(v.get("crs").is_none());
        let ext = ring(&v["features"][0]["geometry"]["coordinates"][0]);
        // y grows downwards in pixel space, so "counter-clockwise" is judged in that frame.
        assert!(ext.contains(&(1.0, 1.0)) && ext.contains(&(2.0, 2.0)));
        assert!(signed_area2(&ext) > 0.0);
    }

    #[test]
    fn empty_set_is_an_empty_collection() {
        let req = request(vec![], 3, 3, utm(), &[]);
        let v = run(&req, &NoHost);
        assert_eq!(v["features"].as_array().unwrap().len(), 0);
    }

    struct Shift {
        calls: Cell<usize>,
    }

    impl Host for Shift {
        fn log(&self, _: LogLevel, _: &str) {}
        fn transform_points(
            &self,
            src: &str,
            dst: &str,
            pts: &[(f64, f64)],
        ) -> Result<Vec<(f64, f64)>, String> {
            assert_eq!((src, dst), ("EPSG:32618", "EPSG:4326"));
            self.calls.set(self.calls.get() + 1);
            Ok(pts.iter().map(|&(x, y)| (x / 1e5, y / 1e5)).collect())
        }
    }

    #[test]
    fn output_crs_reprojects_in_one_batch() {
        let masks = vec![rect_mask(1, 1, 0, 0, 2, 2), rect_mask(2, 2, 5, 5, 2, 2)];
        let req = request(masks, 10, 10, utm(), &[("output_crs", "EPSG:4326")]);
        let host = Shift {
            calls: Cell::new(0),
        };
        let v = run(&req, &host);
        assert_eq!(host.calls.get(), 1);
        assert!(v.get("crs").is_none(), "EPSG:4326 is GeoJSON's default");
        let ext = ring(&v["features"][0]["geometry"]["coordinates"][0]);
        assert!(ext.iter().all(|p| p.0 < 6.0 && p.1 < 41.0));
        assert!(signed_area2(&ext) > 0.0);
        // Without georeferencing the request fails with a clear message.
        let req = request(
            vec![],
            3,
            3,
            Georef::default(),
            &[("output_crs", "EPSG:4326")],
        );
        assert!(to_geojson(&req, &NoHost)
            .unwrap_err()
            .contains("georeferenced"));
    }

    #[test]
    fn simplify_reduces_vertices() {
        let stairs = mask_from_rows(
            1,
            1,
            0,
            0,
            &["1.....", "11....", "111...", "1111..", "11111.", "111111"],
        );
        let req = request(vec![stairs.clone()], 6, 6, Georef::default(), &[]);
        let n0 = run(&req, &NoHost)["features"][0]["geometry"]["coordinates"][0]
            .as_array()
            .unwrap()
            .len();
        let req = request(
            vec![stairs],
            6,
            6,
            Georef::default(),
            &[("simplify", "1.0")],
        );
        let n1 = run(&req, &NoHost)["features"][0]["geometry"]["coordinates"][0]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(n0, 15);
        assert!(n1 < n0 && n1 >= 4, "{n1}");
        let req = request(vec![], 6, 6, Georef::default(), &[("simplify", "x")]);
        assert!(to_geojson(&req, &NoHost).unwrap_err().contains("simplify"));
    }

    #[test]
    fn rotated_raster_keeps_orientation() {
        let (s, c) = (0.5f64, 0.75f64.sqrt());
        let georef = Georef {
            geotransform: Some(Geotransform([100.0, c, s, 200.0, s, -c])),
            crs_wkt: None,
            epsg: Some(3857),
        };
        let req = request(vec![rect_mask(1, 1, 0, 0, 2, 1)], 4, 4, georef, &[]);
        let v = run(&req, &NoHost);
        let ext = ring(&v["features"][0]["geometry"]["coordinates"][0]);
        assert!(signed_area2(&ext) > 0.0);
        assert!((signed_area2(&ext) / 2.0 - 2.0).abs() < 1e-9);
        assert!(ext.contains(&(100.0, 200.0)));
    }

    #[test]
    fn corrupt_masks_are_errors_not_panics() {
        let bb = |x, y, width, height| samgeo_plugin_sdk::BBox {
            x,
            y,
            width,
            height,
        };
        let bad = [
            (bb(8, 8, 10, 10), vec![3, 1000, 7]),
            (bb(0, 0, u32::MAX, u32::MAX), vec![0, u32::MAX]),
            (bb(0, 0, 2, 2), vec![0, 5]),
            (bb(u32::MAX, 0, 2, 1), vec![0, 2]),
        ];
        for (bbox, runs) in bad {
            let m = samgeo_plugin_sdk::Mask {
                id: 1,
                label: 1,
                area: 1,
                bbox,
                runs,
                ..Default::default()
            };
            let req = request(vec![m], 8, 8, utm(), &[]);
            assert!(to_geojson(&req, &NoHost).is_err());
        }
    }

    #[test]
    fn axis_tables_write_the_same_text() {
        // A ragged noise mask (holes, islands, pinches) on a north-up grid with non-integer
        // coordinates, without and with simplification, and without georeferencing.
        let mut seed: u32 = 99;
        let rows: Vec<String> = (0..60)
            .map(|_| {
                (0..70)
                    .map(|_| {
                        seed = seed.wrapping_mul(1103515245).wrapping_add(12345);
                        if (seed >> 16) % 3 == 0 {
                            '.'
                        } else {
                            '1'
                        }
                    })
                    .collect()
            })
            .collect();
        let refs: Vec<&str> = rows.iter().map(String::as_str).collect();
        let rgb_byte = Georef {
            geotransform: Some(Geotransform([
                101985.0,
                300.0379266750948,
                0.0,
                2826915.0,
                0.0,
                -300.041782729805,
            ])),
            crs_wkt: None,
            epsg: Some(32618),
        };
        for georef in [rgb_byte, Georef::default(), utm()] {
            for simplify in ["0", "450.5", "1.5"] {
                let req = request(
                    vec![mask_from_rows(1, 1, 3, 2, &refs)],
                    80,
                    70,
                    georef.clone(),
                    &[("simplify", simplify)],
                );
                let fast = write_geojson(&req, &NoHost, true).unwrap();
                let plain = write_geojson(&req, &NoHost, false).unwrap();
                assert_eq!(fast, plain, "simplify {simplify}");
                assert!(fast.len() > 2000);
            }
        }
    }

    #[test]
    fn info_and_output() {
        assert_eq!(GeoJson::info().name, "geojson");
        let out = GeoJson::format(request(vec![], 1, 1, Georef::default(), &[]), &NoHost).unwrap();
        assert_eq!(out.content_type, "application/json");
        assert_eq!(out.file_name, "mask.geojson");
    }
}
