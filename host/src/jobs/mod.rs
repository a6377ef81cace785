//! Long work as jobs (OGC API – Processes): accepted, run in the background at most
//! `[jobs] max_running` at a time, persisted so that a restart (even `kill -9`) resumes running
//! jobs from their finished tiles and starts accepted ones, and swept `keep_results_hours` after
//! they finish.
//!
//! On disk, under `server.cache_dir`: `jobs.sqlite3` (the [`JobStore`]) and `jobs/<id>/` with
//! the job's uploaded raster (`input`, until the job ends) and its output (`result`).
//! What a job runs comes from a [`Planner`] (the segment pipeline, or a fake in tests).
//!
//! On a cluster (`[cluster] redis_url`) the store is Redis ([`redis_store`]) and the job files
//! live under `cluster.shared_dir`, so every replica answers for every job. A job runs on the
//! replica that holds its lease (`cluster::job_lease`); every replica looks for unfinished jobs
//! whose lease is gone (their replica died) and takes them over, from their finished tiles.
//! With `tile_fanout`, a tiled job's tiles are computed by every replica ([`cluster_progress`]
//! on the coordinator, [`tile_worker`] on each replica).

mod cluster_progress;
mod progress;
pub mod record;
pub mod redis_store;
pub mod sqlite;
pub mod store;
pub mod tile_masks;
pub mod tile_worker;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use parking_lot::Mutex;
use tokio::sync::Semaphore;

pub use progress::JobProgress;
pub use record::{now_ms, ImageRef, JobRecord, JobResult, JobSpec, JobStatus, ProcessId};
pub use store::{JobStore, StoreError};

use crate::cache::InferenceLimiter;
use crate::cluster::{job_lease, Redis};
use crate::config::{ClusterConfig, JobsConfig};
use crate::error::AppError;
use crate::masks::FormattedOutput;
use crate::pipeline::progress::TileProgress;
use crate::pipeline::Deadline;

/// What a finished run hands back.
pub struct JobOutput {
    pub output: FormattedOutput,
    pub mask_count: usize,
}

/// One job's work, ready to run (blocking, on a blocking thread).
pub trait JobWork: Send {
    /// Runs to the end, telling `progress` about each tile.
    fn run(self: Box<Self>, progress: Arc<dyn TileProgress>) -> Result<JobOutput, AppError>;
}

/// Turns a stored job into its work: checks the inputs again and finds the raster (`input`
/// holds an uploaded one).
pub trait Planner: Send + Sync {
    fn plan(
        &self,
        spec: JobSpec,
        input: Option<PathBuf>,
        deadline: Deadline,
    ) -> BoxFuture<'static, Result<Box<dyn JobWork>, AppError>>;
}

/// How often finished jobs past `keep_results_hours` are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(600);

/// What a clustered server adds to its jobs.
pub struct JobsCluster {
    /// The cluster's Redis (this replica's handle).
    pub redis: Arc<Redis>,
    /// Spread tiled jobs' tiles over every replica.
    pub tile_fanout: bool,
    /// How long a silent replica keeps a job's lease (`tile_claim_idle_ms`).
    pub lease: Duration,
}

/// The jobs of this server.
pub struct Jobs {
    store: Arc<dyn JobStore>,
    planner: Arc<dyn Planner>,
    limiter: Arc<InferenceLimiter>,
    config: JobsConfig,
    /// `cache_dir/jobs`: one directory per job.
    dir: PathBuf,
    /// `max_running` permits.
    running: Arc<Semaphore>,
    /// The cancel flag of each job being run by this process.
    cancels: Mutex<HashMap<String, Arc<AtomicBool>>>,
    /// Jobs this process started or waits to start (the takeover scan leaves them alone).
    local: Mutex<HashSet<String>>,
    /// The cluster's side (`None` on a single server).
    cluster: Option<JobsCluster>,
}

/// Runs a store call on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AppError::internal(format!("job store task failed: {e}")))?
        .map_err(store_error)
}

/// A store failure for the client: 503 (retry later) when the shared store is unreachable.
fn store_error(e: StoreError) -> AppError {
    match e {
        StoreError::Unavailable(_) => {
            AppError::unavailable(format!("{e}. Jobs cannot be read or run now; retry later."))
                .with_retry_after(5)
        }
        StoreError::Failed(_) => AppError::internal(e.to_string()),
    }
}

