//! The shared job store of a cluster, in Redis, so that every replica sees every job:
//! - `samgeo:job:<id>`: a hash per job (the same columns as the SQLite store's row);
//! - `samgeo:jobtiles:<id>`: a hash of the job's finished tiles (tile index → encoded masks);
//! - `samgeo:jobs` (by creation time): every job, for `GET /jobs`;
//!   `samgeo:jobs:unfinished` (by creation time): accepted and running ones;
//!   `samgeo:jobs:finished` (by finish time): the rest, for the sweep.
//!
//! Every state change is atomic: a small Lua script (`EVAL`) checks the state and changes the
//! hash, the sets and the tiles together, as the SQLite store's transactions do. Redis being
//! unreachable is [`StoreError::Unavailable`] (the job endpoints answer 503).

use std::collections::HashMap;
use std::sync::Arc;

use super::record::{JobRecord, JobResult, JobSpec, JobStatus};
use super::store::{JobStore, StoreError};
use crate::cluster::{ClusterError, Redis};

/// [`JobStore`] on the cluster's Redis.
pub struct RedisStore {
    redis: Arc<Redis>,
}

const ALL: &str = "samgeo:jobs";
const UNFINISHED: &str = "samgeo:jobs:unfinished";
const FINISHED: &str = "samgeo:jobs:finished";

fn job_key(id: &str) -> String {
    format!("samgeo:job:{id}")
}

fn tiles_key(id: &str) -> String {
    format!("samgeo:jobtiles:{id}")
}

/// A failed call as a store error: Unavailable when Redis cannot be reached.
fn err(context: &'static str) -> impl Fn(ClusterError) -> StoreError {
    move |e| {
        let unreachable = match &e {
            ClusterError::Paused(_) => true,
            ClusterError::Redis(r) => {
                r.is_io_error()
                    || r.is_timeout()
                    || r.is_connection_dropped()
                    || r.is_connection_refusal()
            }
        };
        if unreachable {
            StoreError::Unavailable(format!("{context}: {e}"))
        } else {
            StoreError::Failed(format!("{context}: {e}"))
        }
    }
}

const START: &str = "
local s = redis.call('HGET', KEYS[1], 'status')
if s == 'accepted' or s == 'running' then
  redis.call('HSET', KEYS[1], 'status', 'running', 'message', 'running', 'updated', ARGV[1])
  redis.call('HSETNX', KEYS[1], 'started', ARGV[1])
  return 1
end
return 0";

const PLANNED: &str = "
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'tiles_total', ARGV[1], 'updated', ARGV[2])
end
return 0";

const PUT_TILE: &str = "
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 0 end
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 1 then
  redis.call('HINCRBY', KEYS[1], 'tiles_done', 1)
  redis.call('HSET', KEYS[1], 'updated', ARGV[3])
end
return 1";

/// KEYS: job, tiles, unfinished, finished; ARGV: id, now, type, name, mask count.
const SUCCEED: &str = "
local changed = 0
if redis.call('HGET', KEYS[1], 'status') == 'running' then
  redis.call('HSET', KEYS[1], 'status', 'successful', 'message', 'successful',
    'finished', ARGV[2], 'updated', ARGV[2],
    'result_type', ARGV[3], 'result_name', ARGV[4], 'result_masks', ARGV[5])
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
  changed = 1
end
redis.call('DEL', KEYS[2])
return changed";

/// KEYS: job, tiles, unfinished, finished; ARGV: id, now, message.
const FAIL: &str = "
local s = redis.call('HGET', KEYS[1], 'status')
local changed = 0
if s == 'accepted' or s == 'running' then
  redis.call('HSET', KEYS[1], 'status', 'failed', 'message', ARGV[3],
    'finished', ARGV[2], 'updated', ARGV[2])
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
  changed = 1
end
redis.call('DEL', KEYS[2])
return changed";

