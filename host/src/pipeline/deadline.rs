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

    /// 504 once the deadline has passed.
    pub fn check(&self) -> Result<(), AppError> {
        if Instant::now() >= self.at {
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
