//! `/segment/predict`, `/segment/automatic` and `/segment/text`: check every field first (before
//! a model loads or the upload is decoded), then run the pipeline on the blocking pool within
//! an inference slot and the request's time limit.

use std::time::Duration;

use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, State};
use axum::response::Response;

use super::form::Form;
use super::response::formatted;
use crate::config::{default_model_id, model_ids, MODEL_VERSIONS};
use crate::error::AppError;
use crate::pipeline::automatic::{self, AutomaticRequest};
use crate::pipeline::mask_generator::AutomaticParams;
use crate::pipeline::predict::{self, PredictRequest};
use crate::pipeline::prompts::Prompts;
use crate::pipeline::text::{self, TextRequest};
use crate::pipeline::{Deadline, PipelineOutput, SegmentRequest};
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

/// A request's form with the upload taken out, and the time limit that started on arrival.
struct Received {
    form: Form,
    file: super::form::Upload,
    deadline: Deadline,
}

/// Starts the time limit and reads the form; no file → 422.
async fn receive(
    state: &AppState,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Received, AppError> {
    let limit = Duration::from_secs(state.config().server.request_timeout_secs);
    let deadline = Deadline::after(limit);
    let mut form = read_form(multipart, deadline).await?;
    let file = form.take_file()?;
    Ok(Received {
        form,
        file,
        deadline,
    })
}

/// `model_version` and `model_id` (default per version), checked against the seed's lists.
fn model_choice(form: &Form) -> Result<(String, String), AppError> {
    let version = form.text_or("model_version", "sam2");
    if !MODEL_VERSIONS.contains(&version) {
        return Err(AppError::bad_request(format!(
            "Invalid model_version '{version}'. Must be one of: {}",
            py_list(&MODEL_VERSIONS)
        )));
    }
    let id = match form.text("model_id") {
        Some(id) => id,
        None => default_model_id(version).unwrap_or_default(),
    };
    if !model_ids(version).contains(&id) {
        return Err(AppError::bad_request(format!(
            "Invalid model_id '{id}' for {version}. Must be one of: {}",
            py_list(model_ids(version))
        )));
    }
    Ok((version.to_string(), id.to_string()))
}

/// `output_format`, checked against the loaded formatter plugins.
fn output_format(state: &AppState, form: &Form) -> Result<String, AppError> {
    let format = form.text_or("output_format", "geojson");
    let names = state.plugins.format_names();
    if !names.iter().any(|n| n == format) {
        return Err(AppError::bad_request(format!(
            "Invalid output_format '{format}'. Must be one of: {}",
            names.join(", ")
        )));
    }
    Ok(format.to_string())
}

/// `min_size` / `max_size` in pixels: negative `min_size` is refused; `max_size` ≤ 0 means none.
fn size_limits(form: &Form) -> Result<(i64, Option<i64>), AppError> {
    let min_size = form.int_or("min_size", 0)?;
    if min_size < 0 {
        return Err(AppError::bad_request(format!(
            "min_size must be 0 or more (got {min_size})"
        )));
    }
    let max_size = form.opt_int("max_size")?.filter(|&m| m > 0);
    Ok((min_size, max_size))
}

/// SAM3's `confidence_threshold` (default 0.5), between 0 and 1.
fn confidence_threshold(form: &Form) -> Result<f64, AppError> {
    let confidence = form.float_or("confidence_threshold", 0.5)?;
    if !(0.0..=1.0).contains(&confidence) {
        return Err(AppError::bad_request(format!(
            "confidence_threshold must be between 0 and 1 (got {confidence})"
        )));
    }
    Ok(confidence)
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

/// Runs `job` on the blocking pool inside an inference slot, within the request's deadline
/// (see [`crate::cache::InferenceLimiter::run`]: the slot is kept until the job stops).
async fn run_job(
    state: &AppState,
    deadline: Deadline,
    job: impl FnOnce(AppState) -> Result<PipelineOutput, AppError> + Send + 'static,
) -> Result<Response, AppError> {
    let job_state = state.clone();
    let span = tracing::Span::current(); // the request's id on the pipeline's log lines
    state
        .limiter
        .run(deadline, move || span.in_scope(|| job(job_state)))
        .await
        .map(formatted)
}

/// `POST /segment/predict`: segmentation from points and/or boxes.
#[utoipa::path(post, path = "/segment/predict",
    request_body(content = super::openapi::PredictForm, content_type = "multipart/form-data"),
    responses((status = 200, description = "Masks in the requested output format"),
        (status = 400, description = "Invalid field"), (status = 413, description = "Upload or image too large"),
        (status = 422, description = "Missing field or wrong type"), (status = 503, description = "Busy, or model not configured")))]
pub async fn predict(
    State(state): State<AppState>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, AppError> {
    let Received {
        form,
        file,
        deadline,
    } = receive(&state, multipart).await?;
    let (model_version, model_id) = model_choice(&form)?;
    let output_format = output_format(&state, &form)?;
    let prompts = Prompts::parse(
        form.text("point_coords"),
        form.text("point_labels"),
        form.text("boxes"),
    )?;
    predict::check_sam3_points(&state.config(), &model_version, &model_id, &prompts)?;
    let multimask = form.bool_or("multimask_output", false)?;
    let (min_size, max_size) = size_limits(&form)?;
    let bands = BandSelection::parse(form.text("bands"))?;
    let point_crs = form.text("point_crs").map(str::to_string);
    if let Some(crs) = point_crs.clone() {
        // GDAL may open its CRS database: not on the executor threads.
        tokio::task::spawn_blocking(move || crate::raster::georef::parse_crs(&crs).map(|_| ()))
            .await
            .map_err(|e| AppError::internal(format!("CRS check failed: {e}")))??;
    }
    let request = PredictRequest {
        common: SegmentRequest {
            model_version,
            model_id,
            output_format,
            bands,
            bytes: file.bytes,
            params: plugin_params(&form, min_size, max_size),
            deadline,
        },
        prompts,
        point_crs,
        multimask,
    };
    run_job(&state, deadline, move |state| predict::run(&state, request)).await
}

/// `POST /segment/automatic`: masks for everything in the image.
#[utoipa::path(post, path = "/segment/automatic",
    request_body(content = super::openapi::AutomaticForm, content_type = "multipart/form-data"),
    responses((status = 200, description = "Masks in the requested output format (an empty result when nothing passes the thresholds)"),
        (status = 400, description = "Invalid field"), (status = 422, description = "Missing field or wrong type"),
        (status = 503, description = "Busy, or model not configured")))]
