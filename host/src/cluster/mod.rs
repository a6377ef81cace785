//! Several replicas as one service: the shared tier in Redis (`[cluster] redis_url`).
//!
//! [`Redis`] is the one handle every shared part uses (embeddings, jobs, the tile stream). Its
//! calls block (the `redis` crate's synchronous client): call it from a blocking thread, never
//! from the async executor. When a call fails (Redis down, a timeout), the handle marks Redis
//! down, logs it once, and refuses further calls without trying for `redis_retry_secs`, so a
//! replica whose Redis is gone keeps serving from its own cache at full speed; the next call
//! after that pause tries again, and a success logs that Redis is back.
//!
//! Jobs: [`job_lease`] says which replica runs a job, [`tile_queue`] spreads a tiled job's
//! tiles over every replica (the job store itself is `jobs::redis_store`).

pub mod embedding_codec;
pub mod job_lease;
pub mod redis_handle;
pub mod shared_embeddings;
#[cfg(test)]
pub(crate) mod test_redis;
pub mod tile_queue;

pub use redis_handle::{ClusterError, Redis};
pub use shared_embeddings::SharedEmbeddings;
