//! Rasters named instead of uploaded: `POST /images` and `image_id` (the store on disk: reuse
//! across endpoints with the embedding cache, delete, eviction, restart), and `source` (local
//! paths and COGs over HTTP range requests, within `[inputs] allowed_sources`).

mod common;

use std::path::Path;
use std::sync::atomic::Ordering;

use common::range_server::RangeServer;
use common::rasters::{feature_polygons, iou, Rect, Scene, BLUE, GREEN, RED, UTM_GT, YELLOW};
use common::{detail, temp_dir, Server};
use serde_json::Value;

fn json(response: reqwest::blocking::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
    )
}

/// The IoU of the response's features with the scene's first rectangle, and the cache header.
fn square_iou(scene: &Scene, response: reqwest::blocking::Response) -> (f64, String) {
    let status = response.status().as_u16();
    let cache = response
        .headers()
        .get("x-samgeo-cache")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let text = response.text().unwrap();
    assert_eq!(status, 200, "{text}");
    let fc =
        geojson::FeatureCollection::try_from(text.parse::<geojson::GeoJson>().unwrap()).unwrap();
    let square = geo::MultiPolygon(vec![scene.footprint(&scene.rects[0])]);
    let best = feature_polygons(&fc)
        .iter()
        .map(|p| iou(p, &square))
        .fold(0.0, f64::max);
    (best, cache)
}

fn scene_with(colour: [u8; 3]) -> Scene {
    Scene {
        rects: vec![Rect {
            x0: 150,
            y0: 100,
            x1: 250,
            y1: 200,
            rgb: colour,
        }],
        ..Scene::red_square()
    }
}

