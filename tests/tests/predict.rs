//! `/segment/predict` over HTTP with the demo models: footprints in map coordinates, prompts of
//! every kind, every output format, and the embedding cache.

mod common;

use common::rasters::{feature_polygons, iou, Rect, Scene, BLUE, GREEN, RED, UTM_GT, YELLOW};
use common::Server;

fn geojson(response: reqwest::blocking::Response) -> geojson::FeatureCollection {
    let status = response.status().as_u16();
    let text = response.text().unwrap();
    assert_eq!(status, 200, "{text}");
    text.parse::<geojson::GeoJson>()
        .map(|g| geojson::FeatureCollection::try_from(g).unwrap())
        .unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn three_squares() -> Scene {
    Scene {
        width: 480,
        height: 320,
        background: GREEN,
        rects: vec![
            Rect {
                x0: 40,
                y0: 40,
                x1: 140,
                y1: 140,
                rgb: RED,
            },
            Rect {
                x0: 200,
                y0: 60,
                x1: 290,
                y1: 150,
                rgb: BLUE,
            },
            Rect {
                x0: 340,
                y0: 180,
                x1: 440,
                y1: 280,
                rgb: YELLOW,
            },
        ],
        geotransform: Some(UTM_GT),
        epsg: Some(32618),
    }
}

fn union_of(polys: &[geo::MultiPolygon<f64>]) -> geo::MultiPolygon<f64> {
    use geo::BooleanOps;
    polys
        .iter()
        .fold(geo::MultiPolygon(vec![]), |acc, p| acc.union(p))
}

#[test]
fn a_click_in_the_square_returns_the_square_for_sam_and_sam2() {
    let server = Server::start();
    let scene = Scene::red_square();
    let square = geo::MultiPolygon(vec![scene.footprint(&scene.rects[0])]);
    for version in ["sam", "sam2"] {
        let fc = geojson(server.post_form(
            "/segment/predict",
            Some(("scene.tif", scene.geotiff())),
            &[
                ("model_version", version),
                ("point_coords", "[[200, 150]]"),
                ("point_labels", "[1]"),
            ],
        ));
        let polys = feature_polygons(&fc);
        assert!(!polys.is_empty(), "{version}: no feature");
        let score = iou(&union_of(&polys), &square);
        assert!(score >= 0.9, "{version}: IoU {score}");
        let props = fc.features[0].properties.as_ref().unwrap();
        assert!(
            props["score"].as_f64().unwrap() > 0.0,
            "{version}: {props:?}"
        );
        assert_eq!(props["value"], 1);
        let crs = fc
            .foreign_members
            .as_ref()
            .and_then(|m| m.get("crs"))
            .expect("crs member");
        assert!(crs.to_string().contains("32618"), "{crs}");
    }
}

#[test]
fn negative_points_and_boxes() {
    let server = Server::start();
    let scene = three_squares();
    let bytes = scene.geotiff();
    let red = geo::MultiPolygon(vec![scene.footprint(&scene.rects[0])]);
    // A positive click on red and a negative one on the field: still the red square.
    let fc = geojson(server.post_form(
        "/segment/predict",
        Some(("s.tif", bytes.clone())),
        &[
            ("point_coords", "[[90, 90], [20, 300]]"),
            ("point_labels", "[1, 0]"),
        ],
    ));
    assert!(iou(&union_of(&feature_polygons(&fc)), &red) >= 0.9);
    // One box.
    let fc = geojson(server.post_form(
        "/segment/predict",
        Some(("s.tif", bytes.clone())),
        &[("boxes", "[[30, 30, 150, 150]]"), ("model_version", "sam")],
    ));
    assert!(iou(&union_of(&feature_polygons(&fc)), &red) >= 0.9);
    // Three boxes: one feature per box, each on its square.
    let fc = geojson(server.post_form(
        "/segment/predict",
        Some(("s.tif", bytes)),
        &[(
            "boxes",
            "[[30, 30, 150, 150], [190, 50, 300, 160], [330, 170, 450, 290]]",
        )],
    ));
    let mut values: Vec<i64> = fc
        .features
        .iter()
        .map(|f| f.properties.as_ref().unwrap()["value"].as_i64().unwrap())
        .collect();
    values.sort();
    values.dedup();
    assert_eq!(values, vec![1, 2, 3], "one mask per box");
    for (value, rect) in (1..=3).zip(&scene.rects) {
        let polys: Vec<_> = fc
            .features
            .iter()
            .zip(feature_polygons(&fc))
            .filter(|(f, _)| f.properties.as_ref().unwrap()["value"] == value)
            .map(|(_, p)| p)
            .collect();
        let score = iou(
            &union_of(&polys),
            &geo::MultiPolygon(vec![scene.footprint(rect)]),
        );
        assert!(score >= 0.9, "box {value}: IoU {score}");
    }
}

#[test]
fn lon_lat_prompts_with_point_crs() {
    use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
    let server = Server::start();
    let scene = Scene::red_square();
    let (x, y) = scene.to_map(200.0, 150.0);
    let mut utm = SpatialRef::from_epsg(32618).unwrap();
    let mut wgs = SpatialRef::from_epsg(4326).unwrap();
    utm.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    wgs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let t = CoordTransform::new(&utm, &wgs).unwrap();
    let (mut xs, mut ys) = (vec![x], vec![y]);
    t.transform_coords(&mut xs, &mut ys, &mut []).unwrap();
    let point = format!("[[{}, {}]]", xs[0], ys[0]);
    let fc = geojson(server.post_form(
        "/segment/predict",
        Some(("scene.tif", scene.geotiff())),
        &[("point_coords", point.as_str()), ("point_crs", "EPSG:4326")],
    ));
    let square = geo::MultiPolygon(vec![scene.footprint(&scene.rects[0])]);
    assert!(iou(&union_of(&feature_polygons(&fc)), &square) >= 0.9);
}

/// `multimask_output=true` returns the candidate with the highest predicted IoU (the seed's
/// choice); `all_candidates=true` returns all three, and the best one is among them.
#[test]
fn multimask_gives_the_best_candidate_or_all_three() {
    let server = Server::start();
    let scene = Scene::red_square();
    let detections = |extra: &[(&str, &str)]| -> Vec<f64> {
        let mut fields = vec![
            ("point_coords", "[[200, 150]]"),
            ("multimask_output", "true"),
            ("output_format", "json"),
            ("model_version", "sam"),
        ];
        fields.extend_from_slice(extra);
        let r = server.post_form(
            "/segment/predict",
            Some(("scene.tif", scene.geotiff())),
            &fields,
        );
        assert_eq!(r.status().as_u16(), 200);
        let body: serde_json::Value = r.json().unwrap();
        body["detections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["score"].as_f64().unwrap())
            .collect()
    };
    let all = detections(&[("all_candidates", "true")]);
    assert_eq!(all.len(), 3, "{all:?}");
    assert!(all.iter().all(|&s| s > 0.0 && s <= 1.0), "{all:?}");
    let best = detections(&[]);
    assert_eq!(best.len(), 1, "{best:?}");
    let max = all.iter().copied().fold(f64::MIN, f64::max);
    assert_eq!(best[0], max, "best {best:?} of {all:?}");
    // Without multimask_output, all_candidates changes nothing: one mask per prompt.
    let single = detections(&[("multimask_output", "false"), ("all_candidates", "true")]);
    assert_eq!(single.len(), 1, "{single:?}");
}

#[test]
fn size_limits_can_empty_the_result() {
    let server = Server::start();
    let scene = Scene::red_square();
    // The square is 100×100 = 10000 pixels.
    for (field, value, expect_features) in [
        ("min_size", "20000", false),
        ("max_size", "5000", false),
        ("min_size", "5000", true),
    ] {
        let fc = geojson(server.post_form(
            "/segment/predict",
            Some(("scene.tif", scene.geotiff())),
            &[("point_coords", "[[200, 150]]"), (field, value)],
        ));
        assert_eq!(!fc.features.is_empty(), expect_features, "{field}={value}");
    }
}

#[test]
fn every_output_format() {
    let server = Server::start();
    let scene = Scene::red_square();
    let post = |format: &str| {
        server.post_form(
            "/segment/predict",
            Some(("scene.tif", scene.geotiff())),
            &[("point_coords", "[[200, 150]]"), ("output_format", format)],
        )
    };
    // GeoTIFF: same georeferencing as the input, the square labelled.
    let r = post("geotiff");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "image/tiff");
    let bytes = r.bytes().unwrap().to_vec();
    let path = common::temp_dir("geotiff").join("mask.tif");
    std::fs::write(&path, &bytes).unwrap();
    let ds = gdal::Dataset::open(&path).unwrap();
    assert_eq!(ds.raster_size(), (400, 300));
    let gt = ds.geo_transform().unwrap();
    assert_eq!(gt, UTM_GT);
    assert_eq!(ds.spatial_ref().unwrap().auth_code().unwrap(), 32618);
    let band = ds.rasterband(1).unwrap();
    let data = band
        .read_as::<u8>((0, 0), (400, 300), (400, 300), None)
        .unwrap();
    assert_ne!(
        data.data()[150 * 400 + 200],
        0,
        "centre of the square is labelled"
    );
    assert_eq!(data.data()[10 * 400 + 10], 0, "the field is not");
    assert_eq!(band.no_data_value(), Some(0.0));
    // PNG: decodes to the image size.
    let r = post("png");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    let png = r.bytes().unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((width, height), (400, 300));
    // json: the seed's bbox output, exclusive extents.
    let body: serde_json::Value = post("json").json().unwrap();
    assert_eq!(body["image_width"], 400);
    assert_eq!(body["num_detections"], 1);
    let bbox: Vec<i64> = body["detections"][0]["bbox"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    for (got, want) in bbox.iter().zip([150, 100, 250, 200]) {
        assert!((got - want).abs() <= 4, "bbox {bbox:?}");
    }
    // detections: a FeatureCollection of boxes.
    let body: serde_json::Value = post("detections").json().unwrap();
    assert_eq!(body["type"], "FeatureCollection");
    assert_eq!(body["num_detections"], 1);
}

#[test]
fn the_second_request_for_an_image_is_a_cache_hit() {
    let server = Server::start();
    let bytes = Scene::red_square().geotiff();
    let ask = |point: &str| {
        let r = server.post_form(
            "/segment/predict",
            Some(("scene.tif", bytes.clone())),
            &[("point_coords", point)],
        );
        assert_eq!(r.status().as_u16(), 200);
        let cache = r.headers()["x-samgeo-cache"].to_str().unwrap().to_string();
        (cache, r.text().unwrap())
    };
    let (first, body1) = ask("[[200, 150]]");
    let (second, body2) = ask("[[200, 150]]");
    let (third, _) = ask("[[180, 120]]");
    assert_eq!(
        (first.as_str(), second.as_str(), third.as_str()),
        ("miss", "hit", "hit")
    );
    assert_eq!(body1, body2, "same image, same prompt, same mask");
    // Clearing drops the embeddings.
    server.delete("/models");
    assert_eq!(ask("[[200, 150]]").0, "miss");
}

#[test]
fn concurrent_requests_for_one_image_encode_it_once() {
    let server = Server::start_with(
        |c| {
            c["server"]
                .as_table_mut()
                .unwrap()
                .insert("max_concurrent_inferences".into(), toml::Value::Integer(4));
        },
        &[],
    );
    let bytes = three_squares().geotiff();
    let caches: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let bytes = bytes.clone();
                let server = &server;
                s.spawn(move || {
                    let point = format!("[[{}, 90]]", 60 + i * 10);
                    let r = server.post_form(
                        "/segment/predict",
                        Some(("s.tif", bytes)),
                        &[("point_coords", point.as_str())],
                    );
                    assert_eq!(r.status().as_u16(), 200);
                    r.headers()["x-samgeo-cache"].to_str().unwrap().to_string()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        caches.iter().filter(|c| *c == "miss").count(),
        1,
        "{caches:?}"
    );
}

#[test]
fn preload_fills_the_model_cache() {
    let server = Server::start_with(|_| {}, &["--preload", "sam:vit_h"]);
    let models: serde_json::Value = server.get("/models").json().unwrap();
    assert_eq!(models["loaded"], serde_json::json!([["sam", "vit_h"]]));
}
