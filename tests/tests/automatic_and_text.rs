//! `/segment/automatic` (SAM2 generator, SAM3 "everything") and `/segment/text` over HTTP with
//! the demo models.

mod common;

use common::rasters::{feature_polygons, iou, Rect, Scene, BLUE, GREEN, RED, UTM_GT, YELLOW};
use common::Server;

fn scene() -> Scene {
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
                x0: 220,
                y0: 60,
                x1: 280,
                y1: 120,
                rgb: BLUE,
            },
            Rect {
                x0: 360,
                y0: 200,
                x1: 400,
                y1: 240,
                rgb: YELLOW,
            },
        ],
        geotransform: Some(UTM_GT),
        epsg: Some(32618),
    }
}

fn two_red_one_blue() -> Scene {
    Scene {
        width: 400,
        height: 300,
        background: GREEN,
        rects: vec![
            Rect {
                x0: 30,
                y0: 30,
                x1: 110,
                y1: 110,
                rgb: RED,
            },
            Rect {
                x0: 250,
                y0: 160,
                x1: 340,
                y1: 250,
                rgb: RED,
            },
            Rect {
                x0: 200,
                y0: 30,
                x1: 260,
                y1: 90,
                rgb: BLUE,
            },
        ],
        geotransform: Some(UTM_GT),
        epsg: Some(32618),
    }
}

fn features(r: reqwest::blocking::Response) -> geojson::FeatureCollection {
    let status = r.status().as_u16();
    let text = r.text().unwrap();
    assert_eq!(status, 200, "{text}");
    geojson::FeatureCollection::try_from(text.parse::<geojson::GeoJson>().unwrap()).unwrap()
}

/// For each rectangle, the best IoU of any feature with its footprint.
fn matches(scene: &Scene, rects: &[Rect], fc: &geojson::FeatureCollection) -> Vec<f64> {
    let polys = feature_polygons(fc);
    rects
        .iter()
        .map(|r| {
            let fp = geo::MultiPolygon(vec![scene.footprint(r)]);
            polys.iter().map(|p| iou(p, &fp)).fold(0.0, f64::max)
        })
        .collect()
}

const FAST: [(&str, &str); 1] = [("points_per_side", "12")];

#[test]
fn automatic_finds_each_object_once_and_drops_the_background() {
    let server = Server::start();
    let s = scene();
    let post = |extra: &[(&str, &str)]| {
        let mut fields = FAST.to_vec();
        fields.extend_from_slice(extra);
        features(server.post_form("/segment/automatic", Some(("s.tif", s.geotiff())), &fields))
    };
    let fc = post(&[]);
    assert_eq!(
        fc.features.len(),
        3,
        "one feature per object, none for the field: {:?}",
        fc.features
            .iter()
            .map(|f| f.properties.clone())
            .collect::<Vec<_>>()
    );
    for (i, score) in matches(&s, &s.rects, &fc).into_iter().enumerate() {
        assert!(score >= 0.85, "object {i}: IoU {score}");
    }
    for f in &fc.features {
        let p = f.properties.as_ref().unwrap();
        assert!(
            p["score"].as_f64().unwrap() > 0.0 && p["stability"].as_f64().unwrap() > 0.0,
            "{p:?}"
        );
    }
    // Without the foreground filter the field is a feature too.
    let all = post(&[("foreground", "false")]);
    assert!(all.features.len() >= 4, "{}", all.features.len());
    // Size limits: red is 10000 px, blue 3600, yellow 1600.
    assert_eq!(post(&[("min_size", "2000")]).features.len(), 2);
    assert_eq!(post(&[("max_size", "5000")]).features.len(), 2);
    // Nothing passes an IoU threshold above 1: an empty, valid result.
    assert_eq!(post(&[("pred_iou_thresh", "1.01")]).features.len(), 0);
}

#[test]
fn automatic_with_crops_finds_each_object_once() {
    let server = Server::start();
    let s = scene();
    let fc = features(server.post_form(
        "/segment/automatic",
        Some(("s.tif", s.geotiff())),
        // The demo model answers a click exactly on an object's (resampled, blended) edge with
        // the ring of blended pixels, at the same constant score as the object; this grid keeps
        // every crop's points off the edges so the test checks NMS, not that artefact.
        &[("points_per_side", "7"), ("crop_n_layers", "1")],
    ));
    assert_eq!(
        fc.features.len(),
        3,
        "NMS across crops keeps one mask per object"
    );
    for score in matches(&s, &s.rects, &fc) {
        assert!(score >= 0.85, "IoU {score}");
    }
}

