//! The shared embedding tier: image embeddings in Redis, under each replica's own LRU, so that
//! an image encoded on one replica is a `shared` hit on the others.
//!
//! An embedding lives at `samgeo:emb:<layout>:<model_version>:<model_id>:<image sha256>:<options
//! digest>` (the codec's bytes: fp16, zstd) for `embedding_ttl_secs`. Across replicas one
//! encodes at a time: the encoder holds `samgeo:lock:emb:...` (`SET NX PX encode_lock_secs`,
//! value `<node_id>#<n>`), writes the embedding, then deletes the lock only while it still owns
//! it (a compare-and-delete script). A replica that finds the lock taken polls for the embedding
//! until it appears, or until the lock is gone without it (the holder failed or its lock
//! expired): then it takes the lock itself. Redis failing in any way never fails a request:
//! the replica encodes locally (and the handle pauses Redis calls for `redis_retry_secs`).
//! Every call here blocks: call from a blocking thread.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::embedding_codec;
use super::{ClusterError, Redis};
use crate::cache::EmbeddingKey;
use crate::config::ClusterConfig;
use crate::error::AppError;
use crate::models::Embedding;
use crate::pipeline::Deadline;

/// Prefix of the embeddings' keys.
pub const EMBEDDING_PREFIX: &str = "samgeo:emb:";
/// Prefix of the encode locks' keys (followed by the embedding key without `samgeo:`).
pub const LOCK_PREFIX: &str = "samgeo:lock:";

/// Time between two looks at Redis while another replica encodes.
const POLL: Duration = Duration::from_millis(50);

/// Deletes `KEYS[1]` only when it still holds `ARGV[1]` (the lock owner's token).
const RELEASE_SCRIPT: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

/// Where an embedding came from.
#[derive(Debug)]
pub enum Obtained {
    /// Read from Redis: another replica encoded it (values rounded to fp16).
    Shared(Embedding),
    /// Encoded here (and written to Redis when it could be).
    Encoded(Embedding),
}

/// The tier: the cluster's Redis handle and the settings read at start-up.
pub struct SharedEmbeddings {
    redis: Arc<Redis>,
    ttl_secs: u64,
    lock_ms: u64,
    /// Makes each lock token of this replica distinct.
    tokens: AtomicU64,
}

impl SharedEmbeddings {
    /// The tier over `redis` with `[cluster]`'s TTL and lock expiry.
    pub fn new(redis: Arc<Redis>, config: &ClusterConfig) -> SharedEmbeddings {
        SharedEmbeddings {
            redis,
            ttl_secs: config.embedding_ttl_secs.max(1),
            lock_ms: config.encode_lock_secs.max(1).saturating_mul(1000),
            tokens: AtomicU64::new(0),
        }
    }

    /// The embedding for `key`: from Redis when a replica stored it, else computed by
    /// `compute` here (under the cluster's encode lock when Redis answers) and stored. Waiting
    /// for another replica's encode ends with a 504 when `deadline` passes. A failure of
    /// `compute` is returned as is; a failure of Redis only means encoding locally.
    pub fn get_or_compute(
        &self,
        key: &EmbeddingKey,
        deadline: &Deadline,
        compute: impl FnOnce() -> Result<Embedding, AppError>,
    ) -> Result<Obtained, AppError> {
        let redis_key = redis_key(key);
        let lock_key = lock_key(&redis_key);
        let token = format!(
            "{}#{}",
            self.redis.node_id(),
            self.tokens.fetch_add(1, Ordering::Relaxed)
        );
        let mut waited = false;
        loop {
            match self.fetch(&redis_key) {
                Ok(Some(embedding)) => return Ok(Obtained::Shared(embedding)),
                Ok(None) => {}
                Err(e) => return self.encode_alone(&redis_key, e, compute),
            }
            match self.try_lock(&lock_key, &token) {
                Ok(true) => break,
                Ok(false) => {
                    if !waited {
                        waited = true;
                        self.log_wait(&lock_key);
                    }
                    wait(deadline)?
                }
                Err(e) => return self.encode_alone(&redis_key, e, compute),
            }
        }
        // Ours. The holder before us may have stored it between our look and our lock.
        if let Ok(Some(embedding)) = self.fetch(&redis_key) {
            self.release(&lock_key, &token);
            return Ok(Obtained::Shared(embedding));
        }
        let result = compute();
        if let Ok(embedding) = &result {
            self.store(&redis_key, embedding);
        }
        self.release(&lock_key, &token);
        result.map(Obtained::Encoded)
    }

