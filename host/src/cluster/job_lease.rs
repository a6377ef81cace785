//! Which replica runs a job: a lease in Redis (`samgeo:joblease:<job id>` = the node id, with an
//! expiry), taken before the run starts (`SET NX PX`), renewed while it runs, and given back at
//! its end. A replica that dies stops renewing; once its lease has expired another replica takes
//! the job over (keeping its finished tiles). Renewal and release compare the holder first (a
//! small Lua script), so a replica never extends or frees a lease it lost. Blocking calls.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::Duration;

use super::{ClusterError, Redis};

/// The key of job `id`'s lease.
pub fn key(id: &str) -> String {
    format!("samgeo:joblease:{id}")
}

/// Takes the lease of job `id` for `node` unless another replica holds it; true when taken.
pub fn acquire(redis: &Redis, id: &str, node: &str, ttl: Duration) -> Result<bool, ClusterError> {
    let reply: Option<String> = redis.call(|c| {
        redis::cmd("SET")
            .arg(key(id))
            .arg(node)
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64)
            .query(c)
    })?;
    Ok(reply.is_some())
}

const RENEW: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
                     return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end";
const RELEASE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
                       return redis.call('DEL', KEYS[1]) else return 0 end";

/// Extends `node`'s lease of job `id` by `ttl`; false when `node` no longer holds it.
pub fn renew(redis: &Redis, id: &str, node: &str, ttl: Duration) -> Result<bool, ClusterError> {
    let renewed: i64 = redis.call(|c| {
        redis::cmd("EVAL")
            .arg(RENEW)
            .arg(1)
            .arg(key(id))
            .arg(node)
            .arg(ttl.as_millis().max(1) as u64)
            .query(c)
    })?;
    Ok(renewed == 1)
}

/// Gives `node`'s lease of job `id` back (nothing when another replica holds it).
pub fn release(redis: &Redis, id: &str, node: &str) -> Result<(), ClusterError> {
    redis.call(|c| {
        redis::cmd("EVAL")
            .arg(RELEASE)
            .arg(1)
            .arg(key(id))
            .arg(node)
            .query::<i64>(c)
    })?;
    Ok(())
}

/// Whether some replica holds the lease of job `id`.
pub fn held(redis: &Redis, id: &str) -> Result<bool, ClusterError> {
    redis
        .call(|c| redis::cmd("EXISTS").arg(key(id)).query::<i64>(c))
        .map(|n| n > 0)
}

/// Keeps a lease while a job runs: a thread renews it every third of `ttl`, sets `lost` when
/// another replica holds it now (this run must stop), and gives it back when dropped.
pub struct LeaseKeeper {
    stop: Option<std::sync::mpsc::Sender<()>>,
}

impl LeaseKeeper {
    /// Starts renewing `node`'s lease of job `id` (taken with [`acquire`]).
    pub fn start(
        redis: Arc<Redis>,
        id: String,
        node: String,
        ttl: Duration,
        lost: Arc<AtomicBool>,
    ) -> LeaseKeeper {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let every = (ttl / 3).max(Duration::from_millis(50));
        let spawned = std::thread::Builder::new()
            .name("job-lease".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    match renew(&redis, &id, &node, ttl) {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!(job = %id, node = %node, "lost the job's lease to another replica: this run stops");
                            lost.store(true, Ordering::SeqCst);
                            return;
                        }
                        // Redis down: keep trying; the lease may expire meanwhile.
                        Err(_) => {}
                    }
                }
                let _ = release(&redis, &id, &node);
            });
        if let Err(e) = spawned {
            tracing::error!("starting the job lease thread: {e}");
        }
        LeaseKeeper { stop: Some(stop) }
    }
}

impl Drop for LeaseKeeper {
    /// Stops renewing; the thread gives the lease back (without blocking the caller).
    fn drop(&mut self) {
        self.stop.take();
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_redis::TestRedis;
    use super::*;

    #[test]
    fn one_holder_renews_and_releases_and_an_expired_lease_is_free() {
        let Some(server) = TestRedis::start("job_lease") else {
            return;
        };
        let redis = server.handle("a", 2000);
        let long = Duration::from_secs(10);
        assert!(!held(&redis, "j").unwrap());
        assert!(acquire(&redis, "j", "a", long).unwrap());
        assert!(!acquire(&redis, "j", "b", long).unwrap(), "held by a");
        assert!(held(&redis, "j").unwrap());
        assert!(renew(&redis, "j", "a", long).unwrap());
        assert!(
            !renew(&redis, "j", "b", long).unwrap(),
            "b does not hold it"
        );
        release(&redis, "j", "b").unwrap();
        assert!(held(&redis, "j").unwrap(), "b cannot free a's lease");
        release(&redis, "j", "a").unwrap();
        assert!(!held(&redis, "j").unwrap());
        // A holder that stops renewing loses the lease at its expiry.
        assert!(acquire(&redis, "j", "a", Duration::from_millis(100)).unwrap());
        std::thread::sleep(Duration::from_millis(200));
        assert!(!renew(&redis, "j", "a", long).unwrap());
        assert!(acquire(&redis, "j", "b", long).unwrap());
    }
}
