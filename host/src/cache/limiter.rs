//! At most N inferences at once, at most Q requests waiting; past that, 503 with Retry-After.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::AppError;

/// Bounds the inferences running and waiting.
pub struct InferenceLimiter {
    slots: Arc<Semaphore>,
    capacity: usize,
    waiting: AtomicUsize,
    max_waiting: usize,
}

/// A running inference's slot; released on drop.
pub struct InferencePermit(#[allow(dead_code)] OwnedSemaphorePermit);

impl InferenceLimiter {
    /// `running` inferences at once, `waiting` more queued.
    pub fn new(running: usize, waiting: usize) -> InferenceLimiter {
        InferenceLimiter {
            slots: Arc::new(Semaphore::new(running.max(1))),
            capacity: running.max(1),
            waiting: AtomicUsize::new(0),
            max_waiting: waiting,
        }
    }

    /// Waits for a slot, or answers 503 at once when the queue is full.
    pub async fn acquire(&self) -> Result<InferencePermit, AppError> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(InferencePermit(permit));
        }
        let queued = self.waiting.fetch_add(1, Ordering::SeqCst);
        if queued >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(AppError::unavailable(
                "The server is busy: too many segmentation requests are running or waiting. Retry shortly.",
            )
            .with_retry_after(1));
        }
        let permit = self.slots.clone().acquire_owned().await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        permit
            .map(InferencePermit)
            .map_err(|_| AppError::unavailable("The server is shutting down").with_retry_after(5))
    }

    /// Inferences holding a slot now.
    pub fn running(&self) -> usize {
        self.capacity.saturating_sub(self.slots.available_permits())
    }

    /// Requests waiting for a slot now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_the_running_inferences() {
        let limiter = InferenceLimiter::new(2, 0);
        assert_eq!(limiter.running(), 0);
        let first = limiter.acquire().await.unwrap();
        let second = limiter.acquire().await.unwrap();
        assert_eq!(limiter.running(), 2);
        drop(first);
        assert_eq!(limiter.running(), 1);
        drop(second);
        assert_eq!(limiter.running(), 0);
    }

    #[tokio::test]
    async fn rejects_past_the_queue() {
        let limiter = Arc::new(InferenceLimiter::new(1, 1));
        let first = limiter.acquire().await.unwrap();
        let l2 = limiter.clone();
        let waiter = tokio::spawn(async move { l2.acquire().await.map(|_| ()) });
        while limiter.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        let third = limiter.acquire().await.err().unwrap();
        assert_eq!(third.status, 503);
        assert_eq!(third.retry_after, Some(1));
        drop(first);
        waiter.await.unwrap().unwrap();
    }
}
