//! Every metric the server exports: its name (Prometheus conventions: `samgeo_` prefix, base
//! units, `_seconds`, `_bytes`, `_total` on counters), help text and, for histograms, buckets.
//! To add a metric: a constant and an entry in [`COUNTERS`], [`GAUGES`] or [`HISTOGRAMS`] here,
//! a recording function in `record.rs`, and its label values in `exporter::register_series`
//! when they are a closed set.

/// Requests answered, by route template, method and status code.
pub const HTTP_REQUESTS: &str = "samgeo_http_requests_total";
/// Time from a request's arrival to its response, by route template and model version.
pub const REQUEST_DURATION: &str = "samgeo_request_duration_seconds";
/// Time of each pipeline stage (the `Server-Timing` stages).
pub const STAGE_DURATION: &str = "samgeo_stage_duration_seconds";
/// Inferences holding a slot now.
pub const INFERENCES_RUNNING: &str = "samgeo_inferences_running";
/// Requests waiting for an inference slot now.
pub const QUEUE_WAITING: &str = "samgeo_queue_waiting";
/// Bytes of request bodies being received or held now.
pub const UPLOAD_BYTES_HELD: &str = "samgeo_upload_bytes_held";
/// Requests refused, by reason (overload, too_large, timeout, auth).
pub const REJECTED: &str = "samgeo_rejected_total";
/// Embedding cache lookups, by outcome (hit, shared, miss).
pub const EMBEDDING_CACHE_REQUESTS: &str = "samgeo_embedding_cache_requests_total";
/// Bytes of embeddings cached now.
pub const EMBEDDING_CACHE_BYTES: &str = "samgeo_embedding_cache_bytes";
/// Models loaded now.
pub const MODELS_LOADED: &str = "samgeo_models_loaded";
/// Time to load a model (ONNX sessions), by model version.
pub const MODEL_LOAD_DURATION: &str = "samgeo_model_load_duration_seconds";
/// Plugin calls, by plugin and outcome.
pub const PLUGIN_CALLS: &str = "samgeo_plugin_calls_total";
/// Time of one plugin call, by plugin.
pub const PLUGIN_DURATION: &str = "samgeo_plugin_duration_seconds";
/// 1 while this replica reaches the cluster's Redis; 0 when it does not or no cluster is set.
pub const CLUSTER_REDIS_UP: &str = "samgeo_cluster_redis_up";
/// Redis calls that failed (connection, timeout): each starts a pause of `redis_retry_secs`.
pub const CLUSTER_REDIS_ERRORS: &str = "samgeo_cluster_redis_errors_total";
/// Embeddings this replica wrote to the cluster's Redis.
pub const CLUSTER_EMBEDDINGS_STORED: &str = "samgeo_cluster_embeddings_stored_total";
/// Bytes of those embeddings as stored (fp16, zstd): over the count, bytes per embedding.
pub const CLUSTER_EMBEDDING_BYTES_STORED: &str = "samgeo_cluster_embedding_stored_bytes_total";
/// Tiles of fanned-out jobs this replica's tile worker computed and stored.
pub const CLUSTER_TILES: &str = "samgeo_cluster_tiles_total";
/// Always 1; the label carries the server's version.
pub const BUILD_INFO: &str = "samgeo_build_info";

/// Latency buckets for requests and pipeline stages, in seconds (5 ms up to the default
/// request time limit of 300 s).
const REQUEST_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];
/// Plugin call buckets, in seconds (0.5 ms up to the default call limit of 30 s).
const PLUGIN_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Model load buckets, in seconds.
const MODEL_LOAD_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// (name, help) of each counter.
pub const COUNTERS: &[(&str, &str)] = &[
    (
        CLUSTER_REDIS_ERRORS,
        "Redis calls of the cluster's shared tier that failed (connection or timeout).",
    ),
    (
        CLUSTER_EMBEDDINGS_STORED,
        "Image embeddings this replica wrote to the cluster's Redis.",
    ),
    (
        CLUSTER_EMBEDDING_BYTES_STORED,
        "Bytes of the image embeddings this replica wrote to the cluster's Redis (fp16, zstd).",
    ),
    (
        CLUSTER_TILES,
        "Tiles of cluster-wide (fanned-out) jobs computed and stored by this replica's tile worker.",
    ),
    (
        HTTP_REQUESTS,
        "HTTP requests answered, by route template, method and status code.",
    ),
    (
        REJECTED,
        "Requests refused: overload (503 with Retry-After), too_large (413), timeout (408, 504), auth (401).",
    ),
    (
        EMBEDDING_CACHE_REQUESTS,
        "Image embedding cache lookups, by outcome (hit, shared: from the cluster's Redis, miss).",
    ),
    (
        PLUGIN_CALLS,
        "WebAssembly plugin calls, by plugin and outcome (ok, rejected, timeout, failed).",
    ),
];

