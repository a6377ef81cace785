//! Swapping plugins without rebuilding the server: an out-of-tree formatter is built with cargo,
//! dropped into the plugin directory of a running server and reloaded.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::rasters::Scene;
use common::{detail, Server};

/// Builds plugins/examples/csv-formatter for wasm32-wasip2 and returns the component.
fn build_csv_example() -> PathBuf {
    let root = common::repo_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("plugins-examples");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--release",
            "--quiet",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(root.join("plugins/examples/csv-formatter/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the csv example failed");
    let dir = target.join("wasm32-wasip2/release");
    std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "wasm"))
        .unwrap_or_else(|| panic!("no .wasm in {}", dir.display()))
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        if entry.path().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

#[test]
fn a_dropped_in_formatter_serves_after_reload() {
    let csv = build_csv_example();
    let plugin_dir = common::temp_dir("plugins");
    copy_dir(&common::plugin_dir(), &plugin_dir);
    let dir_value = plugin_dir.to_string_lossy().to_string();
    let server = Server::start_with(
        |c| {
            c["plugins"]
                .as_table_mut()
                .unwrap()
                .insert("directory".into(), dir_value.into());
        },
        &[],
    );
    let scene = Scene::red_square();
    let ask = || {
        server.post_form(
            "/segment/predict",
            Some(("scene.tif", scene.geotiff())),
            &[("point_coords", "[[200, 150]]"), ("output_format", "csv")],
        )
    };
    let (status, d) = detail(ask());
    assert_eq!(status, 400, "{d}");
    assert!(d.contains("Invalid output_format 'csv'"), "{d}");

    std::fs::copy(&csv, plugin_dir.join("csv.wasm")).unwrap();
    let reload = server
        .client
        .post(server.url("/plugins/reload"))
        .send()
        .unwrap();
    assert_eq!(reload.status().as_u16(), 200, "{}", reload.text().unwrap());
    let listed: serde_json::Value = server.get("/plugins").json().unwrap();
    assert!(
        listed["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "csv" && p["kind"] == "formatter"),
        "{listed}"
    );

    let r = ask();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let text = r.text().unwrap();
    assert!(
        text.lines().count() >= 2,
        "a header and one row per mask: {text}"
    );

    // A broken component: reload fails, the previous set stays and keeps serving.
    std::fs::write(plugin_dir.join("geojson.wasm"), b"not a component").unwrap();
    let reload = server
        .client
        .post(server.url("/plugins/reload"))
        .send()
        .unwrap();
    assert_eq!(reload.status().as_u16(), 400);
    let failure: serde_json::Value = reload.json().unwrap();
    let reason = failure["detail"].as_str().unwrap();
    assert!(reason.contains("geojson.wasm"), "{failure}");
    assert_eq!(
        failure["report"]["failed"][0]["file"], "geojson.wasm",
        "{failure}"
    );
    assert_eq!(ask().status().as_u16(), 200);
    let r = server.post_form(
        "/segment/predict",
        Some(("scene.tif", scene.geotiff())),
        &[("point_coords", "[[200, 150]]")],
    );
    assert_eq!(
        r.status().as_u16(),
        200,
        "geojson still served by the old instance"
    );
    let _ = std::fs::remove_dir_all(plugin_dir);
}

#[test]
fn a_misbehaving_plugin_is_stopped_and_the_server_keeps_serving() {
    let plugin_dir = common::temp_dir("plugins-bad");
    copy_dir(&common::plugin_dir(), &plugin_dir);
    copy_dir(&common::plugin_dir().join("testing"), &plugin_dir);
    let dir_value = plugin_dir.to_string_lossy().to_string();
    let server = Server::start_with(
        |c| {
            let p = c["plugins"].as_table_mut().unwrap();
            p.insert("directory".into(), dir_value.into());
            p.insert("call_timeout_ms".into(), toml::Value::Integer(1000));
            p.insert(
                "memory_limit_bytes".into(),
                toml::Value::Integer(64 * 1024 * 1024),
            );
        },
        &[],
    );
    // testing/misbuilt-wit.wasm was built from a WIT copy with `mask.area: u32`: refused at
    // load time, and GET /plugins, POST /plugins/reload and the log name the field.
    let path = "samgeo:plugin/formatter@0.2.0#format: parameter req.masks.masks[].area: expected u64, found u32";
    let listed: serde_json::Value = server.get("/plugins").json().unwrap();
    let misbuilt = listed["failed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["file"] == "misbuilt-wit.wasm")
        .unwrap_or_else(|| panic!("misbuilt-wit.wasm is not listed as failed: {listed}"));
    assert!(
        misbuilt["error"].as_str().unwrap().contains(path),
        "{misbuilt}"
    );
    let reload = server
        .client
        .post(server.url("/plugins/reload"))
        .send()
        .unwrap();
    assert_eq!(reload.status().as_u16(), 400);
    let reload: serde_json::Value = reload.json().unwrap();
    assert!(
        reload["detail"].as_str().unwrap().contains(path),
        "{reload}"
    );
    assert!(server.log().contains(path), "{}", server.log());

    let bytes = Scene::red_square().geotiff();
    for (format, status, words) in [
        ("misbehave-loop", 504, "misbehave-loop"),
        ("misbehave-alloc", 502, "misbehave-alloc"),
        ("misbehave-panic", 502, "misbehave-panic"),
        ("misbehave-garbage", 502, "misbehave-garbage"),
    ] {
        let (got, d) = detail(server.post_form(
            "/segment/predict",
            Some(("scene.tif", bytes.clone())),
            &[("point_coords", "[[200, 150]]"), ("output_format", format)],
        ));
        assert_eq!(got, status, "{format}: {d}");
        assert!(d.contains(words), "{format}: {d}");
        if format == "misbehave-panic" {
            // Generic to the client, detailed in the log.
            assert!(!d.contains("panicked") && !d.contains("deliberate"), "{d}");
            let log = server.log();
            assert!(
                log.contains("deliberate panic in format") && log.contains("plugin trapped"),
                "{log}"
            );
            // The component keeps its names (plugins/Cargo.toml), so the backtrace in the log
            // is symbolised: its frames name the plugin crate's functions.
            let trap = &log[log.find("plugin trapped").unwrap()..];
            assert!(
                trap.contains("samgeo_misbehave_panic") && !trap.contains("(none:"),
                "no symbolised backtrace: {trap}"
            );
        }
        let ok = server.post_form(
            "/segment/predict",
            Some(("scene.tif", bytes.clone())),
            &[("point_coords", "[[200, 150]]")],
        );
        assert_eq!(ok.status().as_u16(), 200, "after {format}");
    }
    assert_eq!(server.get("/health").status().as_u16(), 200);
    let _ = std::fs::remove_dir_all(plugin_dir);
}

#[test]
fn with_reload_a_new_component_is_picked_up_without_a_request() {
    let csv = build_csv_example();
    let plugin_dir = common::temp_dir("plugins-watch");
    copy_dir(&common::plugin_dir(), &plugin_dir);
    let dir_value = plugin_dir.to_string_lossy().to_string();
    let server = Server::start_with(
        |c| {
            c["plugins"]
                .as_table_mut()
                .unwrap()
                .insert("directory".into(), dir_value.into());
        },
        &["--reload"],
    );
    std::fs::copy(&csv, plugin_dir.join("csv.wasm")).unwrap();
    let start = std::time::Instant::now();
    let mut seen = false;
    while start.elapsed() < std::time::Duration::from_secs(30) {
        let listed: serde_json::Value = server.get("/plugins").json().unwrap();
        if listed["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "csv")
        {
            seen = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(
        seen,
        "csv formatter not loaded by --reload:\n{}",
        server.log()
    );
    let _ = std::fs::remove_dir_all(plugin_dir);
}
