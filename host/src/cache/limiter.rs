//! At most N inferences at once, at most Q requests waiting; past that, 503 with Retry-After.
//! A slot is held until the blocking work in it has stopped, not merely until its request was
//! answered.
//!
//! Background work (a job's tiles) shares the same slots but gives way: it takes a slot only
//! when no interactive request is waiting, and never the last free one when there are two or
//! more, so that a click is served at once (or, with one slot, after the current tile).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::AppError;
use crate::pipeline::Deadline;

/// Bounds the inferences running and waiting.
pub struct InferenceLimiter {
    slots: Arc<Semaphore>,
    capacity: usize,
    waiting: AtomicUsize,
    max_waiting: usize,
    /// Slots held by background work now.
    background: Arc<AtomicUsize>,
}

/// A running inference's slot; released on drop.
pub struct InferencePermit(#[allow(dead_code)] OwnedSemaphorePermit);

/// A slot held by background work; released (and counted out) on drop.
pub struct BackgroundPermit {
    _permit: OwnedSemaphorePermit,
    background: Arc<AtomicUsize>,
}

impl Drop for BackgroundPermit {
    fn drop(&mut self) {
        self.background.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A place in the wait queue, given back when dropped: when the slot is granted, and also when
/// the waiting request is abandoned (its client disconnected or its time limit fired, which
/// drops the `acquire` future mid-await).
struct QueuePlace<'a>(&'a AtomicUsize);

impl Drop for QueuePlace<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl InferenceLimiter {
    /// `running` inferences at once, `waiting` more queued.
    pub fn new(running: usize, waiting: usize) -> InferenceLimiter {
        InferenceLimiter {
            slots: Arc::new(Semaphore::new(running.max(1))),
            capacity: running.max(1),
            waiting: AtomicUsize::new(0),
            max_waiting: waiting,
            background: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Waits for a slot, or answers 503 at once when the queue is full.
    pub async fn acquire(&self) -> Result<InferencePermit, AppError> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(InferencePermit(permit));
        }
        let queued = self.waiting.fetch_add(1, Ordering::SeqCst);
        let place = QueuePlace(&self.waiting);
        if queued >= self.max_waiting {
            return Err(AppError::unavailable(
                "The server is busy: too many segmentation requests are running or waiting. Retry shortly.",
            )
            .with_retry_after(1));
        }
        let permit = self.slots.clone().acquire_owned().await;
        drop(place);
        permit
            .map(InferencePermit)
            .map_err(|_| AppError::unavailable("The server is shutting down").with_retry_after(5))
    }

    /// Runs `job` on the blocking pool in a slot, within `deadline` (measured from the request's
    /// arrival, so waiting for the slot counts). Past the deadline the caller gets 504 at once,
    /// while the slot stays taken until `job` returns: a job stops at its next deadline check
    /// (`job` must check `deadline` between its stages), and the next request never runs beside
    /// an abandoned one. A job that starts after the deadline does not run.
    pub async fn run<T: Send + 'static>(
        &self,
        deadline: Deadline,
        job: impl FnOnce() -> Result<T, AppError> + Send + 'static,
    ) -> Result<T, AppError> {
        let work = async {
            let permit = self.acquire().await?;
            tokio::task::spawn_blocking(move || {
                let _slot = permit;
                deadline.check()?;
                job()
            })
            .await
            .map_err(|e| AppError::internal(format!("segmentation task failed: {e}")))?
        };
        match tokio::time::timeout_at(deadline.at().into(), work).await {
            Ok(result) => result,
            Err(_) => Err(deadline.exceeded()),
        }
    }

    /// Slots background work may hold at once: all but one when there are two or more.
    pub fn background_capacity(&self) -> usize {
        self.capacity.saturating_sub(1).max(1)
    }

    /// A slot for background work, when one is free, no interactive request waits, and taking
    /// it leaves [`Self::background_capacity`] respected. Never waits.
    pub fn try_acquire_background(&self) -> Option<BackgroundPermit> {
        if self.waiting() > 0 {
            return None;
        }
        let limit = self.background_capacity();
        self.background
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()?;
        match self.slots.clone().try_acquire_owned() {
            Ok(permit) => Some(BackgroundPermit {
                _permit: permit,
                background: self.background.clone(),
            }),
            Err(_) => {
                self.background.fetch_sub(1, Ordering::SeqCst);
                None
            }
        }
    }

    /// Waits (blocking the calling thread, polling) for a background slot; `None` once
    /// `stop()` says to give up. For blocking threads only.
    pub fn acquire_background_blocking(&self, stop: impl Fn() -> bool) -> Option<BackgroundPermit> {
        loop {
            if stop() {
                return None;
            }
            if let Some(permit) = self.try_acquire_background() {
                return Some(permit);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Slots held by background work now.
    pub fn background(&self) -> usize {
        self.background.load(Ordering::SeqCst)
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
    use std::sync::mpsc;
    use std::time::Duration;

    /// Background work keeps one slot free for interactive requests, and gives way to waiting
    /// ones.
    #[tokio::test]
    async fn background_work_gives_way() {
        let limiter = InferenceLimiter::new(2, 4);
        let job = limiter.try_acquire_background().expect("a free slot");
        assert!(
            limiter.try_acquire_background().is_none(),
            "the last slot stays for interactive requests"
        );
        let click = limiter.acquire().await.expect("the reserved slot");
        drop(job);
        assert_eq!(limiter.background(), 0);
        // One slot: a job takes it only while nobody waits.
        let single = Arc::new(InferenceLimiter::new(1, 4));
        let job = single.try_acquire_background().expect("free");
        let s = single.clone();
        let waiter = tokio::spawn(async move { s.acquire().await.map(|_| ()) });
        until_waiting(&single, 1).await;
        drop(job);
        assert!(
            single.try_acquire_background().is_none(),
            "a waiting request goes first"
        );
        waiter.await.unwrap().unwrap();
        assert!(single.try_acquire_background().is_some());
        drop(click);
    }

    /// Waits (yielding) until `n` requests are queued.
    async fn until_waiting(limiter: &InferenceLimiter, n: usize) {
        while limiter.waiting() != n {
            tokio::task::yield_now().await;
        }
    }

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
        until_waiting(&limiter, 1).await;
        let third = limiter.acquire().await.err().unwrap();
        assert_eq!(third.status, 503);
        assert_eq!(third.retry_after, Some(1));
        assert_eq!(limiter.waiting(), 1, "a refused request takes no place");
        drop(first);
        waiter.await.unwrap().unwrap();
        assert_eq!(limiter.waiting(), 0);
    }

    /// Queued requests whose clients give up (their futures dropped: a disconnect, or a time
    /// limit firing) leave the queue; a request arriving afterwards is queued, not refused.
    #[tokio::test]
    async fn abandoned_waiters_leave_the_queue() {
        let limiter = Arc::new(InferenceLimiter::new(1, 2));
        let running = limiter.acquire().await.unwrap();
        for round in 0..3 {
            // Two clients queue, then one disconnects and the other's time limit fires.
            let l = limiter.clone();
            let disconnected = tokio::spawn(async move { l.acquire().await.map(|_| ()) });
            until_waiting(&limiter, 1).await;
            let l = limiter.clone();
            let timed_out = tokio::spawn(async move {
                tokio::time::timeout(std::time::Duration::from_millis(20), l.acquire())
                    .await
                    .is_err()
            });
            assert!(
                timed_out.await.unwrap(),
                "round {round}: the wait timed out"
            );
            disconnected.abort();
            assert!(disconnected.await.unwrap_err().is_cancelled());
            assert_eq!(limiter.waiting(), 0, "round {round}: the queue is empty");
        }
        // The long request still runs: a new one waits for it instead of getting 503.
        let l = limiter.clone();
        let next = tokio::spawn(async move { l.acquire().await.map(|_| ()) });
        until_waiting(&limiter, 1).await;
        drop(running);
        next.await.unwrap().expect("queued, then served");
        assert_eq!(limiter.waiting(), 0);
    }

    /// A job past its deadline: the request gets 504 at the deadline, but the slot stays taken
    /// until the job itself returns; only then does the next request get it.
    #[tokio::test]
    async fn a_timed_out_job_keeps_its_slot_until_it_stops() {
        let limiter = Arc::new(InferenceLimiter::new(1, 0));
        let (started_tx, started_rx) = mpsc::channel::<()>();
        let (finish_tx, finish_rx) = mpsc::channel::<()>();
        let (finished_tx, finished_rx) = mpsc::channel::<()>();
        // Generous: the job must have started (on a loaded machine) before the deadline.
        let deadline = Deadline::after(Duration::from_secs(2));
        let l = limiter.clone();
        let request = tokio::spawn(async move {
            l.run(deadline, move || {
                started_tx.send(()).unwrap();
                // Blocking work that does not look at the deadline until released.
                finish_rx.recv().unwrap();
                finished_tx.send(()).unwrap();
                Ok(())
            })
            .await
        });
        tokio::task::spawn_blocking(move || started_rx.recv())
            .await
            .unwrap()
            .expect("the job started before its deadline");
        assert_eq!(request.await.unwrap().unwrap_err().status, 504);
        // The work goes on: the only slot is still taken (no queue: 503 at once).
        for _ in 0..3 {
            let refused = limiter
                .acquire()
                .await
                .err()
                .expect("the slot is still taken");
            assert_eq!(refused.status, 503);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        finish_tx.send(()).unwrap();
        tokio::task::spawn_blocking(move || finished_rx.recv().unwrap())
            .await
            .unwrap();
        // The job has returned: its slot comes free (the permit drops right after it).
        let permit = loop {
            match limiter.acquire().await {
                Ok(p) => break p,
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        };
        drop(permit);
    }

    /// The deadline counts from the request's arrival: time spent before `run` (reading the
    /// upload, waiting in the queue) is part of it, and a job whose deadline passed before it
    /// got its slot never starts.
    #[tokio::test]
    async fn the_deadline_counts_from_arrival() {
        let limiter = Arc::new(InferenceLimiter::new(1, 1));
        let deadline = Deadline::after(Duration::from_millis(100));
        tokio::time::sleep(Duration::from_millis(150)).await;
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = ran.clone();
        let answer = limiter
            .run(deadline, move || {
                flag.store(true, Ordering::SeqCst);
                Ok(())
            })
            .await;
        assert_eq!(answer.unwrap_err().status, 504);
        // Queued behind a running job past its deadline: 504, and it never runs.
        let running = limiter.acquire().await.unwrap();
        let deadline = Deadline::after(Duration::from_millis(100));
        let flag = ran.clone();
        let queued = limiter.run(deadline, move || {
            flag.store(true, Ordering::SeqCst);
            Ok(())
        });
        assert_eq!(queued.await.unwrap_err().status, 504);
        assert_eq!(limiter.waiting(), 0, "the abandoned wait left the queue");
        drop(running);
        tokio::task::yield_now().await;
        assert!(
            !ran.load(Ordering::SeqCst),
            "a job past its deadline never ran"
        );
    }
}