/// KEYS: job, tiles, unfinished, finished; ARGV: id, now. Returns the hash as it was.
const DISMISS: &str = "
local before = redis.call('HGETALL', KEYS[1])
if #before == 0 then return before end
local finished = redis.call('HGET', KEYS[1], 'finished') or ARGV[2]
redis.call('HSET', KEYS[1], 'status', 'dismissed', 'message', 'dismissed',
  'finished', finished, 'updated', ARGV[2])
redis.call('HDEL', KEYS[1], 'result_type', 'result_name', 'result_masks')
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[4], finished, ARGV[1])
redis.call('DEL', KEYS[2])
return before";

impl RedisStore {
    /// The store on `redis` (does not connect: a replica starts while Redis is down).
    pub fn new(redis: Arc<Redis>) -> RedisStore {
        RedisStore { redis }
    }

    /// Runs a state-changing script on job `id` (KEYS: job, tiles, unfinished, finished; ARGV:
    /// the id, then `args`).
    fn script<T: redis::FromRedisValue>(
        &self,
        context: &'static str,
        body: &str,
        id: &str,
        args: &[&[u8]],
    ) -> Result<T, StoreError> {
        self.redis
            .call(|c| {
                let mut cmd = redis::cmd("EVAL");
                cmd.arg(body)
                    .arg(4)
                    .arg(job_key(id))
                    .arg(tiles_key(id))
                    .arg(UNFINISHED)
                    .arg(FINISHED)
                    .arg(id);
                for a in args {
                    cmd.arg(*a);
                }
                cmd.query(c)
            })
            .map_err(err(context))
    }

    /// The jobs with these ids, in this order (those deleted meanwhile left out).
    fn records(&self, context: &'static str, ids: &[String]) -> Result<Vec<JobRecord>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let hashes: Vec<HashMap<String, String>> = self
            .redis
            .call(|c| {
                let mut pipe = redis::pipe();
                for id in ids {
                    pipe.cmd("HGETALL").arg(job_key(id));
                }
                pipe.query(c)
            })
            .map_err(err(context))?;
        let mut out = Vec::with_capacity(ids.len());
        for (id, hash) in ids.iter().zip(hashes) {
            if let Some(job) = record(id, &hash)? {
                out.push(job);
            }
        }
        Ok(out)
    }
}

/// A job's hash → its record (`None` for an empty hash: no such job).
fn record(id: &str, hash: &HashMap<String, String>) -> Result<Option<JobRecord>, StoreError> {
    if hash.is_empty() {
        return Ok(None);
    }
    let bad = |what: &str| StoreError::Failed(format!("job {id}: bad or missing {what}"));
    let int = |name: &str| -> Result<Option<i64>, StoreError> {
        hash.get(name)
            .map(|v| v.parse::<i64>().map_err(|_| bad(name)))
            .transpose()
    };
    let spec: JobSpec = serde_json::from_str(hash.get("spec").ok_or_else(|| bad("spec"))?)
        .map_err(|_| bad("spec"))?;
    let status = hash
        .get("status")
        .and_then(|s| JobStatus::parse(s))
        .ok_or_else(|| bad("status"))?;
    let result = match (hash.get("result_type"), hash.get("result_name")) {
        (Some(content_type), Some(file_name)) => Some(JobResult {
            content_type: content_type.clone(),
            file_name: file_name.clone(),
            mask_count: int("result_masks")?.unwrap_or(0) as u64,
        }),
        _ => None,
    };
    Ok(Some(JobRecord {
        id: id.to_string(),
        spec,
        status,
        message: hash.get("message").cloned(),
        created: int("created")?.ok_or_else(|| bad("created"))?,
        started: int("started")?,
        finished: int("finished")?,
        updated: int("updated")?.ok_or_else(|| bad("updated"))?,
        tiles_total: int("tiles_total")?.map(|t| t as u32),
        tiles_done: int("tiles_done")?.unwrap_or(0) as u32,
        result,
    }))
}

