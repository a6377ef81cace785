//! The job store: one trait, with the embedded SQLite store ([`super::sqlite`]) of a single
//! server and the shared Redis store ([`super::redis_store`]) of a cluster behind it. Every
//! method blocks: call it from a blocking thread (`spawn_blocking`), never from the async
//! executor.

use super::record::{JobRecord, JobResult};

/// A failure of the store, with its context.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The call failed (a bad row, an error reply).
    #[error("job store: {0}")]
    Failed(String),
    /// The store cannot be reached now (the cluster's Redis is down); worth retrying later.
    #[error("the shared job store (Redis) is unavailable: {0}")]
    Unavailable(String),
}

/// Persists jobs and their finished tiles.
pub trait JobStore: Send + Sync {
    /// Adds a new job.
    fn insert(&self, job: &JobRecord) -> Result<(), StoreError>;
    /// The job with this id.
    fn get(&self, id: &str) -> Result<Option<JobRecord>, StoreError>;
    /// Jobs, newest first: `limit` of them after skipping `offset`.
    fn list(&self, offset: usize, limit: usize) -> Result<Vec<JobRecord>, StoreError>;
    /// Jobs accepted or running (what a restart resumes), oldest first.
    fn unfinished(&self) -> Result<Vec<JobRecord>, StoreError>;
    /// Number of jobs accepted or running.
    fn active_count(&self) -> Result<usize, StoreError>;
    /// Accepted (or running, on a resume) → running; false when the job is in neither state.
    fn start(&self, id: &str, now: i64) -> Result<bool, StoreError>;
    /// The run of a running job has `total` tiles.
    fn planned(&self, id: &str, total: u32, now: i64) -> Result<(), StoreError>;
    /// Keeps tile `index`'s masks (encoded) of a running job and counts it done; false when the
    /// job no longer runs (dismissed meanwhile).
    fn put_tile(&self, id: &str, index: u32, masks: &[u8], now: i64) -> Result<bool, StoreError>;
    /// The encoded masks of tile `index`, when an earlier attempt finished it.
    fn tile(&self, id: &str, index: u32) -> Result<Option<Vec<u8>>, StoreError>;
    /// Running → successful with `result`; false when the job no longer runs.
    fn succeed(&self, id: &str, result: &JobResult, now: i64) -> Result<bool, StoreError>;
    /// Accepted or running → failed with `message`; false otherwise.
    fn fail(&self, id: &str, message: &str, now: i64) -> Result<bool, StoreError>;
    /// Any state → dismissed (its tiles and result forgotten); the job as it was before, or
    /// `None` for an unknown id.
    fn dismiss(&self, id: &str, now: i64) -> Result<Option<JobRecord>, StoreError>;
    /// Removes a job and its tiles altogether.
    fn delete(&self, id: &str) -> Result<(), StoreError>;
    /// Ids of the finished jobs (successful, failed, dismissed) that finished before `before`.
    fn finished_before(&self, before: i64) -> Result<Vec<String>, StoreError>;
}
