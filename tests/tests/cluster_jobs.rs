//! Jobs on a cluster: three replicas sharing one Redis (a throwaway `redis-server`) and one
//! shared directory. A tiled job submitted to one replica is visible on the others, its tiles
//! are computed by all three (the tile stream), and its result equals a plain single server's;
//! with one worker replica killed mid-job the job still finishes with that result (the killed
//! replica's claimed tile is taken over once idle); with the coordinator killed mid-job another
//! replica takes the job over from its stored tiles; with Redis stopped the job endpoints answer
//! 503 while segment requests still work.
//!
//! `measure_tile_throughput` (ignored) runs the same job on 1, 2 and 3 replicas and prints
//! tiles per second.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use common::cluster::RedisServer;
use common::rasters::Scene;
use common::Server;
use serde_json::{json, Value};

/// How long a silent replica keeps a tile (and a job) in these tests.
const CLAIM_IDLE_MS: i64 = 2000;

/// The tiled automatic job, its raster inline.
fn tiled_body() -> Value {
    json!({ "inputs": {
        "image": {
            "value": base64::engine::general_purpose::STANDARD.encode(Scene::six_objects_1024x640().geotiff()),
            "mediaType": "image/tiff",
        },
        "model_version": "sam2",
        "points_per_side": 6,
        "pred_iou_thresh": 0,
        "stability_score_thresh": 0,
        "tiling": "on",
        "tile_size": 256,
        "tile_overlap": 32,
    }})
}

/// A replica named `node` of the cluster on `redis`, sharing `shared`.
fn replica(redis: &RedisServer, shared: &Path, node: &str) -> Server {
    let (url, shared) = (redis.url(), shared.display().to_string());
    Server::start_with(
        |c| {
            let mut cluster = toml::Table::new();
            cluster.insert("redis_url".into(), url.into());
            cluster.insert("node_id".into(), node.into());
            cluster.insert("shared_dir".into(), shared.into());
            cluster.insert("tile_fanout".into(), true.into());
            cluster.insert("tile_claim_idle_ms".into(), CLAIM_IDLE_MS.into());
            cluster.insert("redis_retry_secs".into(), 1.into());
            c.insert("cluster".into(), cluster.into());
        },
        &[],
    )
}

fn cluster(redis: &RedisServer, shared: &Path, nodes: &[&str]) -> Vec<Server> {
    nodes.iter().map(|n| replica(redis, shared, n)).collect()
}

/// Submits the job asynchronously to `server`; its id.
fn submit(server: &Server, body: &Value) -> String {
    let r = server
        .client
        .post(server.url("/processes/segment-automatic/execution"))
        .header("Prefer", "respond-async")
        .json(body)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    r.json::<Value>().unwrap()["jobID"]
        .as_str()
        .unwrap()
        .to_string()
}

fn status(server: &Server, id: &str) -> Value {
    let r = server.get(&format!("/jobs/{id}"));
    assert_eq!(
        r.status().as_u16(),
        200,
        "GET /jobs/{id} on {}",
        server.base
    );
    r.json().unwrap()
}

fn finished(info: &Value) -> bool {
    ["successful", "failed", "dismissed"].contains(&info["status"].as_str().unwrap())
}

