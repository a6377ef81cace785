//! `GET /processes`, `GET /processes/{processID}`, `POST /processes/{processID}/execution` (OGC
//! API – Processes, Part 1: Core 1.0) for `segment-automatic`, `segment-text` and
//! `segment-predict`.
//!
//! A process's inputs are the fields of its `/segment/*` form (their descriptions and schemas
//! taken from the same generated document as `/openapi.json`, so they cannot drift), plus the
//! raster: `image` (inline, base64: `{"value": "...", "mediaType": "image/tiff"}`), `image_id`
//! (`POST /images`) or `source` (a path read in place). Execution turns the inputs back into form
//! fields and builds the request with [`super::segment::build`]: the same checks, the same
//! messages. `output_format` is an input like the others; `outputs.result.format.mediaType`
//! (application/geo+json, image/tiff, image/png, application/json) chooses it too. The result is
//! answered raw (OGC 1.0 `response: raw`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use futures::future::BoxFuture;
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use super::form::Form;
use super::jobs::{exception, job_accepted, prefers_async, NO_SUCH_PROCESS};
use super::segment::{build, run_now, SegmentWork};
use crate::error::AppError;
use crate::jobs::{ImageRef, JobOutput, JobSpec, JobWork, Planner, ProcessId};
use crate::pipeline::progress::TileProgress;
use crate::pipeline::{Deadline, ImageInput};
use crate::state::AppState;

/// The job control options of every process.
const JOB_CONTROL: [&str; 3] = ["sync-execute", "async-execute", "dismiss"];

/// Output media types ↔ the built-in formatters.
const MEDIA_TYPES: [(&str, &str); 4] = [
    ("application/geo+json", "geojson"),
    ("image/tiff", "geotiff"),
    ("image/png", "png"),
    ("application/json", "json"),
];

/// The body of `POST /processes/{processID}/execution`.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct ExecuteBody {
    /// Input name → value: the `/segment/*` form fields (numbers, booleans, strings; prompts
    /// as JSON arrays), and one of `image` (`{"value": "<base64>", "mediaType": "image/tiff"}`),
    /// `image_id` or `source`.
    inputs: Map<String, Value>,
    /// Optional: `{"result": {"format": {"mediaType": "image/tiff"}}}` chooses the output format.
    outputs: Option<Map<String, Value>>,
    /// `raw` (the default; `document` is not supported).
    response: Option<String>,
}

fn title(process: ProcessId) -> (&'static str, &'static str, &'static str) {
    match process {
        ProcessId::Automatic => (
            "Segment everything",
            "Masks for every object in the raster (as POST /segment/automatic).",
            "AutomaticForm",
        ),
        ProcessId::Text => (
            "Segment from a text prompt",
            "SAM3: one mask per instance of what the prompt names (as POST /segment/text).",
            "TextForm",
        ),
        ProcessId::Predict => (
            "Segment from points and boxes",
            "One mask per prompt (as POST /segment/predict).",
            "PredictForm",
        ),
    }
}

/// The summary of `process` (`/processes` lists these).
fn summary(process: ProcessId) -> Value {
    let id = process.as_str();
    let (title, description, _) = title(process);
    json!({
        "id": id,
        "title": title,
        "description": description,
        "version": env!("CARGO_PKG_VERSION"),
        "jobControlOptions": JOB_CONTROL,
        "outputTransmission": ["value"],
        "links": [
            { "href": format!("/processes/{id}"), "rel": "self", "type": "application/json" },
            { "href": format!("/processes/{id}/execution"), "rel": "http://www.opengis.net/def/rel/ogc/1.0/execute", "title": "Execute" },
        ],
    })
}

