//! The steps every segmentation endpoint shares: the model, the raster, the cached embedding,
//! and the filters + formatter at the end.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::request::{ImageInput, PipelineOutput, SegmentRequest, Stages};

use crate::cache::{CacheOutcome, EmbeddingKey};
use crate::config::Config;
use crate::error::AppError;
use crate::masks::{FormattedOutput, Mask, MaskSet, PluginRequest};
use crate::models::sam3::Sam3;
use crate::models::{self, Embedding, LoadedModel, ModelError, ModelFamily};
use crate::raster::{OpenRaster, RasterInfo, RasterLimits, RgbImage};
use crate::state::AppState;

/// The samgeo.toml key of a model, for messages.
pub fn config_key(version: &str, id: &str) -> String {
    format!("models.{version}.\"{id}\"")
}

/// The loaded model for (version, id), loading it on first use. 503 when no files are
/// configured for it.
pub fn model_for(
    state: &AppState,
    config: &Config,
    version: &str,
    id: &str,
) -> Result<LoadedModel, AppError> {
    let key = config_key(version, id);
    let files = config.model_files(version, id).cloned().ok_or_else(|| {
        AppError::unavailable(format!(
            "Model {version}:{id} is valid but has no model files configured: add {key} to samgeo.toml (see README, \"Real models\")"
        ))
    })?;
    let version_owned = version.to_string();
    state
        .models
        .get_or_load(&(version.to_string(), id.to_string()), || {
            let loaded = match version_owned.as_str() {
                "sam" => LoadedModel::Promptable(models::load(
                    &state.runtime,
                    ModelFamily::Sam,
                    &key,
                    &files,
                )?),
                "sam2" => LoadedModel::Promptable(models::load(
                    &state.runtime,
                    ModelFamily::Sam2,
                    &key,
                    &files,
                )?),
                _ => LoadedModel::Sam3(Arc::new(Sam3::load(&state.runtime, &key, &files)?)),
            };
            Ok(loaded)
        })
}

/// SHA-256 of the upload, hex.
fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A request whose upload is open (header read), checked, and whose model is at hand.
pub struct Prepared<T> {
    pub raster: OpenRaster,
    pub info: RasterInfo,
    pub sha256: String,
    pub model: LoadedModel,
    /// What the request's own `check` returned.
    pub checked: T,
    pub stages: Stages,
}

/// The steps every endpoint starts with: resolve and open the raster (refused with 413 above
/// `max_pixels`: `server.max_pixels` for a single look, `server.max_tiled_pixels` for a windowed
/// or tiled run), check the bands and the request's own constraints (`check`, e.g. prompts inside
/// the image) before any model loads, then get the model.
pub fn prepare_within<T>(
    state: &AppState,
    common: &mut SegmentRequest,
    max_pixels: u64,
    check: impl FnOnce(&OpenRaster, &RasterInfo) -> Result<T, AppError>,
) -> Result<Prepared<T>, AppError> {
    let stages = Stages::start();
    let config = state.config();
    let image = std::mem::replace(&mut common.image, ImageInput::Upload(Vec::new()));
    let (raster, sha256) = open_input(state, &config, image, RasterLimits { max_pixels })?;
    let info = raster.info().clone();
    common.bands.resolve(info.band_count)?;
    let checked = check(&raster, &info)?;
    let model = model_for(state, &config, &common.model_version, &common.model_id)?;
    common.deadline.check()?;
    let mut prepared = Prepared {
        raster,
        info,
        sha256,
        model,
        checked,
        stages,
    };
    prepared.stages.mark("prepare");
    Ok(prepared)
}

/// The one place an [`ImageInput`] becomes an open raster and the key of its embeddings:
/// - `Upload`: opened from memory; key = SHA-256 of the bytes.
/// - `Stored`: the image store's file, opened in place; key = its id (the SHA-256 of its
///   bytes, so an upload of the same file shares the embeddings); unknown id → 404.
/// - `Source`: checked against `[inputs] allowed_sources` and opened in place (GDAL reads the
///   windows it needs: range requests for `/vsicurl/`); key = [`crate::images::source_key`].
fn open_input(
    state: &AppState,
    config: &Config,
    image: ImageInput,
    limits: RasterLimits,
) -> Result<(OpenRaster, String), AppError> {
    match image {
        ImageInput::Upload(bytes) => {
            let sha256 = sha256_hex(&bytes);
            Ok((OpenRaster::open(bytes, limits)?, sha256))
        }
        ImageInput::Stored(id) => {
            let stored = crate::images::is_image_id(&id)
                .then(|| state.images.get(&id))
                .flatten()
                .ok_or_else(|| unknown_image(&id))?;
            let raster =
                OpenRaster::open_path(&stored.path, "the stored image", limits).map_err(|e| {
                    match stored.path.exists() {
                        // Deleted or evicted between the lookup and the open.
                        false => unknown_image(&id),
                        true => e.into(),
                    }
                })?;
            Ok((raster, id))
        }
        ImageInput::Source(source) => {
            let path = crate::images::check_source(&config.inputs.allowed_sources, &source)?;
            let key = crate::images::source_key(&path)?;
            let label = format!("source '{}'", source.trim());
            Ok((OpenRaster::open_path(&path, &label, limits)?, key))
        }
    }
}

