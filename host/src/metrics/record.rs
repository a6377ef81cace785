//! One function per thing measured, called from where it happens (a line each in the HTTP
//! layer, the caches and the plugin host). Without an installed recorder (unit tests) they do
//! nothing. Labels hold only bounded values: route templates, methods, status codes, model
//! versions, stage and plugin names; never image ids or anything a client sends.

use std::time::Duration;

use axum::http::Method;

use super::catalog::*;
use crate::plugins::PluginError;

/// A request answered: counts it and observes its duration. `route` is the matched route
/// template (or [`UNMATCHED_ROUTE`]), `model_version` the model that served it (or
/// [`NO_MODEL`]).
pub fn http_request(
    route: &str,
    method: &Method,
    status: u16,
    model_version: &str,
    elapsed: Duration,
) {
    ::metrics::counter!(
        HTTP_REQUESTS,
        "route" => route.to_string(),
        "method" => method_label(method),
        "status" => status.to_string(),
    )
    .increment(1);
    ::metrics::histogram!(
        REQUEST_DURATION,
        "route" => route.to_string(),
        "model_version" => model_version.to_string(),
    )
    .record(elapsed.as_secs_f64());
}

/// A standard method's name; anything else is `other` (a client may send any token).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// A Redis call of the cluster's shared tier failed.
pub fn cluster_redis_error() {
    ::metrics::counter!(CLUSTER_REDIS_ERRORS).increment(1);
}

/// This replica's tile worker computed and stored a tile of a fanned-out job.
pub fn cluster_tile_computed() {
    ::metrics::counter!(CLUSTER_TILES).increment(1);
}

/// A request refused for `reason`, one of [`REJECT_REASONS`].
pub fn rejected(reason: &'static str) {
    ::metrics::counter!(REJECTED, "reason" => reason).increment(1);
}

/// The pipeline's stages, as (name, milliseconds) in the `Server-Timing` header.
pub fn stages(spans: &[(&'static str, f64)]) {
    for (stage, ms) in spans {
        ::metrics::histogram!(STAGE_DURATION, "stage" => *stage).record(ms / 1000.0);
    }
}

/// An embedding cache lookup: found here (`hit`), read from the cluster's Redis (`shared`) or
/// computed (`miss`).
pub fn embedding_cache_lookup(outcome: crate::cache::CacheOutcome) {
    ::metrics::counter!(EMBEDDING_CACHE_REQUESTS, "outcome" => outcome.as_str()).increment(1);
}

/// An embedding of `bytes` (fp16, zstd) written to the cluster's Redis.
pub fn shared_embedding_stored(bytes: usize) {
    ::metrics::counter!(CLUSTER_EMBEDDINGS_STORED).increment(1);
    ::metrics::counter!(CLUSTER_EMBEDDING_BYTES_STORED).increment(bytes as u64);
}

/// A model of `model_version` loaded (or failed to) in `elapsed`.
pub fn model_load(model_version: &str, elapsed: Duration) {
    ::metrics::histogram!(MODEL_LOAD_DURATION, "model_version" => model_version.to_string())
        .record(elapsed.as_secs_f64());
}

/// A plugin call and how it ended.
pub fn plugin_call<T>(plugin: &str, elapsed: Duration, result: &Result<T, PluginError>) {
    let outcome = match result {
        Ok(_) => "ok",
        Err(PluginError::Rejected { .. }) => "rejected",
        Err(PluginError::Timeout { .. }) => "timeout",
        Err(_) => "failed",
    };
    ::metrics::counter!(PLUGIN_CALLS, "plugin" => plugin.to_string(), "outcome" => outcome)
        .increment(1);
    ::metrics::histogram!(PLUGIN_DURATION, "plugin" => plugin.to_string())
        .record(elapsed.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_methods_share_one_label() {
        assert_eq!(method_label(&Method::POST), "POST");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
    }
}
