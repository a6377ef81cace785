//! The embedded job store: one SQLite database (`jobs.sqlite3` under `server.cache_dir`), in WAL
//! mode, so that a job and each finished tile survive the process being killed (`kill -9`):
//! every change is one committed transaction.

use std::path::Path;

use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::record::{JobRecord, JobResult, JobSpec, JobStatus};
use super::store::{JobStore, StoreError};

/// [`JobStore`] on SQLite.
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    status TEXT NOT NULL,
    message TEXT,
    created INTEGER NOT NULL,
    started INTEGER,
    finished INTEGER,
    updated INTEGER NOT NULL,
    tiles_total INTEGER,
    tiles_done INTEGER NOT NULL DEFAULT 0,
    result_type TEXT,
    result_name TEXT,
    result_masks INTEGER
);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created);
CREATE TABLE IF NOT EXISTS tiles (
    job_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    masks BLOB NOT NULL,
    PRIMARY KEY (job_id, idx)
);
";

const COLUMNS: &str = "id, spec, status, message, created, started, finished, updated, \
                       tiles_total, tiles_done, result_type, result_name, result_masks";

fn err(context: &str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |e| StoreError::Failed(format!("{context}: {e}"))
}

impl SqliteStore {
    /// Opens (creating when absent) the database at `path`.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let conn = Connection::open(path)
            .map_err(|e| StoreError::Failed(format!("opening {}: {e}", path.display())))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err("setting WAL mode"))?;
        // WAL + NORMAL: a committed change survives the process being killed.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err("setting synchronous"))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err("setting the busy timeout"))?;
        conn.execute_batch(SCHEMA)
            .map_err(err("creating the tables"))?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
        })
    }

    /// A store in memory (tests).
    pub fn in_memory() -> Result<SqliteStore, StoreError> {
        let conn = Connection::open_in_memory().map_err(err("opening"))?;
        conn.execute_batch(SCHEMA)
            .map_err(err("creating the tables"))?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
        })
    }
}

/// A row of `jobs` → a record.
fn record(row: &Row<'_>) -> rusqlite::Result<JobRecord> {
    let spec: String = row.get(1)?;
    let spec: JobSpec = serde_json::from_str(&spec).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, Box::new(e))
    })?;
    let status: String = row.get(2)?;
    let status = JobStatus::parse(&status).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            2,
            rusqlite::types::Type::Text,
            format!("unknown status {status}").into(),
        )
    })?;
    let result = match (
        row.get::<_, Option<String>>(10)?,
        row.get::<_, Option<String>>(11)?,
    ) {
        (Some(content_type), Some(file_name)) => Some(JobResult {
            content_type,
            file_name,
            mask_count: row.get::<_, Option<i64>>(12)?.unwrap_or(0) as u64,
        }),
        _ => None,
    };
    Ok(JobRecord {
        id: row.get(0)?,
        spec,
        status,
        message: row.get(3)?,
        created: row.get(4)?,
        started: row.get(5)?,
        finished: row.get(6)?,
        updated: row.get(7)?,
        tiles_total: row.get::<_, Option<i64>>(8)?.map(|t| t as u32),
        tiles_done: row.get::<_, i64>(9)? as u32,
        result,
    })
}

impl JobStore for SqliteStore {
    fn insert(&self, job: &JobRecord) -> Result<(), StoreError> {
        let spec = serde_json::to_string(&job.spec)
            .map_err(|e| StoreError::Failed(format!("encoding the job's inputs: {e}")))?;
        self.conn
            .lock()
            .execute(
                "INSERT INTO jobs (id, spec, status, message, created, updated, tiles_done)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5, 0)",
                params![job.id, spec, job.status.as_str(), job.message, job.created],
            )
            .map_err(err("adding a job"))?;
        Ok(())
    }

    fn get(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        self.conn
            .lock()
            .query_row(
                &format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1"),
                [id],
                record,
            )
            .optional()
            .map_err(err("reading a job"))
    }

