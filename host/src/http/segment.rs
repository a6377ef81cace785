//! `/segment/predict`, `/segment/automatic` and `/segment/text`: check every field first (before
//! a model loads or the upload is decoded), then run the pipeline on the blocking pool within
//! an inference slot and the request's time limit. With `Prefer: respond-async` the checked
//! request becomes a job instead (202 with its `Location`).
//!
//! [`build`] turns a form's fields into a checked request; the OGC processes and the jobs build
//! theirs with it too, so that every entry point accepts and refuses the same values.

use std::time::Duration;

use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::form::Form;
use super::forms::{size_limits, unit_threshold, AutomaticForm, PredictForm, TextForm, BACKENDS};
use super::jobs::{job_accepted, prefers_async};
use super::response::formatted;
use crate::config::{default_model_id, model_ids, MODEL_VERSIONS};
use crate::error::AppError;
use crate::jobs::{ImageRef, JobSpec, ProcessId};
use crate::pipeline::automatic::{self, AutomaticRequest};
use crate::pipeline::predict::{self, PredictRequest};
use crate::pipeline::prompts::Prompts;
use crate::pipeline::text::{self, TextRequest};
use crate::pipeline::tiled::TilingRequest;
use crate::pipeline::windows::Tiling;
use crate::pipeline::{Deadline, ImageInput, PipelineOutput, SegmentRequest};
use crate::raster::BandSelection;
use crate::state::AppState;

/// Formats Python-style, as the seed's messages show lists: `['a', 'b']`.
fn py_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("'{s}'")).collect();
    format!("[{}]", quoted.join(", "))
}

/// Reads the multipart body; a request that is not multipart lacks the file → 422. A body not
/// received within the time limit → 408 (a stalled client would otherwise hold its connection
/// and what it sent forever).
async fn read_form(
    multipart: Result<Multipart, MultipartRejection>,
    deadline: Deadline,
) -> Result<Form, AppError> {
    match multipart {
        Ok(m) => tokio::time::timeout_at(deadline.at().into(), Form::read(m))
            .await
            .unwrap_or_else(|_| {
                Err(AppError::new(
                    axum::http::StatusCode::REQUEST_TIMEOUT,
                    format!(
                        "The request body was not received within the server's limit of {} s",
                        deadline.limit().as_secs_f64()
                    ),
                ))
            }),
        Err(_) => Err(AppError::unprocessable(
            "Field required: file (send a multipart/form-data body with the image as 'file')",
        )),
    }
}

/// A request's form with the raster input taken out, and the time limit that started on
/// arrival.
struct Received {
    form: Form,
    image: ImageInput,
    deadline: Deadline,
}

