//! `GET /metrics`: the Prometheus text exposition (version 0.0.4).

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

/// Every metric, with the gauges sampled now.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let text = crate::metrics::render(&state);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}
