//! The seed's REST contract over HTTP against a spawned `samgeo-api`: health, models, clearing,
//! and the validation answers (422/400/413/503) that come before any model runs.

mod common;

use common::rasters::Scene;
use common::{detail, Server};

fn tiny_tiff() -> Vec<u8> {
    Scene::red_square().geotiff()
}

#[test]
fn health_and_models() {
    let server = Server::start();
    let health: serde_json::Value = server.get("/health").json().unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));

    let models: serde_json::Value = server.get("/models").json().unwrap();
    assert_eq!(
        models["loaded"],
        serde_json::json!([]),
        "a fresh server has nothing loaded"
    );
    for (version, ids) in [
        ("sam", vec!["vit_h", "vit_l", "vit_b"]),
        (
            "sam2",
            vec![
                "sam2-hiera-tiny",
                "sam2-hiera-small",
                "sam2-hiera-base-plus",
                "sam2-hiera-large",
            ],
        ),
        ("sam3", vec!["facebook/sam3", "facebook/sam3.1"]),
    ] {
        assert_eq!(
            models["models"][version],
            serde_json::json!(ids),
            "{version}"
        );
    }
    assert!(models["demo"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!(["sam2", "sam2-hiera-large"])));

    let cleared: serde_json::Value = server.delete("/models").json().unwrap();
    assert_eq!(cleared, serde_json::json!({"status": "cleared"}));
}

#[test]
fn validation_answers() {
    let server = Server::start();
    // No file at all (not even multipart) → 422, on every segmentation endpoint.
    for path in ["/segment/automatic", "/segment/predict", "/segment/text"] {
        let r = server.client.post(server.url(path)).send().unwrap();
        assert_eq!(r.status().as_u16(), 422, "{path}");
        let r = server.post_form(path, None, &[("model_version", "sam2")]);
        assert_eq!(r.status().as_u16(), 422, "{path} without file");
    }
    let file = || Some(("test.tif", tiny_tiff()));
    // (endpoint, form fields, expected status, expected words in the detail)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        ("/segment/automatic", vec![("model_version", "invalid")], 400,
         "Invalid model_version 'invalid'. Must be one of: ['sam', 'sam2', 'sam3']"),
        ("/segment/automatic", vec![("model_version", "sam2"), ("model_id", "nonexistent")], 400,
         "Invalid model_id 'nonexistent' for sam2. Must be one of: ['sam2-hiera-tiny', 'sam2-hiera-small', 'sam2-hiera-base-plus', 'sam2-hiera-large']"),
        ("/segment/predict", vec![("model_version", "sam2")], 400, "At least one of point_coords or boxes must be provided."),
        ("/segment/predict", vec![("point_coords", "[[1, 2]]"), ("output_format", "kml")], 400, "Invalid output_format 'kml'. Must be one of: "),
        ("/segment/automatic", vec![("output_format", "bogus")], 400, "Invalid output_format 'bogus'"),
        ("/segment/predict", vec![("point_coords", "[[1, 2]")], 400, "Invalid JSON in prompt fields: "),
        ("/segment/predict", vec![("point_coords", "[[1, 2]]"), ("point_labels", "[1, 0]")], 400, "point_labels has 2 labels"),
        ("/segment/predict", vec![("point_coords", "[[1, 2]]"), ("multimask_output", "perhaps")], 422, "multimask_output"),
        ("/segment/predict", vec![("point_coords", "[[1, 2]]"), ("min_size", "-5")], 400, "min_size"),
        ("/segment/predict", vec![("point_coords", "[[1, 2]]"), ("bands", "x")], 400, "Invalid bands"),
        ("/segment/predict", vec![("point_coords", "[[1, 2]]"), ("point_crs", "EPSG:999999")], 400, "Invalid point_crs"),
        ("/segment/predict", vec![("point_coords", "[[5000, 2]]")], 400, "point_coords[0] = [5000, 2] lies outside the image"),
        ("/segment/predict", vec![("boxes", "[[10, 10, 5, 20]]")], 400, "xmin must not exceed xmax"),
        ("/segment/predict", vec![("point_coords", "[[1, 2]]"), ("model_version", "sam"), ("model_id", "vit_l")], 503, "models.sam.\"vit_l\""),
        ("/segment/predict", vec![("point_coords", "[[1, 2]]"), ("bands", "7")], 400, "band 7 does not exist"),
        ("/segment/text", vec![("output_format", "geojson")], 422, "prompt"),
    ];
    for (path, fields, status, expected) in cases {
        let (got_status, got_detail) = detail(server.post_form(path, file(), &fields));
        assert_eq!(got_status, status, "{path} {fields:?}: {got_detail}");
        assert!(
            got_detail.contains(expected),
            "{path} {fields:?}: {got_detail:?} lacks {expected:?}"
        );
    }
    // Nothing was loaded by any of that: validation comes first.
    let models: serde_json::Value = server.get("/models").json().unwrap();
    assert_eq!(models["loaded"], serde_json::json!([]));
}