    /// Redis failed: encode here, and do not try to store (the handle pauses Redis calls).
    fn encode_alone(
        &self,
        redis_key: &str,
        error: ClusterError,
        compute: impl FnOnce() -> Result<Embedding, AppError>,
    ) -> Result<Obtained, AppError> {
        tracing::debug!(key = redis_key, error = %error, "shared embeddings unavailable: encoding locally");
        compute().map(Obtained::Encoded)
    }

    /// The stored embedding, `None` when absent or unreadable (then it is encoded again and
    /// overwritten).
    fn fetch(&self, redis_key: &str) -> Result<Option<Embedding>, ClusterError> {
        let bytes: Option<Vec<u8>> = self
            .redis
            .call(|c| redis::cmd("GET").arg(redis_key).query(c))?;
        let Some(bytes) = bytes else {
            return Ok(None);
        };
        match embedding_codec::decode(&bytes) {
            Ok(embedding) => {
                tracing::debug!(
                    key = redis_key,
                    bytes = bytes.len(),
                    "embedding read from redis"
                );
                Ok(Some(embedding))
            }
            Err(e) => {
                tracing::warn!(key = redis_key, error = %e, "unreadable embedding in redis: encoding it again");
                Ok(None)
            }
        }
    }

    /// Takes the encode lock; false when another replica holds it.
    fn try_lock(&self, lock_key: &str, token: &str) -> Result<bool, ClusterError> {
        let reply: Option<String> = self.redis.call(|c| {
            redis::cmd("SET")
                .arg(lock_key)
                .arg(token)
                .arg("NX")
                .arg("PX")
                .arg(self.lock_ms)
                .query(c)
        })?;
        Ok(reply.is_some())
    }

    /// Says which replica this request waits for.
    fn log_wait(&self, lock_key: &str) {
        let holder: Option<String> = self
            .redis
            .call(|c| redis::cmd("GET").arg(lock_key).query(c))
            .ok()
            .flatten();
        tracing::info!(
            lock = lock_key,
            holder = holder.as_deref().unwrap_or("?"),
            "another replica is encoding this image: waiting for its embedding"
        );
    }

    /// Deletes the lock while it is still ours (it may have expired and been taken since).
    fn release(&self, lock_key: &str, token: &str) {
        let released = self.redis.call(|c| {
            redis::cmd("EVAL")
                .arg(RELEASE_SCRIPT)
                .arg(1)
                .arg(lock_key)
                .arg(token)
                .query::<i64>(c)
        });
        if let Err(e) = released {
            tracing::debug!(lock = lock_key, error = %e, "encode lock not released (it expires)");
        }
    }

    /// Writes the embedding with its TTL; a failure only means it is not shared.
    fn store(&self, redis_key: &str, embedding: &Embedding) {
        let bytes = match embedding_codec::encode(embedding) {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::warn!(key = redis_key, error = %e, "embedding not shared");
                return;
            }
        };
        let stored = self.redis.call(|c| {
            redis::cmd("SET")
                .arg(redis_key)
                .arg(&bytes)
                .arg("EX")
                .arg(self.ttl_secs)
                .query::<()>(c)
        });
        match stored {
            Ok(()) => {
                crate::metrics::shared_embedding_stored(bytes.len());
                tracing::debug!(
                    key = redis_key,
                    bytes = bytes.len(),
                    f32_bytes = embedding.size_bytes(),
                    "embedding written to redis"
                );
            }
            Err(e) => {
                tracing::debug!(key = redis_key, error = %e, "embedding not written to redis")
            }
        }
    }
}

