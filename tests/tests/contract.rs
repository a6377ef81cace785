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
    // 400×300 = 120000 pixels > 50000, though the file itself is small.
    let (status, d) = detail(server.post_form(
        "/segment/predict",
        Some(("scene.tif", tiny_tiff())),
        &[("point_coords", "[[1,2]]")],
    ));
    assert_eq!(status, 413, "{d}");
    assert!(d.contains("pixels"), "{d}");
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
    let out = std::process::Command::new(common::server_binary())
        .args(["--config", "/nonexistent.toml", "--preload", "sam2"])
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