#[test]
fn bad_files_are_400_with_a_reason() {
    let server = Server::start();
    let point = [("point_coords", "[[1, 2]]")];
    for (name, bytes, expected) in [
        ("empty.tif", Vec::new(), "empty"),
        (
            "text.tif",
            b"this is not an image at all".to_vec(),
            "not recognised",
        ),
        ("truncated.tif", tiny_tiff()[..300].to_vec(), "Cannot read"),
    ] {
        let (status, d) = detail(server.post_form("/segment/predict", Some((name, bytes)), &point));
        assert_eq!(status, 400, "{name}: {d}");
        assert!(d.contains(expected), "{name}: {d}");
    }
    if let Some(dir) = common::real_data() {
        let bytes = std::fs::read(dir.join("corrupt.tif")).unwrap();
        let (status, d) =
            detail(server.post_form("/segment/predict", Some(("corrupt.tif", bytes)), &point));
        assert_eq!(status, 400, "{d}");
        assert!(d.contains("Cannot read the pixels"), "{d}");
        // point_crs on an image without a CRS: the seed answers 500, we answer 400.
        let jpg = std::fs::read(dir.join("389225main_sw_1965_1024.jpg")).unwrap();
        let (status, d) = detail(server.post_form(
            "/segment/predict",
            Some(("photo.jpg", jpg)),
            &[
                ("point_coords", "[[-77.0, 24.0]]"),
                ("point_crs", "EPSG:4326"),
            ],
        ));
        assert_eq!(status, 400, "{d}");
        assert!(d.contains("no georeferencing"), "{d}");
    }
}

#[test]
fn size_limits_are_413() {
    let server = Server::start_with(
        |c| {
            let s = c["server"].as_table_mut().unwrap();
            s.insert("max_upload_bytes".into(), toml::Value::Integer(1024 * 1024));
            s.insert("max_pixels".into(), toml::Value::Integer(50_000));
        },
        &[],
    );
    let big = vec![0u8; 3 * 1024 * 1024];
    let (status, d) = detail(server.post_form(
        "/segment/predict",
        Some(("big.tif", big)),
        &[("point_coords", "[[1,2]]")],
    ));
    assert_eq!(status, 413, "{d}");
    // 400×300 = 120000 pixels > 50000, though the file itself is small: 413 for one look at
    // the whole image (`tiling=off`); by default predict looks at a window around the prompts
    // instead (up to server.max_tiled_pixels).
    let (status, d) = detail(server.post_form(
        "/segment/predict",
        Some(("scene.tif", tiny_tiff())),
        &[("point_coords", "[[1,2]]"), ("tiling", "off")],
    ));
    assert_eq!(status, 413, "{d}");
    assert!(d.contains("pixels"), "{d}");
    let windowed = server.post_form(
        "/segment/predict",
        Some(("scene.tif", tiny_tiff())),
        &[("point_coords", "[[1,2]]")],
    );
    assert_eq!(windowed.status().as_u16(), 200);
}