/// The full description of `process`: its inputs from the form's schema in `doc` (the
/// `/openapi.json` document), and its one output.
fn description(process: ProcessId, doc: &Value) -> Value {
    let (_, _, form) = title(process);
    let schema = &doc["components"]["schemas"][form];
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut inputs = Map::new();
    if let Some(props) = schema["properties"].as_object() {
        for (name, prop) in props.iter().filter(|(n, _)| *n != "file") {
            let mut prop = prop.clone();
            let text = prop
                .as_object_mut()
                .and_then(|p| p.remove("description"))
                .unwrap_or(Value::String(String::new()));
            inputs.insert(
                name.clone(),
                json!({
                    "title": name,
                    "description": text,
                    "schema": prop,
                    "minOccurs": u8::from(required.contains(&name.as_str())),
                    "maxOccurs": 1,
                }),
            );
        }
    }
    inputs.insert("image".into(), json!({
        "title": "image",
        "description": "The raster inline (GeoTIFF, PNG or JPEG), base64: {\"value\": \"<base64>\", \"mediaType\": \"image/tiff\"}. Exactly one of image, image_id and source.",
        "schema": { "type": "string", "contentEncoding": "base64", "contentMediaType": "image/tiff" },
        "minOccurs": 0, "maxOccurs": 1,
    }));
    inputs.insert(
        "image_id".into(),
        json!({
            "title": "image_id",
            "description": "A raster stored with POST /images.",
            "schema": { "type": "string" }, "minOccurs": 0, "maxOccurs": 1,
        }),
    );
    inputs.insert("source".into(), json!({
        "title": "source",
        "description": "A path or GDAL virtual path read in place (under [inputs] allowed_sources).",
        "schema": { "type": "string" }, "minOccurs": 0, "maxOccurs": 1,
    }));
    let mut out = summary(process);
    out["inputs"] = Value::Object(inputs);
    out["outputs"] = json!({
        "result": {
            "title": "result",
            "description": "The masks in the requested output_format (geojson by default).",
            "schema": { "oneOf": [
                { "type": "object", "contentMediaType": "application/geo+json" },
                { "type": "string", "contentEncoding": "binary", "contentMediaType": "image/tiff" },
                { "type": "string", "contentEncoding": "binary", "contentMediaType": "image/png" },
                { "type": "object", "contentMediaType": "application/json" },
            ]},
        }
    });
    out
}

/// 404 `no-such-process` for a process id that is not one of ours.
fn no_such_process(id: &str) -> Response {
    exception(
        StatusCode::NOT_FOUND,
        NO_SUCH_PROCESS,
        format!(
            "No process '{id}'. Processes: {}",
            ProcessId::ALL.map(ProcessId::as_str).join(", ")
        ),
    )
}

/// `GET /processes`: the three segment processes.
#[utoipa::path(get, path = "/processes",
    responses((status = 200, description = "The processes (OGC processList)")))]
pub async fn list() -> Json<Value> {
    Json(json!({
        "processes": ProcessId::ALL.map(summary),
        "links": [{ "href": "/processes", "rel": "self", "type": "application/json" }],
    }))
}

/// `GET /processes/{processID}`: one process with its inputs and outputs.
#[utoipa::path(get, path = "/processes/{processID}",
    params(("processID" = String, Path, description = "segment-automatic, segment-text or segment-predict")),
    responses((status = 200, description = "The process description (OGC process)"),
        (status = 404, description = "No such process (OGC exception no-such-process)", body = super::openapi::ErrorDetail)))]
pub async fn describe(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Response> {
    let Some(process) = ProcessId::parse(&id) else {
        return Err(no_such_process(&id));
    };
    let doc = super::openapi::document(&state.config(), &state.plugins.format_names());
    Ok(Json(description(process, &doc)))
}

/// What an execute request asks for: form fields and the raster.
struct Execution {
    fields: Vec<(String, String)>,
    image: ImageChoice,
}

/// The raster of an execute request.
enum ImageChoice {
    Inline(Vec<u8>),
    Stored(String),
    Source(String),
}

/// An input value as form text: strings as they are, numbers and booleans written out, arrays
/// (prompts) as JSON; a qualified value `{"value": ...}` by its value. `None` for null.
fn field_text(name: &str, value: &Value) -> Result<Option<String>, AppError> {
    Ok(match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(_) => Some(value.to_string()),
        Value::Object(o) => match o.get("value") {
            Some(v) => field_text(name, v)?,
            None => {
                return Err(AppError::bad_request(format!(
                    "Input '{name}': give a plain value or a qualified value {{\"value\": ...}}"
                )))
            }
        },
    })
}

