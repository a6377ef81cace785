//! Reliability: misbehaving plugins (endless loop, runaway allocation, panic, garbage output)
//! called while four clients run normal predicts: every normal request gets 200, every bad one
//! 504 (time) or 502 (failure) naming the plugin, and the server keeps answering.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::rasters::Scene;
use common::{detail, Server};

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    for e in std::fs::read_dir(from).unwrap().flatten() {
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn misbehaving_plugins_under_load_fail_alone() {
    let plugin_dir = common::temp_dir("plugins-load");
    copy_dir(&common::plugin_dir(), &plugin_dir);
    copy_dir(&common::plugin_dir().join("testing"), &plugin_dir);
    let dir_value = plugin_dir.to_string_lossy().to_string();
    let server = Arc::new(Server::start_with(
        |c| {
            let p = c["plugins"].as_table_mut().unwrap();
            p.insert("directory".into(), dir_value.into());
            p.insert("call_timeout_ms".into(), toml::Value::Integer(1000));
            p.insert(
                "memory_limit_bytes".into(),
                toml::Value::Integer(64 * 1024 * 1024),
            );
            let s = c["server"].as_table_mut().unwrap();
            s.insert("max_concurrent_inferences".into(), toml::Value::Integer(2));
            s.insert("max_queued_requests".into(), toml::Value::Integer(32));
        },
        &["--preload", "sam2:sam2-hiera-large"],
    ));
    let scene = Scene::red_square().geotiff();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|i| {
            let (server, stop, bytes) = (server.clone(), stop.clone(), scene.clone());
            std::thread::spawn(move || {
                let started = Instant::now();
                let mut statuses = Vec::new();
                let formats = ["geojson", "geotiff", "png", "json"];
                while !stop.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(120) {
                    let r = server.post_form(
                        "/segment/predict",
                        Some(("scene.tif", bytes.clone())),
                        &[
                            ("point_coords", "[[200, 150]]"),
                            ("output_format", formats[i % 4]),
                        ],
                    );
                    let status = r.status().as_u16();
                    let body = if status == 200 {
                        String::new()
                    } else {
                        r.text().unwrap_or_default()
                    };
                    statuses.push((status, body));
                }
                statuses
            })
        })
        .collect();

    let mut bad = Vec::new();
    for round in 0..2 {
        for (format, status) in [
            ("misbehave-loop", 504),
            ("misbehave-alloc", 502),
            ("misbehave-panic", 502),
            ("misbehave-garbage", 502),
        ] {
            let t = Instant::now();
            let (got, d) = detail(server.post_form(
                "/segment/predict",
                Some(("scene.tif", scene.clone())),
                &[("point_coords", "[[200, 150]]"), ("output_format", format)],
            ));
            eprintln!("round {round} {format}: {got} in {:?}: {d}", t.elapsed());
            bad.push((format, status, got, d));
        }
    }
    stop.store(true, Ordering::SeqCst);
    let normal: Vec<(u16, String)> = clients
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let ok = normal.iter().filter(|(s, _)| *s == 200).count();
    eprintln!(
        "normal requests alongside: {ok} of {} got 200",
        normal.len()
    );
    for (status, body) in &normal {
        assert_eq!(
            *status, 200,
            "a normal request failed beside the bad plugins: {body}"
        );
    }
    assert!(
        normal.len() >= 8,
        "the clients ran only {} requests",
        normal.len()
    );
    for (format, want, got, d) in &bad {
        assert_eq!(got, want, "{format}: {d}");
        assert!(
            d.contains(format),
            "{format}: the detail does not name the plugin: {d}"
        );
    }
    assert_eq!(server.get("/health").status().as_u16(), 200);
    let _ = std::fs::remove_dir_all(plugin_dir);
}
