//! The tile stream of a cluster: the tiles of fanned-out jobs as entries of one Redis stream
//! ([`STREAM`], fields `job` and `tile`), read by every replica through one consumer group
//! ([`GROUP`], each replica a consumer named by its node id). A replica reads an entry
//! (XREADGROUP), keeps it claimed while it works ([`keep_claimed`]: XCLAIM resets its idle
//! time), and acknowledges and deletes it once the tile is stored ([`done`]); an entry left idle
//! longer than `tile_claim_idle_ms` (its replica died) is taken over by another (XAUTOCLAIM).
//! Every call blocks: blocking threads only.

use redis::Value;

use super::{ClusterError, Redis};

/// The stream of tiles to compute.
pub const STREAM: &str = "samgeo:tiles";
/// The consumer group every replica reads the stream through.
pub const GROUP: &str = "workers";

/// One tile to compute: the stream entry's id, the job and the tile's index in the job's plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TileEntry {
    pub entry_id: String,
    pub job: String,
    pub tile: u32,
}

/// Creates the stream and its group unless they exist (`XGROUP CREATE ... MKSTREAM`).
pub fn ensure_group(redis: &Redis) -> Result<(), ClusterError> {
    redis.call(|c| {
        let created = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(STREAM)
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query::<()>(c);
        match created {
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            other => other,
        }
    })
}

/// Adds one entry per tile of `job` (one round trip).
pub fn enqueue(redis: &Redis, job: &str, tiles: &[u32]) -> Result<(), ClusterError> {
    if tiles.is_empty() {
        return Ok(());
    }
    redis.call(|c| {
        let mut pipe = redis::pipe();
        for tile in tiles {
            pipe.cmd("XADD")
                .arg(STREAM)
                .arg("*")
                .arg("job")
                .arg(job)
                .arg("tile")
                .arg(tile)
                .ignore();
        }
        pipe.query::<()>(c)
    })
}

/// A new entry for `consumer`, waiting up to `block_ms` for one (`XREADGROUP ... BLOCK`). The
/// connection's read timeout must exceed `block_ms`.
pub fn read_new(
    redis: &Redis,
    consumer: &str,
    block_ms: u64,
) -> Result<Option<TileEntry>, ClusterError> {
    let reply: Value = redis.call(|c| {
        redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(GROUP)
            .arg(consumer)
            .arg("COUNT")
            .arg(1)
            .arg("BLOCK")
            .arg(block_ms)
            .arg("STREAMS")
            .arg(STREAM)
            .arg(">")
            .query(c)
    })?;
    // [[stream, [entry]]] (RESP2) or {stream: [entry]} (RESP3); nil when nothing came.
    let streams = match reply {
        Value::Array(streams) => streams
            .into_iter()
            .filter_map(|s| match s {
                Value::Array(mut pair) if pair.len() == 2 => pair.pop(),
                _ => None,
            })
            .collect(),
        Value::Map(pairs) => pairs.into_iter().map(|(_, entries)| entries).collect(),
        _ => Vec::new(),
    };
    Ok(streams.into_iter().flat_map(entries).next())
}

/// An entry idle for longer than `min_idle_ms` (its consumer died or hangs), now claimed by
/// `consumer` (`XAUTOCLAIM ... COUNT 1`). Entries whose tile was deleted from the stream
/// meanwhile are dropped from the group by Redis itself.
pub fn claim_idle(
    redis: &Redis,
    consumer: &str,
    min_idle_ms: u64,
) -> Result<Option<TileEntry>, ClusterError> {
    let reply: Value = redis.call(|c| {
        redis::cmd("XAUTOCLAIM")
            .arg(STREAM)
            .arg(GROUP)
            .arg(consumer)
            .arg(min_idle_ms)
            .arg("0-0")
            .arg("COUNT")
            .arg(1)
            .query(c)
    })?;
    // [next cursor, [entry...], [deleted ids...]]
    let Value::Array(parts) = reply else {
        return Ok(None);
    };
    Ok(parts.into_iter().nth(1).and_then(|e| entries(e).next()))
}

/// Claims `entry_id` for `consumer` again, resetting its idle time, so that nobody takes over a
/// tile still being computed (`XCLAIM ... 0 <id> JUSTID`).
pub fn keep_claimed(redis: &Redis, consumer: &str, entry_id: &str) -> Result<(), ClusterError> {
    redis.call(|c| {
        redis::cmd("XCLAIM")
            .arg(STREAM)
            .arg(GROUP)
            .arg(consumer)
            .arg(0)
            .arg(entry_id)
            .arg("JUSTID")
            .query::<()>(c)
    })
}

/// The entry is dealt with: acknowledged and deleted from the stream (which then holds only
/// tiles still to compute).
pub fn done(redis: &Redis, entry_id: &str) -> Result<(), ClusterError> {
    redis.call(|c| {
        redis::pipe()
            .cmd("XACK")
            .arg(STREAM)
            .arg(GROUP)
            .arg(entry_id)
            .ignore()
            .cmd("XDEL")
            .arg(STREAM)
            .arg(entry_id)
            .ignore()
            .query::<()>(c)
    })
}