impl JobStore for RedisStore {
    fn insert(&self, job: &JobRecord) -> Result<(), StoreError> {
        let spec = serde_json::to_string(&job.spec)
            .map_err(|e| StoreError::Failed(format!("encoding the job's inputs: {e}")))?;
        self.redis
            .call(|c| {
                let mut pipe = redis::pipe();
                pipe.atomic();
                let key = job_key(&job.id);
                pipe.cmd("HSET")
                    .arg(&key)
                    .arg("spec")
                    .arg(&spec)
                    .arg("status")
                    .arg(job.status.as_str())
                    .arg("created")
                    .arg(job.created)
                    .arg("updated")
                    .arg(job.created)
                    .arg("tiles_done")
                    .arg(0)
                    .ignore();
                if let Some(message) = &job.message {
                    pipe.cmd("HSET")
                        .arg(&key)
                        .arg("message")
                        .arg(message)
                        .ignore();
                }
                pipe.cmd("ZADD")
                    .arg(ALL)
                    .arg(job.created)
                    .arg(&job.id)
                    .ignore();
                if !job.status.is_final() {
                    pipe.cmd("ZADD")
                        .arg(UNFINISHED)
                        .arg(job.created)
                        .arg(&job.id)
                        .ignore();
                }
                pipe.query::<()>(c)
            })
            .map_err(err("adding a job"))
    }

    fn get(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        let hash: HashMap<String, String> = self
            .redis
            .call(|c| redis::cmd("HGETALL").arg(job_key(id)).query(c))
            .map_err(err("reading a job"))?;
        record(id, &hash)
    }

    fn list(&self, offset: usize, limit: usize) -> Result<Vec<JobRecord>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let last = offset.saturating_add(limit - 1);
        let ids: Vec<String> = self
            .redis
            .call(|c| {
                redis::cmd("ZREVRANGE")
                    .arg(ALL)
                    .arg(offset)
                    .arg(last)
                    .query(c)
            })
            .map_err(err("listing jobs"))?;
        self.records("listing jobs", &ids)
    }

    fn unfinished(&self) -> Result<Vec<JobRecord>, StoreError> {
        let ids: Vec<String> = self
            .redis
            .call(|c| redis::cmd("ZRANGE").arg(UNFINISHED).arg(0).arg(-1).query(c))
            .map_err(err("listing unfinished jobs"))?;
        self.records("listing unfinished jobs", &ids)
    }

    fn active_count(&self) -> Result<usize, StoreError> {
        self.redis
            .call(|c| redis::cmd("ZCARD").arg(UNFINISHED).query::<usize>(c))
            .map_err(err("counting jobs"))
    }

    fn start(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let now = now.to_string();
        self.redis
            .call(|c| {
                redis::cmd("EVAL")
                    .arg(START)
                    .arg(1)
                    .arg(job_key(id))
                    .arg(&now)
                    .query::<i64>(c)
            })
            .map(|n| n == 1)
            .map_err(err("starting a job"))
    }

    fn planned(&self, id: &str, total: u32, now: i64) -> Result<(), StoreError> {
        self.redis
            .call(|c| {
                redis::cmd("EVAL")
                    .arg(PLANNED)
                    .arg(1)
                    .arg(job_key(id))
                    .arg(total)
                    .arg(now)
                    .query::<i64>(c)
            })
            .map(|_| ())
            .map_err(err("recording the planned tiles"))
    }

    fn put_tile(&self, id: &str, index: u32, masks: &[u8], now: i64) -> Result<bool, StoreError> {
        self.redis
            .call(|c| {
                redis::cmd("EVAL")
                    .arg(PUT_TILE)
                    .arg(2)
                    .arg(job_key(id))
                    .arg(tiles_key(id))
                    .arg(index)
                    .arg(masks)
                    .arg(now)
                    .query::<i64>(c)
            })
            .map(|n| n == 1)
            .map_err(err("storing a tile"))
    }

    fn tile(&self, id: &str, index: u32) -> Result<Option<Vec<u8>>, StoreError> {
        self.redis
            .call(|c| redis::cmd("HGET").arg(tiles_key(id)).arg(index).query(c))
            .map_err(err("reading a tile"))
    }

    fn succeed(&self, id: &str, result: &JobResult, now: i64) -> Result<bool, StoreError> {
        let (now, masks) = (now.to_string(), result.mask_count.to_string());
        let args: [&[u8]; 4] = [
            now.as_bytes(),
            result.content_type.as_bytes(),
            result.file_name.as_bytes(),
            masks.as_bytes(),
        ];
        self.script::<i64>("finishing a job", SUCCEED, id, &args)
            .map(|n| n == 1)
    }

    fn fail(&self, id: &str, message: &str, now: i64) -> Result<bool, StoreError> {
        let now = now.to_string();
        self.script::<i64>(
            "failing a job",
            FAIL,
            id,
            &[now.as_bytes(), message.as_bytes()],
        )
        .map(|n| n == 1)
    }

    fn dismiss(&self, id: &str, now: i64) -> Result<Option<JobRecord>, StoreError> {
        let now = now.to_string();
        let flat: Vec<String> = self.script("dismissing a job", DISMISS, id, &[now.as_bytes()])?;
        let mut hash = HashMap::new();
        let mut it = flat.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            hash.insert(k, v);
        }
        record(id, &hash)
    }

    fn delete(&self, id: &str) -> Result<(), StoreError> {
        self.redis
            .call(|c| {
                redis::pipe()
                    .atomic()
                    .cmd("DEL")
                    .arg(job_key(id))
                    .arg(tiles_key(id))
                    .ignore()
                    .cmd("ZREM")
                    .arg(ALL)
                    .arg(id)
                    .ignore()
                    .cmd("ZREM")
                    .arg(UNFINISHED)
                    .arg(id)
                    .ignore()
                    .cmd("ZREM")
                    .arg(FINISHED)
                    .arg(id)
                    .ignore()
                    .query::<()>(c)
            })
            .map_err(err("deleting a job"))
    }

    fn finished_before(&self, before: i64) -> Result<Vec<String>, StoreError> {
        self.redis
            .call(|c| {
                redis::cmd("ZRANGEBYSCORE")
                    .arg(FINISHED)
                    .arg("-inf")
                    .arg(format!("({before}"))
                    .query(c)
            })
            .map_err(err("listing expired jobs"))
    }
}

