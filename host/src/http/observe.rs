//! Around every request: its id (`X-Request-Id`, taken from the client when well-formed, else
//! generated, and returned on every response), a tracing span that puts the id on each log line
//! of the request, one access-log line, and the request metrics (count, duration, refusals).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, HttpBody};
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use futures::StreamExt;
use tracing::Instrument;

use crate::metrics::catalog::{NO_MODEL, UNMATCHED_ROUTE};

/// The request id header, read from the request and set on the response.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest request id taken from a client.
const MAX_REQUEST_ID_LEN: usize = 128;

/// What served a segmentation request, set on its response by the handler for this layer.
#[derive(Debug, Clone)]
pub struct Served {
    pub model_version: String,
    pub model_id: String,
    pub cache: crate::cache::CacheOutcome,
}

/// The middleware (outermost layer, so that it sees every answer, refusals included).
pub async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id(request.headers());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED_ROUTE, |p| p.as_str())
        .to_string();
    let method = request.method().clone();
    let bytes_in = Arc::new(AtomicU64::new(0));
    let request = count_body(request, bytes_in.clone());
    let span = tracing::info_span!("http", request_id = %id);
    async move {
        let mut response = next.run(request).await;
        if let Ok(value) = HeaderValue::from_str(&id) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        let status = response.status();
        let served = response.extensions().get::<Served>().cloned();
        let elapsed = started.elapsed();
        let model_version = served.as_ref().map_or(NO_MODEL, |s| &s.model_version);
        crate::metrics::http_request(&route, &method, status.as_u16(), model_version, elapsed);
        if let Some(reason) = reject_reason(status, response.headers()) {
            crate::metrics::rejected(reason);
        }
        tracing::info!(
            target: "samgeo::access",
            method = %method,
            route = %route,
            status = status.as_u16(),
            duration_ms = (elapsed.as_secs_f64() * 1e6).round() / 1e3,
            bytes_in = bytes_in.load(Ordering::Relaxed),
            bytes_out = response.body().size_hint().exact(),
            cache = served.as_ref().map(|s| s.cache.as_str()),
            model = served.as_ref().map(|s| format!("{}:{}", s.model_version, s.model_id)),
            "access"
        );
        response
    }
    .instrument(span)
    .await
}

/// The client's id when it is 1 to 128 characters of `A-Z a-z 0-9 - _ . : / + = @`, else a
/// new UUID (v4).
fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| valid_request_id(v))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_string)
}

fn valid_request_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=@".contains(&b))
}

/// Counts the body's bytes as the handler reads them.
fn count_body(request: Request, counter: Arc<AtomicU64>) -> Request {
    let (parts, body) = request.into_parts();
    let stream = body.into_data_stream().map(move |chunk| {
        if let Ok(bytes) = &chunk {
            counter.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        }
        chunk
    });
    Request::from_parts(parts, Body::from_stream(stream))
}

/// Why a response is a refusal, for `samgeo_rejected_total{reason}`: 401 → auth, 413 →
/// too_large, 408 and 504 → timeout, 503 with `Retry-After` → overload (a 503 without it is a
/// model that is not configured, not a refusal).
pub fn reject_reason(status: StatusCode, headers: &HeaderMap) -> Option<&'static str> {
    match status {
        StatusCode::UNAUTHORIZED => Some("auth"),
        StatusCode::PAYLOAD_TOO_LARGE => Some("too_large"),
        StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => Some("timeout"),
        StatusCode::SERVICE_UNAVAILABLE
            if headers.contains_key(axum::http::header::RETRY_AFTER) =>
        {
            Some("overload")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_from_clients_are_checked() {
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID_HEADER, HeaderValue::from_static("abc-123_x.y:z"));
        assert_eq!(request_id(&headers), "abc-123_x.y:z");
        for bad in ["", "a b", "a\"b", "<script>"] {
            headers.insert(REQUEST_ID_HEADER, HeaderValue::from_str(bad).unwrap());
            let id = request_id(&headers);
            assert_ne!(id, bad);
            assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
        }
        headers.insert(
            REQUEST_ID_HEADER,
            HeaderValue::from_str(&"a".repeat(129)).unwrap(),
        );
        assert_eq!(request_id(&headers).len(), 36);
        assert_ne!(request_id(&HeaderMap::new()), request_id(&HeaderMap::new()));
    }

    #[test]
    fn refusals_by_status() {
        let none = HeaderMap::new();
        let mut retry = HeaderMap::new();
        retry.insert(
            axum::http::header::RETRY_AFTER,
            HeaderValue::from_static("1"),
        );
        assert_eq!(reject_reason(StatusCode::UNAUTHORIZED, &none), Some("auth"));
        assert_eq!(
            reject_reason(StatusCode::PAYLOAD_TOO_LARGE, &none),
            Some("too_large")
        );
        assert_eq!(
            reject_reason(StatusCode::GATEWAY_TIMEOUT, &none),
            Some("timeout")
        );
        assert_eq!(
            reject_reason(StatusCode::SERVICE_UNAVAILABLE, &retry),
            Some("overload")
        );
        assert_eq!(reject_reason(StatusCode::SERVICE_UNAVAILABLE, &none), None);
        assert_eq!(reject_reason(StatusCode::BAD_REQUEST, &none), None);
        assert_eq!(reject_reason(StatusCode::OK, &none), None);
    }
}
