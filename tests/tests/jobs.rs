//! Jobs over HTTP (OGC API – Processes): asynchronous execution with progress and the same
//! result as a synchronous run, failures with their message, result-not-ready, dismissal of a
//! running job, an interactive predict answered while a job runs, and a job that survives
//! `kill -9`.
//!
//! `a_tiled_job_shows_progress_and_resumes_from_its_tiles` runs a job over several tiles: progress
//! at values between 0 and 100, and after `kill -9` the tiles finished before are taken from the
//! store (the log's `resumed=` count) rather than computed again. The runner's own tests
//! (host/src/jobs/tests.rs) cover progress, resume and cancellation with a fake N-tile pipeline.

mod common;

use std::time::{Duration, Instant};

use base64::Engine;
use common::rasters::{Rect, Scene, BLUE, GREEN, RED, UTM_GT};
use common::Server;
use serde_json::{json, Value};

fn scene() -> Scene {
    Scene {
        width: 320,
        height: 240,
        background: GREEN,
        rects: vec![
            Rect {
                x0: 40,
                y0: 40,
                x1: 120,
                y1: 120,
                rgb: RED,
            },
            Rect {
                x0: 200,
                y0: 100,
                x1: 260,
                y1: 180,
                rgb: BLUE,
            },
        ],
        geotransform: Some(UTM_GT),
        epsg: Some(32618),
    }
}

fn inline(bytes: &[u8]) -> Value {
    json!({
        "value": base64::engine::general_purpose::STANDARD.encode(bytes),
        "mediaType": "image/tiff",
    })
}

/// An automatic job over `scene` with `points_per_side` (the run's cost grows with its square).
fn automatic_body(points_per_side: u32) -> Value {
    json!({ "inputs": {
        "image": inline(&scene().geotiff()),
        "model_version": "sam2",
        "points_per_side": points_per_side,
        "pred_iou_thresh": 0,
        "stability_score_thresh": 0,
    }})
}

/// A job that runs for a while (seconds to tens of seconds on the demo models).
fn long_job() -> Value {
    automatic_body(20)
}

fn execute(
    server: &Server,
    process: &str,
    body: &Value,
    r#async: bool,
) -> reqwest::blocking::Response {
    let mut request = server
        .client
        .post(server.url(&format!("/processes/{process}/execution")))
        .json(body);
    if r#async {
        request = request.header("Prefer", "respond-async");
    }
    request.send().unwrap()
}

/// Submits asynchronously; checks the 201 answer; returns the job id.
fn submit(server: &Server, process: &str, body: &Value) -> String {
    let r = execute(server, process, body, true);
    assert_eq!(r.status().as_u16(), 201);
    assert_eq!(r.headers()["preference-applied"], "respond-async");
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let info: Value = r.json().unwrap();
    assert_eq!(
        location,
        format!("/jobs/{}", info["jobID"].as_str().unwrap())
    );
    assert_eq!(info["type"], "process");
    assert_eq!(info["processID"], process);
    assert!(["accepted", "running"].contains(&info["status"].as_str().unwrap()));
    info["jobID"].as_str().unwrap().to_string()
}

fn status(server: &Server, id: &str) -> Value {
    let r = server.get(&format!("/jobs/{id}"));
    assert_eq!(r.status().as_u16(), 200);
    r.json().unwrap()
}