pub async fn automatic(
    State(state): State<AppState>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, AppError> {
    let Received {
        form,
        file,
        deadline,
    } = receive(&state, multipart).await?;
    let (model_version, model_id) = model_choice(&form)?;
    let output_format = output_format(&state, &form)?;
    let foreground = form.bool_or("foreground", true)?;
    let unique = form.bool_or("unique", true)?;
    let (min_size, max_size) = size_limits(&form)?;
    let defaults = AutomaticParams::default();
    let count = |name: &str, default: u32| -> Result<u32, AppError> {
        let v = form.int_or(name, default as i64)?;
        u32::try_from(v)
            .map_err(|_| AppError::bad_request(format!("{name} must be 0 or more (got {v})")))
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let params = AutomaticParams {
        points_per_side: count("points_per_side", defaults.points_per_side)?,
        points_per_batch: count("points_per_batch", defaults.points_per_batch)?,
        pred_iou_thresh: form.float_or("pred_iou_thresh", defaults.pred_iou_thresh as f64)? as f32,
        stability_score_thresh: form.float_or(
            "stability_score_thresh",
            defaults.stability_score_thresh as f64,
        )? as f32,
        stability_score_offset: form.float_or(
            "stability_score_offset",
            defaults.stability_score_offset as f64,
        )? as f32,
        box_nms_thresh: form.float_or("box_nms_thresh", defaults.box_nms_thresh as f64)? as f32,
        crop_n_layers: count("crop_n_layers", defaults.crop_n_layers)?,
        crop_nms_thresh: form.float_or("crop_nms_thresh", defaults.crop_nms_thresh as f64)? as f32,
        crop_overlap_ratio: form.float_or("crop_overlap_ratio", defaults.crop_overlap_ratio)?,
        crop_n_points_downscale_factor: count(
            "crop_n_points_downscale_factor",
            defaults.crop_n_points_downscale_factor,
        )?,
        min_mask_region_area: count("min_mask_region_area", 0)? as u64,
        threads,
        ..defaults
    };
    params.validate().map_err(AppError::bad_request)?;
    let confidence = confidence_threshold(&form)?;
    let bands = BandSelection::parse(form.text("bands"))?;
    let mut params_for_plugins = plugin_params(&form, min_size, max_size);
    params_for_plugins.retain(|(k, _)| k != "foreground" && k != "unique");
    params_for_plugins.push(("foreground".into(), foreground.to_string()));
    params_for_plugins.push(("unique".into(), unique.to_string()));
    params_for_plugins.sort();
    let request = AutomaticRequest {
        common: SegmentRequest {
            model_version,
            model_id,
            output_format,
            bands,
            bytes: file.bytes,
            params: params_for_plugins,
            deadline,
        },
        params,
        confidence_threshold: confidence as f32,
    };
    run_job(&state, deadline, move |state| {
        automatic::run(&state, request)
    })
    .await
}

/// `POST /segment/text`: SAM3 segmentation from a text prompt.
#[utoipa::path(post, path = "/segment/text",
    request_body(content = super::openapi::TextForm, content_type = "multipart/form-data"),
    responses((status = 200, description = "One mask per detected instance (an empty result when nothing matches)"),
        (status = 400, description = "Invalid field"), (status = 422, description = "Missing field or wrong type")))]
pub async fn text(
    State(state): State<AppState>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, AppError> {
    let Received {
        form,
        file,
        deadline,
    } = receive(&state, multipart).await?;
    let prompt = form.required_text("prompt")?.trim().to_string();
    text::check_prompt(&prompt)?;
    let model_id = match form.text("model_id") {
        Some(id) if model_ids("sam3").contains(&id) => id.to_string(),
        Some(id) => {
            return Err(AppError::bad_request(format!(
                "Invalid model_id '{id}' for sam3. Must be one of: {}",
                py_list(model_ids("sam3"))
            )))
        }
        None => default_model_id("sam3").unwrap_or_default().to_string(),
    };
    let backend = form.text_or("backend", "meta");
    if !matches!(backend, "meta" | "transformers") {
        return Err(AppError::bad_request(format!(
            "Invalid backend '{backend}'. Must be one of: ['meta', 'transformers']"
        )));
    }
    let output_format = output_format(&state, &form)?;
    let confidence = confidence_threshold(&form)?;
    let (min_size, max_size) = size_limits(&form)?;
    let bands = BandSelection::parse(form.text("bands"))?;
    let request = TextRequest {
        common: SegmentRequest {
            model_version: "sam3".into(),
            model_id,
            output_format,
            bands,
            bytes: file.bytes,
            params: plugin_params(&form, min_size, max_size),
            deadline,
        },
        prompt,
        confidence_threshold: confidence as f32,
    };
    run_job(&state, deadline, move |state| text::run(&state, request)).await
}
