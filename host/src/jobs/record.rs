//! What the job store keeps about a job: its process, its inputs, its state and its result.

use serde::{Deserialize, Serialize};

/// The processes a job can run (OGC API – Processes ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProcessId {
    #[serde(rename = "segment-automatic")]
    Automatic,
    #[serde(rename = "segment-text")]
    Text,
    #[serde(rename = "segment-predict")]
    Predict,
}

impl ProcessId {
    /// Every process, in the order `/processes` lists them.
    pub const ALL: [ProcessId; 3] = [ProcessId::Automatic, ProcessId::Text, ProcessId::Predict];

    /// The process id in URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            ProcessId::Automatic => "segment-automatic",
            ProcessId::Text => "segment-text",
            ProcessId::Predict => "segment-predict",
        }
    }

    /// The process with this id.
    pub fn parse(id: &str) -> Option<ProcessId> {
        ProcessId::ALL.into_iter().find(|p| p.as_str() == id)
    }
}

/// A job's state (OGC `statusCode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Accepted,
    Running,
    Successful,
    Failed,
    Dismissed,
}

impl JobStatus {
    /// The name in statusInfo and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Accepted => "accepted",
            JobStatus::Running => "running",
            JobStatus::Successful => "successful",
            JobStatus::Failed => "failed",
            JobStatus::Dismissed => "dismissed",
        }
    }

    /// The status with this name.
    pub fn parse(name: &str) -> Option<JobStatus> {
        [
            JobStatus::Accepted,
            JobStatus::Running,
            JobStatus::Successful,
            JobStatus::Failed,
            JobStatus::Dismissed,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }

    /// Whether the job will not change any more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobStatus::Successful | JobStatus::Failed | JobStatus::Dismissed
        )
    }
}

/// Where a job's raster comes from, as kept in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageRef {
    /// Uploaded with the job; the bytes are in the job's directory (`input`).
    Upload,
    /// A raster of `POST /images`.
    Stored(String),
    /// A `source` path read in place.
    Source(String),
}

/// What a job runs: the process, its parameters as form fields (the same names and text values
/// as the `/segment/*` forms), and its raster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    pub process: ProcessId,
    pub fields: Vec<(String, String)>,
    pub image: ImageRef,
}

/// A successful job's output, kept as a file in the job's directory (`result`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobResult {
    pub content_type: String,
    pub file_name: String,
    pub mask_count: u64,
}

/// One job, as stored. Times are milliseconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    pub id: String,
    pub spec: JobSpec,
    pub status: JobStatus,
    pub message: Option<String>,
    pub created: i64,
    pub started: Option<i64>,
    pub finished: Option<i64>,
    pub updated: i64,
    /// Tiles the run planned (unknown until it starts).
    pub tiles_total: Option<u32>,
    /// Tiles finished (stored), this attempt and earlier ones.
    pub tiles_done: u32,
    pub result: Option<JobResult>,
}

impl JobRecord {
    /// A job just accepted.
    pub fn accepted(id: String, spec: JobSpec, now: i64) -> JobRecord {
        JobRecord {
            id,
            spec,
            status: JobStatus::Accepted,
            message: Some("accepted".into()),
            created: now,
            started: None,
            finished: None,
            updated: now,
            tiles_total: None,
            tiles_done: 0,
            result: None,
        }
    }

    /// Progress 0–100: tiles done out of tiles planned; 100 once successful.
    pub fn progress(&self) -> u8 {
        match (self.status, self.tiles_total) {
            (JobStatus::Successful, _) => 100,
            (_, Some(total)) if total > 0 => {
                ((u64::from(self.tiles_done.min(total)) * 100) / u64::from(total)) as u8
            }
            _ => 0,
        }
    }
}

/// An accepted automatic job on a stored image, for the stores' tests.
#[cfg(test)]
pub(crate) fn test_job(id: &str, created: i64) -> JobRecord {
    JobRecord::accepted(
        id.into(),
        JobSpec {
            process: ProcessId::Automatic,
            fields: vec![("points_per_side".into(), "8".into())],
            image: ImageRef::Stored("abc".into()),
        },
        created,
    )
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// RFC 3339 (UTC, milliseconds) for statusInfo.
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_counts_tiles() {
        let spec = JobSpec {
            process: ProcessId::Automatic,
            fields: vec![],
            image: ImageRef::Upload,
        };
        let mut job = JobRecord::accepted("j".into(), spec, 0);
        assert_eq!(job.progress(), 0);
        job.tiles_total = Some(4);
        job.tiles_done = 1;
        assert_eq!(job.progress(), 25);
        job.status = JobStatus::Successful;
        assert_eq!(job.progress(), 100);
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(ProcessId::parse("segment-text"), Some(ProcessId::Text));
        assert_eq!(JobStatus::parse("dismissed"), Some(JobStatus::Dismissed));
    }
}