/// Polls the job until `done` (a guard of `limit` against hangs); returns the last statusInfo
/// and every progress value seen.
fn wait_for(
    server: &Server,
    id: &str,
    limit: Duration,
    done: impl Fn(&Value) -> bool,
) -> (Value, Vec<u64>) {
    let start = Instant::now();
    let mut seen = Vec::new();
    loop {
        let info = status(server, id);
        let progress = info["progress"].as_u64().unwrap();
        assert!(progress <= 100);
        if seen.last() != Some(&progress) {
            seen.push(progress);
        }
        if done(&info) {
            return (info, seen);
        }
        assert!(
            start.elapsed() < limit,
            "job not done in {limit:?}: {info}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn finished(info: &Value) -> bool {
    ["successful", "failed", "dismissed"].contains(&info["status"].as_str().unwrap())
}

fn results(server: &Server, id: &str) -> (u16, String, Vec<u8>) {
    let r = server.get(&format!("/jobs/{id}/results"));
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, content_type, r.bytes().unwrap().to_vec())
}

fn geojson(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

#[test]
fn async_matches_sync_and_lists() {
    let server = Server::start();
    let body = automatic_body(8);
    let id = submit(&server, "segment-automatic", &body);
    let (info, seen) = wait_for(&server, &id, Duration::from_secs(240), finished);
    assert_eq!(info["status"], "successful", "{info}");
    assert_eq!(info["progress"], 100);
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "progress only grows: {seen:?}"
    );
    for key in ["created", "started", "finished", "updated"] {
        assert!(
            info[key].as_str().is_some_and(|t| t.ends_with('Z')),
            "{key}: {info}"
        );
    }
    let (code, content_type, job_bytes) = results(&server, &id);
    assert_eq!(code, 200);
    assert!(content_type.contains("json"), "{content_type}");
    // The same inputs, synchronously: through the process and through the seed's route.
    let r = execute(&server, "segment-automatic", &body, false);
    assert_eq!(r.status().as_u16(), 200);
    let sync = geojson(&r.bytes().unwrap());
    assert_eq!(geojson(&job_bytes), sync);
    assert!(!sync["features"].as_array().unwrap().is_empty(), "{sync}");
    let form = server.post_form(
        "/segment/automatic",
        Some(("scene.tif", scene().geotiff())),
        &[
            ("model_version", "sam2"),
            ("points_per_side", "8"),
            ("pred_iou_thresh", "0"),
            ("stability_score_thresh", "0"),
        ],
    );
    assert_eq!(form.status().as_u16(), 200);
    assert_eq!(geojson(&form.bytes().unwrap()), sync);
    // Prefer: respond-async on the seed's route: 202 and a job with the same result.
    let mut form = common::Form::new().part(
        "file",
        common::Part::bytes(scene().geotiff()).file_name("scene.tif"),
    );
    for (k, v) in [
        ("model_version", "sam2"),
        ("points_per_side", "8"),
        ("pred_iou_thresh", "0"),
        ("stability_score_thresh", "0"),
    ] {
        form = form.text(k, v);
    }
    let r = server
        .client
        .post(server.url("/segment/automatic"))
        .header("Prefer", "respond-async")
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let second = location.trim_start_matches("/jobs/").to_string();
    let (info, _) = wait_for(&server, &second, Duration::from_secs(240), finished);
    assert_eq!(info["status"], "successful", "{info}");
    assert_eq!(geojson(&results(&server, &second).2), sync);
    // GET /jobs: newest first, one per page with a next link.
    let page: Value = server.get("/jobs?limit=1").json().unwrap();
    assert_eq!(page["jobs"][0]["jobID"], second.as_str());
    let next = page["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["rel"] == "next")
        .expect("next link");
    let page2: Value = server.get(next["href"].as_str().unwrap()).json().unwrap();
    assert_eq!(page2["jobs"][0]["jobID"], id.as_str());
    assert_eq!(server.get("/jobs?limit=x").status().as_u16(), 400);
}

#[test]
fn failures_and_unfinished_results() {
    let server = Server::start();
    // Accepted (the fields are fine), then the raster does not open: failed, with the reason.
    let body =
        json!({ "inputs": { "image": inline(b"not a raster at all"), "model_version": "sam2" } });
    let id = submit(&server, "segment-automatic", &body);
    let (info, _) = wait_for(&server, &id, Duration::from_secs(120), finished);
    assert_eq!(info["status"], "failed", "{info}");
    let message = info["message"].as_str().unwrap();
    assert!(!message.is_empty() && message != "failed", "{info}");
    let (code, _, bytes) = results(&server, &id);
    assert_eq!(code, 404);
    let e: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        e["type"],
        "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/result-not-ready"
    );
    assert!(e["detail"].as_str().unwrap().contains("failed"), "{e}");
    // Results of a job still running: 404 result-not-ready.
    let id = submit(&server, "segment-automatic", &long_job());
    wait_for(&server, &id, Duration::from_secs(120), |i| {
        i["status"] == "running"
    });
    let (code, _, bytes) = results(&server, &id);
    assert_eq!(code, 404);
    let e: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        e["type"],
        "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/result-not-ready"
    );
    assert!(e["detail"].as_str().unwrap().contains("running"), "{e}");
    server.delete(&format!("/jobs/{id}"));
    // Bad inputs are refused before a job exists.
    let bad = json!({ "inputs": { "image": inline(b"x"), "points_per_side": -1 } });
    let r = execute(&server, "segment-automatic", &bad, true);
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.json::<Value>().unwrap()["detail"]
        .as_str()
        .unwrap()
        .contains("points_per_side"));
    let r = execute(
        &server,
        "segment-text",
        &json!({ "inputs": { "image": inline(b"x") } }),
        true,
    );
    assert_eq!(
        common::detail(r),
        (422, "Field required: prompt".to_string())
    );
    let r = execute(&server, "nope", &json!({ "inputs": {} }), true);
    assert_eq!(r.status().as_u16(), 404);
    let e: Value = r.json().unwrap();
    assert_eq!(
        e["type"],
        "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/no-such-process"
    );
    let r = server.get("/jobs/unknown");
    assert_eq!(r.status().as_u16(), 404);
    assert!(r.json::<Value>().unwrap()["detail"]
        .as_str()
        .unwrap()
        .contains("unknown"));
}

