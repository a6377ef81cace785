//! Prometheus metrics for `GET /metrics` (`metrics` facade, `metrics-exporter-prometheus`
//! recorder, rendered by our own route rather than the exporter's listener).
//!
//! - [`catalog`]: names, help texts, buckets and closed label sets;
//! - [`exporter`]: the process-wide recorder and the text rendering;
//! - [`record`]: the functions the rest of the server calls where things happen.

pub mod catalog;
mod exporter;
mod record;

pub use self::exporter::{init, render};
pub use self::record::*;