/// Starts the time limit, reads the form and takes its raster input ([`image_input`]).
async fn receive(
    state: &AppState,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Received, AppError> {
    let limit = Duration::from_secs(state.config().server.request_timeout_secs);
    let deadline = Deadline::after(limit);
    let mut form = read_form(multipart, deadline).await?;
    let image = image_input(&mut form)?;
    Ok(Received {
        form,
        image,
        deadline,
    })
}

/// The raster input: exactly one of `file` (an upload), `image_id` (a stored image, see
/// `POST /images`) and `source` (a path read in place). None → 422 (as the seed answers a
/// missing file); more than one → 400 naming them. `image_id` and `source` are taken out of
/// the fields the plugins see.
fn image_input(form: &mut Form) -> Result<ImageInput, AppError> {
    let file = form.file.take();
    let image_id = form.take_field("image_id");
    let source = form.take_field("source");
    let given: Vec<&str> = [
        file.is_some().then_some("file"),
        image_id.is_some().then_some("image_id"),
        source.is_some().then_some("source"),
    ]
    .into_iter()
    .flatten()
    .collect();
    match (file, image_id, source) {
        _ if given.len() > 1 => Err(AppError::bad_request(format!(
            "Give exactly one of file, image_id or source (got {})",
            given.join(" and ")
        ))),
        (Some(file), None, None) => Ok(ImageInput::Upload(file.bytes)),
        (None, Some(id), None) => Ok(ImageInput::Stored(id.trim().to_string())),
        (None, None, Some(source)) => Ok(ImageInput::Source(source)),
        _ => Err(AppError::unprocessable(
            "Field required: file (the image to segment; or image_id of a stored image, or source)",
        )),
    }
}

/// `model_version` (the configured default for the endpoint when absent) and `model_id` (the
/// version's default when absent), checked against the seed's lists.
fn model_choice(
    version: Option<&str>,
    id: Option<&str>,
    default_version: &str,
) -> Result<(String, String), AppError> {
    let version = version.unwrap_or(default_version);
    if !MODEL_VERSIONS.contains(&version) {
        return Err(AppError::bad_request(format!(
            "Invalid model_version '{version}'. Must be one of: {}",
            py_list(&MODEL_VERSIONS)
        )));
    }
    let id = id.unwrap_or_else(|| default_model_id(version).unwrap_or_default());
    if !model_ids(version).contains(&id) {
        return Err(AppError::bad_request(format!(
            "Invalid model_id '{id}' for {version}. Must be one of: {}",
            py_list(model_ids(version))
        )));
    }
    Ok((version.to_string(), id.to_string()))
}

/// `output_format`, checked against the loaded formatter plugins.
fn output_format(state: &AppState, format: &str) -> Result<String, AppError> {
    let names = state.plugins.format_names();
    if !names.iter().any(|n| n == format) {
        return Err(AppError::bad_request(format!(
            "Invalid output_format '{format}'. Must be one of: {}",
            names.join(", ")
        )));
    }
    Ok(format.to_string())
}

/// The plugin parameters: every text field, with the effective size limits.
fn plugin_params(form: &Form, min_size: i64, max_size: Option<i64>) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> = form
        .fields()
        .filter(|(k, _)| !matches!(k.as_str(), "min_size" | "max_size"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    params.push(("min_size".into(), min_size.to_string()));
    if let Some(m) = max_size {
        params.push(("max_size".into(), m.to_string()));
    }
    params.sort();
    params
}

/// `backend` on `/segment/text`: the seed's two names (both run the same ONNX export here), and
/// the seed's refusal of facebook/sam3.1 with transformers.
fn check_backend(backend: &str, model_id: &str) -> Result<(), AppError> {
    if !BACKENDS.contains(&backend) {
        return Err(AppError::bad_request(format!(
            "Invalid backend '{backend}'. Choose 'meta' or 'transformers'."
        )));
    }
    if backend == "transformers" && model_id == "facebook/sam3.1" {
        return Err(AppError::bad_request(
            "facebook/sam3.1 is a checkpoint repository and is only supported with \
             backend='meta'. Use model_id='facebook/sam3' for the Transformers backend.",
        ));
    }
    Ok(())
}

/// A checked segmentation request of any of the three endpoints, ready to run.
pub enum SegmentWork {
    Predict(PredictRequest),
    Automatic(AutomaticRequest),
    Text(TextRequest),
}

impl SegmentWork {
    /// What every request carries (to set its progress sink).
    pub fn common_mut(&mut self) -> &mut SegmentRequest {
        match self {
            SegmentWork::Predict(r) => &mut r.common,
            SegmentWork::Automatic(r) => &mut r.common,
            SegmentWork::Text(r) => &mut r.common,
        }
    }

    /// Runs the pipeline (blocking).
    pub fn run(self, state: &AppState) -> Result<PipelineOutput, AppError> {
        match self {
            SegmentWork::Predict(r) => predict::run(state, r),
            SegmentWork::Automatic(r) => automatic::run(state, r),
            SegmentWork::Text(r) => text::run(state, r),
        }
    }
}

/// Checks the text fields of `form` for `process` (400/422 naming the field, before any model
/// loads or the raster is read) and builds the request for `image`.
pub async fn build(
    state: &AppState,
    process: ProcessId,
    form: &Form,
    image: ImageInput,
    deadline: Deadline,
) -> Result<SegmentWork, AppError> {
    Ok(match process {
        ProcessId::Predict => {
            SegmentWork::Predict(predict_request(state, form, image, deadline).await?)
        }
        ProcessId::Automatic => {
            SegmentWork::Automatic(automatic_request(state, form, image, deadline)?)
        }
        ProcessId::Text => SegmentWork::Text(text_request(state, form, image, deadline)?),
    })
}

/// Runs a checked request on the blocking pool inside an inference slot, within its deadline
/// (see [`crate::cache::InferenceLimiter::run`]: the slot is kept until the work stops).
pub async fn run_now(
    state: &AppState,
    deadline: Deadline,
    work: SegmentWork,
) -> Result<Response, AppError> {
    let job_state = state.clone();
    let span = tracing::Span::current(); // the request's id on the pipeline's log lines
    state
        .limiter
        .run(deadline, move || span.in_scope(|| work.run(&job_state)))
        .await
        .map(formatted)
}

/// [`crate::pipeline::check_job_image`] on the blocking pool; gives the input back.
pub(crate) async fn check_job_image(
    state: &AppState,
    image: ImageInput,
) -> Result<ImageInput, AppError> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        crate::pipeline::check_job_image(&state, &image).map(|()| image)
    })
    .await
    .map_err(|e| AppError::internal(format!("image check failed: {e}")))?
}

