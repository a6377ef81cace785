//! Reliability: the server writes nowhere but `server.cache_dir`. A mix of requests (every
//! endpoint, every output format, errors, hostile file names, model clearing, plugin reloads by
//! HTTP and SIGHUP) runs against a server whose `TMPDIR` and `HOME` are empty directories and
//! whose working directory holds only its config and log; after a SIGTERM, `TMPDIR` and `HOME`
//! are still empty, the working directory holds only the config, the log and the cache dir, the
//! cache dir only `plugins/*.cwasm` (and the empty image store, `images/`), and the model and
//! plugin directories are unchanged.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::rasters::Scene;
use common::{Form, Part};
use reqwest::blocking::Client;

/// Every file under `dir` (relative path → size and modification time).
fn tree(dir: &Path) -> BTreeMap<PathBuf, (u64, Option<SystemTime>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                out.insert(path.strip_prefix(dir).unwrap().to_path_buf(), (0, None));
                stack.push(path);
            } else {
                out.insert(
                    path.strip_prefix(dir).unwrap().to_path_buf(),
                    (meta.len(), meta.modified().ok()),
                );
            }
        }
    }
    out
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn nothing_is_written_outside_the_cache_dir() {
    let root = common::temp_dir("files");
    let (tmp, home, work) = (root.join("tmp"), root.join("home"), root.join("work"));
    for d in [&tmp, &home, &work] {
        std::fs::create_dir_all(d).unwrap();
    }
    let watched = [common::plugin_dir(), common::repo_root().join("models")];
    let before: Vec<_> = watched.iter().map(|d| tree(d)).collect();

    let port = free_port();
    let config = common::base_config(&work, port);
    std::fs::write(work.join("samgeo.toml"), toml::to_string(&config).unwrap()).unwrap();
    let log = std::fs::File::create(work.join("server.log")).unwrap();
    let mut child = Command::new(common::server_binary())
        .args(["--config", "samgeo.toml"])
        .current_dir(&work)
        .env("TMPDIR", &tmp)
        .env("HOME", &home)
        .env_remove("XDG_CACHE_HOME")
        .env_remove("XDG_DATA_HOME")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("CPL_TMPDIR")
        // The server must turn ONNX Runtime's telemetry off by itself.
        .env_remove("ORT_DISABLE_TELEMETRY")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let started = Instant::now();
    while client.get(format!("{base}/health")).send().is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "server did not start"
        );
        assert!(child.try_wait().unwrap().is_none(), "server exited");
        std::thread::sleep(Duration::from_millis(50));
    }

    let scene = Scene::red_square().geotiff();
    let post = |path: &str, file_name: &str, bytes: &[u8], fields: &[(&str, &str)]| -> u16 {
        let mut form = Form::new().part(
            "file",
            Part::bytes(bytes.to_vec()).file_name(file_name.to_string()),
        );
        for (k, v) in fields {
            form = form.text(k.to_string(), v.to_string());
        }
        let r = client
            .post(format!("{base}{path}"))
            .multipart(form)
            .send()
            .unwrap();
        let status = r.status().as_u16();
        let _ = r.bytes();
        status
    };
    let point = ("point_coords", "[[200, 150]]");
    let mut statuses = Vec::new();
    for format in ["geojson", "geotiff", "png", "json", "detections", "count"] {
        statuses.push((
            format,
            post(
                "/segment/predict",
                "scene.tif",
                &scene,
                &[point, ("output_format", format)],
            ),
            200,
        ));
    }
    // SAM3 takes boxes (points need an instance head the demo export lacks: 400).
    let sam3_box = ("boxes", "[[150, 100, 250, 200]]");
    for (name, model, prompt) in [
        ("sam predict", "sam", point),
        ("sam3 predict", "sam3", sam3_box),
    ] {
        statuses.push((
            name,
            post(
                "/segment/predict",
                "scene.tif",
                &scene,
                &[prompt, ("model_version", model)],
            ),
            200,
        ));
    }
    statuses.push((
        "automatic geotiff",
        post(
            "/segment/automatic",
            "scene.tif",
            &scene,
            &[("points_per_side", "4"), ("output_format", "geotiff")],
        ),
        200,
    ));
    statuses.push((
        "automatic crops",
        post(
            "/segment/automatic",
            "scene.tif",
            &scene,
            &[("points_per_side", "4"), ("crop_n_layers", "1")],
        ),
        200,
    ));
    statuses.push((
        "text png",
        post(
            "/segment/text",
            "scene.tif",
            &scene,
            &[("prompt", "red"), ("output_format", "png")],
        ),
        200,
    ));
    statuses.push((
        "file name ../../escape.tif",
        post("/segment/predict", "../../../escape.tif", &scene, &[point]),
        200,
    ));
    statuses.push((
        "file name /tmp/abs.tif",
        post("/segment/predict", "/tmp/samgeo-abs.tif", &scene, &[point]),
        200,
    ));
    statuses.push((
        "truncated",
        post("/segment/predict", "bad.tif", &scene[..400], &[point]),
        400,
    ));
    statuses.push((
        "text as tif",
        post("/segment/predict", "x.tif", b"hello", &[point]),
        400,
    ));
    statuses.push((
        "point_crs a path",
        post(
            "/segment/predict",
            "scene.tif",
            &scene,
            &[point, ("point_crs", "./out.wkt")],
        ),
        400,
    ));
    if let Some(dir) = common::real_data() {
        let corrupt = std::fs::read(dir.join("corrupt.tif")).unwrap();
        statuses.push((
            "corrupt.tif",
            post(
                "/segment/predict",
                "corrupt.tif",
                &corrupt,
                &[("point_coords", "[[10, 10]]")],
            ),
            400,
        ));
        let jpg = std::fs::read(dir.join("389225main_sw_1965_1024.jpg")).unwrap();
        statuses.push((
            "jpeg",
            post(
                "/segment/predict",
                "photo.jpg",
                &jpg,
                &[("point_coords", "[[10, 10]]")],
            ),
            200,
        ));
    }
    assert_eq!(
        client
            .delete(format!("{base}/models"))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        client
            .post(format!("{base}/plugins/reload"))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    statuses.push((
        "after reloads",
        post("/segment/predict", "scene.tif", &scene, &[point]),
        200,
    ));

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let started = Instant::now();
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("no exit after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let log_text = std::fs::read_to_string(work.join("server.log")).unwrap_or_default();
    for (name, got, want) in &statuses {
        assert_eq!(got, want, "{name}\n{log_text}");
    }
    assert_eq!(code, Some(0), "{log_text}");

    let left_in_tmp = tree(&tmp);
    let left_in_home = tree(&home);
    let in_work: Vec<String> = tree(&work)
        .into_keys()
        .map(|p| p.to_string_lossy().to_string())
        .collect();
    eprintln!("TMPDIR: {left_in_tmp:?}\nHOME: {left_in_home:?}\nworking directory: {in_work:?}");
    assert!(left_in_tmp.is_empty(), "written to TMPDIR: {left_in_tmp:?}");
    assert!(left_in_home.is_empty(), "written to HOME: {left_in_home:?}");
    for path in &in_work {
        let allowed = path == "samgeo.toml"
            || path == "server.log"
            || path == "cache"
            || path == "cache/plugins"
            // The image store (POST /images), empty: this mix stores no image.
            || path == "cache/images"
            // The job store (SQLite in WAL mode) and its directory, empty of jobs.
            || path == "cache/jobs"
            || path == "cache/jobs.sqlite3"
            || path == "cache/jobs.sqlite3-shm"
            || path == "cache/jobs.sqlite3-wal"
            || (path.starts_with("cache/plugins/")
                && path.ends_with(".cwasm")
                && !path["cache/plugins/".len()..].contains('/'));
        assert!(
            allowed,
            "unexpected file in the working directory: {path} (all: {in_work:?})"
        );
    }
    assert!(
        in_work.iter().any(|p| p.ends_with(".cwasm")),
        "the plugin cache was used"
    );
    assert!(!Path::new("/tmp/samgeo-abs.tif").exists());
    for (dir, old) in watched.iter().zip(before) {
        assert_eq!(tree(dir), old, "{} changed", dir.display());
    }
    let _ = std::fs::remove_dir_all(&root);
}
