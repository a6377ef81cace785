//! The cluster's shared embedding tier, black-box: two replicas on one `redis-server`. An image
//! encoded on A is a `shared` hit on B (same masks), two replicas asked for a new image at the
//! same moment encode it once, and with Redis stopped both keep answering from their own
//! caches until Redis is back.

mod common;

use std::path::Path;
use std::time::Duration;

use common::cluster::RedisServer;
use common::rasters::{feature_polygons, iou, Rect, Scene, GREEN, RED, UTM_GT};
use common::Server;

const TEST: &str = "cluster shared embeddings";

/// A replica named `node` on `redis`, retrying Redis 1 s after a failure.
fn replica(redis: &RedisServer, shared: &Path, node: &str) -> Server {
    Server::start_with(
        |c| {
            let mut cluster = toml::Table::new();
            cluster.insert("redis_url".into(), redis.url().into());
            cluster.insert("node_id".into(), node.into());
            cluster.insert(
                "shared_dir".into(),
                shared.to_string_lossy().to_string().into(),
            );
            cluster.insert("redis_retry_secs".into(), 1.into());
            c.insert("cluster".into(), cluster.into());
        },
        &[],
    )
}

/// A red square on green, moved by `n` pixels: a different image (and SHA-256) for each `n`.
fn image(n: usize) -> Vec<u8> {
    Scene {
        width: 400,
        height: 300,
        background: GREEN,
        rects: vec![Rect {
            x0: 120 + n,
            y0: 90,
            x1: 230 + n,
            y1: 200,
            rgb: RED,
        }],
        geotransform: Some(UTM_GT),
        epsg: Some(32618),
    }
    .geotiff()
}

/// A click in the square of `image(n)`: the `X-Samgeo-Cache` value and the GeoJSON.
fn predict(server: &Server, n: usize) -> (String, geojson::FeatureCollection) {
    let x = 175 + n;
    let response = server.post_form(
        "/segment/predict",
        Some(("scene.tif", image(n))),
        &[
            ("model_version", "sam"),
            ("point_coords", &format!("[[{x}, 145]]")),
            ("point_labels", "[1]"),
        ],
    );
    let status = response.status().as_u16();
    let cache = response
        .headers()
        .get("x-samgeo-cache")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let text = response.text().unwrap();
    assert_eq!(status, 200, "{text}");
    let fc = text
        .parse::<geojson::GeoJson>()
        .map(|g| geojson::FeatureCollection::try_from(g).unwrap())
        .unwrap();
    (cache, fc)
}

/// One sample of `/metrics` (`name{labels}` exactly as exposed), 0 when absent.
fn metric(server: &Server, series: &str) -> f64 {
    let text = server.get("/metrics").text().unwrap();
    text.lines()
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().unwrap())
        })
        .unwrap_or(0.0)
}

fn misses(server: &Server) -> f64 {
    metric(
        server,
        r#"samgeo_embedding_cache_requests_total{outcome="miss"}"#,
    )
}

/// The union of a response's polygons.
fn footprint(fc: &geojson::FeatureCollection) -> geo::MultiPolygon<f64> {
    use geo::BooleanOps;
    feature_polygons(fc)
        .iter()
        .fold(geo::MultiPolygon(vec![]), |acc, p| acc.union(p))
}

/// The embedding and embedding-lock keys in Redis, as an integer reply (`:N`). Other keys (the
/// tile workers' stream, created at start-up) are not counted.
fn embedding_keys(redis: &RedisServer) -> String {
    redis
        .command(&[
            "EVAL",
            "return #redis.call('KEYS', 'samgeo:emb:*') + #redis.call('KEYS', 'samgeo:lock:*')",
            "0",
        ])
        .unwrap()
}

