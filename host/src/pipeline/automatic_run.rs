//! `/segment/automatic`: every object in the image. SAM and SAM2 run the automatic mask
//! generator over the cached embeddings (one per crop); SAM3 runs the text prompt "everything".

use std::sync::Arc;

use parking_lot::Mutex;

use super::automatic::{generate, AutomaticParams, CropBox};
use super::shared::{
    embedding_for, filter_and_format, model_for, open_raster, sha256_hex, PipelineOutput,
    SegmentRequest, Stages,
};
use crate::cache::EmbeddingKey;
use crate::error::AppError;
use crate::models::{Embedding, LoadedModel, ModelError};
use crate::state::AppState;

/// The text prompt SAM3's automatic mode uses (as the seed does).
const SAM3_EVERYTHING: &str = "everything";

/// A checked automatic request.
pub struct AutomaticRequest {
    pub common: SegmentRequest,
    pub params: AutomaticParams,
    /// SAM3's detection threshold.
    pub confidence_threshold: f32,
}

/// Runs the request (blocking).
pub fn run(state: &AppState, mut request: AutomaticRequest) -> Result<PipelineOutput, AppError> {
    let mut stages = Stages::start();
    let config = state.config();
    let deadline = request.common.deadline;
    let bytes = std::mem::take(&mut request.common.bytes);
    let sha256 = sha256_hex(&bytes);
    let raster = open_raster(&config, bytes)?;
    let info = raster.info().clone();
    request.common.bands.resolve(info.band_count)?;
    let model = model_for(
        state,
        &config,
        &request.common.model_version,
        &request.common.model_id,
    )?;
    stages.mark("prepare");
    deadline.check()?;
    let (masks, cache_hit) = match model {
        LoadedModel::Sam3(model) => {
            let (embedding, cache_hit) = embedding_for(
                state,
                &request.common,
                &sha256,
                &raster,
                model.input_side(),
                |rgb, w, h| model.encode_image(rgb, w, h),
            )?;
            drop(raster);
            deadline.check()?;
            let text = model.encode_text(SAM3_EVERYTHING)?;
            let masks = model.detect(&embedding, &text, &[], request.confidence_threshold)?;
            stages.mark("decode");
            (masks, cache_hit)
        }
        LoadedModel::Promptable(model) => {
            let side = model.input_side();
            let (full, cache_hit) = embedding_for(
                state,
                &request.common,
                &sha256,
                &raster,
                side,
                |rgb, w, h| model.encode(rgb, w, h),
            )?;
            // Crops other than the whole image: encoded from a window of the raster, cached
            // like any embedding. Errors keep their status through `failure`.
            let raster = Mutex::new(raster);
            let failure: Mutex<Option<AppError>> = Mutex::new(None);
            let common = &request.common;
            let embed_crop = |crop: CropBox| -> Result<Arc<Embedding>, ModelError> {
                if crop.is_full(info.width, info.height) {
                    return Ok(full.clone());
                }
                let key = EmbeddingKey {
                    model_version: common.model_version.clone(),
                    model_id: common.model_id.clone(),
                    image_sha256: sha256.clone(),
                    options: format!(
                        "bands={};crop={},{},{},{}",
                        common.bands.key(),
                        crop.x0,
                        crop.y0,
                        crop.x1,
                        crop.y1
                    ),
                };
                let result = state.embeddings.get_or_compute(&key, || {
                    deadline.check()?;
                    let rgb = raster.lock().read_rgb_window(
                        &common.bands,
                        (crop.x0, crop.y0, crop.x1, crop.y1),
                        side,
                    )?;
                    Ok(model.encode(&rgb, crop.width(), crop.height())?)
                });
                result.map(|(e, _)| e).map_err(|e| {
                    let message = e.detail.clone();
                    failure.lock().get_or_insert(e);
                    ModelError::Inference(message)
                })
            };
            let output = generate(
                model.as_ref(),
                info.width,
                info.height,
                &embed_crop,
                &request.params,
            );
            if let Some(e) = failure.lock().take() {
                return Err(e);
            }
            let output = output?;
            tracing::info!(
                encode_ms = output.timings.encode.as_millis() as u64,
                decode_ms = output.timings.decode.as_millis() as u64,
                postprocess_ms = output.timings.postprocess.as_millis() as u64,
                candidates = output.candidates,
                masks = output.masks.len(),
                "automatic masks generated"
            );
            stages.mark("generate");
            (output.masks, cache_hit)
        }
    };
    deadline.check()?;
    let (output, mask_count) = filter_and_format(state, &request.common, &info, masks)?;
    stages.mark("plugins");
    Ok(PipelineOutput {
        output,
        cache_hit,
        mask_count,
        stages,
    })
}