fn upload(server: &Server, bytes: Vec<u8>) -> (u16, Value) {
    json(server.post_form("/images", Some(("scene.tif", bytes)), &[]))
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn a_stored_image_serves_every_endpoint_from_one_upload() {
    let server = Server::start();
    let scene = Scene::red_square();
    let (status, image) = upload(&server, scene.geotiff());
    assert_eq!(status, 201, "{image}");
    let id = image["image_id"].as_str().unwrap().to_string();
    assert!(
        id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    assert_eq!(
        (&image["width"], &image["height"], &image["band_count"]),
        (&Value::from(400), &Value::from(300), &Value::from(3))
    );
    assert_eq!(image["dtype"], "Byte");
    assert_eq!(image["crs"], "EPSG:32618");
    assert_eq!(
        image["bounds"],
        serde_json::json!([500000.0, 3997000.0, 504000.0, 4000000.0])
    );
    let wgs84: Vec<f64> = serde_json::from_value(image["bounds_wgs84"].clone()).unwrap();
    assert!(
        (wgs84[0] + 75.0).abs() < 0.01 && wgs84[3] > 36.0 && wgs84[3] < 36.2,
        "{wgs84:?}"
    );
    // The same bytes again: the same id, 200 (stored already).
    let (again, same) = upload(&server, scene.geotiff());
    assert_eq!((again, &same), (200, &image));
    assert_eq!(
        json(server.get(&format!("/images/{id}"))),
        (200, image.clone())
    );

    // predict twice and automatic once on the stored image: one embedding, computed once.
    let ask = |point: &str| {
        server.post_form(
            "/segment/predict",
            None,
            &[
                ("image_id", &id),
                ("model_version", "sam"),
                ("point_coords", point),
            ],
        )
    };
    let (score, cache) = square_iou(&scene, ask("[[200, 150]]"));
    assert!(score >= 0.9, "IoU {score}");
    assert_eq!(cache, "miss");
    let (score, cache) = square_iou(&scene, ask("[[180, 130]]"));
    assert!(score >= 0.9, "IoU {score}");
    assert_eq!(cache, "hit");
    let r = server.post_form(
        "/segment/automatic",
        None,
        &[
            ("image_id", &id),
            ("model_version", "sam"),
            ("points_per_side", "4"),
        ],
    );
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["x-samgeo-cache"], "hit");

    // Exactly one of file, image_id and source.
    let both = server.post_form(
        "/segment/predict",
        Some(("scene.tif", scene.geotiff())),
        &[("image_id", &id), ("point_coords", "[[1, 1]]")],
    );
    let (status, message) = detail(both);
    assert_eq!(status, 400);
    assert!(message.contains("file and image_id"), "{message}");
    // Source inputs are off unless the operator lists prefixes.
    let (status, message) = detail(server.post_form(
        "/segment/text",
        None,
        &[("source", "/tmp/scene.tif"), ("prompt", "red")],
    ));
    assert_eq!(status, 400);
    assert!(message.contains("source inputs are disabled"), "{message}");

    // Delete: then every use of the id is 404.
    assert_eq!(
        server.delete(&format!("/images/{id}")).status().as_u16(),
        204
    );
    for response in [
        server.get(&format!("/images/{id}")),
        server.delete(&format!("/images/{id}")),
        ask("[[200, 150]]"),
        server.get("/images/not-an-id"),
    ] {
        let (status, message) = detail(response);
        assert_eq!(status, 404, "{message}");
    }
    // A bad raster is 400 and leaves nothing on disk; no file part is 422.
    let store = server.work.join("cache/images");
    let (status, message) = detail(server.post_form(
        "/images",
        Some(("x.tif", b"II*\0not a tiff at all".to_vec())),
        &[],
    ));
    assert_eq!(status, 400, "{message}");
    assert!(
        !message.contains("cache"),
        "the server's paths stay private: {message}"
    );
    let (status, _) = detail(server.post_form("/images", None, &[("name", "x")]));
    assert_eq!(status, 422);
    assert_eq!(files_in(&store), Vec::<String>::new());
}

#[test]
fn the_store_evicts_the_least_recently_used_and_survives_a_restart() {
    let cache = temp_dir("image-store");
    let images: Vec<Vec<u8>> = [RED, BLUE, YELLOW, GREEN]
        .into_iter()
        .map(|c| scene_with(c).geotiff())
        .collect();
    let size = images.iter().map(|b| b.len()).max().unwrap() as u64;
    let configure = |config: &mut toml::Table| {
        let server = config["server"].as_table_mut().unwrap();
        server.insert("cache_dir".into(), cache.display().to_string().into());
        let mut caches = toml::Table::new();
        caches.insert(
            "image_store_bytes".into(),
            toml::Value::Integer((size * 5 / 2) as i64),
        );
        config.insert("caches".into(), caches.into());
    };
    let ids: Vec<String>;
    {
        let server = Server::start_with(configure, &[]);
        let mut stored = Vec::new();
        for bytes in &images[..2] {
            let (status, image) = upload(&server, bytes.clone());
            assert_eq!(status, 201);
            stored.push(image["image_id"].as_str().unwrap().to_string());
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // Using image 0 makes image 1 the least recently used.
        assert_eq!(server.get(&format!("/images/{}", stored[0])).status(), 200);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let (status, image) = upload(&server, images[2].clone());
        assert_eq!(status, 201);
        stored.push(image["image_id"].as_str().unwrap().to_string());
        let status = |id: &str| server.get(&format!("/images/{id}")).status().as_u16();
        assert_eq!(
            (status(&stored[0]), status(&stored[1]), status(&stored[2])),
            (200, 404, 200)
        );
        ids = stored;
    }
    // A new process on the same directory: the images and their order are back.
    let server = Server::start_with(configure, &[]);
    let status = |id: &str| server.get(&format!("/images/{id}")).status().as_u16();
    assert_eq!(
        (status(&ids[0]), status(&ids[1]), status(&ids[2])),
        (200, 404, 200)
    );
    let r = server.post_form(
        "/segment/predict",
        None,
        &[("image_id", &ids[2]), ("point_coords", "[[200, 150]]")],
    );
    assert_eq!(r.status().as_u16(), 200);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let (code, _) = upload(&server, images[3].clone());
    assert_eq!(code, 201);
    // Image 0 was read (by the GETs above) before image 2 was used for predict.
    assert_eq!((status(&ids[0]), status(&ids[2])), (404, 200));
    let stored_files = files_in(&cache.join("images"));
    assert_eq!(
        stored_files.len(),
        4,
        "two rasters and their sidecars: {stored_files:?}"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&cache);
}

/// A `side`×`side` COG with the red square of [`Scene::red_square`] (columns 150..250, rows
/// 100..200) on noise, written to `path`.
fn write_cog(path: &Path, side: usize) {
    use gdal::raster::Buffer;
    let mem = gdal::DriverManager::get_driver_by_name("MEM").unwrap();
    let mut ds = mem
        .create_with_band_type::<u8, _>("", side, side, 3)
        .unwrap();
    ds.set_geo_transform(&UTM_GT).unwrap();
    ds.set_spatial_ref(&gdal::spatial_ref::SpatialRef::from_epsg(32618).unwrap())
        .unwrap();
    let mut state = 12345u32;
    for b in 0..3 {
        let mut data = vec![0u8; side * side];
        for (i, v) in data.iter_mut().enumerate() {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let (x, y) = (i % side, i / side);
            *v = if (150..250).contains(&x) && (100..200).contains(&y) {
                RED[b]
            } else {
                GREEN[b] / 2 + (state >> 26) as u8
            };
        }
        let mut buffer = Buffer::new((side, side), data);
        ds.rasterband(b + 1)
            .unwrap()
            .write((0, 0), (side, side), &mut buffer)
            .unwrap();
    }
    let cog = gdal::DriverManager::get_driver_by_name("COG").unwrap();
    let options = gdal::cpl::CslStringList::from_iter(["BLOCKSIZE=256", "COMPRESS=NONE"]);
    drop(ds.create_copy(&cog, path, &options).unwrap());
}

#[test]
fn sources_are_read_in_place_within_the_allowed_prefixes() {
    let data = temp_dir("sources");
    let allowed = data.join("allowed");
    std::fs::create_dir_all(&allowed).unwrap();
    let scene = Scene::red_square();
    std::fs::write(allowed.join("scene.tif"), scene.geotiff()).unwrap();
    std::fs::write(data.join("outside.tif"), scene.geotiff()).unwrap();
    let served_dir = data.join("served");
    std::fs::create_dir_all(&served_dir).unwrap();
    write_cog(&served_dir.join("cog.tif"), 2048);
    let cog_size = std::fs::metadata(served_dir.join("cog.tif")).unwrap().len();
    let http = RangeServer::start(served_dir);
    let vsicurl = format!("/vsicurl/{}", http.url());
    let prefixes = vec![format!("{}/", allowed.display()), vsicurl.clone()];
    let server = Server::start_with(
        |config| {
            let mut inputs = toml::Table::new();
            inputs.insert("allowed_sources".into(), prefixes.clone().into());
            config.insert("inputs".into(), inputs.into());
        },
        &[],
    );
    let predict = |source: &str, extra: &[(&str, &str)]| {
        let mut fields = vec![
            ("source", source),
            ("model_version", "sam"),
            ("point_coords", "[[200, 150]]"),
        ];
        fields.extend_from_slice(extra);
        server.post_form("/segment/predict", None, &fields)
    };
    let local = format!("{}/scene.tif", allowed.display());
    let (score, cache) = square_iou(&scene, predict(&local, &[]));
    assert!(score >= 0.9, "IoU {score}");
    assert_eq!(cache, "miss");
    assert_eq!(square_iou(&scene, predict(&local, &[])).1, "hit");

    for (source, want) in [
        (
            format!("{}/outside.tif", data.display()),
            "not under a prefix",
        ),
        (format!("{}/../outside.tif", allowed.display()), "'..'"),
        (
            format!("{}/missing.tif", allowed.display()),
            "Cannot open source",
        ),
        (
            "/vsicurl/http://192.0.2.1/cog.tif".to_string(),
            "not under a prefix",
        ),
        (format!("{vsicurl}missing.tif"), "Cannot open source"),
    ] {
        let (status, message) = detail(predict(&source, &[]));
        assert_eq!(status, 400, "{source}: {message}");
        assert!(message.contains(want), "{source}: {message}");
    }

    // A COG over HTTP: the window around the click is fetched with range requests, never the
    // whole file.
    let (score, _) = square_iou(
        &scene,
        predict(&format!("{vsicurl}cog.tif"), &[("tiling", "on")]),
    );
    assert!(score >= 0.8, "IoU {score}");
    let sent = http.served.bytes.load(Ordering::SeqCst);
    eprintln!(
        "COG over HTTP: IoU {score:.3}; {sent} of {cog_size} bytes fetched in {} range requests",
        http.served.partial.load(Ordering::SeqCst)
    );
    assert!(http.served.partial.load(Ordering::SeqCst) > 0);
    assert_eq!(http.served.whole.load(Ordering::SeqCst), 0);
    assert!(
        sent < cog_size / 2,
        "{sent} of {cog_size} bytes fetched for one 1024 px window"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&data);
}

/// `Prefer: respond-async` with `image_id`: 202 and a job whose result is the synchronous
/// answer for the same stored image; an unknown id is a 404 at submission, not a failed job.
#[test]
fn a_stored_image_runs_as_a_job_with_the_synchronous_result() {
    let server = Server::start();
    let (status, image) = upload(&server, Scene::red_square().geotiff());
    assert_eq!(status, 201, "{image}");
    let id = image["image_id"].as_str().unwrap().to_string();
    let fields = [
        ("image_id", id.as_str()),
        ("model_version", "sam"),
        ("point_coords", "[[200, 150]]"),
    ];
    let (status, sync) = json(server.post_form("/segment/predict", None, &fields));
    assert_eq!(status, 200, "{sync}");
    assert!(!sync["features"].as_array().unwrap().is_empty(), "{sync}");

    let submit = |fields: &[(&str, &str)]| {
        let mut form = common::Form::new();
        for (k, v) in fields {
            form = form.text(k.to_string(), v.to_string());
        }
        server
            .client
            .post(server.url("/segment/predict"))
            .header("Prefer", "respond-async")
            .multipart(form)
            .send()
            .unwrap()
    };
    let accepted = submit(&fields);
    assert_eq!(accepted.status().as_u16(), 202);
    let location = accepted.headers()["location"].to_str().unwrap().to_string();
    let started = std::time::Instant::now();
    let info = loop {
        let (status, info) = json(server.get(&location));
        assert_eq!(status, 200, "{info}");
        if ["successful", "failed", "dismissed"].contains(&info["status"].as_str().unwrap()) {
            break info;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "{info}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(info["status"], "successful", "{info}");
    let (status, result) = json(server.get(&format!("{location}/results")));
    assert_eq!(status, 200, "{result}");
    assert_eq!(result, sync);

    let unknown = "0".repeat(64);
    let refused = submit(&[
        ("image_id", unknown.as_str()),
        ("model_version", "sam"),
        ("point_coords", "[[200, 150]]"),
    ]);
    let (status, message) = detail(refused);
    assert_eq!(status, 404, "{message}");
    assert!(message.contains(&unknown), "{message}");
    // A source on a server that allows none: 400 at submission.
    let refused = submit(&[
        ("source", "/etc/passwd"),
        ("model_version", "sam"),
        ("point_coords", "[[200, 150]]"),
    ]);
    let (status, message) = detail(refused);
    assert_eq!(status, 400, "{message}");
    assert!(message.contains("allowed_sources"), "{message}");
    // The same through OGC API – Processes.
    let execute = |inputs: serde_json::Value| {
        server
            .client
            .post(server.url("/processes/segment-predict/execution"))
            .header("Prefer", "respond-async")
            .json(&serde_json::json!({ "inputs": inputs }))
            .send()
            .unwrap()
    };
    let (status, message) = detail(execute(serde_json::json!({
        "image_id": unknown, "model_version": "sam", "point_coords": [[200, 150]]
    })));
    assert_eq!(status, 404, "{message}");
    assert!(message.contains(&unknown), "{message}");
    let (status, message) = detail(execute(serde_json::json!({
        "source": "/etc/passwd", "model_version": "sam", "point_coords": [[200, 150]]
    })));
    assert_eq!(status, 400, "{message}");
    let accepted = execute(serde_json::json!({
        "image_id": id, "model_version": "sam", "point_coords": [[200, 150]]
    }));
    assert_eq!(accepted.status().as_u16(), 201);
    let (_, jobs) = json(server.get("/jobs"));
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 2, "{jobs}");
}

/// `POST /images` streams to disk: its limit is `[inputs] max_image_bytes`, not
/// `server.max_upload_bytes`, and it is not counted in `max_buffered_upload_bytes`; so a raster
/// too large to send with every request is stored once and used by id.
#[test]
fn images_larger_than_a_request_upload_are_stored_once() {
    const MIB: i64 = 1024 * 1024;
    let server = Server::start_with(
        |c| {
            let server = c["server"].as_table_mut().unwrap();
            server.insert("max_upload_bytes".into(), (2 * MIB).into());
            server.insert("max_buffered_upload_bytes".into(), (2 * MIB).into());
            let mut inputs = toml::Table::new();
            inputs.insert("max_image_bytes".into(), (4 * MIB).into());
            c.insert("inputs".into(), inputs.into());
        },
        &[],
    );
    let scene = Scene::three_objects_1024();
    let tiff = scene.geotiff();
    assert!(tiff.len() as i64 > 2 * MIB && (tiff.len() as i64) < 4 * MIB);
    let r = &scene.rects[0];
    let point = format!("[[{}, {}]]", (r.x0 + r.x1) / 2, (r.y0 + r.y1) / 2);

    // Sent with the request: over server.max_upload_bytes.
    let (status, message) = detail(server.post_form(
        "/segment/predict",
        Some(("big.tif", tiff.clone())),
        &[("model_version", "sam"), ("point_coords", point.as_str())],
    ));
    assert_eq!(status, 413, "{message}");
    assert!(message.contains("server.max_upload_bytes"), "{message}");

    // Stored once, then used by id.
    let (status, image) = upload(&server, tiff);
    assert_eq!(status, 201, "{image}");
    let id = image["image_id"].as_str().unwrap();
    let (status, fc) = json(server.post_form(
        "/segment/predict",
        None,
        &[
            ("image_id", id),
            ("model_version", "sam"),
            ("point_coords", point.as_str()),
        ],
    ));
    assert_eq!(status, 200, "{fc}");
    assert!(!fc["features"].as_array().unwrap().is_empty(), "{fc}");

    // Over inputs.max_image_bytes: 413 naming it, nothing stored.
    let (status, message) = detail(
        server
            .client
            .post(server.url("/images"))
            .multipart(common::Form::new().part(
                "file",
                common::Part::bytes(vec![0u8; 5 * MIB as usize]).file_name("huge.tif"),
            ))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 413, "{message}");
    assert!(message.contains("inputs.max_image_bytes"), "{message}");
}