/// One `/segment/*` request: checked, then run now, or accepted as a job with
/// `Prefer: respond-async`.
async fn segment(
    state: AppState,
    headers: &HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
    process: ProcessId,
) -> Result<Response, AppError> {
    let Received {
        form,
        image,
        deadline,
    } = receive(&state, multipart).await?;
    if prefers_async(headers) {
        let jobs = state.jobs()?.clone();
        // Check every field now, so that a bad request is a 4xx here rather than a failed job.
        build(
            &state,
            process,
            &form,
            ImageInput::Upload(Vec::new()),
            deadline,
        )
        .await?;
        // The raster must be reachable now: a 404/400 here, not a job that fails later.
        let image = check_job_image(&state, image).await?;
        let mut fields: Vec<(String, String)> =
            form.fields().map(|(k, v)| (k.clone(), v.clone())).collect();
        fields.sort();
        let (image, upload) = match image {
            ImageInput::Upload(bytes) => (ImageRef::Upload, Some(bytes)),
            ImageInput::Stored(id) => (ImageRef::Stored(id), None),
            ImageInput::Source(source) => (ImageRef::Source(source), None),
        };
        let spec = JobSpec {
            process,
            fields,
            image,
        };
        let job = jobs.submit(spec, upload).await?;
        return Ok(job_accepted(axum::http::StatusCode::ACCEPTED, &job));
    }
    let work = build(&state, process, &form, image, deadline).await?;
    run_now(&state, deadline, work).await
}

/// The predict request of `form`'s fields.
async fn predict_request(
    state: &AppState,
    form: &Form,
    image: ImageInput,
    deadline: Deadline,
) -> Result<PredictRequest, AppError> {
    let fields: PredictForm = form.parse()?;
    let (model_version, model_id) = model_choice(
        fields.model_version.as_deref(),
        fields.model_id.as_deref(),
        &state.config().api.default_model_version_predict,
    )?;
    let output_format = output_format(state, &fields.output_format)?;
    let prompts = Prompts::parse(
        fields.point_coords.as_deref(),
        fields.point_labels.as_deref(),
        fields.boxes.as_deref(),
    )?;
    predict::check_sam3_points(&state.config(), &model_version, &model_id, &prompts)?;
    let (min_size, max_size) = size_limits(fields.min_size, fields.max_size)?;
    let bands = BandSelection::parse(fields.bands.as_deref())?;
    let tiling = Tiling::parse(&fields.tiling)?;
    let point_crs = fields.point_crs.clone();
    if let Some(crs) = point_crs.clone() {
        // GDAL may open its CRS database: not on the executor threads.
        tokio::task::spawn_blocking(move || crate::raster::georef::parse_crs(&crs).map(|_| ()))
            .await
            .map_err(|e| AppError::internal(format!("CRS check failed: {e}")))??;
    }
    Ok(PredictRequest {
        common: SegmentRequest {
            model_version,
            model_id,
            output_format,
            bands,
            image,
            params: plugin_params(form, min_size, max_size),
            deadline,
            progress: SegmentRequest::no_progress(),
        },
        prompts,
        point_crs,
        multimask: fields.multimask_output,
        all_candidates: fields.all_candidates,
        tiling,
    })
}

/// The automatic request of `form`'s fields.
fn automatic_request(
    state: &AppState,
    form: &Form,
    image: ImageInput,
    deadline: Deadline,
) -> Result<AutomaticRequest, AppError> {
    let fields: AutomaticForm = form.parse()?;
    let (model_version, model_id) = model_choice(
        fields.model_version.as_deref(),
        fields.model_id.as_deref(),
        &state.config().api.default_model_version_automatic,
    )?;
    let output_format = output_format(state, &fields.output_format)?;
    let (foreground, unique) = (fields.foreground, fields.unique);
    let (min_size, max_size) = size_limits(fields.min_size, fields.max_size)?;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let params = fields.params(threads)?;
    let confidence = unit_threshold(fields.confidence_threshold)?;
    let tiling = TilingRequest::new(
        &state.config(),
        &fields.tiling,
        fields.tile_size,
        fields.tile_overlap,
        fields.resolution,
    )?;
    let bands = BandSelection::parse(fields.bands.as_deref())?;
    let mut params_for_plugins = plugin_params(form, min_size, max_size);
    params_for_plugins.retain(|(k, _)| k != "foreground" && k != "unique");
    params_for_plugins.push(("foreground".into(), foreground.to_string()));
    params_for_plugins.push(("unique".into(), unique.to_string()));
    params_for_plugins.sort();
    Ok(AutomaticRequest {
        common: SegmentRequest {
            model_version,
            model_id,
            output_format,
            bands,
            image,
            params: params_for_plugins,
            deadline,
            progress: SegmentRequest::no_progress(),
        },
        params,
        confidence_threshold: confidence,
        tiling,
    })
}

