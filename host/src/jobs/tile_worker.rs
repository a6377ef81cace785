//! Every clustered replica's tile worker: a dedicated thread that takes tiles of fanned-out
//! jobs from the cluster's stream (first the ones a silent replica left idle longer than
//! `tile_claim_idle_ms`, then new ones), computes each in a background inference slot, stores
//! its masks in the shared job store and acknowledges the entry.
//!
//! One tile of a job is computed by planning the job as its coordinator does and running it
//! with [`OneTile`] as progress: every other tile is reported finished (with no masks, so it
//! costs nothing), the run computes tile i and stores it, and then reports itself cancelled so
//! that it stops before merging anything. While a tile is computed a second thread keeps the
//! entry claimed (XCLAIM), so a slow tile is never taken over; a killed worker stops doing so,
//! and its entry goes to another replica. A tile taken over [`MAX_DELIVERIES`] times fails its
//! job instead (something in it stops every replica that computes it).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::Duration;

use super::record::{now_ms, ImageRef, JobRecord};
use super::{tile_masks, Jobs, StoreError};
use crate::cluster::tile_queue::{self, TileEntry};
use crate::cluster::{ClusterError, Redis};
use crate::config::ClusterConfig;
use crate::masks::Mask;
use crate::pipeline::progress::TileProgress;
use crate::pipeline::Deadline;

/// How long one read of the stream waits for a new entry.
const BLOCK_MS: u64 = 1000;
/// Pause after a failed Redis call (Redis down: calls fail fast during its pause).
const RETRY: Duration = Duration::from_secs(1);
/// Deliveries of one tile after which it fails its job: every replica that took it stopped
/// (killed, out of memory) before finishing it, and taking it over again would only stop the
/// next one.
const MAX_DELIVERIES: u64 = 4;

/// A running worker (it runs until the process ends unless stopped).
pub struct WorkerHandle {
    stop: Arc<AtomicBool>,
}

