//! The process-wide Prometheus recorder: installed once, with explicit buckets (so histograms
//! render as histograms, not summaries), every metric described, and the series whose label
//! values are known in advance registered at zero. `render` samples the gauges from the
//! server's state and writes the text exposition format.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::catalog::*;
use crate::state::AppState;

/// Model versions per segmentation route, for the request-duration series present from start.
const SEGMENT_ROUTES: [(&str, &[&str]); 3] = [
    ("/segment/predict", &["sam", "sam2", "sam3"]),
    ("/segment/automatic", &["sam", "sam2", "sam3"]),
    ("/segment/text", &["sam3"]),
];

/// How often histogram samples are folded into their buckets between scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the recorder (first call only) and returns the handle that renders it. When another
/// recorder is already installed in the process, metrics render empty rather than fail.
pub fn init() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let mut builder = PrometheusBuilder::new();
        for (name, _, buckets) in HISTOGRAMS {
            builder = builder
                .set_buckets_for_metric(Matcher::Full(name.to_string()), buckets)
                .expect("the catalog's buckets are not empty");
        }
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if let Err(e) = ::metrics::set_global_recorder(recorder) {
            tracing::warn!("metrics recorder not installed: {e}");
            return handle;
        }
        describe();
        register_series();
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || loop {
                std::thread::sleep(UPKEEP_EVERY);
                upkeep.run_upkeep();
            });
        if let Err(e) = spawned {
            tracing::warn!("metrics upkeep thread not started (samples fold in at scrape): {e}");
        }
        handle
    })
}

/// `# HELP` lines for every metric.
fn describe() {
    for (name, help) in COUNTERS {
        ::metrics::describe_counter!(*name, *help);
    }
    for (name, help) in GAUGES {
        ::metrics::describe_gauge!(*name, *help);
    }
    for (name, help, _) in HISTOGRAMS {
        ::metrics::describe_histogram!(*name, *help);
    }
}

/// Series whose label values are known at start-up, at zero.
fn register_series() {
    for reason in REJECT_REASONS {
        ::metrics::counter!(REJECTED, "reason" => reason).increment(0);
    }
    for outcome in CACHE_OUTCOMES {
        ::metrics::counter!(EMBEDDING_CACHE_REQUESTS, "outcome" => outcome).increment(0);
    }
    for stage in STAGES {
        registered(::metrics::histogram!(STAGE_DURATION, "stage" => stage));
    }
    for version in crate::config::MODEL_VERSIONS {
        registered(::metrics::histogram!(MODEL_LOAD_DURATION, "model_version" => version));
    }
    for (route, versions) in SEGMENT_ROUTES {
        for version in versions {
            registered(::metrics::histogram!(
                REQUEST_DURATION,
                "route" => route,
                "model_version" => *version,
            ));
        }
    }
    ::metrics::counter!(CLUSTER_REDIS_ERRORS).increment(0);
    ::metrics::counter!(CLUSTER_EMBEDDINGS_STORED).increment(0);
    ::metrics::counter!(CLUSTER_EMBEDDING_BYTES_STORED).increment(0);
    ::metrics::counter!(CLUSTER_TILES).increment(0);
    for (name, _) in GAUGES {
        if *name != BUILD_INFO {
            ::metrics::gauge!(*name).set(0.0);
        }
    }
    ::metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}

/// Getting a histogram's handle registers its series: it renders with zero counts until used.
fn registered(_: ::metrics::Histogram) {}

/// The text exposition of every metric, with the gauges sampled from `state` now and a series
/// at zero for each outcome of every loaded plugin.
pub fn render(state: &AppState) -> String {
    let handle = init();
    ::metrics::gauge!(INFERENCES_RUNNING).set(state.limiter.running() as f64);
    ::metrics::gauge!(QUEUE_WAITING).set(state.limiter.waiting() as f64);
    ::metrics::gauge!(UPLOAD_BYTES_HELD).set(state.uploads.held() as f64);
    ::metrics::gauge!(EMBEDDING_CACHE_BYTES).set(state.embeddings.bytes() as f64);
    ::metrics::gauge!(MODELS_LOADED).set(state.models.loaded().len() as f64);
    let redis_up = state.cluster.as_ref().is_some_and(|r| r.is_up());
    ::metrics::gauge!(CLUSTER_REDIS_UP).set(if redis_up { 1.0 } else { 0.0 });
    for plugin in state.plugins.list() {
        for outcome in PLUGIN_OUTCOMES {
            ::metrics::counter!(PLUGIN_CALLS, "plugin" => plugin.name.clone(), "outcome" => outcome)
                .increment(0);
        }
        registered(::metrics::histogram!(PLUGIN_DURATION, "plugin" => plugin.name));
    }
    handle.render()
}
