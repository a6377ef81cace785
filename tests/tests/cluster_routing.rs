//! Cluster routing and deployment: replicas sharing `cluster.shared_dir` see each other's
//! images; three replicas with a real `redis-server` behind nginx running `deploy/nginx.conf`
//! (requests naming an image stick to one replica, uploads go round robin, `X-Samgeo-Node`
//! says who answered); with Redis stopped every replica keeps answering.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use common::cluster::RedisServer;
use common::nginx::Nginx;
use common::rasters::{Rect, Scene, BLUE, RED, YELLOW};
use common::{temp_dir, Form, Part, Server};
use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::Value;

/// Prints each phase of a test with the milliseconds since its start (for the report).
struct Timeline {
    started: Instant,
    test: &'static str,
}

impl Timeline {
    fn new(test: &'static str) -> Timeline {
        println!("[timeline {test}] +0 ms start");
        Timeline {
            started: Instant::now(),
            test,
        }
    }

    fn mark(&self, what: &str) {
        println!(
            "[timeline {}] +{} ms {what}",
            self.test,
            self.started.elapsed().as_millis()
        );
    }
}

/// A replica's config: the shared directory, and the cluster's Redis when given.
fn replica(
    shared: &Path,
    redis_url: Option<&str>,
    node_id: Option<&str>,
) -> impl FnOnce(&mut toml::Table) {
    let mut cluster = toml::Table::new();
    cluster.insert("shared_dir".into(), shared.display().to_string().into());
    if let Some(url) = redis_url {
        cluster.insert("redis_url".into(), url.into());
        cluster.insert("redis_retry_secs".into(), 1.into());
    }
    if let Some(id) = node_id {
        cluster.insert("node_id".into(), id.into());
    }
    move |c: &mut toml::Table| {
        c.insert("cluster".into(), cluster.into());
    }
}

/// The replica named in `X-Samgeo-Node` (empty when absent).
fn node(response: &Response) -> String {
    response
        .headers()
        .get("x-samgeo-node")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// The status, the replica and the JSON body.
fn answer(response: Response) -> (u16, String, Value) {
    let status = response.status().as_u16();
    let node = node(&response);
    let text = response.text().unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, node, body)
}

/// A 400×300 scene with one square, different for each `n` (so a different image id).
fn scene(n: usize) -> Scene {
    let colours = [RED, BLUE, YELLOW];
    Scene {
        rects: vec![Rect {
            x0: 120 + 10 * n,
            y0: 90 + 5 * n,
            x1: 220 + 10 * n,
            y1: 190 + 5 * n,
            rgb: colours[n % colours.len()],
        }],
        ..Scene::red_square()
    }
}

fn upload_form(n: usize) -> Form {
    Form::new().part(
        "file",
        Part::bytes(scene(n).geotiff()).file_name(format!("scene-{n}.tif")),
    )
}

/// A point prompt inside scene `n`'s square on stored image `id`.
fn predict_form(id: &str, n: usize) -> Form {
    let r = scene(n).rects[0];
    Form::new()
        .text("image_id", id.to_string())
        .text("model_version", "sam")
        .text(
            "point_coords",
            format!("[[{}, {}]]", (r.x0 + r.x1) / 2, (r.y0 + r.y1) / 2),
        )
}

fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

/// Sends and checks that a replica answered with `status`; the replica's name.
fn expect(request: RequestBuilder, status: u16, what: &str) -> (String, Value) {
    let (got, node, body) = answer(request.send().unwrap());
    assert_eq!(got, status, "{what}: {body}");
    (node, body)
}

