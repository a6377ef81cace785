//! Long work as jobs (OGC API – Processes): accepted, run in the background at most
//! `[jobs] max_running` at a time, persisted so that a restart (even `kill -9`) resumes running
//! jobs from their finished tiles and starts accepted ones, and swept `keep_results_hours` after
//! they finish.
//!
//! On disk, under `server.cache_dir`: `jobs.sqlite3` (the [`JobStore`]) and `jobs/<id>/` with
//! the job's uploaded raster (`input`, until the job ends) and its output (`result`).
//! What a job runs comes from a [`Planner`] (the segment pipeline, or a fake in tests).

mod progress;
pub mod record;
pub mod sqlite;
pub mod store;
pub mod tile_masks;

use std::collections::HashMap;
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
use crate::config::JobsConfig;
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
}

/// Runs a store call on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AppError::internal(format!("job store task failed: {e}")))?
        .map_err(|e| AppError::internal(e.to_string()))
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
        Arc::new(Jobs {
            running: Arc::new(Semaphore::new(config.max_running.max(1))),
            store,
            planner,
            limiter,
            config,
            dir,
            cancels: Mutex::new(HashMap::new()),
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
            store
                .insert(&record)
                .map_err(|e| AppError::internal(e.to_string()))
        })
        .await
        .map_err(|e| AppError::internal(format!("job store task failed: {e}")))??;
        tracing::info!(job = %id, process = job.spec.process.as_str(), "job accepted");
        self.spawn(id);
        Ok(job)
    }

    /// Starts running job `id` in the background (when a running place is free).
    fn spawn(self: &Arc<Self>, id: String) {
        let jobs = self.clone();
        tokio::spawn(async move {
            let _place = jobs.running.clone().acquire_owned().await;
            let cancel = Arc::new(AtomicBool::new(false));
            jobs.cancels.lock().insert(id.clone(), cancel.clone());
            if let Err(e) = jobs.run(&id, cancel).await {
                tracing::error!(job = %id, "job not run: {}", e.detail);
            }
            jobs.cancels.lock().remove(&id);
        });
    }

    /// Runs one job to its end.
    async fn run(&self, id: &str, cancel: Arc<AtomicBool>) -> Result<(), AppError> {
        let (store, owned) = (self.store.clone(), id.to_string());
        let Some(job) = blocking(move || store.get(&owned)).await? else {
            return Ok(());
        };
        let (store, owned) = (self.store.clone(), id.to_string());
        if job.status.is_final() || !blocking(move || store.start(&owned, now_ms())).await? {
            return Ok(());
        }
        tracing::info!(job = %id, tiles_done = job.tiles_done, "job running");
        let limit = Duration::from_secs(self.config.job_timeout_secs);
        let deadline = Deadline::after(limit);
        let dir = self.job_dir(id);
        let input = (job.spec.image == ImageRef::Upload).then(|| dir.join("input"));
        let outcome = match self.planner.plan(job.spec.clone(), input, deadline).await {
            Ok(work) => {
                let progress = Arc::new(JobProgress::new(
                    id.to_string(),
                    self.store.clone(),
                    cancel.clone(),
                    self.limiter.clone(),
                    deadline,
                ));
                let span = tracing::info_span!("job", job = %id);
                tokio::task::spawn_blocking(move || {
                    let _span = span.enter();
                    if !progress.take_slot() {
                        return Err(deadline.exceeded());
                    }
                    let result = work.run(progress.clone());
                    progress.release_slot();
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
                            .map_err(|e| AppError::internal(e.to_string()))?;
                        return Err(AppError::internal(message));
                    }
                    let kept = store
                        .succeed(&owned, &result, now_ms())
                        .map_err(|e| AppError::internal(e.to_string()))?;
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
