//! A job's [`TileProgress`]: finished tiles go to the store (so a restart resumes from them),
//! tiles an earlier attempt finished come back from it, a dismissal stops the run before its
//! next tile, and the job holds an inference slot only while it computes a tile: it gives the
//! slot back after every tile, so that an interactive request waiting for one goes first.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::record::now_ms;
use super::store::JobStore;
use super::tile_masks;
use crate::cache::{BackgroundPermit, InferenceLimiter};
use crate::masks::Mask;
use crate::pipeline::progress::TileProgress;
use crate::pipeline::Deadline;

/// The progress sink of one running job.
pub struct JobProgress {
    id: String,
    store: Arc<dyn JobStore>,
    cancel: Arc<AtomicBool>,
    limiter: Arc<InferenceLimiter>,
    deadline: Deadline,
    slot: Mutex<Option<BackgroundPermit>>,
}

impl JobProgress {
    /// The sink of job `id`; `cancel` is set when it is dismissed.
    pub fn new(
        id: String,
        store: Arc<dyn JobStore>,
        cancel: Arc<AtomicBool>,
        limiter: Arc<InferenceLimiter>,
        deadline: Deadline,
    ) -> JobProgress {
        JobProgress {
            id,
            store,
            cancel,
            limiter,
            deadline,
            slot: Mutex::new(None),
        }
    }

    /// Takes an inference slot unless one is held, waiting (blocking) behind interactive
    /// requests; false when the job was dismissed or ran out of time meanwhile.
    pub fn take_slot(&self) -> bool {
        if self.slot.lock().is_some() {
            return true;
        }
        let stop = || self.cancel.load(Ordering::SeqCst) || self.deadline.passed();
        match self.limiter.acquire_background_blocking(stop) {
            Some(permit) => {
                *self.slot.lock() = Some(permit);
                true
            }
            None => false,
        }
    }

    /// Gives the inference slot back.
    pub fn release_slot(&self) {
        self.slot.lock().take();
    }

    fn log_error(&self, what: &str, e: impl std::fmt::Display) {
        tracing::error!(job = %self.id, "{what}: {e}");
    }
}

impl TileProgress for JobProgress {
    fn planned(&self, total: usize) {
        let total = u32::try_from(total).unwrap_or(u32::MAX);
        tracing::info!(job = %self.id, tiles = total, "job planned");
        if let Err(e) = self.store.planned(&self.id, total, now_ms()) {
            self.log_error("recording the planned tiles", e);
        }
    }

    fn finished(&self, index: usize) -> Option<Vec<Mask>> {
        let stored = match self.store.tile(&self.id, index as u32) {
            Ok(bytes) => bytes.and_then(|b| tile_masks::decode(&b)),
            Err(e) => {
                self.log_error("reading a finished tile", e);
                None
            }
        };
        if stored.is_none() {
            // This tile will be computed: it needs a slot (waiting behind interactive requests).
            self.take_slot();
        }
        stored
    }

    fn tile_done(&self, index: usize, masks: &[Mask]) {
        match self
            .store
            .put_tile(&self.id, index as u32, &tile_masks::encode(masks), now_ms())
        {
            Ok(true) => {}
            Ok(false) => self.cancel.store(true, Ordering::SeqCst),
            Err(e) => self.log_error("storing a finished tile", e),
        }
        self.release_slot();
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }
}