/// 404 for an unknown job.
fn no_such_job(id: &str) -> AppError {
    AppError::new(
        axum::http::StatusCode::NOT_FOUND,
        format!("No job with id '{id}'"),
    )
}

impl Jobs {
    /// The jobs kept in `store`, with their files under `dir`.
    pub fn new(
        store: Arc<dyn JobStore>,
        planner: Arc<dyn Planner>,
        limiter: Arc<InferenceLimiter>,
        config: JobsConfig,
        dir: PathBuf,
    ) -> Arc<Jobs> {
        Jobs::with_cluster(store, planner, limiter, config, dir, None)
    }

    fn with_cluster(
        store: Arc<dyn JobStore>,
        planner: Arc<dyn Planner>,
        limiter: Arc<InferenceLimiter>,
        config: JobsConfig,
        dir: PathBuf,
        cluster: Option<JobsCluster>,
    ) -> Arc<Jobs> {
        Arc::new(Jobs {
            running: Arc::new(Semaphore::new(config.max_running.max(1))),
            store,
            planner,
            limiter,
            config,
            dir,
            cancels: Mutex::new(HashMap::new()),
            local: Mutex::new(HashSet::new()),
            cluster,
        })
    }

    /// Opens the SQLite store under `cache_dir` (blocking).
    pub fn open(
        cache_dir: &Path,
        planner: Arc<dyn Planner>,
        limiter: Arc<InferenceLimiter>,
        config: JobsConfig,
    ) -> anyhow::Result<Arc<Jobs>> {
        let dir = cache_dir.join("jobs");
        std::fs::create_dir_all(&dir)?;
        let store = sqlite::SqliteStore::open(&cache_dir.join("jobs.sqlite3"))?;
        Ok(Jobs::new(Arc::new(store), planner, limiter, config, dir))
    }

    /// The jobs of a cluster: the Redis store on `redis`, files under `shared_root/jobs`
    /// (blocking; does not need Redis to be up).
    pub fn open_shared(
        redis: Arc<Redis>,
        cluster: &ClusterConfig,
        shared_root: &Path,
        planner: Arc<dyn Planner>,
        limiter: Arc<InferenceLimiter>,
        config: JobsConfig,
    ) -> anyhow::Result<Arc<Jobs>> {
        let dir = shared_root.join("jobs");
        std::fs::create_dir_all(&dir)?;
        let store = redis_store::RedisStore::new(redis.clone());
        let cluster = JobsCluster {
            redis,
            tile_fanout: cluster.tile_fanout,
            lease: Duration::from_millis(cluster.tile_claim_idle_ms.max(100)),
        };
        Ok(Jobs::with_cluster(
            Arc::new(store),
            planner,
            limiter,
            config,
            dir,
            Some(cluster),
        ))
    }

    /// Whether tiled jobs' tiles are spread over the cluster (a worker must then run here).
    pub fn fans_out(&self) -> bool {
        self.cluster.as_ref().is_some_and(|c| c.tile_fanout)
    }