/// A predict issued while a long job runs is answered while the job still runs (a slot is kept
/// for interactive requests); then DELETE dismisses the running job.
#[test]
fn interactive_predict_while_a_job_runs_then_dismiss() {
    let server = Server::start();
    let id = submit(&server, "segment-automatic", &long_job());
    wait_for(&server, &id, Duration::from_secs(120), |i| {
        i["status"] == "running"
    });
    let asked = Instant::now();
    let r = server.post_form(
        "/segment/predict",
        Some(("scene.tif", scene().geotiff())),
        &[("model_version", "sam2"), ("point_coords", "[[80, 80]]")],
    );
    let latency = asked.elapsed();
    assert_eq!(r.status().as_u16(), 200);
    let timing = r.headers().get("server-timing").cloned();
    let during = status(&server, &id);
    eprintln!(
        "interactive predict while a job runs: {latency:?} (job {}; {timing:?})",
        during["status"]
    );
    assert_eq!(
        during["status"], "running",
        "the predict did not wait for the job"
    );
    // Dismiss it.
    let r = server.delete(&format!("/jobs/{id}"));
    assert_eq!(r.status().as_u16(), 200);
    let info: Value = r.json().unwrap();
    assert_eq!(info["status"], "dismissed");
    assert_eq!(status(&server, &id)["status"], "dismissed");
    assert_eq!(results(&server, &id).0, 404);
    assert!(
        !server.work.join("cache/jobs").join(&id).exists(),
        "its files are deleted"
    );
    // The runner lets go of it (with 1-tile runs: when the run ends) and it stays dismissed.
    let start = Instant::now();
    while !server.log().contains("job dismissed while running") {
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(status(&server, &id)["status"], "dismissed");
    assert_eq!(results(&server, &id).0, 404);
    assert_eq!(server.delete("/jobs/unknown").status().as_u16(), 404);
    // For the report: the same click on an idle server (another raster: no cached embedding).
    let mut idle_scene = scene();
    idle_scene.rects[0].x0 += 4;
    let asked = Instant::now();
    let r = server.post_form(
        "/segment/predict",
        Some(("scene.tif", idle_scene.geotiff())),
        &[("model_version", "sam2"), ("point_coords", "[[80, 80]]")],
    );
    let latency = asked.elapsed();
    assert_eq!(r.status().as_u16(), 200);
    let timing = r.headers().get("server-timing").cloned();
    eprintln!("the same predict on an idle server: {latency:?} ({timing:?})");
}

/// `kill -9` while a job runs; the restarted server resumes it, and it succeeds with the
/// result a synchronous run gives.
#[test]
fn survives_kill_9() {
    let mut server = Server::start();
    let t0 = Instant::now();
    let body = long_job();
    let id = submit(&server, "segment-automatic", &body);
    let (running, _) = wait_for(&server, &id, Duration::from_secs(120), |i| {
        i["status"] == "running"
    });
    let t_running = t0.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    let at_kill = status(&server, &id);
    let t_kill = t0.elapsed();
    server.kill_and_restart();
    let t_ready = t0.elapsed();
    let after = status(&server, &id);
    assert!(
        ["accepted", "running"].contains(&after["status"].as_str().unwrap()),
        "{after}"
    );
    assert_eq!(
        after["started"], running["started"],
        "the first start is kept"
    );
    let (done, _) = wait_for(&server, &id, Duration::from_secs(300), finished);
    let t_done = t0.elapsed();
    assert_eq!(done["status"], "successful", "{done}\n{}", server.log());
    assert!(server.log().contains("resuming job"), "{}", server.log());
    let (code, _, bytes) = results(&server, &id);
    assert_eq!(code, 200);
    let r = execute(&server, "segment-automatic", &body, false);
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(geojson(&bytes), geojson(&r.bytes().unwrap()));
    eprintln!(
        "resume timeline: running at {t_running:?}, killed at {t_kill:?} (progress {}), restarted and answering at {t_ready:?}, successful at {t_done:?}",
        at_kill["progress"]
    );
}

#[test]
fn processes_are_described_and_documented() {
    let server = Server::start();
    let list: Value = server.get("/processes").json().unwrap();
    let ids: Vec<&str> = list["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["segment-automatic", "segment-text", "segment-predict"]
    );
    let text: Value = server.get("/processes/segment-text").json().unwrap();
    assert_eq!(
        text["jobControlOptions"],
        json!(["sync-execute", "async-execute", "dismiss"])
    );
    assert_eq!(text["inputs"]["prompt"]["minOccurs"], 1);
    assert!(text["inputs"]["image"]["schema"]["contentEncoding"] == "base64");
    assert!(text["outputs"]["result"].is_object());
    let predict: Value = server.get("/processes/segment-predict").json().unwrap();
    assert!(predict["inputs"]["point_coords"]["description"]
        .as_str()
        .is_some());
    assert_eq!(server.get("/processes/nope").status().as_u16(), 404);
    let doc: Value = server.get("/openapi.json").json().unwrap();
    for path in [
        "/processes",
        "/processes/{processID}",
        "/processes/{processID}/execution",
        "/jobs",
        "/jobs/{jobID}",
        "/jobs/{jobID}/results",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} in /openapi.json");
    }
    assert!(doc["paths"]["/jobs/{jobID}"]["delete"].is_object());
}