/// The text request of `form`'s fields.
fn text_request(
    state: &AppState,
    form: &Form,
    image: ImageInput,
    deadline: Deadline,
) -> Result<TextRequest, AppError> {
    let fields: TextForm = form.parse()?;
    let prompt = fields.prompt.trim().to_string();
    text::check_prompt(&prompt)?;
    let model_id = match fields.model_id.as_deref() {
        Some(id) if model_ids("sam3").contains(&id) => id.to_string(),
        Some(id) => {
            return Err(AppError::bad_request(format!(
                "Invalid model_id '{id}' for sam3. Must be one of: {}",
                py_list(model_ids("sam3"))
            )))
        }
        None => default_model_id("sam3").unwrap_or_default().to_string(),
    };
    check_backend(&fields.backend, &model_id)?;
    let output_format = output_format(state, &fields.output_format)?;
    let confidence = unit_threshold(fields.confidence_threshold)?;
    let (min_size, max_size) = size_limits(fields.min_size, fields.max_size)?;
    let bands = BandSelection::parse(fields.bands.as_deref())?;
    let tiling = TilingRequest::new(
        &state.config(),
        &fields.tiling,
        fields.tile_size,
        fields.tile_overlap,
        fields.resolution,
    )?;
    Ok(TextRequest {
        common: SegmentRequest {
            model_version: "sam3".into(),
            model_id,
            output_format,
            bands,
            image,
            params: plugin_params(form, min_size, max_size),
            deadline,
            progress: SegmentRequest::no_progress(),
        },
        prompt,
        confidence_threshold: confidence,
        tiling,
    })
}

/// `POST /segment/predict`: segmentation from points and/or boxes.
#[utoipa::path(post, path = "/segment/predict",
    request_body(content = super::forms::PredictForm, content_type = "multipart/form-data"),
    responses((status = 200, description = "Masks in the requested output format"),
        (status = 202, description = "With `Prefer: respond-async`: accepted as a job (statusInfo; `Location: /jobs/{jobID}`)"),
        (status = 400, description = "Invalid field"), (status = 413, description = "Upload or image too large"),
        (status = 422, description = "Missing field or wrong type"), (status = 503, description = "Busy, or model not configured")))]
pub async fn predict(
    State(state): State<AppState>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, AppError> {
    segment(state, &headers, multipart, ProcessId::Predict).await
}

/// `POST /segment/automatic`: masks for everything in the image.
#[utoipa::path(post, path = "/segment/automatic",
    request_body(content = super::forms::AutomaticForm, content_type = "multipart/form-data"),
    responses((status = 200, description = "Masks in the requested output format (an empty result when nothing passes the thresholds)"),
        (status = 202, description = "With `Prefer: respond-async`: accepted as a job (statusInfo; `Location: /jobs/{jobID}`)"),
        (status = 400, description = "Invalid field"), (status = 422, description = "Missing field or wrong type"),
        (status = 503, description = "Busy, or model not configured")))]
pub async fn automatic(
    State(state): State<AppState>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, AppError> {
    segment(state, &headers, multipart, ProcessId::Automatic).await
}

/// `POST /segment/text`: SAM3 segmentation from a text prompt.
#[utoipa::path(post, path = "/segment/text",
    request_body(content = super::forms::TextForm, content_type = "multipart/form-data"),
    responses((status = 200, description = "One mask per detected instance (an empty result when nothing matches)"),
        (status = 202, description = "With `Prefer: respond-async`: accepted as a job (statusInfo; `Location: /jobs/{jobID}`)"),
        (status = 400, description = "Invalid field"), (status = 422, description = "Missing field or wrong type")))]
pub async fn text(
    State(state): State<AppState>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, AppError> {
    segment(state, &headers, multipart, ProcessId::Text).await
}