    fn job_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Accepts a job (503 past `max_accepted`); an uploaded raster is written to its directory
    /// first. Starts it as soon as a running place is free.
    pub async fn submit(
        self: &Arc<Self>,
        spec: JobSpec,
        upload: Option<Vec<u8>>,
    ) -> Result<JobRecord, AppError> {
        let store = self.store.clone();
        let active = blocking(move || store.active_count()).await?;
        if active >= self.config.max_accepted {
            return Err(AppError::unavailable(format!(
                "Too many jobs accepted and not finished ({active}, jobs.max_accepted = {}). Retry later.",
                self.config.max_accepted
            ))
            .with_retry_after(30));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let dir = self.job_dir(&id);
        let job = JobRecord::accepted(id.clone(), spec, now_ms());
        let store = self.store.clone();
        let record = job.clone();
        tokio::task::spawn_blocking(move || -> Result<(), AppError> {
            std::fs::create_dir_all(&dir)
                .map_err(|e| AppError::internal(format!("creating {}: {e}", dir.display())))?;
            if let Some(bytes) = upload {
                std::fs::write(dir.join("input"), bytes).map_err(|e| {
                    AppError::internal(format!(
                        "writing the job's raster to {}: {e}",
                        dir.display()
                    ))
                })?;
            }
            store.insert(&record).map_err(|e| {
                let _ = std::fs::remove_dir_all(&dir);
                store_error(e)
            })
        })
        .await
        .map_err(|e| AppError::internal(format!("job store task failed: {e}")))??;
        tracing::info!(job = %id, process = job.spec.process.as_str(), "job accepted");
        self.spawn(id);
        Ok(job)
    }

    /// Starts running job `id` in the background (when a running place is free).
    fn spawn(self: &Arc<Self>, id: String) {
        if !self.local.lock().insert(id.clone()) {
            return;
        }
        let jobs = self.clone();
        tokio::spawn(async move {
            let _place = jobs.running.clone().acquire_owned().await;
            let cancel = Arc::new(AtomicBool::new(false));
            jobs.cancels.lock().insert(id.clone(), cancel.clone());
            if let Err(e) = jobs.run(&id, cancel).await {
                tracing::error!(job = %id, "job not run: {}", e.detail);
            }
            jobs.cancels.lock().remove(&id);
            jobs.local.lock().remove(&id);
        });
    }

    /// On a cluster: takes job `id`'s lease for this replica and keeps it while the run lasts
    /// (`Ok(None)` on a single server; `Err` when another replica holds it, or Redis is down).
    async fn lease(
        &self,
        id: &str,
        lost: &Arc<AtomicBool>,
    ) -> Result<Option<job_lease::LeaseKeeper>, Option<AppError>> {
        let Some(cluster) = &self.cluster else {
            return Ok(None);
        };
        let (redis, owned, ttl) = (cluster.redis.clone(), id.to_string(), cluster.lease);
        let taken = tokio::task::spawn_blocking(move || {
            let node = redis.node_id().to_string();
            job_lease::acquire(&redis, &owned, &node, ttl)
        })
        .await
        .map_err(|e| Some(AppError::internal(format!("job lease task failed: {e}"))))?;
        match taken {
            Ok(true) => Ok(Some(job_lease::LeaseKeeper::start(
                cluster.redis.clone(),
                id.to_string(),
                cluster.redis.node_id().to_string(),
                cluster.lease,
                lost.clone(),
            ))),
            Ok(false) => Err(None),
            Err(e) => Err(Some(AppError::unavailable(format!(
                "taking the job's lease: {e}"
            )))),
        }
    }

    /// Runs one job to its end.
    async fn run(&self, id: &str, cancel: Arc<AtomicBool>) -> Result<(), AppError> {
        let (store, owned) = (self.store.clone(), id.to_string());
        let Some(job) = blocking(move || store.get(&owned)).await? else {
            return Ok(());
        };
        if job.status.is_final() {
            return Ok(());
        }
        // Set when this run must stop without deciding the job (its lease went to another
        // replica, the job ended elsewhere).
        let stop = Arc::new(AtomicBool::new(false));
        let _lease = match self.lease(id, &stop).await {
            Ok(lease) => lease,
            Err(None) => {
                tracing::debug!(job = %id, "job runs on another replica");
                return Ok(());
            }
            Err(Some(e)) => return Err(e),
        };
        let (store, owned) = (self.store.clone(), id.to_string());
        if !blocking(move || store.start(&owned, now_ms())).await? {
            return Ok(());
        }
        tracing::info!(job = %id, tiles_done = job.tiles_done, "job running");
        let limit = Duration::from_secs(self.config.job_timeout_secs);
        let deadline = Deadline::after(limit);
        let dir = self.job_dir(id);
        let input = (job.spec.image == ImageRef::Upload).then(|| dir.join("input"));
        let outcome = match self.planner.plan(job.spec.clone(), input, deadline).await {
            Ok(work) => {
                let local = Arc::new(JobProgress::new(
                    id.to_string(),
                    self.store.clone(),
                    cancel.clone(),
                    self.limiter.clone(),
                    deadline,
                ));
                let progress: Arc<dyn TileProgress> = match &self.cluster {
                    Some(cluster) => Arc::new(cluster_progress::ClusterProgress::new(
                        local.clone(),
                        id.to_string(),
                        self.store.clone(),
                        cluster.redis.clone(),
                        cancel.clone(),
                        stop.clone(),
                        deadline,
                        cluster.tile_fanout,
                    )),
                    None => local.clone(),
                };
                let span = tracing::info_span!("job", job = %id);
                tokio::task::spawn_blocking(move || {
                    let _span = span.enter();
                    if !local.take_slot() {
                        return Err(deadline.exceeded());
                    }
                    let result = work.run(progress);
                    local.release_slot();
                    result
                })
                .await
                .unwrap_or_else(|e| Err(AppError::internal(format!("job task failed: {e}"))))
            }
            Err(e) => Err(e),
        };
        if cancel.load(Ordering::SeqCst) {
            tracing::info!(job = %id, "job dismissed while running");
            return Ok(());
        }
        if stop.load(Ordering::SeqCst) && !deadline.passed() {
            tracing::info!(job = %id, "this replica stopped running the job (lease lost, or the job ended elsewhere)");
            return Ok(());
        }
        let (store, owned) = (self.store.clone(), id.to_string());
        match outcome {
            Ok(out) => {
                let result = JobResult {
                    content_type: out.output.content_type.clone(),
                    file_name: out.output.file_name.clone(),
                    mask_count: out.mask_count as u64,
                };
                let kept = tokio::task::spawn_blocking(move || -> Result<bool, AppError> {
                    // The file first: a crash before the row changes leaves the job running, and
                    // the restart runs it again (from its tiles).
                    let written = std::fs::create_dir_all(&dir)
                        .and_then(|()| std::fs::write(dir.join("result"), &out.output.bytes));
                    if let Err(e) = written {
                        let message = format!("writing the result to {}: {e}", dir.display());
                        store
                            .fail(&owned, &message, now_ms())
                            .map_err(store_error)?;
                        return Err(AppError::internal(message));
                    }
                    let kept = store
                        .succeed(&owned, &result, now_ms())
                        .map_err(store_error)?;
                    if kept {
                        let _ = std::fs::remove_file(dir.join("input"));
                    } else {
                        let _ = std::fs::remove_dir_all(&dir);
                    }
                    Ok(kept)
                })
                .await
                .map_err(|e| AppError::internal(format!("job task failed: {e}")))??;
                tracing::info!(job = %id, kept, "job successful");
            }
            Err(e) => {
                let message = if deadline.passed() {
                    format!(
                        "The job took longer than the server's limit of {} s (jobs.job_timeout_secs)",
                        limit.as_secs()
                    )
                } else {
                    e.detail
                };
                tracing::warn!(job = %id, %message, "job failed");
                blocking(move || {
                    let failed = store.fail(&owned, &message, now_ms());
                    let _ = std::fs::remove_file(dir.join("input"));
                    failed
                })
                .await?;
            }
        }
        Ok(())
    }

    /// The job `id`; 404 when unknown.
    pub async fn get(&self, id: &str) -> Result<JobRecord, AppError> {
        let (store, owned) = (self.store.clone(), id.to_string());
        blocking(move || store.get(&owned))
            .await?
            .ok_or_else(|| no_such_job(id))
    }

    /// Jobs, newest first.
    pub async fn list(&self, offset: usize, limit: usize) -> Result<Vec<JobRecord>, AppError> {
        let store = self.store.clone();
        blocking(move || store.list(offset, limit)).await
    }

    /// Dismisses job `id`: a running one stops before its next tile; its tiles, raster and
    /// result are deleted. 404 when unknown.
    pub async fn dismiss(&self, id: &str) -> Result<JobRecord, AppError> {
        if let Some(flag) = self.cancels.lock().get(id) {
            flag.store(true, Ordering::SeqCst);
        }
        let (store, owned, dir) = (self.store.clone(), id.to_string(), self.job_dir(id));
        let before = blocking(move || {
            let before = store.dismiss(&owned, now_ms())?;
            if before.is_some() {
                let _ = std::fs::remove_dir_all(&dir);
            }
            Ok(before)
        })
        .await?;
        if before.is_none() {
            return Err(no_such_job(id));
        }
        tracing::info!(job = %id, "job dismissed");
        self.get(id).await
    }

    /// The output of a successful job: its record and bytes. 404 when unknown; the job as it
    /// is otherwise (the caller answers result-not-ready).
    pub async fn result(
        &self,
        id: &str,
    ) -> Result<Result<(JobRecord, Vec<u8>), JobRecord>, AppError> {
        let job = self.get(id).await?;
        if job.status != JobStatus::Successful || job.result.is_none() {
            return Ok(Err(job));
        }
        let path = self.job_dir(id).join("result");
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|e| AppError::internal(format!("reading {}: {e}", path.display())))?;
        Ok(Ok((job, bytes)))
    }