#[test]
fn an_image_stored_on_one_replica_is_usable_on_another_and_deleted_everywhere() {
    let timeline = Timeline::new("shared_images");
    let shared = temp_dir("shared");
    let a = Server::start_with(replica(&shared, None, None), &[]);
    let b = Server::start_with(replica(&shared, None, None), &[]);
    timeline.mark("two replicas sharing a shared_dir ready");
    let http = client();

    let (status, node_a, image) = answer(
        http.post(a.url("/images"))
            .multipart(upload_form(0))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 201, "{image}");
    assert_eq!(node_a, "", "no X-Samgeo-Node without a cluster (redis_url)");
    let id = image["image_id"].as_str().unwrap().to_string();
    assert!(shared.join("images").join(format!("{id}.json")).is_file());

    // B never saw the upload: it finds the image in the shared directory.
    let (_, described) = expect(http.get(b.url(&format!("/images/{id}"))), 200, "GET on B");
    assert_eq!(described, image);
    expect(
        http.post(b.url("/segment/predict"))
            .multipart(predict_form(&id, 0)),
        200,
        "predict on B",
    );
    expect(
        http.get(b.url(&format!("/images/{id}/preview.png"))),
        200,
        "preview on B",
    );
    // The same bytes uploaded on B: already stored (200, not 201).
    expect(
        http.post(b.url("/images")).multipart(upload_form(0)),
        200,
        "the same upload on B",
    );
    timeline.mark("stored on A, described, segmented and previewed on B");

    // Deleted on B: gone on A too, although A indexed it.
    expect(
        http.delete(b.url(&format!("/images/{id}"))),
        204,
        "DELETE on B",
    );
    expect(http.get(a.url(&format!("/images/{id}"))), 404, "GET on A");
    expect(
        http.post(a.url("/segment/predict"))
            .multipart(predict_form(&id, 0)),
        404,
        "predict on A",
    );
    expect(
        http.delete(a.url(&format!("/images/{id}"))),
        404,
        "DELETE again on A",
    );
    let left: Vec<_> = std::fs::read_dir(shared.join("images"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "files left in the store: {left:?}");
    timeline.mark("deleted on B, 404 on A");
    drop((a, b));
    let _ = std::fs::remove_dir_all(&shared);
}

#[test]
fn nginx_routes_by_image_round_robins_uploads_and_replicas_answer_without_redis() {
    const TEST: &str = "cluster_routing";
    let timeline = Timeline::new("cluster_routing");
    let Some(mut redis) = RedisServer::start(TEST) else {
        return;
    };
    timeline.mark("redis-server ready");
    let shared = temp_dir("shared");
    let url = redis.url();
    let names = [Some("replica-a"), Some("replica-b"), None];
    // Started side by side: each waits for its own /health.
    let replicas: Vec<Server> = std::thread::scope(|s| {
        let handles: Vec<_> = names
            .iter()
            .map(|name| {
                let (shared, url) = (&shared, &url);
                s.spawn(move || Server::start_with(replica(shared, Some(url.as_str()), *name), &[]))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    timeline.mark("three replicas ready");
    let http = client();

    // Each replica names itself: its node_id, or by default host name and process id.
    let mut nodes = Vec::new();
    for (server, name) in replicas.iter().zip(names) {
        let (node, _) = expect(http.get(server.url("/health")), 200, "health");
        match name {
            Some(name) => assert_eq!(node, name),
            None => assert!(
                node.ends_with(&format!("-{}", server.pid())),
                "default node id {node:?} should end with the process id {}",
                server.pid()
            ),
        }
        nodes.push(node);
    }
    let all_nodes: BTreeSet<String> = nodes.iter().cloned().collect();
    assert_eq!(all_nodes.len(), 3, "{nodes:?}");

    let ports: Vec<u16> = replicas
        .iter()
        .map(|s| s.base.rsplit(':').next().unwrap().parse().unwrap())
        .collect();
    let Some(nginx) = Nginx::start(TEST, &ports) else {
        return;
    };
    timeline.mark("nginx ready (deploy/nginx.conf)");

    // Uploads go round robin: six in a row, two per replica.
    let mut ids = Vec::new();
    let mut upload_nodes: BTreeMap<String, usize> = BTreeMap::new();
    for n in 0..6 {
        let (node, image) = expect(
            http.post(nginx.url("/images")).multipart(upload_form(n)),
            201,
            "upload through nginx",
        );
        *upload_nodes.entry(node).or_default() += 1;
        ids.push(image["image_id"].as_str().unwrap().to_string());
    }
    println!("uploads through nginx per replica: {upload_nodes:?}");
    assert_eq!(
        upload_nodes.keys().cloned().collect::<BTreeSet<_>>(),
        all_nodes,
        "uploads reach every replica: {upload_nodes:?}"
    );
    assert!(
        upload_nodes.values().all(|&n| n == 2),
        "round robin: {upload_nodes:?}"
    );
    timeline.mark("6 uploads through nginx, round robin");

    // An image uploaded through nginx is usable by id on every replica directly.
    for server in &replicas {
        for id in &ids {
            expect(
                http.get(server.url(&format!("/images/{id}"))),
                200,
                "GET on a replica",
            );
        }
        expect(
            http.post(server.url("/segment/predict"))
                .multipart(predict_form(&ids[0], 0)),
            200,
            "predict on a replica",
        );
    }
    timeline.mark("every image described on every replica, predict on each");

    // Affinity: every request naming one image (path, ?image_id=, X-Image-Id) reaches the
    // same replica.
    for (n, id) in ids.iter().enumerate() {
        let mut seen = BTreeSet::new();
        for _ in 0..2 {
            seen.insert(expect(http.get(nginx.url(&format!("/images/{id}"))), 200, "GET").0);
            seen.insert(
                expect(
                    http.get(nginx.url(&format!("/images/{id}/preview.png"))),
                    200,
                    "preview",
                )
                .0,
            );
            seen.insert(
                expect(
                    http.post(nginx.url("/segment/predict"))
                        .header("X-Image-Id", id.as_str())
                        .multipart(predict_form(id, n)),
                    200,
                    "predict with X-Image-Id",
                )
                .0,
            );
            seen.insert(
                expect(
                    http.post(nginx.url(&format!("/segment/predict?image_id={id}")))
                        .multipart(predict_form(id, n)),
                    200,
                    "predict with ?image_id=",
                )
                .0,
            );
        }
        assert_eq!(seen.len(), 1, "image {id} reached {seen:?}");
    }
    // Different keys spread: 32 ids, each asked twice, land on more than one replica.
    let mut spread = BTreeMap::new();
    for k in 0..32 {
        let key = format!("{k:064x}");
        let first = expect(
            http.get(nginx.url("/health")).header("X-Image-Id", &key),
            200,
            "health with a key",
        )
        .0;
        let again = expect(
            http.get(nginx.url(&format!("/health?image_id={key}"))),
            200,
            "health with a key",
        )
        .0;
        assert_eq!(first, again, "key {key}");
        *spread.entry(first).or_insert(0) += 1;
    }
    println!("32 affinity keys per replica: {spread:?}");
    assert!(spread.len() > 1, "every key on one replica: {spread:?}");
    // Requests without a key go round robin.
    let plain: BTreeSet<String> = (0..6)
        .map(|_| expect(http.get(nginx.url("/health")), 200, "health").0)
        .collect();
    assert_eq!(
        plain, all_nodes,
        "requests without a key reach every replica"
    );
    timeline.mark("affinity by path, query and header; keys spread; no key round robin");

    // Redis stopped: every replica keeps answering, directly and through nginx, on an image
    // none of them has an embedding of yet.
    redis.stop();
    timeline.mark("redis-server stopped");
    let (_, image) = expect(
        http.post(nginx.url("/images")).multipart(upload_form(6)),
        201,
        "upload with Redis down",
    );
    let id = image["image_id"].as_str().unwrap().to_string();
    for server in &replicas {
        expect(
            http.post(server.url("/segment/predict"))
                .multipart(predict_form(&id, 6)),
            200,
            "predict on a replica with Redis down",
        );
    }
    let mut answered = BTreeSet::new();
    for _ in 0..3 {
        answered.insert(
            expect(
                http.post(nginx.url("/segment/predict"))
                    .header("X-Image-Id", id.as_str())
                    .multipart(predict_form(&id, 6)),
                200,
                "predict through nginx with Redis down",
            )
            .0,
        );
        // Without a key: round robin over all three.
        answered.insert(
            expect(
                http.post(nginx.url("/segment/predict"))
                    .multipart(predict_form(&id, 6)),
                200,
                "predict through nginx (no key) with Redis down",
            )
            .0,
        );
    }
    assert_eq!(answered, all_nodes, "with Redis down");
    timeline.mark("redis down: predict 200 on every replica, directly and through nginx");
    drop(nginx);
    drop(replicas);
    let _ = std::fs::remove_dir_all(&shared);
    timeline.mark("stopped");
}
