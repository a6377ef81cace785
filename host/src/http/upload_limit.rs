//! Uploads above `server.max_upload_bytes` get 413 before any parsing. The body is read and
//! discarded (up to a cap) first, so the client, still sending, can read the answer instead of
//! a connection reset.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

use crate::error::AppError;
use crate::state::AppState;

/// Most bytes of an oversized body read and thrown away before the connection is dropped.
const DRAIN_CAP: u64 = 64 * 1024 * 1024;

/// Answers 413 for a declared `Content-Length` above the limit.
pub async fn enforce(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limit = state.config().server.max_upload_bytes;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let Some(length) = declared.filter(|&l| l > limit) else {
        return next.run(request).await;
    };
    if length <= limit.saturating_add(DRAIN_CAP) {
        let mut stream = request.into_body().into_data_stream();
        while let Some(Ok(_chunk)) = stream.next().await {}
    }
    let mut response = AppError::too_large(format!(
        "The request body is {length} bytes; this server accepts at most {limit} (server.max_upload_bytes)"
    ))
    .into_response();
    response.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    response
}
