//! The one error type handlers return, mapped once to an HTTP status and a `{"detail": ...}` body.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// An error that reaches the client as `{"detail": "..."}` with a status code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppError {
    pub status: StatusCode,
    pub detail: String,
    /// Seconds for a `Retry-After` header (overload).
    pub retry_after: Option<u64>,
}

impl AppError {
    /// An error with any status.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> AppError {
        AppError {
            status,
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// 400: the request is understood but its values are wrong.
    pub fn bad_request(detail: impl Into<String>) -> AppError {
        AppError::new(StatusCode::BAD_REQUEST, detail)
    }

    /// 422: a required field is missing or a value has the wrong type.
    pub fn unprocessable(detail: impl Into<String>) -> AppError {
        AppError::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
    }

    /// 413: the upload or the image is larger than configured.
    pub fn too_large(detail: impl Into<String>) -> AppError {
        AppError::new(StatusCode::PAYLOAD_TOO_LARGE, detail)
    }

    /// 503: the server cannot do this now (overload, model not configured).
    pub fn unavailable(detail: impl Into<String>) -> AppError {
        AppError::new(StatusCode::SERVICE_UNAVAILABLE, detail)
    }

    /// 500: a fault of the server itself.
    pub fn internal(detail: impl Into<String>) -> AppError {
        AppError::new(StatusCode::INTERNAL_SERVER_ERROR, detail)
    }

    /// Adds a `Retry-After` header.
    pub fn with_retry_after(mut self, seconds: u64) -> AppError {
        self.retry_after = Some(seconds);
        self
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.detail)
    }
}

impl std::error::Error for AppError {}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if self.status == StatusCode::INTERNAL_SERVER_ERROR
            || self.status == StatusCode::BAD_GATEWAY
        {
            tracing::error!(status = self.status.as_u16(), detail = %self.detail, "request failed");
        } else if self.status.is_server_error() {
            tracing::warn!(status = self.status.as_u16(), detail = %self.detail, "request not served");
        } else {
            tracing::debug!(status = self.status.as_u16(), detail = %self.detail, "request rejected");
        }
        let mut response = (
            self.status,
            Json(serde_json::json!({ "detail": self.detail })),
        )
            .into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