/// (name, help) of each gauge.
pub const GAUGES: &[(&str, &str)] = &[
    (INFERENCES_RUNNING, "Inferences holding a slot now."),
    (QUEUE_WAITING, "Requests waiting for an inference slot now."),
    (
        UPLOAD_BYTES_HELD,
        "Bytes of request bodies reserved now against server.max_buffered_upload_bytes.",
    ),
    (
        EMBEDDING_CACHE_BYTES,
        "Bytes of image embeddings held in the cache now.",
    ),
    (MODELS_LOADED, "Models loaded in memory now."),
    (
        CLUSTER_REDIS_UP,
        "1 while this replica reaches the cluster's Redis; 0 when it does not or no cluster is configured.",
    ),
    (
        BUILD_INFO,
        "Always 1; the version label is the server's version.",
    ),
];

/// (name, help, bucket upper bounds) of each histogram.
pub const HISTOGRAMS: &[(&str, &str, &[f64])] = &[
    (
        REQUEST_DURATION,
        "Time from a request's arrival to its response, by route template and model version.",
        REQUEST_BUCKETS,
    ),
    (
        STAGE_DURATION,
        "Time of each segmentation pipeline stage (as in the Server-Timing header).",
        REQUEST_BUCKETS,
    ),
    (
        MODEL_LOAD_DURATION,
        "Time to load a model's ONNX sessions, by model version.",
        MODEL_LOAD_BUCKETS,
    ),
    (
        PLUGIN_DURATION,
        "Time of one WebAssembly plugin call, by plugin.",
        PLUGIN_BUCKETS,
    ),
];

/// Label values of `samgeo_rejected_total{reason}`.
pub const REJECT_REASONS: [&str; 4] = ["overload", "too_large", "timeout", "auth"];
/// Label values of `samgeo_embedding_cache_requests_total{outcome}`.
pub const CACHE_OUTCOMES: [&str; 3] = ["hit", "shared", "miss"];
/// Stages the pipelines mark (see `pipeline::Stages`); `generate` is the automatic generator.
pub const STAGES: [&str; 6] = [
    "prepare",
    "embedding",
    "decode",
    "masks",
    "generate",
    "plugins",
];
/// Label values of `samgeo_plugin_calls_total{outcome}`.
pub const PLUGIN_OUTCOMES: [&str; 4] = ["ok", "rejected", "timeout", "failed"];
/// The `route` label of requests that matched no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";
/// The `model_version` label of requests that ran no model.
pub const NO_MODEL: &str = "none";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_conventions() {
        let all = COUNTERS
            .iter()
            .map(|(n, _)| (*n, "counter"))
            .chain(GAUGES.iter().map(|(n, _)| (*n, "gauge")))
            .chain(HISTOGRAMS.iter().map(|(n, _, _)| (*n, "histogram")));
        for (name, kind) in all {
            assert!(name.starts_with("samgeo_"), "{name}");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{name}"
            );
            assert_eq!(name.ends_with("_total"), kind == "counter", "{name}");
            if kind == "histogram" {
                assert!(name.ends_with("_seconds"), "{name}");
            }
        }
    }

    #[test]
    fn buckets_ascend() {
        for (name, _, buckets) in HISTOGRAMS {
            assert!(!buckets.is_empty(), "{name}");
            assert!(buckets.windows(2).all(|w| w[0] < w[1]), "{name}");
        }
    }
}