/// The inline raster: base64, plain or as a qualified value `{"value", "mediaType"}`.
fn inline_image(value: &Value) -> Result<Vec<u8>, AppError> {
    let text = match value {
        Value::String(s) => s.as_str(),
        Value::Object(o) if o.contains_key("href") => {
            return Err(AppError::bad_request(
                "Input 'image': references (href) are not fetched; use source or image_id, or send the raster inline as base64",
            ))
        }
        Value::Object(o) => o.get("value").and_then(Value::as_str).ok_or_else(|| {
            AppError::bad_request(
                "Input 'image': expected {\"value\": \"<base64>\", \"mediaType\": \"image/tiff\"}",
            )
        })?,
        _ => {
            return Err(AppError::bad_request(
                "Input 'image': expected base64 text or {\"value\": \"<base64>\", \"mediaType\": ...}",
            ))
        }
    };
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|e| AppError::bad_request(format!("Input 'image': not valid base64 ({e})")))
}

/// Reads an execute body.
fn parse_execution(body: &[u8]) -> Result<Execution, AppError> {
    let body: Value = serde_json::from_slice(body)
        .map_err(|e| AppError::bad_request(format!("The body is not valid JSON: {e}")))?;
    let Value::Object(body) = body else {
        return Err(AppError::bad_request(
            "The body must be a JSON object {\"inputs\": {...}}",
        ));
    };
    match body.get("response").and_then(Value::as_str) {
        None | Some("raw") => {}
        Some(other) => {
            return Err(AppError::bad_request(format!(
                "response '{other}' is not supported: only raw"
            )))
        }
    }
    let empty = Map::new();
    let inputs = match body.get("inputs") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(o)) => o,
        Some(_) => return Err(AppError::bad_request("inputs must be a JSON object")),
    };
    let mut fields = Vec::new();
    let mut images = Vec::new();
    for (name, value) in inputs {
        match name.as_str() {
            "image" => images.push(ImageChoice::Inline(inline_image(value)?)),
            "image_id" | "source" => {
                let text = field_text(name, value)?.ok_or_else(|| {
                    AppError::bad_request(format!("Input '{name}' must be a string"))
                })?;
                images.push(if name == "image_id" {
                    ImageChoice::Stored(text)
                } else {
                    ImageChoice::Source(text)
                });
            }
            "file" => {
                return Err(AppError::bad_request(
                    "Input 'file': send the raster as 'image' (base64), 'image_id' or 'source'",
                ))
            }
            _ => {
                if let Some(text) = field_text(name, value)? {
                    fields.push((name.clone(), text));
                }
            }
        }
    }
    if let Some(format) = output_media_type(body.get("outputs"))? {
        match fields.iter().find(|(k, _)| k == "output_format") {
            Some((_, v)) if *v != format => {
                return Err(AppError::bad_request(format!(
                    "outputs asks for {format} but the output_format input is '{v}'"
                )))
            }
            Some(_) => {}
            None => fields.push(("output_format".into(), format)),
        }
    }
    if images.len() > 1 {
        return Err(AppError::bad_request(
            "Give only one of the inputs image, image_id and source",
        ));
    }
    let image = images.pop().ok_or_else(|| {
        AppError::unprocessable("Input required: image (base64), image_id or source")
    })?;
    fields.sort();
    Ok(Execution { fields, image })
}

/// The output format asked for through `outputs.<name>.format.mediaType`.
fn output_media_type(outputs: Option<&Value>) -> Result<Option<String>, AppError> {
    let Some(Value::Object(outputs)) = outputs else {
        return Ok(None);
    };
    for output in outputs.values() {
        if let Some(media) = output["format"]["mediaType"].as_str() {
            let media = media.split(';').next().unwrap_or_default().trim();
            return MEDIA_TYPES
                .iter()
                .find(|(m, _)| m.eq_ignore_ascii_case(media))
                .map(|(_, f)| Some(f.to_string()))
                .ok_or_else(|| {
                    AppError::bad_request(format!(
                        "Output media type '{media}' is not offered: one of {}; or choose any installed formatter with the output_format input",
                        MEDIA_TYPES.map(|(m, _)| m).join(", ")
                    ))
                });
        }
    }
    Ok(None)
}