/// Checks, before a job is accepted, that its raster can be found: a stored image exists (404
/// otherwise) and a `source` lies under the allowed prefixes (400 otherwise), so that these are
/// answered to the request rather than reported later by a failed job. Blocking (a store lookup,
/// a path resolution).
pub fn check_job_image(state: &AppState, image: &ImageInput) -> Result<(), AppError> {
    match image {
        ImageInput::Upload(_) => Ok(()),
        ImageInput::Stored(id) => crate::images::is_image_id(id)
            .then(|| state.images.get(id))
            .flatten()
            .map(|_| ())
            .ok_or_else(|| unknown_image(id)),
        ImageInput::Source(source) => {
            crate::images::check_source(&state.config().inputs.allowed_sources, source).map(|_| ())
        }
    }
}

/// 404 for an `image_id` the store does not hold.
pub fn unknown_image(id: &str) -> AppError {
    AppError::new(
        axum::http::StatusCode::NOT_FOUND,
        format!("Unknown image_id '{id}': store the raster with POST /images first (stored images may be evicted)"),
    )
}

/// The steps every endpoint ends with: filters, formatter, and the response's metadata.
pub fn finish(
    state: &AppState,
    common: &SegmentRequest,
    info: &RasterInfo,
    masks: Vec<Mask>,
    cache: CacheOutcome,
    mut stages: Stages,
) -> Result<PipelineOutput, AppError> {
    common.deadline.check()?;
    let (output, mask_count) = filter_and_format(state, common, info, masks)?;
    stages.mark("plugins");
    Ok(PipelineOutput {
        output,
        cache,
        mask_count,
        stages,
        model_version: common.model_version.clone(),
        model_id: common.model_id.clone(),
        tiles: None,
    })
}

/// The embedding of the whole image, from the cache or by reading the pixels (at most
/// `input_side` on the longest side) and running `encode`.
pub fn embedding_for(
    state: &AppState,
    request: &SegmentRequest,
    sha256: &str,
    raster: &OpenRaster,
    input_side: u32,
    encode: impl FnOnce(&RgbImage, u32, u32) -> Result<Embedding, ModelError>,
) -> Result<(Arc<Embedding>, CacheOutcome), AppError> {
    let deadline = &request.deadline;
    let key = EmbeddingKey {
        model_version: request.model_version.clone(),
        model_id: request.model_id.clone(),
        image_sha256: sha256.to_string(),
        options: format!("bands={}", request.bands.key()),
    };
    let info = raster.info().clone();
    state.embeddings.get_or_compute(&key, deadline, || {
        deadline.check()?;
        let rgb = raster.read_rgb(&request.bands, input_side)?;
        deadline.check()?;
        Ok(encode(&rgb, info.width, info.height)?)
    })
}

/// The embedding of the pixel window `(x0, y0, x1, y1)` of the raster, from the cache (the
/// key names the window) or by reading the window (at most `input_side` on its longest side:
/// native resolution for a window of the model's size) and running `encode`.
pub fn window_embedding_for(
    state: &AppState,
    request: &SegmentRequest,
    sha256: &str,
    raster: &OpenRaster,
    window: (u32, u32, u32, u32),
    input_side: u32,
    encode: impl FnOnce(&RgbImage, u32, u32) -> Result<Embedding, ModelError>,
) -> Result<(Arc<Embedding>, CacheOutcome), AppError> {
    let deadline = &request.deadline;
    let (x0, y0, x1, y1) = window;
    let key = EmbeddingKey {
        model_version: request.model_version.clone(),
        model_id: request.model_id.clone(),
        image_sha256: sha256.to_string(),
        options: format!("bands={};window={x0},{y0},{x1},{y1}", request.bands.key()),
    };
    state.embeddings.get_or_compute(&key, deadline, || {
        deadline.check()?;
        let rgb = raster.read_rgb_window(&request.bands, window, input_side)?;
        deadline.check()?;
        Ok(encode(&rgb, x1 - x0, y1 - y0)?)
    })
}

/// Runs the filter chain and the formatter over `masks`.
fn filter_and_format(
    state: &AppState,
    request: &SegmentRequest,
    info: &RasterInfo,
    masks: Vec<Mask>,
) -> Result<(FormattedOutput, usize), AppError> {
    let filtered = apply_filters(state, request, info, masks)?;
    let count = filtered.len();
    let formatted_request = PluginRequest {
        masks: MaskSet {
            width: info.width,
            height: info.height,
            masks: filtered,
        },
        georef: info.georef.clone(),
        params: request.params.clone(),
    };
    request.deadline.check()?;
    let output = state
        .plugins
        .format(&request.output_format, &formatted_request)
        .map_err(plugin_error)?;
    Ok((output, count))
}

/// Runs the filter chain over `masks`.
pub fn apply_filters(
    state: &AppState,
    request: &SegmentRequest,
    info: &RasterInfo,
    masks: Vec<Mask>,
) -> Result<Vec<Mask>, AppError> {
    request.deadline.check()?;
    let plugin_request = PluginRequest {
        masks: MaskSet {
            width: info.width,
            height: info.height,
            masks,
        },
        georef: info.georef.clone(),
        params: request.params.clone(),
    };
    Ok(state
        .plugins
        .apply_filters(plugin_request)
        .map_err(plugin_error)?
        .masks)
}

fn plugin_error(e: crate::plugins::PluginError) -> AppError {
    let status = axum::http::StatusCode::from_u16(e.status_code())
        .unwrap_or(axum::http::StatusCode::BAD_GATEWAY);
    AppError::new(status, e.to_string())
}