impl WorkerHandle {
    /// Stops the worker after the entry it works on (tests).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Starts this replica's worker thread. It reads the stream on a connection of its own (a
/// blocking read must not hold the replica's shared connection), as consumer `node_id`.
pub fn spawn(
    jobs: Arc<Jobs>,
    shared: Arc<Redis>,
    config: &ClusterConfig,
    runtime: tokio::runtime::Handle,
) -> anyhow::Result<WorkerHandle> {
    let mut own = config.clone();
    own.node_id = Some(shared.node_id().to_string());
    own.redis_timeout_ms = config.redis_timeout_ms + BLOCK_MS;
    let reader = Redis::from_config(&own)?
        .ok_or_else(|| anyhow::anyhow!("the tile worker needs cluster.redis_url"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let worker = TileWorker {
        stop: stop.clone(),
        jobs,
        reader,
        node: shared.node_id().to_string(),
        shared,
        claim_idle_ms: config.tile_claim_idle_ms.max(1),
        runtime,
    };
    std::thread::Builder::new()
        .name("tile-worker".into())
        .spawn(move || worker.run())?;
    Ok(WorkerHandle { stop })
}

struct TileWorker {
    stop: Arc<AtomicBool>,
    jobs: Arc<Jobs>,
    /// This worker's own connection (stream reads).
    reader: Redis,
    /// The replica's connection (short calls: keeping claims, acknowledging).
    shared: Arc<Redis>,
    node: String,
    claim_idle_ms: u64,
    runtime: tokio::runtime::Handle,
}

/// What became of a tile.
enum Outcome {
    /// Computed and stored.
    Stored,
    /// Nothing to do: the job ended, or the tile was stored already.
    Gone,
    /// The store could not be written (Redis down): the entry stays pending, and is taken over
    /// once idle.
    Retry,
    /// The tile cannot be computed: the job fails with this message.
    Failed(String),
}

impl TileWorker {
    fn run(self) {
        tracing::info!(node = %self.node, stream = tile_queue::STREAM, "tile worker started");
        let mut group_ready = false;
        while !self.stop.load(Ordering::SeqCst) {
            if !group_ready {
                if tile_queue::ensure_group(&self.reader).is_err() {
                    std::thread::sleep(RETRY);
                    continue;
                }
                group_ready = true;
            }
            let next = match tile_queue::claim_idle(&self.reader, &self.node, self.claim_idle_ms) {
                Ok(Some(entry)) => {
                    tracing::info!(job = %entry.job, tile = entry.tile, "took over an idle tile");
                    self.fail_if_cursed(&entry);
                    Ok(Some(entry))
                }
                Ok(None) => tile_queue::read_new(&self.reader, &self.node, BLOCK_MS),
                Err(e) => Err(e),
            };
            match next {
                Ok(Some(entry)) => self.work(entry),
                Ok(None) => {}
                Err(e) => {
                    if let ClusterError::Redis(r) = &e {
                        if r.code() == Some("NOGROUP") {
                            // Redis lost the stream (restarted empty): make it again.
                            group_ready = false;
                        }
                    }
                    tracing::debug!("tile worker: {e}");
                    std::thread::sleep(RETRY);
                }
            }
        }
    }

    /// Fails the job of a tile taken over [`MAX_DELIVERIES`] times (its entry is then
    /// acknowledged as for any ended job).
    fn fail_if_cursed(&self, entry: &TileEntry) {
        let Ok(n) = tile_queue::deliveries(&self.reader, &entry.entry_id) else {
            return;
        };
        if n >= MAX_DELIVERIES {
            let message = format!(
                "tile {} was started {n} times and never finished: every replica computing it stopped (killed, or out of memory?)",
                entry.tile
            );
            tracing::error!(job = %entry.job, tile = entry.tile, "{message}");
            if let Err(e) = self.jobs.store.fail(&entry.job, &message, now_ms()) {
                tracing::warn!(job = %entry.job, "failing the job: {e}");
            }
        }
    }

    /// Deals with one entry, acknowledging it unless it must be retried.
    fn work(&self, entry: TileEntry) {
        let outcome = if entry.is_valid() {
            self.tile(&entry)
        } else {
            Outcome::Gone
        };
        match outcome {
            Outcome::Stored => {
                crate::metrics::cluster_tile_computed();
                tracing::info!(job = %entry.job, tile = entry.tile, node = %self.node, "tile computed for the cluster");
            }
            Outcome::Gone => {}
            Outcome::Retry => return,
            Outcome::Failed(message) => {
                tracing::warn!(job = %entry.job, tile = entry.tile, %message, "tile failed: the job fails");
                if let Err(e) = self.jobs.store.fail(&entry.job, &message, now_ms()) {
                    tracing::warn!(job = %entry.job, "failing the job: {e}");
                    return;
                }
            }
        }
        if let Err(e) = tile_queue::done(&self.shared, &entry.entry_id) {
            tracing::warn!(job = %entry.job, tile = entry.tile, "acknowledging a tile: {e}");
        }
    }

    fn tile(&self, entry: &TileEntry) -> Outcome {
        let store = &self.jobs.store;
        let job = match store.get(&entry.job) {
            Ok(Some(job)) if !job.status.is_final() => job,
            Ok(_) => return Outcome::Gone,
            Err(_) => return Outcome::Retry,
        };
        match store.tile(&job.id, entry.tile) {
            Ok(None) => {}
            Ok(Some(_)) => return Outcome::Gone,
            Err(_) => return Outcome::Retry,
        }
        let _claim = ClaimKeeper::start(
            self.shared.clone(),
            self.node.clone(),
            entry.entry_id.clone(),
            Duration::from_millis((self.claim_idle_ms / 4).max(20)),
        );
        let Some(_slot) = self.jobs.limiter.acquire_background_blocking(|| false) else {
            return Outcome::Retry;
        };
        tracing::info!(job = %job.id, tile = entry.tile, node = %self.node, "computing a tile for the cluster");
        self.compute(job, entry.tile)
    }

    /// Plans `job` and runs it for tile `index` only.
    fn compute(&self, job: JobRecord, index: u32) -> Outcome {
        let limit = Duration::from_secs(self.jobs.config.job_timeout_secs);
        let deadline = Deadline::after(limit);
        let input =
            (job.spec.image == ImageRef::Upload).then(|| self.jobs.job_dir(&job.id).join("input"));
        let planned =
            self.runtime
                .block_on(self.jobs.planner.plan(job.spec.clone(), input, deadline));
        let work = match planned {
            Ok(work) => work,
            Err(e) => return Outcome::Failed(e.detail),
        };
        let progress = Arc::new(OneTile::new(
            job.id.clone(),
            index as usize,
            self.jobs.store.clone(),
        ));
        let span = tracing::info_span!("tile", job = %job.id, tile = index);
        let _span = span.enter();
        let result = work.run(progress.clone());
        match progress.state() {
            OneTileState::Stored => Outcome::Stored,
            OneTileState::JobEnded => Outcome::Gone,
            OneTileState::StoreFailed => Outcome::Retry,
            OneTileState::NotInPlan(total) => Outcome::Failed(format!(
                "tile {index} is not in the job's plan of {total} tiles"
            )),
            OneTileState::Pending => match result {
                Err(e) => Outcome::Failed(e.detail),
                Ok(_) => Outcome::Failed(format!("the run did not compute tile {index}")),
            },
        }
    }
}

/// Keeps a stream entry claimed by this replica while its tile is computed (XCLAIM every
/// `every`, which resets its idle time); stops when dropped.
struct ClaimKeeper {
    _stop: std::sync::mpsc::Sender<()>,
}

impl ClaimKeeper {
    fn start(redis: Arc<Redis>, node: String, entry_id: String, every: Duration) -> ClaimKeeper {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let _ = std::thread::Builder::new()
            .name("tile-claim".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    let _ = tile_queue::keep_claimed(&redis, &node, &entry_id);
                }
            });
        ClaimKeeper { _stop: stop }
    }
}

/// Where a one-tile run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OneTileState {
    /// The tile has not been reported yet.
    Pending,
    /// The tile's masks are in the store.
    Stored,
    /// The store refused the tile: the job ended meanwhile.
    JobEnded,
    /// The store could not be written.
    StoreFailed,
    /// The run planned fewer tiles than the index (it carries the total).
    NotInPlan(usize),
}