/// Sleeps one poll interval, or less when the deadline comes first; 504 once it has passed.
fn wait(deadline: &Deadline) -> Result<(), AppError> {
    deadline.check()?;
    let left = deadline.at().saturating_duration_since(Instant::now());
    std::thread::sleep(POLL.min(left));
    deadline.check()
}

/// The Redis key of `key`: its parts in the clear (the options, which may be long, as a
/// digest), with the codec's layout version so that replicas of two versions do not read each
/// other's bytes.
pub fn redis_key(key: &EmbeddingKey) -> String {
    let options = Sha256::digest(key.options.as_bytes());
    format!(
        "{EMBEDDING_PREFIX}{}:{}:{}:{}:{}",
        embedding_codec::VERSION,
        key.model_version,
        key.model_id,
        key.image_sha256,
        hex::encode(&options[..16])
    )
}

/// The lock key of the embedding at `redis_key`.
fn lock_key(redis_key: &str) -> String {
    let rest = redis_key.strip_prefix("samgeo:").unwrap_or(redis_key);
    format!("{LOCK_PREFIX}{rest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(options: &str) -> EmbeddingKey {
        EmbeddingKey {
            model_version: "sam2".into(),
            model_id: "sam2-hiera-large".into(),
            image_sha256: "ab".repeat(32),
            options: options.into(),
        }
    }

    #[test]
    fn keys_name_the_model_and_image_and_hash_the_options() {
        let whole = redis_key(&key("bands=1,2,3"));
        assert!(
            whole.starts_with(&format!(
                "samgeo:emb:{}:sam2:sam2-hiera-large:{}:",
                embedding_codec::VERSION,
                "ab".repeat(32)
            )),
            "{whole}"
        );
        let window = redis_key(&key("bands=1,2,3;window=0,0,1024,1024"));
        assert_ne!(whole, window);
        assert_eq!(
            whole.len(),
            window.len(),
            "the options are a fixed-size digest"
        );
        assert_eq!(whole, redis_key(&key("bands=1,2,3")));
        assert_eq!(
            lock_key(&whole),
            format!("samgeo:lock:{}", &whole["samgeo:".len()..])
        );
    }

    /// Redis unreachable: the embedding is computed here, once, and the request succeeds.
    #[test]
    fn an_unreachable_redis_means_encoding_locally() {
        let config = ClusterConfig {
            redis_url: Some("redis://127.0.0.1:1/".into()),
            redis_timeout_ms: 200,
            redis_retry_secs: 60,
            ..ClusterConfig::default()
        };
        let redis = Arc::new(Redis::from_config(&config).unwrap().unwrap());
        let shared = SharedEmbeddings::new(redis.clone(), &config);
        let deadline = Deadline::after(Duration::from_secs(30));
        for _ in 0..2 {
            let mut runs = 0;
            let got = shared
                .get_or_compute(&key("bands=default"), &deadline, || {
                    runs += 1;
                    Ok(Embedding {
                        tensors: vec![],
                        width: 3,
                        height: 2,
                    })
                })
                .unwrap();
            assert!(matches!(got, Obtained::Encoded(ref e) if e.width == 3));
            assert_eq!(runs, 1);
        }
        assert!(!redis.is_up());
    }

    #[test]
    fn waiting_ends_with_the_deadline() {
        let deadline = Deadline::after(Duration::from_millis(120));
        let started = Instant::now();
        let err = loop {
            if let Err(e) = wait(&deadline) {
                break e;
            }
        };
        assert_eq!(err.status, 504);
        assert!(started.elapsed() >= Duration::from_millis(120));
    }
}