/// A tiled automatic job: `tiling=on` in tiles of 256 px.
fn tiled_body() -> Value {
    json!({ "inputs": {
        "image": inline(&Scene::six_objects_1024x640().geotiff()),
        "model_version": "sam2",
        "points_per_side": 6,
        "pred_iou_thresh": 0,
        "stability_score_thresh": 0,
        "tiling": "on",
        "tile_size": 256,
        "tile_overlap": 32,
    }})
}

/// A tiled job shows progress between 0 and 100, and after `kill -9` resumes from the tiles
/// it had finished (never going back) to the synchronous run's result.
#[test]
fn a_tiled_job_shows_progress_and_resumes_from_its_tiles() {
    let mut server = Server::start();
    let body = tiled_body();
    let id = submit(&server, "segment-automatic", &body);
    // Kill once at least two tiles are done, before the end.
    let (at_kill, seen) = wait_for(&server, &id, Duration::from_secs(300), |i| {
        finished(i) || i["progress"].as_u64().unwrap() >= 20
    });
    assert_eq!(at_kill["status"], "running", "{at_kill}\n{}", server.log());
    let before = at_kill["progress"].as_u64().unwrap();
    assert!(before > 0 && before < 100, "{seen:?}");
    server.kill_and_restart();
    let (done, seen_after) = wait_for(&server, &id, Duration::from_secs(300), finished);
    assert_eq!(done["status"], "successful", "{done}\n{}", server.log());
    assert!(
        seen_after.iter().all(|&p| p >= before),
        "progress went back after the restart: {before} then {seen_after:?}"
    );
    let middle: std::collections::BTreeSet<u64> = seen
        .iter()
        .chain(&seen_after)
        .copied()
        .filter(|&p| p > 0 && p < 100)
        .collect();
    assert!(
        middle.len() >= 2,
        "progress values seen: {seen:?} {seen_after:?}"
    );
    let log = server.log();
    let resumed = log
        .lines()
        .filter(|l| l.contains("tiles done"))
        .filter_map(|l| l.split("resumed=").nth(1))
        .filter_map(|r| {
            r.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse::<u32>()
                .ok()
        })
        .max()
        .unwrap_or(0);
    assert!(
        resumed >= 1,
        "no tile was taken from the first attempt:\n{log}"
    );
    eprintln!(
        "tiled resume: progress before the kill {seen:?}, after the restart {seen_after:?}, {resumed} tile(s) taken from the store"
    );
    let (code, _, bytes) = results(&server, &id);
    assert_eq!(code, 200);
    let r = execute(&server, "segment-automatic", &body, false);
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(geojson(&bytes), geojson(&r.bytes().unwrap()));
}

/// A job running past `[jobs] job_timeout_secs` fails with a message naming the limit, and
/// the server goes on to the next job.
#[test]
fn a_job_past_its_time_limit_fails_naming_the_limit() {
    let server = Server::start_with(
        |c| {
            let mut jobs = toml::Table::new();
            jobs.insert("job_timeout_secs".into(), toml::Value::Integer(1));
            c.insert("jobs".into(), jobs.into());
        },
        &[],
    );
    // Long enough to pass one second on any machine: a fine grid over many tiles.
    let mut body = tiled_body();
    body["inputs"]["points_per_side"] = json!(24);
    let id = submit(&server, "segment-automatic", &body);
    let started = Instant::now();
    let (done, _) = wait_for(&server, &id, Duration::from_secs(120), finished);
    let took = started.elapsed();
    assert_eq!(done["status"], "failed", "{done}");
    let message = done["message"].as_str().unwrap();
    assert!(message.contains("jobs.job_timeout_secs"), "{message}");
    eprintln!("a 1 s job limit: failed after {took:?}: {message}");
    // The slot was given back: a short job after it succeeds.
    let short = submit(
        &server,
        "segment-predict",
        &json!({ "inputs": {
            "image": inline(&scene().geotiff()),
            "model_version": "sam",
            "point_coords": [[100, 100]],
        }}),
    );
    let (done, _) = wait_for(&server, &short, Duration::from_secs(120), finished);
    assert_eq!(done["status"], "successful", "{done}\n{}", server.log());
}