/// `POST /processes/{processID}/execution`: runs the process now and answers its output
/// (raw), or with `Prefer: respond-async` accepts it as a job: 201, `Location: /jobs/{jobID}`,
/// `Preference-Applied: respond-async`, and the job's statusInfo.
#[utoipa::path(post, path = "/processes/{processID}/execution",
    params(("processID" = String, Path, description = "segment-automatic, segment-text or segment-predict"),
        ("Prefer" = Option<String>, Header, description = "respond-async: run as a job")),
    request_body(content = ExecuteBody, content_type = "application/json"),
    responses((status = 200, description = "The output (raw), in the requested output_format"),
        (status = 201, description = "Accepted as a job (statusInfo; Location: /jobs/{jobID})", body = super::jobs::StatusInfo),
        (status = 400, description = "Invalid input", body = super::openapi::ErrorDetail),
        (status = 404, description = "No such process, or no such stored image", body = super::openapi::ErrorDetail),
        (status = 413, description = "Body or image too large", body = super::openapi::ErrorDetail),
        (status = 422, description = "A required input is missing or has the wrong type", body = super::openapi::ErrorDetail),
        (status = 503, description = "Busy, too many jobs, or model not configured", body = super::openapi::ErrorDetail)))]
pub async fn execute(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Response> {
    let Some(process) = ProcessId::parse(&id) else {
        return Err(no_such_process(&id));
    };
    execute_checked(state, process, &headers, &body)
        .await
        .map_err(IntoResponse::into_response)
}

async fn execute_checked(
    state: AppState,
    process: ProcessId,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, AppError> {
    let limit = Duration::from_secs(state.config().server.request_timeout_secs);
    let deadline = Deadline::after(limit);
    let execution = parse_execution(body)?;
    let form = Form::from_fields(execution.fields.clone());
    if prefers_async(headers) {
        let jobs = state.jobs()?.clone();
        build(
            &state,
            process,
            &form,
            ImageInput::Upload(Vec::new()),
            deadline,
        )
        .await?;
        let image = match execution.image {
            ImageChoice::Inline(bytes) => ImageInput::Upload(bytes),
            ImageChoice::Stored(id) => ImageInput::Stored(id),
            ImageChoice::Source(path) => ImageInput::Source(path),
        };
        // The raster must be reachable now: a 404/400 here, not a job that fails later.
        let (image, upload) = match super::segment::check_job_image(&state, image).await? {
            ImageInput::Upload(bytes) => (ImageRef::Upload, Some(bytes)),
            ImageInput::Stored(id) => (ImageRef::Stored(id), None),
            ImageInput::Source(path) => (ImageRef::Source(path), None),
        };
        let spec = JobSpec {
            process,
            fields: execution.fields,
            image,
        };
        let job = jobs.submit(spec, upload).await?;
        return Ok(job_accepted(StatusCode::CREATED, &job));
    }
    let image = match execution.image {
        ImageChoice::Inline(bytes) => ImageInput::Upload(bytes),
        ImageChoice::Stored(id) => ImageInput::Stored(id),
        ImageChoice::Source(path) => ImageInput::Source(path),
    };
    let work = build(&state, process, &form, image, deadline).await?;
    run_now(&state, deadline, work).await
}

/// Runs stored jobs through the segment pipeline.
pub struct SegmentPlanner(pub AppState);

/// A job's checked request and the state to run it with.
struct SegmentJob {
    state: AppState,
    work: SegmentWork,
    /// Keeps a stored image from eviction while the job runs.
    _pin: Option<crate::images::ImagePin>,
}

impl JobWork for SegmentJob {
    fn run(mut self: Box<Self>, progress: Arc<dyn TileProgress>) -> Result<JobOutput, AppError> {
        self.work.common_mut().progress = progress.clone();
        let output = self.work.run(&self.state)?;
        Ok(JobOutput {
            output: output.output,
            mask_count: output.mask_count,
        })
    }
}

impl Planner for SegmentPlanner {
    fn plan(
        &self,
        spec: JobSpec,
        input: Option<PathBuf>,
        deadline: Deadline,
    ) -> BoxFuture<'static, Result<Box<dyn JobWork>, AppError>> {
        let state = self.0.clone();
        Box::pin(async move {
            let image = match (&spec.image, input) {
                (ImageRef::Upload, Some(path)) => {
                    ImageInput::Upload(tokio::fs::read(&path).await.map_err(|e| {
                        AppError::internal(format!(
                            "reading the job's raster {}: {e}",
                            path.display()
                        ))
                    })?)
                }
                (ImageRef::Upload, None) => {
                    return Err(AppError::internal("the job's uploaded raster is missing"))
                }
                (ImageRef::Stored(id), _) => ImageInput::Stored(id.clone()),
                (ImageRef::Source(path), _) => ImageInput::Source(path.clone()),
            };
            let pin = match &image {
                ImageInput::Stored(id) => Some(state.images.pin(id)),
                _ => None,
            };
            let form = Form::from_fields(spec.fields);
            let work = build(&state, spec.process, &form, image, deadline).await?;
            Ok(Box::new(SegmentJob {
                state,
                work,
                _pin: pin,
            }) as Box<dyn JobWork>)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_become_form_fields() {
        let body = json!({
            "inputs": {
                "image": { "value": "aGVsbG8=", "mediaType": "image/tiff" },
                "points_per_side": 8,
                "foreground": false,
                "point_coords": [[1, 2]],
                "model_id": { "value": "vit_b" },
                "max_size": null,
            },
            "outputs": { "result": { "format": { "mediaType": "image/tiff" } } },
        });
        let e = parse_execution(body.to_string().as_bytes()).unwrap();
        assert!(matches!(e.image, ImageChoice::Inline(ref b) if b == b"hello"));
        let fields: Vec<(&str, &str)> = e
            .fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                ("foreground", "false"),
                ("model_id", "vit_b"),
                ("output_format", "geotiff"),
                ("point_coords", "[[1,2]]"),
                ("points_per_side", "8"),
            ]
        );
    }

    #[test]
    fn bad_executions_are_refused() {
        let status = |body: Value| {
            parse_execution(body.to_string().as_bytes())
                .err()
                .map(|e| e.status.as_u16())
        };
        assert_eq!(status(json!({ "inputs": {} })), Some(422));
        assert_eq!(status(json!({ "inputs": { "image": "!!" } })), Some(400));
        assert_eq!(
            status(json!({ "inputs": { "image": { "href": "http://x" } } })),
            Some(400)
        );
        assert_eq!(
            status(json!({ "inputs": { "image_id": "a", "source": "b" } })),
            Some(400)
        );
        assert_eq!(
            status(json!({ "inputs": { "image_id": "a" }, "response": "document" })),
            Some(400)
        );
        assert_eq!(
            status(
                json!({ "inputs": { "image_id": "a", "output_format": "png" },
                "outputs": { "result": { "format": { "mediaType": "image/tiff" } } } })
            ),
            Some(400)
        );
        assert_eq!(status(json!([1])), Some(400));
        assert!(parse_execution(b"{").is_err());
        assert_eq!(
            status(json!({ "inputs": { "source": "/data/a.tif" } })),
            None
        );
    }

    #[test]
    fn descriptions_come_from_the_forms() {
        let config = crate::config::Config::default();
        let doc = super::super::openapi::document(&config, &["geojson".into()]);
        let d = description(ProcessId::Automatic, &doc);
        let inputs = &d["inputs"];
        assert_eq!(inputs["points_per_side"]["schema"]["default"], 32);
        assert!(inputs["points_per_side"]["description"]
            .as_str()
            .unwrap()
            .contains("Points"));
        assert!(inputs["file"].is_null());
        assert!(inputs["image"].is_object() && inputs["image_id"].is_object());
        assert_eq!(d["jobControlOptions"], json!(JOB_CONTROL));
        let text = description(ProcessId::Text, &doc);
        assert_eq!(text["inputs"]["prompt"]["minOccurs"], 1);
        assert_eq!(text["inputs"]["backend"]["minOccurs"], 0);
        let predict = description(ProcessId::Predict, &doc);
        assert!(predict["inputs"]["point_coords"].is_object());
    }
}