#[test]
fn automatic_rejects_bad_generator_settings() {
    let server = Server::start();
    let (status, d) = common::detail(server.post_form(
        "/segment/automatic",
        Some(("s.tif", scene().geotiff())),
        &[("points_per_side", "0")],
    ));
    assert_eq!(status, 400, "{d}");
    assert!(d.contains("points_per_side"), "{d}");
    // SAM3's confidence_threshold is range-checked here as on /segment/text.
    for bad in ["1.5", "-0.1"] {
        let (status, d) = common::detail(server.post_form(
            "/segment/automatic",
            Some(("s.tif", scene().geotiff())),
            &[("model_version", "sam3"), ("confidence_threshold", bad)],
        ));
        assert_eq!(status, 400, "{bad}: {d}");
        assert!(d.contains("confidence_threshold"), "{d}");
    }
}

#[test]
fn text_prompt_finds_the_red_objects() {
    let server = Server::start();
    let s = two_red_one_blue();
    let fc = features(server.post_form(
        "/segment/text",
        Some(("s.tif", s.geotiff())),
        &[("prompt", "red")],
    ));
    assert_eq!(fc.features.len(), 2, "two red objects");
    for score in matches(&s, &s.rects[..2], &fc) {
        assert!(score >= 0.85, "IoU {score}");
    }
    for f in &fc.features {
        let score = f.properties.as_ref().unwrap()["score"].as_f64().unwrap();
        assert!((score - 0.9).abs() < 1e-3, "{score}");
    }
    // Nothing matches: 200 with an empty collection (the seed answers 404).
    let none = features(server.post_form(
        "/segment/text",
        Some(("s.tif", s.geotiff())),
        &[("prompt", "purple")],
    ));
    assert!(none.features.is_empty());
    // The transformers backend name is accepted and runs the same model.
    let again = features(server.post_form(
        "/segment/text",
        Some(("s.tif", s.geotiff())),
        &[("prompt", "red"), ("backend", "transformers")],
    ));
    assert_eq!(again.features.len(), 2);
    // A prompt past the length limit: 400 naming the limit (a 1 MB prompt would otherwise hold
    // an inference slot while it is tokenized).
    let long = "red ".repeat(250_000);
    let (status, d) = common::detail(server.post_form(
        "/segment/text",
        Some(("s.tif", s.geotiff())),
        &[("prompt", long.as_str())],
    ));
    assert_eq!(status, 400, "{d}");
    assert!(d.contains("4096"), "{d}");
}

#[test]
fn sam3_automatic_and_exemplar_boxes() {
    let server = Server::start();
    let s = two_red_one_blue();
    let all = features(server.post_form(
        "/segment/automatic",
        Some(("s.tif", s.geotiff())),
        &[("model_version", "sam3")],
    ));
    assert_eq!(all.features.len(), 3, "every object");
    // A box around one red object finds both red objects.
    let fc = features(server.post_form(
        "/segment/predict",
        Some(("s.tif", s.geotiff())),
        &[
            ("model_version", "sam3"),
            ("model_id", "facebook/sam3"),
            ("boxes", "[[25, 25, 115, 115]]"),
        ],
    ));
    assert_eq!(fc.features.len(), 2);
    for score in matches(&s, &s.rects[..2], &fc) {
        assert!(score >= 0.85, "IoU {score}");
    }
    // Points are the seed's predict_inst (the object under the point): the configured export
    // lacks SAM3's interactive instance head, so 400 naming it (not exemplars in disguise), with
    // or without boxes.
    for fields in [
        vec![("point_coords", "[[70, 70]]")],
        vec![
            ("point_coords", "[[70, 70]]"),
            ("point_labels", "[1]"),
            ("boxes", "[[25, 25, 115, 115]]"),
        ],
    ] {
        let mut fields = fields;
        fields.push(("model_version", "sam3"));
        let (status, d) = common::detail(server.post_form(
            "/segment/predict",
            Some(("s.tif", s.geotiff())),
            &fields,
        ));
        assert_eq!(status, 400, "{d}");
        assert!(
            d.contains("instance head") && d.contains("models.sam3.\"facebook/sam3\""),
            "{d}"
        );
    }
}
