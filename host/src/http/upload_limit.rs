//! Limits on request bodies, before any parsing: one body above `server.max_upload_bytes` gets
//! 413, and the bodies being received or held at once are bounded by
//! `server.max_buffered_upload_bytes` (503 + Retry-After past it), so that many concurrent
//! uploads cannot exhaust memory while they wait for an inference slot. A refused body is read
//! and discarded (up to a cap) first, so the client, still sending, can read the answer
//! instead of a connection reset.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

use crate::error::AppError;
use crate::state::AppState;

/// Most bytes of a refused body read and thrown away before the connection is dropped.
const DRAIN_CAP: u64 = 64 * 1024 * 1024;

/// Bytes of request bodies held at once: reserved when a request arrives (its declared
/// `Content-Length`, or `max_upload_bytes` for a body of unknown length) and given back when
/// its response is ready.
#[derive(Debug)]
pub struct UploadBudget {
    limit: u64,
    held: Arc<AtomicU64>,
}

/// Bytes reserved for one request's body; given back on drop.
#[derive(Debug)]
pub struct UploadReservation {
    bytes: u64,
    held: Arc<AtomicU64>,
}

impl Drop for UploadReservation {
    fn drop(&mut self) {
        self.held.fetch_sub(self.bytes, Ordering::SeqCst);
    }
}

impl UploadBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> UploadBudget {
        UploadBudget {
            limit,
            held: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Reserves `bytes`, or `None` when that would take the bytes held past the limit.
    pub fn try_reserve(&self, bytes: u64) -> Option<UploadReservation> {
        self.held
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |held| {
                held.checked_add(bytes).filter(|&total| total <= self.limit)
            })
            .ok()
            .map(|_| UploadReservation {
                bytes,
                held: self.held.clone(),
            })
    }

    /// Bytes reserved now.
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::SeqCst)
    }
}

/// What the middleware needs: the state (for the limits) and the budget.
#[derive(Clone)]
pub struct UploadLimits {
    pub state: AppState,
    pub budget: Arc<UploadBudget>,
}

/// Answers 413 for a declared `Content-Length` above the limit and 503 when the body would
/// take the bodies held past the budget; otherwise holds the body's reservation until the
/// response is ready.
pub async fn enforce(State(limits): State<UploadLimits>, request: Request, next: Next) -> Response {
    let config = limits.state.config();
    // `POST /images` streams its body to disk: its own limit, and nothing held in memory.
    let to_disk = is_streamed_to_disk(&request);
    let (max_upload, limit_key) = if to_disk {
        (config.inputs.max_image_bytes, "inputs.max_image_bytes")
    } else {
        (config.server.max_upload_bytes, "server.max_upload_bytes")
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(length) = declared.filter(|&l| l > max_upload) {
        let drain = length <= max_upload.saturating_add(DRAIN_CAP);
        return refuse(
            request,
            drain,
            AppError::too_large(format!(
                "The request body is {length} bytes; this server accepts at most {max_upload} ({limit_key})"
            )),
        )
        .await;
    }
    let needed = match declared {
        Some(length) => length,
        // A body of unknown length (chunked) may grow to the largest accepted body.
        None if request.headers().contains_key(header::TRANSFER_ENCODING) => max_upload,
        None => 0,
    };
    if needed == 0 || to_disk {
        return next.run(request).await;
    }
    let Some(reservation) = limits.budget.try_reserve(needed) else {
        let drain = declared.is_some_and(|l| l <= DRAIN_CAP);
        return refuse(
            request,
            drain,
            AppError::unavailable(format!(
                "The server is busy: {} bytes of uploads are being received or processed, and this one ({needed} bytes) would pass server.max_buffered_upload_bytes ({}). Retry shortly.",
                limits.budget.held(),
                limits.budget.limit
            ))
            .with_retry_after(1),
        )
        .await;
    };
    let response = next.run(request).await;
    drop(reservation);
    response
}

/// Whether the request's body goes to disk as it arrives (`POST /images`) rather than into
/// memory.
fn is_streamed_to_disk(request: &Request) -> bool {
    request.method() == axum::http::Method::POST && request.uri().path() == "/images"
}

/// The error response for a refused body, read and discarded first when `drain`, with
/// `Connection: close`.
async fn refuse(request: Request, drain: bool, error: AppError) -> Response {
    if drain {
        let mut stream = request.into_body().into_data_stream();
        while let Some(Ok(_chunk)) = stream.next().await {}
    }
    let mut response = error.into_response();
    response.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_bounds_the_bytes_held() {
        let budget = UploadBudget::new(100);
        let a = budget.try_reserve(60).expect("fits");
        assert!(budget.try_reserve(41).is_none(), "60 + 41 > 100");
        let b = budget.try_reserve(40).expect("60 + 40 fits exactly");
        assert_eq!(budget.held(), 100);
        assert!(budget.try_reserve(1).is_none());
        drop(a);
        assert_eq!(budget.held(), 40);
        let c = budget.try_reserve(60).expect("room again once a is done");
        drop((b, c));
        assert_eq!(budget.held(), 0);
        assert!(budget.try_reserve(u64::MAX).is_none(), "no overflow");
    }
}
