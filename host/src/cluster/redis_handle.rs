//! The Redis connection of a replica, with a pause after failures (see the module above).

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::config::ClusterConfig;

/// A Redis call that did not happen or failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Redis failed recently; no call is tried until the pause ends.
    #[error("redis is unavailable (last error: {0})")]
    Paused(String),
    /// The call failed (connection, timeout, or an error reply).
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// The shared Redis of a cluster: one lazily (re)made connection behind a lock, and the
/// up/down state.
pub struct Redis {
    client: redis::Client,
    timeout: Duration,
    retry: Duration,
    node_id: String,
    connection: Mutex<Option<redis::Connection>>,
    up: AtomicBool,
    /// Milliseconds since `epoch` before which no call is tried (0: none pending).
    paused_until_ms: AtomicI64,
    epoch: Instant,
    last_error: Mutex<String>,
}

impl Redis {
    /// The handle for `config.redis_url` (`None` when no cluster is configured). Does not
    /// connect: a replica starts even while Redis is down. An invalid URL is an error.
    pub fn from_config(config: &ClusterConfig) -> anyhow::Result<Option<Redis>> {
        let Some(url) = config.redis_url.as_deref().filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        let client = redis::Client::open(url)
            .map_err(|e| anyhow::anyhow!("cluster.redis_url '{url}': {e}"))?;
        let node_id = config.node_id.clone().unwrap_or_else(default_node_id);
        Ok(Some(Redis {
            client,
            timeout: Duration::from_millis(config.redis_timeout_ms.max(1)),
            retry: Duration::from_secs(config.redis_retry_secs),
            node_id,
            connection: Mutex::new(None),
            up: AtomicBool::new(true),
            paused_until_ms: AtomicI64::new(0),
            epoch: Instant::now(),
            last_error: Mutex::new(String::new()),
        }))
    }

    /// This replica's name in the cluster.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Whether the last call succeeded (true before the first).
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::SeqCst)
    }

    /// Runs `f` on the connection (made first when there is none). A failure drops the
    /// connection, marks Redis down and pauses calls for `redis_retry_secs`. Blocking.
    pub fn call<T>(
        &self,
        f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T, ClusterError> {
        let now_ms = self.epoch.elapsed().as_millis() as i64;
        if now_ms < self.paused_until_ms.load(Ordering::SeqCst) {
            return Err(ClusterError::Paused(self.last_error.lock().clone()));
        }
        let mut slot = self.connection.lock();
        let result = match slot.as_mut() {
            Some(connection) => f(connection),
            None => match self.connect() {
                Ok(connection) => f(slot.insert(connection)),
                Err(e) => Err(e),
            },
        };
        match result {
            Ok(value) => {
                self.paused_until_ms.store(0, Ordering::SeqCst);
                if !self.up.swap(true, Ordering::SeqCst) {
                    tracing::info!(node = %self.node_id, "redis is reachable again: shared tier in use");
                }
                Ok(value)
            }
            Err(e) => {
                *slot = None;
                drop(slot);
                self.failed(&e);
                Err(ClusterError::Redis(e))
            }
        }
    }

    fn connect(&self) -> redis::RedisResult<redis::Connection> {
        let connection = self.client.get_connection_with_timeout(self.timeout)?;
        connection.set_read_timeout(Some(self.timeout))?;
        connection.set_write_timeout(Some(self.timeout))?;
        Ok(connection)
    }

    fn failed(&self, error: &redis::RedisError) {
        // An error reply (wrong type, script error) is the caller's; the connection is fine.
        if !(error.is_io_error()
            || error.is_timeout()
            || error.is_connection_dropped()
            || error.is_connection_refusal())
        {
            return;
        }
        *self.last_error.lock() = error.to_string();
        let until = self.epoch.elapsed() + self.retry;
        self.paused_until_ms
            .store(until.as_millis() as i64, Ordering::SeqCst);
        if self.up.swap(false, Ordering::SeqCst) {
            tracing::warn!(
                node = %self.node_id,
                error = %error,
                retry_secs = self.retry.as_secs(),
                "redis is unreachable: serving from this replica's own cache and running jobs here"
            );
        }
        crate::metrics::cluster_redis_error();
    }
}

/// `<host name>-<process id>`.
fn default_node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".to_string());
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> ClusterConfig {
        ClusterConfig {
            redis_url: Some(url.to_string()),
            redis_timeout_ms: 200,
            redis_retry_secs: 60,
            ..ClusterConfig::default()
        }
    }

    #[test]
    fn no_url_no_cluster_and_a_bad_url_is_named() {
        assert!(Redis::from_config(&ClusterConfig::default())
            .unwrap()
            .is_none());
        let err = Redis::from_config(&config("http://nope")).err().unwrap();
        assert!(err.to_string().contains("cluster.redis_url"), "{err}");
    }

    #[test]
    fn an_unreachable_redis_is_marked_down_and_paused() {
        // Port 1 on loopback: nothing listens there.
        let redis = Redis::from_config(&config("redis://127.0.0.1:1/"))
            .unwrap()
            .unwrap();
        assert!(redis.is_up());
        let first = redis.call(|c| redis::cmd("PING").query::<String>(c));
        assert!(matches!(first, Err(ClusterError::Redis(_))), "{first:?}");
        assert!(!redis.is_up());
        let started = Instant::now();
        let second = redis.call(|c| redis::cmd("PING").query::<String>(c));
        assert!(matches!(second, Err(ClusterError::Paused(_))), "{second:?}");
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "no connect attempt while paused"
        );
    }
}
