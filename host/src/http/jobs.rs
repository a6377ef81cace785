//! `GET /jobs`, `GET /jobs/{jobID}`, `GET /jobs/{jobID}/results`, `DELETE /jobs/{jobID}` (OGC
//! API – Processes, Part 1: Core 1.0): the statusInfo of a job, its output once successful,
//! its dismissal. Errors keep `{"detail"}` and add the OGC exception `type`, `title`, `status`.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::AppError;
use crate::jobs::{JobRecord, JobStatus};
use crate::state::AppState;

/// OGC exception types.
pub const NO_SUCH_JOB: &str =
    "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/no-such-job";
pub const RESULT_NOT_READY: &str =
    "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/result-not-ready";
pub const NO_SUCH_PROCESS: &str =
    "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/no-such-process";

/// `Preference-Applied`.
const PREFERENCE_APPLIED: HeaderName = HeaderName::from_static("preference-applied");

/// Jobs listed per page when `limit` is absent, and at most.
const DEFAULT_LIMIT: usize = 10;
const MAX_LIMIT: usize = 1000;

/// A link of a statusInfo or a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Link {
    pub href: String,
    pub rel: String,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

impl Link {
    /// A link with a media type.
    pub fn new(href: String, rel: &str, media_type: &str) -> Link {
        Link {
            href,
            rel: rel.into(),
            media_type: Some(media_type.into()),
            title: None,
        }
    }
}

/// A job's state (OGC `statusInfo`). Times are RFC 3339.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusInfo {
    #[serde(rename = "jobID")]
    pub job_id: String,
    #[serde(rename = "processID")]
    pub process_id: String,
    /// Always `process`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// accepted, running, successful, failed or dismissed.
    pub status: &'static str,
    /// What happened; a failed job's error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub created: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished: Option<String>,
    pub updated: String,
    /// 0–100: tiles done out of tiles planned.
    pub progress: u8,
    pub links: Vec<Link>,
}

impl StatusInfo {
    /// The statusInfo of `job`.
    pub fn of(job: &JobRecord) -> StatusInfo {
        use crate::jobs::record::rfc3339;
        let mut links = vec![Link::new(
            format!("/jobs/{}", job.id),
            "self",
            "application/json",
        )];
        if let (JobStatus::Successful, Some(result)) = (job.status, &job.result) {
            links.push(Link::new(
                format!("/jobs/{}/results", job.id),
                "http://www.opengis.net/def/rel/ogc/1.0/results",
                &result.content_type,
            ));
        }
        StatusInfo {
            job_id: job.id.clone(),
            process_id: job.spec.process.as_str().into(),
            kind: "process",
            status: job.status.as_str(),
            message: job.message.clone(),
            created: rfc3339(job.created),
            started: job.started.map(rfc3339),
            finished: job.finished.map(rfc3339),
            updated: rfc3339(job.updated),
            progress: job.progress(),
            links,
        }
    }
}

/// A page of jobs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobList {
    pub jobs: Vec<StatusInfo>,
    pub links: Vec<Link>,
}

/// An OGC exception that also carries `detail` like every error of this server.
pub fn exception(status: StatusCode, kind: &str, detail: impl Into<String>) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    (
        status,
        Json(serde_json::json!({
            "type": kind,
            "title": title,
            "status": status.as_u16(),
            "detail": detail.into(),
        })),
    )
        .into_response()
}

/// Whether the client asked for asynchronous execution (`Prefer: respond-async`).
pub fn prefers_async(headers: &HeaderMap) -> bool {
    headers.get_all("prefer").iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split([',', ';'])
                .any(|p| p.trim().eq_ignore_ascii_case("respond-async"))
        })
    })
}

/// The answer to an accepted job: `status` (201 from `/processes`, 202 from `/segment/*`),
/// `Location`, `Preference-Applied: respond-async`, and the statusInfo.
pub fn job_accepted(status: StatusCode, job: &JobRecord) -> Response {
    let mut response = (status, Json(StatusInfo::of(job))).into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("/jobs/{}", job.id)) {
        headers.insert(header::LOCATION, v);
    }
    headers.insert(
        PREFERENCE_APPLIED,
        HeaderValue::from_static("respond-async"),
    );
    response
}

/// A job's 404 as an OGC exception.
fn job_error(e: AppError) -> Response {
    if e.status == StatusCode::NOT_FOUND {
        exception(e.status, NO_SUCH_JOB, e.detail)
    } else {
        e.into_response()
    }
}

/// A query parameter as a whole number, 400 otherwise.
fn number(query: &HashMap<String, String>, name: &str, default: usize) -> Result<usize, AppError> {
    match query.get(name) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| {
            AppError::bad_request(format!(
                "{name} must be a whole number 0 or more (got '{v}')"
            ))
        }),
    }
}