/// Polls job `id` on `server` until it is finished (a guard against hangs).
fn wait_finished(server: &Server, id: &str, logs: &[&Server]) -> Value {
    let start = Instant::now();
    loop {
        let info = status(server, id);
        if finished(&info) {
            return info;
        }
        if start.elapsed() > Duration::from_secs(300) {
            let all: Vec<String> = logs.iter().map(|s| s.log()).collect();
            panic!("job not done: {info}\n{}", all.join("\n-----\n"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn results(server: &Server, id: &str) -> Value {
    let r = server.get(&format!("/jobs/{id}/results"));
    assert_eq!(r.status().as_u16(), 200);
    serde_json::from_slice(&r.bytes().unwrap()).unwrap()
}

/// `samgeo_cluster_tiles_total` of `server`.
fn tiles_computed(server: &Server) -> u64 {
    let text = server.get("/metrics").text().unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("samgeo_cluster_tiles_total "))
        .map(|v| v.trim().parse::<f64>().unwrap() as u64)
        .unwrap_or(0)
}

/// The single-node result: the same job's inputs, synchronously, on a plain server.
fn single_node_result(body: &Value) -> Value {
    let single = Server::start();
    let r = single
        .client
        .post(single.url("/processes/segment-automatic/execution"))
        .json(body)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    serde_json::from_slice(&r.bytes().unwrap()).unwrap()
}

/// Log lines of `server` that mention job `id` and `what`.
fn log_lines(server: &Server, id: &str, what: &str) -> Vec<String> {
    server
        .log()
        .lines()
        .filter(|l| l.contains(id) && l.contains(what))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_tiled_job_spreads_over_replicas_and_survives_killed_replicas() {
    let test = "a_tiled_job_spreads_over_replicas_and_survives_killed_replicas";
    let Some(mut redis) = RedisServer::start(test) else {
        return;
    };
    let t0 = Instant::now();
    let body = tiled_body();
    let reference = single_node_result(&body);
    assert!(
        reference["features"].as_array().unwrap().len() >= 3,
        "{reference}"
    );
    let shared = common::temp_dir("shared");
    let mut replicas = cluster(&redis, &shared, &["a", "b", "c"]);
    eprintln!("[{:?}] reference computed, three replicas up", t0.elapsed());

    // 1. Submitted to A, visible on B and C, computed by all three.
    let id = submit(&replicas[0], &body);
    for other in &replicas[1..] {
        let info = status(other, &id);
        assert_eq!(info["jobID"], id.as_str());
        assert_eq!(info["processID"], "segment-automatic");
    }
    let logs: Vec<&Server> = replicas.iter().collect();
    let done = wait_finished(&replicas[1], &id, &logs);
    assert_eq!(done["status"], "successful", "{done}");
    assert_eq!(
        results(&replicas[2], &id),
        reference,
        "equals the single node"
    );
    let counts: Vec<u64> = replicas.iter().map(tiles_computed).collect();
    eprintln!(
        "[{:?}] first job successful; tiles computed by a, b, c: {counts:?}",
        t0.elapsed()
    );
    assert!(
        counts.iter().all(|&n| n >= 1),
        "every replica computes tiles: {counts:?}"
    );
    assert!(
        counts.iter().sum::<u64>() >= 15,
        "all 15 tiles computed: {counts:?}"
    );
    assert_eq!(
        log_lines(&replicas[0], &id, "job running").len(),
        1,
        "A coordinates"
    );

    // 2. The same job again; C is killed while it computes a tile.
    let id = submit(&replicas[0], &body);
    let start = Instant::now();
    let started_tile = loop {
        if let Some(line) = log_lines(&replicas[2], &id, "computing a tile for the cluster")
            .into_iter()
            .next()
        {
            break line;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "C never got a tile of the second job:\n{}",
            replicas[2].log()
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    replicas[2].kill();
    let killed_at = t0.elapsed();
    let tile_of = |line: &str| {
        line.split("tile=")
            .nth(1)
            .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
            .map(str::to_string)
    };
    let killed_tile = tile_of(&started_tile).expect("tile index in the log line");
    let finished_by_c = log_lines(&replicas[2], &id, "tile computed for the cluster")
        .iter()
        .any(|l| tile_of(l).as_deref() == Some(killed_tile.as_str()));
    let logs: Vec<&Server> = replicas[..2].iter().collect();
    let done = wait_finished(&replicas[0], &id, &logs);
    assert_eq!(done["status"], "successful", "{done}");
    assert_eq!(
        results(&replicas[1], &id),
        reference,
        "equals the single node"
    );
    let taken_over: Vec<String> = replicas[..2]
        .iter()
        .flat_map(|r| log_lines(r, &id, "took over an idle tile"))
        .collect();
    if finished_by_c {
        eprintln!("C finished tile {killed_tile} just before it was killed: nothing to take over");
    } else {
        assert!(
            taken_over
                .iter()
                .any(|l| tile_of(l).as_deref() == Some(killed_tile.as_str())),
            "tile {killed_tile}, claimed by the killed replica, was taken over: {taken_over:?}"
        );
    }
    eprintln!(
        "[{:?}] second job successful (C killed at {killed_at:?} during tile {killed_tile}; taken over: {})",
        t0.elapsed(),
        taken_over.len()
    );

    // 3. The coordinator killed mid-job: once its lease expires, B takes the job over, keeps
    //    the tiles already stored and finishes it alone.
    let id = submit(&replicas[0], &body);
    let start = Instant::now();
    let at_kill = loop {
        let info = status(&replicas[1], &id);
        if info["progress"].as_u64().unwrap() >= 20 || finished(&info) {
            break info;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "{info}");
        std::thread::sleep(Duration::from_millis(20));
    };
    replicas[0].kill();
    let killed_at = t0.elapsed();
    assert_eq!(at_kill["status"], "running", "{at_kill}");
    let logs: Vec<&Server> = replicas[1..2].iter().collect();
    let done = wait_finished(&replicas[1], &id, &logs);
    assert_eq!(done["status"], "successful", "{done}");
    assert_eq!(
        done["started"], at_kill["started"],
        "the first start is kept"
    );
    assert_eq!(
        results(&replicas[1], &id),
        reference,
        "equals the single node"
    );
    assert_eq!(
        log_lines(&replicas[1], &id, "taking over job").len(),
        1,
        "{}",
        replicas[1].log()
    );
    eprintln!(
        "[{:?}] third job successful (coordinator A killed at {killed_at:?} at progress {}; B took it over)",
        t0.elapsed(),
        at_kill["progress"]
    );

    // 4. Redis stopped: the job endpoints answer 503 with a detail; segment requests work.
    redis.stop();
    let r = replicas[1].get(&format!("/jobs/{id}"));
    let (code, detail) = common::detail(r);
    assert_eq!(code, 503, "{detail}");
    assert!(detail.contains("Redis"), "{detail}");
    let r = replicas[1]
        .client
        .post(replicas[1].url("/processes/segment-automatic/execution"))
        .header("Prefer", "respond-async")
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    let r = replicas[1].post_form(
        "/segment/predict",
        Some(("scene.tif", Scene::six_objects_1024x640().geotiff())),
        &[("model_version", "sam2"), ("point_coords", "[[90, 90]]")],
    );
    assert_eq!(
        r.status().as_u16(),
        200,
        "segment requests do not need Redis"
    );
    eprintln!("[{:?}] Redis down: jobs 503, predict 200", t0.elapsed());
}

/// Tiles per second of the same tiled job on 1, 2 and 3 replicas (fresh Redis each time). On a
/// machine with few cores this shows correctness rather than speed-up.
#[test]
#[ignore]
fn measure_tile_throughput() {
    let Some(mut redis) = RedisServer::start("measure_tile_throughput") else {
        return;
    };
    let body = tiled_body();
    let reference = single_node_result(&body);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    eprintln!("load average before: {}", load.trim());
    for n in 1..=3 {
        redis.restart();
        let shared = common::temp_dir("shared");
        let nodes = ["a", "b", "c"];
        let replicas = cluster(&redis, &shared, &nodes[..n]);
        let started = Instant::now();
        let id = submit(&replicas[0], &body);
        let logs: Vec<&Server> = replicas.iter().collect();
        let done = wait_finished(&replicas[0], &id, &logs);
        let elapsed = started.elapsed().as_secs_f64();
        assert_eq!(done["status"], "successful");
        assert_eq!(results(&replicas[0], &id), reference);
        let counts: Vec<u64> = replicas.iter().map(tiles_computed).collect();
        let tiles: u64 = counts.iter().sum();
        eprintln!(
            "{n} replica(s): {tiles} tiles in {elapsed:.1} s = {:.2} tiles/s (per replica {counts:?})",
            tiles as f64 / elapsed
        );
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    eprintln!("load average after: {}", load.trim());
}
