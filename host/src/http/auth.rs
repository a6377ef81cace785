//! Optional API key: when `server.api_key` is set, every route but `/health`, the web page and
//! its assets (`/`, `/ui/...`) (and `/metrics` with `metrics.require_api_key = false`) needs `Authorization: Bearer <key>`, compared in
//! constant time.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::error::AppError;
use crate::state::AppState;

/// Rejects requests without the configured key with 401.
pub async fn require_api_key(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let config = state.config();
    let Some(expected) = config.server.api_key.as_deref() else {
        return next.run(request).await;
    };
    let open_metrics = request.uri().path() == "/metrics" && !config.metrics.require_api_key;
    if request.uri().path() == "/health"
        || super::web::is_public_path(request.uri().path())
        || open_metrics
        || request.method() == axum::http::Method::OPTIONS
    {
        return next.run(request).await;
    }
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        return next.run(request).await;
    }
    let mut response = AppError::new(
        StatusCode::UNAUTHORIZED,
        "Not authenticated: send the API key as 'Authorization: Bearer <key>'",
    )
    .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    response
}