/// How many times entry `entry_id` was delivered (read, or taken over); 0 when not pending.
pub fn deliveries(redis: &Redis, entry_id: &str) -> Result<u64, ClusterError> {
    // XPENDING key group start end count → [[id, consumer, idle ms, deliveries]]
    let reply: Value = redis.call(|c| {
        redis::cmd("XPENDING")
            .arg(STREAM)
            .arg(GROUP)
            .arg(entry_id)
            .arg(entry_id)
            .arg(1)
            .query(c)
    })?;
    let Value::Array(rows) = reply else {
        return Ok(0);
    };
    Ok(match rows.first() {
        Some(Value::Array(row)) => match row.get(3) {
            Some(Value::Int(n)) => *n as u64,
            _ => 0,
        },
        _ => 0,
    })
}

/// Entries pending in the group (claimed, not yet acknowledged).
pub fn pending(redis: &Redis) -> Result<u64, ClusterError> {
    let reply: Value = redis.call(|c| redis::cmd("XPENDING").arg(STREAM).arg(GROUP).query(c))?;
    Ok(match reply {
        Value::Array(parts) => match parts.first() {
            Some(Value::Int(n)) => *n as u64,
            _ => 0,
        },
        _ => 0,
    })
}

/// The entries of a list of `[id, [field, value, ...]]`; malformed ones (a deleted entry's nil
/// fields, a missing field) come back with an empty job so that the caller drops them.
fn entries(list: Value) -> impl Iterator<Item = TileEntry> {
    let items = match list {
        Value::Array(items) => items,
        _ => Vec::new(),
    };
    items.into_iter().filter_map(|item| {
        let Value::Array(mut parts) = item else {
            return None;
        };
        if parts.len() != 2 {
            return None;
        }
        let fields = parts.pop()?;
        let entry_id = text(&parts.pop()?)?;
        let mut entry = TileEntry {
            entry_id,
            job: String::new(),
            tile: u32::MAX,
        };
        let pairs: Vec<(Value, Value)> = match fields {
            Value::Array(flat) => {
                let mut it = flat.into_iter();
                std::iter::from_fn(|| Some((it.next()?, it.next()?))).collect()
            }
            Value::Map(pairs) => pairs,
            _ => Vec::new(),
        };
        for (name, value) in pairs {
            match (text(&name).as_deref(), text(&value)) {
                (Some("job"), Some(job)) => entry.job = job,
                (Some("tile"), Some(tile)) => entry.tile = tile.parse().unwrap_or(u32::MAX),
                _ => {}
            }
        }
        Some(entry)
    })
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

impl TileEntry {
    /// Whether the entry names a job and a tile (an entry written by [`enqueue`]).
    pub fn is_valid(&self) -> bool {
        !self.job.is_empty() && self.tile != u32::MAX
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_redis::TestRedis;
    use super::*;
    use std::time::Duration;

    #[test]
    fn tiles_are_read_once_and_taken_over_when_idle() {
        let Some(server) = TestRedis::start("tiles_are_read_once_and_taken_over_when_idle") else {
            return;
        };
        let redis = server.handle("a", 3000);
        ensure_group(&redis).unwrap();
        ensure_group(&redis).unwrap(); // BUSYGROUP is fine
        assert_eq!(read_new(&redis, "a", 10).unwrap(), None);
        enqueue(&redis, "job-1", &[0, 2]).unwrap();
        let first = read_new(&redis, "a", 100).unwrap().unwrap();
        assert_eq!((first.job.as_str(), first.tile), ("job-1", 0));
        assert!(first.is_valid());
        let second = read_new(&redis, "b", 100).unwrap().unwrap();
        assert_eq!(second.tile, 2);
        assert_eq!(read_new(&redis, "c", 10).unwrap(), None, "each entry once");
        assert_eq!(pending(&redis).unwrap(), 2);
        // "b" finishes; "a" goes silent, and "c" takes its tile over once it is idle enough.
        done(&redis, &second.entry_id).unwrap();
        assert_eq!(claim_idle(&redis, "c", 60_000).unwrap(), None);
        std::thread::sleep(Duration::from_millis(120));
        keep_claimed(&redis, "a", &first.entry_id).unwrap();
        assert_eq!(
            claim_idle(&redis, "c", 100).unwrap(),
            None,
            "a kept claim is not taken over"
        );
        std::thread::sleep(Duration::from_millis(120));
        let taken = claim_idle(&redis, "c", 100).unwrap().unwrap();
        assert_eq!(taken, first);
        assert_eq!(
            deliveries(&redis, &taken.entry_id).unwrap(),
            2,
            "read, then taken over"
        );
        done(&redis, &taken.entry_id).unwrap();
        assert_eq!(pending(&redis).unwrap(), 0);
        assert_eq!(deliveries(&redis, &taken.entry_id).unwrap(), 0);
        assert_eq!(
            server.query(&["XLEN", STREAM]),
            Value::Int(0),
            "done entries are deleted"
        );
    }
}