    fn list(&self, offset: usize, limit: usize) -> Result<Vec<JobRecord>, StoreError> {
        let conn = self.conn.lock();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM jobs ORDER BY created DESC, id LIMIT ?1 OFFSET ?2"
            ))
            .map_err(err("listing jobs"))?;
        let rows = stmt
            .query_map(params![limit as i64, offset as i64], record)
            .map_err(err("listing jobs"))?;
        rows.collect::<Result<_, _>>().map_err(err("listing jobs"))
    }

    fn unfinished(&self) -> Result<Vec<JobRecord>, StoreError> {
        let conn = self.conn.lock();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM jobs WHERE status IN ('accepted', 'running')
                 ORDER BY created, id"
            ))
            .map_err(err("listing unfinished jobs"))?;
        let rows = stmt
            .query_map([], record)
            .map_err(err("listing unfinished jobs"))?;
        rows.collect::<Result<_, _>>()
            .map_err(err("listing unfinished jobs"))
    }

    fn active_count(&self) -> Result<usize, StoreError> {
        self.conn
            .lock()
            .query_row(
                "SELECT COUNT(*) FROM jobs WHERE status IN ('accepted', 'running')",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as usize)
            .map_err(err("counting jobs"))
    }

    fn start(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let changed = self
            .conn
            .lock()
            .execute(
                "UPDATE jobs SET status = 'running', message = 'running',
                   started = COALESCE(started, ?2), updated = ?2
                 WHERE id = ?1 AND status IN ('accepted', 'running')",
                params![id, now],
            )
            .map_err(err("starting a job"))?;
        Ok(changed == 1)
    }

    fn planned(&self, id: &str, total: u32, now: i64) -> Result<(), StoreError> {
        self.conn
            .lock()
            .execute(
                "UPDATE jobs SET tiles_total = ?2, updated = ?3 WHERE id = ?1",
                params![id, total, now],
            )
            .map_err(err("recording the planned tiles"))?;
        Ok(())
    }

    fn put_tile(&self, id: &str, index: u32, masks: &[u8], now: i64) -> Result<bool, StoreError> {
        let mut conn = self.conn.lock();
        let tx = conn.transaction().map_err(err("storing a tile"))?;
        let inserted = tx
            .execute(
                "INSERT OR IGNORE INTO tiles (job_id, idx, masks)
                 SELECT ?1, ?2, ?3 WHERE EXISTS
                   (SELECT 1 FROM jobs WHERE id = ?1 AND status = 'running')",
                params![id, index, masks],
            )
            .map_err(err("storing a tile"))?;
        if inserted == 1 {
            tx.execute(
                "UPDATE jobs SET tiles_done = tiles_done + 1, updated = ?2 WHERE id = ?1",
                params![id, now],
            )
            .map_err(err("counting a tile"))?;
        }
        let running: bool = tx
            .query_row(
                "SELECT status = 'running' FROM jobs WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()
            .map_err(err("storing a tile"))?
            .unwrap_or(false);
        tx.commit().map_err(err("storing a tile"))?;
        Ok(running)
    }

    fn tile(&self, id: &str, index: u32) -> Result<Option<Vec<u8>>, StoreError> {
        self.conn
            .lock()
            .query_row(
                "SELECT masks FROM tiles WHERE job_id = ?1 AND idx = ?2",
                params![id, index],
                |r| r.get(0),
            )
            .optional()
            .map_err(err("reading a tile"))
    }

    fn succeed(&self, id: &str, result: &JobResult, now: i64) -> Result<bool, StoreError> {
        let mut conn = self.conn.lock();
        let tx = conn.transaction().map_err(err("finishing a job"))?;
        let changed = tx
            .execute(
                "UPDATE jobs SET status = 'successful', message = 'successful', finished = ?2,
                   updated = ?2, result_type = ?3, result_name = ?4, result_masks = ?5
                 WHERE id = ?1 AND status = 'running'",
                params![
                    id,
                    now,
                    result.content_type,
                    result.file_name,
                    result.mask_count as i64
                ],
            )
            .map_err(err("finishing a job"))?;
        tx.execute("DELETE FROM tiles WHERE job_id = ?1", [id])
            .map_err(err("forgetting a job's tiles"))?;
        tx.commit().map_err(err("finishing a job"))?;
        Ok(changed == 1)
    }

    fn fail(&self, id: &str, message: &str, now: i64) -> Result<bool, StoreError> {
        let mut conn = self.conn.lock();
        let tx = conn.transaction().map_err(err("failing a job"))?;
        let changed = tx
            .execute(
                "UPDATE jobs SET status = 'failed', message = ?2, finished = ?3, updated = ?3
                 WHERE id = ?1 AND status IN ('accepted', 'running')",
                params![id, message, now],
            )
            .map_err(err("failing a job"))?;
        tx.execute("DELETE FROM tiles WHERE job_id = ?1", [id])
            .map_err(err("forgetting a job's tiles"))?;
        tx.commit().map_err(err("failing a job"))?;
        Ok(changed == 1)
    }

    fn dismiss(&self, id: &str, now: i64) -> Result<Option<JobRecord>, StoreError> {
        let mut conn = self.conn.lock();
        let tx = conn.transaction().map_err(err("dismissing a job"))?;
        let before = tx
            .query_row(
                &format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1"),
                [id],
                record,
            )
            .optional()
            .map_err(err("dismissing a job"))?;
        if before.is_some() {
            tx.execute(
                "UPDATE jobs SET status = 'dismissed', message = 'dismissed',
                   finished = COALESCE(finished, ?2), updated = ?2,
                   result_type = NULL, result_name = NULL, result_masks = NULL
                 WHERE id = ?1",
                params![id, now],
            )
            .map_err(err("dismissing a job"))?;
            tx.execute("DELETE FROM tiles WHERE job_id = ?1", [id])
                .map_err(err("forgetting a job's tiles"))?;
        }
        tx.commit().map_err(err("dismissing a job"))?;
        Ok(before)
    }

    fn delete(&self, id: &str) -> Result<(), StoreError> {
        let mut conn = self.conn.lock();
        let tx = conn.transaction().map_err(err("deleting a job"))?;
        tx.execute("DELETE FROM tiles WHERE job_id = ?1", [id])
            .map_err(err("deleting a job"))?;
        tx.execute("DELETE FROM jobs WHERE id = ?1", [id])
            .map_err(err("deleting a job"))?;
        tx.commit().map_err(err("deleting a job"))
    }

    fn finished_before(&self, before: i64) -> Result<Vec<String>, StoreError> {
        let conn = self.conn.lock();
        let mut stmt = conn
            .prepare(
                "SELECT id FROM jobs WHERE status IN ('successful', 'failed', 'dismissed')
                 AND finished < ?1",
            )
            .map_err(err("listing expired jobs"))?;
        let rows = stmt
            .query_map([before], |r| r.get(0))
            .map_err(err("listing expired jobs"))?;
        rows.collect::<Result<_, _>>()
            .map_err(err("listing expired jobs"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::record::test_job as job;

    #[test]
    fn a_job_goes_through_its_states() {
        let store = SqliteStore::in_memory().unwrap();
        store.insert(&job("a", 1)).unwrap();
        store.insert(&job("b", 2)).unwrap();
        assert_eq!(store.active_count().unwrap(), 2);
        assert_eq!(store.get("a").unwrap().unwrap(), job("a", 1));
        assert!(store.start("a", 3).unwrap());
        store.planned("a", 3, 3).unwrap();
        assert!(store.put_tile("a", 0, b"m0", 4).unwrap());
        assert!(
            store.put_tile("a", 0, b"m0", 4).unwrap(),
            "a tile stored twice counts once"
        );
        let a = store.get("a").unwrap().unwrap();
        assert_eq!(
            (a.status, a.tiles_total, a.tiles_done),
            (JobStatus::Running, Some(3), 1)
        );
        assert_eq!(a.progress(), 33);
        assert_eq!(store.tile("a", 0).unwrap().as_deref(), Some(&b"m0"[..]));
        assert_eq!(store.tile("a", 1).unwrap(), None);
        // A restart resumes a running job with its tiles.
        assert!(store.start("a", 5).unwrap());
        assert_eq!(store.get("a").unwrap().unwrap().started, Some(3));
        let result = JobResult {
            content_type: "application/geo+json".into(),
            file_name: "masks.geojson".into(),
            mask_count: 2,
        };
        assert!(store.succeed("a", &result, 6).unwrap());
        let a = store.get("a").unwrap().unwrap();
        assert_eq!(
            (a.status, a.result, a.finished),
            (JobStatus::Successful, Some(result), Some(6))
        );
        assert_eq!(store.tile("a", 0).unwrap(), None, "tiles go once done");
        assert!(!store.fail("a", "late", 7).unwrap(), "a finished job stays");
        let ids: Vec<_> = store
            .list(0, 10)
            .unwrap()
            .into_iter()
            .map(|j| j.id)
            .collect();
        assert_eq!(ids, ["b", "a"]);
        assert_eq!(store.list(1, 10).unwrap().len(), 1);
        assert_eq!(store.unfinished().unwrap()[0].id, "b");
    }

    #[test]
    fn dismissing_stops_tiles_and_results() {
        let store = SqliteStore::in_memory().unwrap();
        store.insert(&job("a", 1)).unwrap();
        store.start("a", 2).unwrap();
        store.put_tile("a", 0, b"x", 2).unwrap();
        let before = store.dismiss("a", 3).unwrap().unwrap();
        assert_eq!(before.status, JobStatus::Running);
        assert!(
            !store.put_tile("a", 1, b"y", 4).unwrap(),
            "no tile after dismissal"
        );
        assert_eq!(store.tile("a", 1).unwrap(), None);
        assert!(!store.start("a", 4).unwrap());
        let result = JobResult {
            content_type: "x".into(),
            file_name: "y".into(),
            mask_count: 0,
        };
        assert!(!store.succeed("a", &result, 5).unwrap());
        assert_eq!(
            store.get("a").unwrap().unwrap().status,
            JobStatus::Dismissed
        );
        assert_eq!(store.dismiss("nope", 5).unwrap(), None);
        assert_eq!(store.finished_before(4).unwrap(), ["a"]);
        assert!(store.finished_before(3).unwrap().is_empty());
        store.delete("a").unwrap();
        assert_eq!(store.get("a").unwrap(), None);
    }

    #[test]
    fn survives_reopening() {
        let dir = std::env::temp_dir().join(format!("samgeo-jobs-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("jobs.sqlite3");
        {
            let store = SqliteStore::open(&path).unwrap();
            store.insert(&job("a", 1)).unwrap();
            store.start("a", 2).unwrap();
            store.put_tile("a", 2, b"tile", 3).unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.tile("a", 2).unwrap().as_deref(), Some(&b"tile"[..]));
        assert_eq!(store.unfinished().unwrap().len(), 1);
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