/// `GET /jobs`: the jobs, newest first, `limit` per page (default 10, at most 1000) from
/// `offset`; a `next` link while there are more.
#[utoipa::path(get, path = "/jobs",
    params(("limit" = Option<usize>, Query, description = "Jobs per page (1 to 1000; default 10)", minimum = 1, maximum = 1000),
        ("offset" = Option<usize>, Query, description = "Jobs skipped (default 0)", minimum = 0)),
    responses((status = 200, description = "A page of jobs, newest first", body = JobList),
        (status = 400, description = "Invalid limit or offset", body = super::openapi::ErrorDetail)))]
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let limit = number(&query, "limit", DEFAULT_LIMIT)?.clamp(1, MAX_LIMIT);
    // SQLite counts in i64; far past the last job is past it all the same.
    let offset = number(&query, "offset", 0)?.min(i64::MAX as usize / 2);
    let mut jobs = state.jobs()?.list(offset, limit + 1).await?;
    let mut links = vec![Link::new(
        format!("/jobs?limit={limit}&offset={offset}"),
        "self",
        "application/json",
    )];
    if jobs.len() > limit {
        jobs.truncate(limit);
        links.push(Link::new(
            format!("/jobs?limit={limit}&offset={}", offset + limit),
            "next",
            "application/json",
        ));
    }
    if offset > 0 {
        links.push(Link::new(
            format!(
                "/jobs?limit={limit}&offset={}",
                offset.saturating_sub(limit)
            ),
            "prev",
            "application/json",
        ));
    }
    Ok(Json(JobList {
        jobs: jobs.iter().map(StatusInfo::of).collect(),
        links,
    })
    .into_response())
}

/// `GET /jobs/{jobID}`: the job's statusInfo.
#[utoipa::path(get, path = "/jobs/{jobID}",
    params(("jobID" = String, Path, description = "The job's id")),
    responses((status = 200, description = "The job's statusInfo", body = StatusInfo),
        (status = 404, description = "No such job (OGC exception no-such-job)", body = super::openapi::ErrorDetail)))]
pub async fn status(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let jobs = state.jobs().map_err(IntoResponse::into_response)?;
    let job = jobs.get(&id).await.map_err(job_error)?;
    Ok(Json(StatusInfo::of(&job)).into_response())
}

/// `GET /jobs/{jobID}/results`: a successful job's output, as `/segment/*` would have answered
/// it (the format's content type); 404 `result-not-ready` before that.
#[utoipa::path(get, path = "/jobs/{jobID}/results",
    params(("jobID" = String, Path, description = "The job's id")),
    responses((status = 200, description = "The output in the job's output_format"),
        (status = 404, description = "No such job, or its result is not ready (OGC exceptions no-such-job, result-not-ready)", body = super::openapi::ErrorDetail)))]
pub async fn results(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let jobs = state.jobs().map_err(IntoResponse::into_response)?;
    match jobs.result(&id).await.map_err(job_error)? {
        Ok((job, bytes)) => {
            let result = job
                .result
                .unwrap_or_else(|| unreachable!("checked by Jobs::result"));
            let mut response = bytes.into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_str(&result.content_type)
                    .unwrap_or(HeaderValue::from_static("application/octet-stream")),
            );
            if !result.content_type.contains("json") {
                let safe: String = result
                    .file_name
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
                    .collect();
                if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{safe}\"")) {
                    headers.insert(header::CONTENT_DISPOSITION, v);
                }
            }
            headers.insert(
                super::response::MASKS_HEADER,
                HeaderValue::from(result.mask_count),
            );
            Ok(response)
        }
        Err(job) => Err(exception(
            StatusCode::NOT_FOUND,
            RESULT_NOT_READY,
            format!(
                "The result of job {} is not ready: the job is {}{}",
                job.id,
                job.status.as_str(),
                job.message
                    .as_deref()
                    .filter(|_| job.status == JobStatus::Failed)
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default()
            ),
        )),
    }
}

/// `DELETE /jobs/{jobID}`: dismisses the job (a running one stops before its next tile) and
/// deletes its results; answers its statusInfo (`dismissed`).
#[utoipa::path(delete, path = "/jobs/{jobID}",
    params(("jobID" = String, Path, description = "The job's id")),
    responses((status = 200, description = "The job, dismissed", body = StatusInfo),
        (status = 404, description = "No such job (OGC exception no-such-job)", body = super::openapi::ErrorDetail)))]
pub async fn dismiss(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let jobs = state.jobs().map_err(IntoResponse::into_response)?;
    let job = jobs.dismiss(&id).await.map_err(job_error)?;
    Ok(Json(StatusInfo::of(&job)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::{ImageRef, JobSpec, ProcessId};

    #[test]
    fn status_info_has_the_ogc_fields() {
        let mut job = JobRecord::accepted(
            "j1".into(),
            JobSpec {
                process: ProcessId::Text,
                fields: vec![],
                image: ImageRef::Upload,
            },
            1_700_000_000_000,
        );
        let v = serde_json::to_value(StatusInfo::of(&job)).unwrap();
        assert_eq!(v["jobID"], "j1");
        assert_eq!(v["processID"], "segment-text");
        assert_eq!(v["type"], "process");
        assert_eq!(v["status"], "accepted");
        assert_eq!(v["created"], "2023-11-14T22:13:20.000Z");
        assert_eq!(v["progress"], 0);
        assert!(v.get("started").is_none(), "absent, not null");
        job.status = JobStatus::Successful;
        job.result = Some(crate::jobs::JobResult {
            content_type: "image/tiff".into(),
            file_name: "m.tif".into(),
            mask_count: 1,
        });
        let v = serde_json::to_value(StatusInfo::of(&job)).unwrap();
        assert_eq!(v["links"][1]["href"], "/jobs/j1/results");
        assert_eq!(v["links"][1]["type"], "image/tiff");
    }

    #[test]
    fn prefer_respond_async() {
        let mut h = HeaderMap::new();
        assert!(!prefers_async(&h));
        h.insert("prefer", HeaderValue::from_static("wait=10, respond-async"));
        assert!(prefers_async(&h));
        h.insert("prefer", HeaderValue::from_static("return=minimal"));
        assert!(!prefers_async(&h));
    }
}