    /// After a start: runs the jobs a previous process left running (from their finished
    /// tiles) or accepted, oldest first.
    pub async fn recover(self: &Arc<Self>) -> Result<usize, AppError> {
        let store = self.store.clone();
        let jobs = blocking(move || store.unfinished()).await?;
        let count = jobs.len();
        for job in jobs {
            tracing::info!(job = %job.id, status = job.status.as_str(), tiles_done = job.tiles_done, "resuming job");
            self.spawn(job.id);
        }
        Ok(count)
    }

    /// On a cluster: every lease period, runs here the unfinished jobs whose lease is gone
    /// (their replica died, or none started them within a lease period), from their finished
    /// tiles. The first look is at once: on a cluster it replaces [`Self::recover`].
    pub fn spawn_takeover(self: &Arc<Self>) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        let every = cluster.lease.max(Duration::from_millis(500));
        let jobs = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tick.tick().await;
                if let Err(e) = jobs.take_over_orphans().await {
                    tracing::debug!("looking for jobs to take over: {}", e.detail);
                }
            }
        });
    }

    /// One look for jobs without a lease (see [`Self::spawn_takeover`]); how many it started.
    pub async fn take_over_orphans(self: &Arc<Self>) -> Result<usize, AppError> {
        let Some(cluster) = &self.cluster else {
            return Ok(0);
        };
        let (store, redis) = (self.store.clone(), cluster.redis.clone());
        let lease_ms = cluster.lease.as_millis() as i64;
        let local: HashSet<String> = self.local.lock().clone();
        let orphans = blocking(move || {
            let now = now_ms();
            let mut orphans = Vec::new();
            for job in store.unfinished()? {
                // A job just accepted is left to the replica it was submitted to for a while.
                let fresh = job.status == JobStatus::Accepted && now - job.created < lease_ms;
                if local.contains(&job.id) || fresh {
                    continue;
                }
                let held = job_lease::held(&redis, &job.id)
                    .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                if !held {
                    orphans.push(job);
                }
            }
            Ok(orphans)
        })
        .await?;
        for job in &orphans {
            tracing::info!(job = %job.id, status = job.status.as_str(), tiles_done = job.tiles_done, "taking over job (no replica holds its lease)");
            self.spawn(job.id.clone());
        }
        Ok(orphans.len())
    }

    /// Deletes the jobs (and their files) that finished more than `keep_results_hours` before
    /// `now`; returns how many.
    pub async fn sweep(&self, now: i64) -> Result<usize, AppError> {
        let keep_ms = i64::try_from(self.config.keep_results_hours)
            .unwrap_or(i64::MAX / 3_600_000)
            .saturating_mul(3_600_000);
        let (store, dir) = (self.store.clone(), self.dir.clone());
        blocking(move || {
            let ids = store.finished_before(now.saturating_sub(keep_ms))?;
            for id in &ids {
                let _ = std::fs::remove_dir_all(dir.join(id));
                store.delete(id)?;
            }
            Ok(ids.len())
        })
        .await
    }

    /// Sweeps expired jobs now and every [`SWEEP_EVERY`].
    pub fn spawn_sweeper(self: &Arc<Self>) {
        let jobs = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            loop {
                tick.tick().await;
                match jobs.sweep(now_ms()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(jobs = n, "expired jobs deleted"),
                    Err(e) => tracing::error!("sweeping expired jobs: {}", e.detail),
                }
            }
        });
    }
}

#[cfg(test)]
mod tests;