#[test]
fn an_embedding_made_on_one_replica_is_shared_with_the_other_and_encoded_once() {
    let Some(redis) = RedisServer::start(TEST) else {
        return;
    };
    let shared = common::temp_dir("cluster-shared");
    let a = replica(&redis, &shared, "replica-a");
    let b = replica(&redis, &shared, "replica-b");

    // A encodes and stores; B reads it from Redis, then has it in its own cache.
    let (cache_a, masks_a) = predict(&a, 0);
    assert_eq!(cache_a, "miss");
    assert_eq!(
        embedding_keys(&redis),
        ":1",
        "one embedding, no lock left behind"
    );
    let (cache_b, masks_b) = predict(&b, 0);
    assert_eq!(cache_b, "shared");
    let (again_b, _) = predict(&b, 0);
    assert_eq!(again_b, "hit");
    assert!(
        b.log().contains(r#"cache="shared""#),
        "access log:\n{}",
        b.log()
    );
    assert_eq!(misses(&b), 0.0, "B never encoded");
    assert_eq!(
        metric(
            &b,
            r#"samgeo_embedding_cache_requests_total{outcome="shared"}"#
        ),
        1.0
    );
    // The masks from the fp16 embedding are the masks from A's own.
    let (fa, fb) = (footprint(&masks_a), footprint(&masks_b));
    let overlap = iou(&fa, &fb);
    eprintln!(
        "shared vs encoded: IoU {overlap:.5}, same geometry: {}",
        fa == fb
    );
    assert!(overlap >= 0.99, "IoU {overlap}");
    assert_eq!(masks_a.features.len(), masks_b.features.len());
    // A counted the bytes it wrote; B wrote nothing.
    let stored = metric(&a, "samgeo_cluster_embedding_stored_bytes_total");
    assert_eq!(metric(&a, "samgeo_cluster_embeddings_stored_total"), 1.0);
    assert!(stored > 0.0);
    assert_eq!(metric(&b, "samgeo_cluster_embeddings_stored_total"), 0.0);
    eprintln!("bytes per demo SAM embedding in redis: {stored}");

    // A new image asked of both at the same moment: encoded once in the whole cluster.
    let before = misses(&a) + misses(&b);
    let barrier = std::sync::Barrier::new(2);
    let outcomes: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = [&a, &b]
            .into_iter()
            .map(|server| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    predict(server, 40).0
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(misses(&a) + misses(&b) - before, 1.0, "{outcomes:?}");
    let mut sorted = outcomes.clone();
    sorted.sort();
    assert_eq!(sorted, ["miss", "shared"], "{outcomes:?}");
    assert_eq!(embedding_keys(&redis), ":2");
    assert_eq!(
        redis.command(&["KEYS", "samgeo:lock:*"]).as_deref(),
        Some("*0"),
        "every encode lock released"
    );
}

#[test]
fn with_redis_stopped_replicas_keep_serving_and_share_again_once_it_is_back() {
    let Some(mut redis) = RedisServer::start(TEST) else {
        return;
    };
    let shared = common::temp_dir("cluster-shared");
    let a = replica(&redis, &shared, "replica-a");
    let b = replica(&redis, &shared, "replica-b");
    assert_eq!(predict(&a, 0).0, "miss");
    assert_eq!(predict(&b, 0).0, "shared");
    assert_eq!(metric(&a, "samgeo_cluster_redis_up"), 1.0);

    redis.stop();
    // Cached images are answered from each replica's own cache, new ones encoded locally.
    assert_eq!(predict(&a, 0).0, "hit");
    assert_eq!(predict(&b, 0).0, "hit");
    assert_eq!(predict(&a, 10).0, "miss");
    assert_eq!(
        predict(&b, 10).0,
        "miss",
        "nothing shared while Redis is down"
    );
    assert_eq!(predict(&b, 20).0, "miss");
    for server in [&a, &b] {
        assert_eq!(metric(server, "samgeo_cluster_redis_up"), 0.0);
        assert!(
            server.log().contains("redis is unreachable"),
            "{}",
            server.log()
        );
    }

    // Back (empty): after the retry pause the replicas use it again.
    redis.restart();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(predict(&a, 30).0, "miss");
    assert_eq!(predict(&b, 30).0, "shared");
    assert_eq!(embedding_keys(&redis), ":1");
    for server in [&a, &b] {
        assert_eq!(metric(server, "samgeo_cluster_redis_up"), 1.0);
        assert!(server.log().contains("redis is reachable again"));
    }
}

/// Hides the one embedding in Redis (renamed) and takes its encode lock as replica
/// "stranger" for `lock_ms`, as if that replica were encoding the image right now.
const HIDE_AND_LOCK: &str = "local k = redis.call('KEYS', 'samgeo:emb:*')[1] \
     redis.call('SET', 'test:key', k) \
     redis.call('RENAME', k, 'test:backup') \
     redis.call('SET', 'samgeo:lock:' .. string.sub(k, 8), 'stranger', 'PX', ARGV[1]) \
     return 1";
/// The stranger's embedding appears (its lock stays).
const REAPPEAR: &str = "redis.call('RENAME', 'test:backup', redis.call('GET', 'test:key')) \
     return 1";
/// The stranger dies: the embedding is gone, its lock lives `ARGV[1]` ms more.
const DROP_AND_LOCK: &str = "local k = redis.call('KEYS', 'samgeo:emb:*')[1] \
     redis.call('DEL', k) \
     redis.call('SET', 'samgeo:lock:' .. string.sub(k, 8), 'stranger', 'PX', ARGV[1]) \
     return 1";

const WAITING: &str = "another replica is encoding this image: waiting for its embedding";

#[test]
fn a_replica_waits_for_another_replicas_encode_and_takes_over_a_dead_ones_lock() {
    let Some(redis) = RedisServer::start(TEST) else {
        return;
    };
    let shared = common::temp_dir("cluster-shared");
    let a = replica(&redis, &shared, "replica-a");
    let b = replica(&redis, &shared, "replica-b");
    assert_eq!(predict(&a, 70).0, "miss");

    // The image is being encoded elsewhere: B waits for that embedding instead of encoding.
    assert_eq!(
        redis
            .command(&["EVAL", HIDE_AND_LOCK, "0", "60000"])
            .as_deref(),
        Some(":1")
    );
    let cache = std::thread::scope(|s| {
        let waiting = s.spawn(|| predict(&b, 70).0);
        let started = std::time::Instant::now();
        while !b.log().contains(WAITING) {
            assert!(started.elapsed() < Duration::from_secs(60), "{}", b.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(
            redis.command(&["EVAL", REAPPEAR, "0"]).as_deref(),
            Some(":1")
        );
        waiting.join().unwrap()
    });
    assert_eq!(cache, "shared");
    assert!(b.log().contains(r#"holder="stranger""#), "{}", b.log());
    assert_eq!(misses(&b), 0.0);
    assert_eq!(
        redis.command(&["KEYS", "samgeo:lock:*"]).as_deref(),
        Some("*1"),
        "the stranger's lock is the stranger's to release"
    );

    // The encoding replica died: its lock expires without an embedding, and B encodes.
    redis.command(&["FLUSHALL"]);
    assert_eq!(predict(&a, 80).0, "miss");
    assert_eq!(
        redis
            .command(&["EVAL", DROP_AND_LOCK, "0", "800"])
            .as_deref(),
        Some(":1")
    );
    assert_eq!(predict(&b, 80).0, "miss");
    assert_eq!(misses(&b), 1.0);
    assert_eq!(metric(&b, "samgeo_cluster_embeddings_stored_total"), 1.0);
    assert_eq!(
        embedding_keys(&redis),
        ":1",
        "B stored it and released its lock"
    );
}
