//! The progress of a job run by a clustered server, on the replica that runs it (the
//! coordinator). With `tile_fanout` and more than one tile, `planned` puts every tile not yet
//! in the store on the cluster's tile stream and gives the inference slot back; `finished(i)`
//! then waits for tile i to appear in the shared store (computed by any replica's worker,
//! this one's included) instead of computing it, so the run merges exactly the tiles a
//! single-node run would. While it waits it watches the job: dismissed elsewhere → the run
//! stops as dismissed; failed by a worker, or past the deadline → the run stops. Without
//! fan-out (or when the stream cannot be written) it behaves as [`JobProgress`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::progress::JobProgress;
use super::record::JobStatus;
use super::store::JobStore;
use super::tile_masks;
use crate::cluster::{tile_queue, Redis};
use crate::masks::Mask;
use crate::pipeline::progress::TileProgress;
use crate::pipeline::Deadline;

/// How often the coordinator looks for a tile it waits for.
const POLL: Duration = Duration::from_millis(50);
/// How often, while waiting, it reads the job's state (dismissed or failed elsewhere).
const STATUS_EVERY: Duration = Duration::from_millis(500);

/// The coordinator's progress sink of one job.
pub struct ClusterProgress {
    local: Arc<JobProgress>,
    id: String,
    store: Arc<dyn JobStore>,
    redis: Arc<Redis>,
    cancel: Arc<AtomicBool>,
    /// This run must stop without deciding the job (lease lost, ended elsewhere, deadline).
    stop: Arc<AtomicBool>,
    deadline: Deadline,
    fanout: bool,
    /// The tiles went to the stream: they are awaited, not computed here.
    fanned: AtomicBool,
}

impl ClusterProgress {
    /// The sink of job `id`, over `local` (the single-node behaviour); `fanout` enables the
    /// tile stream.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        local: Arc<JobProgress>,
        id: String,
        store: Arc<dyn JobStore>,
        redis: Arc<Redis>,
        cancel: Arc<AtomicBool>,
        stop: Arc<AtomicBool>,
        deadline: Deadline,
        fanout: bool,
    ) -> ClusterProgress {
        ClusterProgress {
            local,
            id,
            store,
            redis,
            cancel,
            stop,
            deadline,
            fanout,
            fanned: AtomicBool::new(false),
        }
    }

    /// Puts the tiles not yet stored on the stream; false when it could not.
    fn fan_out(&self, total: usize) -> bool {
        let mut missing = Vec::new();
        for index in 0..total as u32 {
            match self.store.tile(&self.id, index) {
                Ok(Some(_)) => {}
                Ok(None) => missing.push(index),
                Err(e) => {
                    tracing::warn!(job = %self.id, "tiles not fanned out, computed here: {e}");
                    return false;
                }
            }
        }
        let queued = tile_queue::ensure_group(&self.redis)
            .and_then(|()| tile_queue::enqueue(&self.redis, &self.id, &missing));
        if let Err(e) = queued {
            tracing::warn!(job = %self.id, "tiles not fanned out, computed here: {e}");
            return false;
        }
        tracing::info!(job = %self.id, tiles = total, queued = missing.len(), "tiles fanned out to the cluster");
        true
    }

    /// Waits for tile `index` in the store. `Some(empty)` with the run marked to stop when the
    /// job ends meanwhile (the run's next `cancelled()` check stops it).
    fn wait_for(&self, index: u32) -> Option<Vec<Mask>> {
        let mut status_checked = Instant::now();
        let mut logged_error = false;
        loop {
            if self.cancelled() {
                return Some(Vec::new());
            }
            if self.deadline.passed() {
                self.stop.store(true, Ordering::SeqCst);
                return Some(Vec::new());
            }
            match self.store.tile(&self.id, index) {
                Ok(Some(bytes)) => {
                    if let Some(masks) = tile_masks::decode(&bytes) {
                        return Some(masks);
                    }
                    tracing::error!(job = %self.id, tile = index, "a stored tile does not decode: computing it here");
                    return None;
                }
                Ok(None) => {}
                Err(e) if !logged_error => {
                    logged_error = true;
                    tracing::warn!(job = %self.id, tile = index, "waiting for a tile: {e}");
                }
                Err(_) => {}
            }
            if status_checked.elapsed() >= STATUS_EVERY {
                status_checked = Instant::now();
                self.check_status();
            }
            std::thread::sleep(POLL);
        }
    }

    /// Stops the run when the job was dismissed or ended on another replica.
    fn check_status(&self) {
        match self.store.get(&self.id) {
            Ok(None) => self.cancel.store(true, Ordering::SeqCst),
            Ok(Some(job)) => match job.status {
                JobStatus::Dismissed => self.cancel.store(true, Ordering::SeqCst),
                JobStatus::Failed | JobStatus::Successful => {
                    tracing::info!(job = %self.id, status = job.status.as_str(), "the job ended on another replica");
                    self.stop.store(true, Ordering::SeqCst);
                }
                JobStatus::Accepted | JobStatus::Running => {}
            },
            Err(_) => {}
        }
    }
}

impl TileProgress for ClusterProgress {
    fn planned(&self, total: usize) {
        self.local.planned(total);
        if self.fanout && total > 1 && self.fan_out(total) {
            self.fanned.store(true, Ordering::SeqCst);
            // The workers compute; the coordinator only waits and merges.
            self.local.release_slot();
        }
    }

    fn finished(&self, index: usize) -> Option<Vec<Mask>> {
        if !self.fanned.load(Ordering::SeqCst) {
            return self.local.finished(index);
        }
        let masks = self.wait_for(index as u32);
        if masks.is_none() {
            self.local.take_slot();
        }
        masks
    }

    fn tile_done(&self, index: usize, masks: &[Mask]) {
        self.local.tile_done(index, masks);
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst) || self.stop.load(Ordering::SeqCst)
    }
}
