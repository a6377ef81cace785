//! `/segment/automatic`: every object in the image. SAM and SAM2 run the automatic mask
//! generator over the cached embeddings (one per crop); SAM3 runs the text prompt "everything".

use std::sync::Arc;

use parking_lot::Mutex;

use super::mask_generator::{generate, AutomaticParams, CropBox};
use super::steps::{embedding_for, finish, prepare};
use super::text::detect_text;
use super::{PipelineOutput, SegmentRequest};
use crate::cache::EmbeddingKey;
use crate::error::AppError;
use crate::models::{
    DecodedMasks, DecoderPrompt, Embedding, LoadedModel, ModelError, ModelFamily, PromptableModel,
};
use crate::pipeline::Deadline;
use crate::raster::RgbImage;
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
    let prepared = prepare(state, &mut request.common, |_, _| Ok(()))?;
    let (raster, info, sha256) = (prepared.raster, prepared.info, prepared.sha256);
    let mut stages = prepared.stages;
    let deadline = request.common.deadline;
    let (masks, cache_hit) = match prepared.model {
        LoadedModel::Sam3(model) => detect_text(
            state,
            &request.common,
            &sha256,
            raster,
            &model,
            SAM3_EVERYTHING,
            request.confidence_threshold,
            &mut stages,
        )?,
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
            let checked = WithDeadline {
                model: model.as_ref(),
                deadline,
                failure: &failure,
            };
            let output = generate(
                &checked,
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
    finish(state, &request.common, &info, masks, cache_hit, stages)
}

/// The model, with the request's deadline checked before every decoder batch: a generation
/// past the time limit stops within one batch, instead of running to its end after the 504 was
/// sent and its inference slot given to the next request. The 504 reaches the client through
/// `failure`.
struct WithDeadline<'a> {
    model: &'a dyn PromptableModel,
    deadline: Deadline,
    failure: &'a Mutex<Option<AppError>>,
}

impl PromptableModel for WithDeadline<'_> {
    fn family(&self) -> ModelFamily {
        self.model.family()
    }

    fn input_side(&self) -> u32 {
        self.model.input_side()
    }

    fn encode(&self, image: &RgbImage, width: u32, height: u32) -> Result<Embedding, ModelError> {
        self.model.encode(image, width, height)
    }

    fn decode(
        &self,
        embedding: &Embedding,
        prompts: &[DecoderPrompt],
        multimask: bool,
    ) -> Result<Vec<DecodedMasks>, ModelError> {
        if let Err(e) = self.deadline.check() {
            let message = e.detail.clone();
            self.failure.lock().get_or_insert(e);
            return Err(ModelError::Inference(message));
        }
        self.model.decode(embedding, prompts, multimask)
    }
}
