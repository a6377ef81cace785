//! The request's time limit, checked between pipeline stages so that work past it stops.

use std::time::{Duration, Instant};

use crate::error::AppError;

/// When the request must be done.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Instant,
    limit: Duration,
}

impl Deadline {
    /// A deadline `limit` from now.
    pub fn after(limit: Duration) -> Deadline {
        Deadline {
            at: Instant::now() + limit,
            limit,
        }
    }

    /// The instant the request must be done by.
    pub fn at(&self) -> Instant {
        self.at
    }

    /// The time limit the deadline was set with.
    pub fn limit(&self) -> Duration {
        self.limit
    }

    /// Whether the deadline has passed.
    pub fn passed(&self) -> bool {
        Instant::now() >= self.at
    }

    /// 504 once the deadline has passed.
    pub fn check(&self) -> Result<(), AppError> {
        if self.passed() {
            Err(self.exceeded())
        } else {
            Ok(())
        }
    }

    /// The error for a request that ran out of time.
    pub fn exceeded(&self) -> AppError {
        AppError::new(
            axum::http::StatusCode::GATEWAY_TIMEOUT,
            format!(
                "The request took longer than the server's limit of {} s",
                self.limit.as_secs_f64()
            ),
        )
    }
}