#[cfg(test)]
mod tests {
    use super::super::sqlite::SqliteStore;
    use super::*;
    use crate::cluster::test_redis::TestRedis;

    use super::super::record::test_job as job;

    /// The life of two jobs, checked against any store: the Redis store must answer exactly as
    /// the SQLite one.
    fn lifecycle(store: &dyn JobStore) {
        store.insert(&job("a", 1)).unwrap();
        store.insert(&job("b", 2)).unwrap();
        assert_eq!(store.active_count().unwrap(), 2);
        assert_eq!(store.get("a").unwrap().unwrap(), job("a", 1));
        assert_eq!(store.get("nope").unwrap(), None);
        assert!(store.start("a", 3).unwrap());
        store.planned("a", 3, 3).unwrap();
        store.planned("nope", 3, 3).unwrap();
        assert_eq!(store.get("nope").unwrap(), None, "planned creates nothing");
        let binary = [0u8, 255, 10, 13, 0];
        assert!(store.put_tile("a", 0, &binary, 4).unwrap());
        assert!(store.put_tile("a", 0, &binary, 4).unwrap(), "counted once");
        let a = store.get("a").unwrap().unwrap();
        assert_eq!(
            (a.status, a.tiles_total, a.tiles_done, a.updated),
            (JobStatus::Running, Some(3), 1, 4)
        );
        assert_eq!(store.tile("a", 0).unwrap().as_deref(), Some(&binary[..]));
        assert_eq!(store.tile("a", 1).unwrap(), None);
        assert!(store.start("a", 5).unwrap(), "a resume");
        assert_eq!(store.get("a").unwrap().unwrap().started, Some(3));
        let result = JobResult {
            content_type: "application/geo+json".into(),
            file_name: "masks.geojson".into(),
            mask_count: 2,
        };
        assert!(store.succeed("a", &result, 6).unwrap());
        let a = store.get("a").unwrap().unwrap();
        assert_eq!(
            (a.status, a.result.clone(), a.finished, a.progress()),
            (JobStatus::Successful, Some(result.clone()), Some(6), 100)
        );
        assert_eq!(store.tile("a", 0).unwrap(), None, "tiles go once done");
        assert!(!store.fail("a", "late", 7).unwrap(), "a finished job stays");
        assert!(!store.succeed("a", &result, 7).unwrap());
        let ids: Vec<_> = store
            .list(0, 10)
            .unwrap()
            .into_iter()
            .map(|j| j.id)
            .collect();
        assert_eq!(ids, ["b", "a"]);
        assert_eq!(store.list(1, 10).unwrap()[0].id, "a");
        assert!(store.list(2, 10).unwrap().is_empty());
        assert_eq!(store.unfinished().unwrap()[0].id, "b");
        assert_eq!(store.active_count().unwrap(), 1);
        // b: dismissed while running; no tile, start or success afterwards.
        assert!(store.start("b", 8).unwrap());
        store.put_tile("b", 0, b"x", 8).unwrap();
        let before = store.dismiss("b", 9).unwrap().unwrap();
        assert_eq!((before.status, before.tiles_done), (JobStatus::Running, 1));
        assert!(!store.put_tile("b", 1, b"y", 10).unwrap());
        assert_eq!(store.tile("b", 0).unwrap(), None);
        assert!(!store.start("b", 10).unwrap());
        assert!(!store.succeed("b", &result, 10).unwrap());
        let b = store.get("b").unwrap().unwrap();
        assert_eq!(
            (b.status, b.finished, b.result),
            (JobStatus::Dismissed, Some(9), None)
        );
        assert_eq!(store.dismiss("nope", 10).unwrap(), None);
        assert_eq!(store.active_count().unwrap(), 0);
        // Failing: only accepted or running jobs, with the message kept.
        store.insert(&job("c", 11)).unwrap();
        assert!(store.fail("c", "tile 1 is broken", 12).unwrap());
        let c = store.get("c").unwrap().unwrap();
        assert_eq!(
            (c.status, c.message.as_deref()),
            (JobStatus::Failed, Some("tile 1 is broken"))
        );
        // The sweep: finished before a time, then deleted.
        let mut expired = store.finished_before(10).unwrap();
        expired.sort();
        assert_eq!(expired, ["a", "b"]);
        assert_eq!(store.finished_before(6).unwrap(), Vec::<String>::new());
        store.delete("a").unwrap();
        assert_eq!(store.get("a").unwrap(), None);
        let ids: Vec<_> = store
            .list(0, 10)
            .unwrap()
            .into_iter()
            .map(|j| j.id)
            .collect();
        assert_eq!(ids, ["c", "b"]);
    }

    #[test]
    fn the_sqlite_store_follows_the_shared_lifecycle() {
        lifecycle(&SqliteStore::in_memory().unwrap());
    }

    #[test]
    fn the_redis_store_answers_as_the_sqlite_store() {
        let Some(server) = TestRedis::start("the_redis_store_answers_as_the_sqlite_store") else {
            return;
        };
        let store = RedisStore::new(Arc::new(server.handle("a", 2000)));
        lifecycle(&store);
        // A second replica's handle sees the same jobs.
        let other = RedisStore::new(Arc::new(server.handle("b", 2000)));
        assert_eq!(other.get("c").unwrap(), store.get("c").unwrap());
    }

    #[test]
    fn an_unreachable_redis_is_unavailable() {
        let Some(mut server) = TestRedis::start("an_unreachable_redis_is_unavailable") else {
            return;
        };
        let store = RedisStore::new(Arc::new(server.handle("a", 500)));
        store.insert(&job("a", 1)).unwrap();
        server.stop();
        for _ in 0..2 {
            // The failing call, then the pause that follows it.
            let e = store.get("a").unwrap_err();
            assert!(matches!(e, StoreError::Unavailable(_)), "{e}");
        }
    }
}