#[test]
fn docs_and_openapi_are_served() {
    let server = Server::start();
    let spec: serde_json::Value = server.get("/openapi.json").json().unwrap();
    for path in [
        "/health",
        "/models",
        "/segment/predict",
        "/segment/automatic",
        "/segment/text",
        "/plugins",
    ] {
        assert!(
            spec["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
    let docs = server.get("/docs/");
    assert_eq!(docs.status().as_u16(), 200);
    assert!(docs.text().unwrap().to_lowercase().contains("swagger"));
}

#[test]
fn api_key_guards_everything_but_health() {
    let server = Server::start_with(
        |c| {
            c["server"]
                .as_table_mut()
                .unwrap()
                .insert("api_key".into(), "s3cret".into());
        },
        &[],
    );
    assert_eq!(server.get("/health").status().as_u16(), 200);
    let (status, _) = detail(server.get("/models"));
    assert_eq!(status, 401);
    let wrong = server
        .client
        .get(server.url("/models"))
        .bearer_auth("nope")
        .send()
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    let right = server
        .client
        .get(server.url("/models"))
        .bearer_auth("s3cret")
        .send()
        .unwrap();
    assert_eq!(right.status().as_u16(), 200);
    assert_eq!(
        server
            .client
            .post(server.url("/plugins/reload"))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        401
    );
}

#[test]
fn bad_config_stops_startup_naming_the_key() {
    let work = common::temp_dir("badconfig");
    let path = work.join("samgeo.toml");
    std::fs::write(&path, "[server]\nprot = 80\n").unwrap();
    let out = std::process::Command::new(common::server_binary())
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("prot"), "{err}");
    // An existing (empty) config: the bad --preload is what stops start-up.
    let empty = work.join("empty.toml");
    std::fs::write(&empty, "").unwrap();
    let out = std::process::Command::new(common::server_binary())
        .arg("--config")
        .arg(&empty)
        .args(["--preload", "sam2"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "Invalid --preload format. Expected 'model_version:model_id', e.g. 'sam2:sam2-hiera-large'"
        ),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(work);
}

/// `backend` is checked with the seed's words; `facebook/sam3.1` with `transformers` is 400 as
/// in the seed; both valid backends run the same model.
#[test]
fn backend_answers_like_the_seed() {
    let server = Server::start();
    let post = |fields: &[(&str, &str)]| {
        server.post_form("/segment/text", Some(("t.tif", tiny_tiff())), fields)
    };
    let (status, d) = detail(post(&[("prompt", "red"), ("backend", "tensorflow")]));
    assert_eq!(
        (status, d.as_str()),
        (
            400,
            "Invalid backend 'tensorflow'. Choose 'meta' or 'transformers'."
        )
    );
    let (status, d) = detail(post(&[
        ("prompt", "red"),
        ("backend", "transformers"),
        ("model_id", "facebook/sam3.1"),
    ]));
    assert_eq!(status, 400, "{d}");
    assert!(d.contains("only supported with backend='meta'"), "{d}");
    // facebook/sam3.1 with meta passes the check (no files configured here → 503 naming the key).
    let (status, d) = detail(post(&[("prompt", "red"), ("model_id", "facebook/sam3.1")]));
    assert_eq!(status, 503, "{d}");
    let count = |backend: &str| {
        let r = post(&[("prompt", "red"), ("backend", backend)]);
        assert_eq!(r.status().as_u16(), 200, "{backend}");
        r.headers()["x-samgeo-masks"].to_str().unwrap().to_string()
    };
    assert_eq!(count("meta"), count("transformers"));
}

/// `/segment/text` with `json` or `detections` lists the detector's boxes and scores in the
/// seed's shapes.
#[test]
fn text_json_and_detections_come_from_the_detector() {
    let server = Server::start();
    let scene = Scene::red_square();
    let post = |format: &str| -> serde_json::Value {
        let r = server.post_form(
            "/segment/text",
            Some(("scene.tif", scene.geotiff())),
            &[("prompt", "red"), ("output_format", format)],
        );
        assert_eq!(r.status().as_u16(), 200, "{format}");
        r.json().unwrap()
    };
    let json = post("json");
    assert_eq!(
        (json["image_width"].as_u64(), json["image_height"].as_u64()),
        (Some(400), Some(300))
    );
    let list = json["detections"].as_array().unwrap();
    assert!(!list.is_empty(), "{json}");
    assert_eq!(json["num_detections"].as_u64(), Some(list.len() as u64));
    let first = list[0].as_object().unwrap();
    let mut keys: Vec<&str> = first.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["bbox", "height", "id", "score", "width"], "{json}");
    let bbox: Vec<i64> = first["bbox"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(first["width"].as_i64(), Some(bbox[2] - bbox[0]));
    assert_eq!(first["height"].as_i64(), Some(bbox[3] - bbox[1]));
    // The red square is columns 150..250, rows 100..200: the detector's box is around it.
    for (got, want) in bbox.iter().zip([150, 100, 250, 200]) {
        assert!((got - want).abs() <= 3, "box {bbox:?}");
    }
    let detections = post("detections");
    assert_eq!(detections["type"], "FeatureCollection");
    assert_eq!(detections["crs"], "EPSG:32618");
    assert_eq!(
        detections["num_detections"].as_u64(),
        Some(list.len() as u64)
    );
    let props = &detections["features"][0]["properties"];
    assert_eq!(props["id"], 1);
    assert!(props["score"].as_f64().is_some_and(|s| s > 0.0), "{props}");
    assert_eq!(props["bbox_pixel"].as_array().map(Vec::len), Some(4));
    let corner = &detections["features"][0]["geometry"]["coordinates"][0][0];
    let (x, y) = scene.to_map(bbox[0] as f64, bbox[1] as f64);
    assert!(
        (corner[0].as_f64().unwrap() - x).abs() <= 50.0,
        "{corner} vs {x}"
    );
    assert!(
        (corner[1].as_f64().unwrap() - y).abs() <= 50.0,
        "{corner} vs {y}"
    );
}

/// `GET /redoc` serves ReDoc from the binary: the page loads the bundle from this server, not a CDN.
#[test]
fn redoc_is_served_without_a_cdn() {
    let server = Server::start();
    let page = server.get("/redoc");
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = page.text().unwrap();
    assert!(html.contains("spec-url=\"/openapi.json\""), "{html}");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    let js = server.get("/redoc/redoc.standalone.js");
    assert_eq!(js.status().as_u16(), 200);
    assert!(js.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("javascript"));
    assert!(js.bytes().unwrap().len() > 100_000);
}

/// The default `model_version` per endpoint comes from `[api]` (sam2 when not configured), and
/// the document says which it is.
#[test]
fn default_model_version_is_configured_per_endpoint() {
    let loaded_after = |server: &Server, path: &str, fields: &[(&str, &str)]| {
        server.delete("/models");
        let r = server.post_form(path, Some(("t.tif", tiny_tiff())), fields);
        assert_eq!(r.status().as_u16(), 200, "{path}");
        let models: serde_json::Value = server.get("/models").json().unwrap();
        models["loaded"][0][0].as_str().unwrap().to_string()
    };
    let shipped = Server::start();
    assert_eq!(
        loaded_after(
            &shipped,
            "/segment/predict",
            &[("point_coords", "[[200, 150]]")]
        ),
        "sam2"
    );
    let spec: serde_json::Value = shipped.get("/openapi.json").json().unwrap();
    let default_of = |spec: &serde_json::Value, form: &str| {
        spec["components"]["schemas"][form]["properties"]["model_version"]["default"].clone()
    };
    assert_eq!(default_of(&spec, "PredictForm"), "sam2");
    assert_eq!(default_of(&spec, "AutomaticForm"), "sam2");
    drop(shipped);

    let configured = Server::start_with(
        |c| {
            let mut api = toml::Table::new();
            api.insert("default_model_version_predict".into(), "sam".into());
            api.insert("default_model_version_automatic".into(), "sam3".into());
            c.insert("api".into(), toml::Value::Table(api));
        },
        &[],
    );
    assert_eq!(
        loaded_after(
            &configured,
            "/segment/predict",
            &[("point_coords", "[[200, 150]]")]
        ),
        "sam"
    );
    assert_eq!(loaded_after(&configured, "/segment/automatic", &[]), "sam3");
    let spec: serde_json::Value = configured.get("/openapi.json").json().unwrap();
    assert_eq!(default_of(&spec, "PredictForm"), "sam");
    assert_eq!(default_of(&spec, "AutomaticForm"), "sam3");
}

/// The document describes the forms the server parses: every field `/segment/automatic`
/// accepts, `sam3` among the versions of `/segment/predict`, and `{"detail"}` errors.
#[test]
fn openapi_describes_the_parsed_forms() {
    let server = Server::start();
    let spec: serde_json::Value = server.get("/openapi.json").json().unwrap();
    let schemas = &spec["components"]["schemas"];
    for field in [
        "points_per_batch",
        "crop_n_layers",
        "crop_nms_thresh",
        "crop_overlap_ratio",
        "crop_n_points_downscale_factor",
        "box_nms_thresh",
        "min_mask_region_area",
        "stability_score_offset",
        "confidence_threshold",
    ] {
        assert!(
            schemas["AutomaticForm"]["properties"][field].is_object(),
            "{field}"
        );
    }
    let versions = &schemas["PredictForm"]["properties"]["model_version"]["enum"];
    assert!(
        versions.as_array().unwrap().contains(&"sam3".into()),
        "{versions}"
    );
    let formats = &schemas["PredictForm"]["properties"]["output_format"]["enum"];
    assert!(
        formats.as_array().unwrap().contains(&"geotiff".into()),
        "{formats}"
    );
    let err = &spec["paths"]["/segment/predict"]["post"]["responses"]["400"]["content"]
        ["application/json"]["schema"];
    assert_eq!(err["$ref"], "#/components/schemas/ErrorDetail");
    // A field the document lists is one the server reads: a wrong type in it is a 422 naming it.
    let r = server.post_form(
        "/segment/automatic",
        Some(("t.tif", tiny_tiff())),
        &[("crop_n_layers", "two")],
    );
    let (status, d) = detail(r);
    assert_eq!(
        (status, d.as_str()),
        (422, "Field 'crop_n_layers': 'two' is not a valid integer")
    );
}