/// The progress of a run that computes only tile `index` of a job (see the module).
pub struct OneTile {
    id: String,
    index: usize,
    store: Arc<dyn super::JobStore>,
    state: parking_lot::Mutex<OneTileState>,
    over: AtomicBool,
}

impl OneTile {
    /// The progress of a run for tile `index` of job `id`, stored into `store`.
    pub fn new(id: String, index: usize, store: Arc<dyn super::JobStore>) -> OneTile {
        OneTile {
            id,
            index,
            store,
            state: parking_lot::Mutex::new(OneTileState::Pending),
            over: AtomicBool::new(false),
        }
    }

    /// Where the run stands.
    pub fn state(&self) -> OneTileState {
        *self.state.lock()
    }

    fn end(&self, state: OneTileState) {
        *self.state.lock() = state;
        self.over.store(true, Ordering::SeqCst);
    }
}

impl TileProgress for OneTile {
    fn planned(&self, total: usize) {
        if self.index >= total {
            self.end(OneTileState::NotInPlan(total));
        }
    }

    fn finished(&self, index: usize) -> Option<Vec<Mask>> {
        // Every other tile is someone else's: reported done with no masks, costing nothing.
        (index != self.index).then(Vec::new)
    }

    fn tile_done(&self, index: usize, masks: &[Mask]) {
        if index != self.index {
            return;
        }
        let stored =
            self.store
                .put_tile(&self.id, index as u32, &tile_masks::encode(masks), now_ms());
        match stored {
            Ok(true) => self.end(OneTileState::Stored),
            Ok(false) => self.end(OneTileState::JobEnded),
            Err(e) => {
                if matches!(e, StoreError::Failed(_)) {
                    tracing::error!(job = %self.id, tile = index, "storing a tile: {e}");
                }
                self.end(OneTileState::StoreFailed);
            }
        }
    }

    /// True once the tile is reported: the run stops there, before merging.
    fn cancelled(&self) -> bool {
        self.over.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::record::{JobSpec, ProcessId};
    use crate::jobs::sqlite::SqliteStore;
    use crate::jobs::JobStore;
    use crate::masks::BBox;

    fn mask(index: usize) -> Mask {
        Mask {
            id: index as u32,
            label: index as u32,
            score: 0.5,
            stability: 1.0,
            area: 4,
            bbox: BBox {
                x: index as u32,
                y: 0,
                width: 2,
                height: 2,
            },
            runs: vec![0, 4],
        }
    }

    /// A run over `total` tiles following the progress contract, as `run_tiles` does.
    fn run(progress: &dyn TileProgress, total: usize) -> Vec<usize> {
        progress.planned(total);
        let mut computed = Vec::new();
        for i in 0..total {
            if progress.cancelled() {
                break;
            }
            if progress.finished(i).is_none() {
                computed.push(i);
                progress.tile_done(i, &[mask(i)]);
            }
        }
        computed
    }

    #[test]
    fn one_tile_computes_only_its_tile_and_stores_it() {
        let store: Arc<dyn JobStore> = Arc::new(SqliteStore::in_memory().unwrap());
        let spec = JobSpec {
            process: ProcessId::Automatic,
            fields: vec![],
            image: ImageRef::Stored("x".into()),
        };
        store
            .insert(&JobRecord::accepted("j".into(), spec, 1))
            .unwrap();
        store.start("j", 2).unwrap();
        let one = OneTile::new("j".into(), 2, store.clone());
        assert_eq!(run(&one, 5), [2]);
        assert_eq!(one.state(), OneTileState::Stored);
        assert!(one.cancelled(), "the run stops after its tile");
        let stored = store.tile("j", 2).unwrap().unwrap();
        assert_eq!(tile_masks::decode(&stored).unwrap(), [mask(2)]);
        assert_eq!(store.tile("j", 1).unwrap(), None, "other tiles untouched");
        // A tile beyond the plan, and a job that ended meanwhile.
        let beyond = OneTile::new("j".into(), 9, store.clone());
        assert!(run(&beyond, 5).is_empty());
        assert_eq!(beyond.state(), OneTileState::NotInPlan(5));
        store.dismiss("j", 3).unwrap();
        let late = OneTile::new("j".into(), 0, store.clone());
        assert_eq!(run(&late, 5), [0]);
        assert_eq!(late.state(), OneTileState::JobEnded);
    }
}
