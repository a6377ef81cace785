//! `/segment/automatic`: every object in the image. SAM and SAM2 run the automatic mask
//! generator over the cached embeddings (one per crop); SAM3 runs the text prompt "everything".
//! Large rasters are segmented tile by tile ([`super::tiled`]).

use std::sync::Arc;

use parking_lot::Mutex;

use super::mask_generator::{generate, number_masks, AutomaticParams, CropBox};
use super::steps::{embedding_for, finish, prepare_within};
use super::text::{detect_text, TileDetector};
use super::tiled::{merge, run_tiles, single_look, TilePlan, TiledRaster, TilingRequest};
use super::{PipelineOutput, SegmentRequest, Stages};
use crate::cache::{CacheOutcome, EmbeddingKey};
use crate::error::AppError;
use crate::masks::Mask;
use crate::models::{
    DecodedMasks, DecoderPrompt, Embedding, LoadedModel, ModelError, ModelFamily, PromptableModel,
};
use crate::pipeline::Deadline;
use crate::raster::{OpenRaster, RgbImage};
use crate::state::AppState;

/// The text prompt SAM3's automatic mode uses (as the seed does).
const SAM3_EVERYTHING: &str = "everything";

/// A checked automatic request.
pub struct AutomaticRequest {
    pub common: SegmentRequest,
    pub params: AutomaticParams,
    /// SAM3's detection threshold.
    pub confidence_threshold: f32,
    /// Whether and how the raster is tiled.
    pub tiling: TilingRequest,
}

/// Runs the request (blocking).
pub fn run(state: &AppState, mut request: AutomaticRequest) -> Result<PipelineOutput, AppError> {
    let tiling = request.tiling;
    let config = state.config();
    let single_look_max = config.server.max_pixels;
    let prepared = prepare_within(
        state,
        &mut request.common,
        tiling.max_pixels(&config),
        |_, info| tiling.plan(info, single_look_max),
    )?;
    if let Some(plan) = prepared.checked {
        return run_tiled(
            state,
            &request,
            prepared.raster,
            &prepared.info,
            prepared.model,
            plan,
            prepared.stages,
        );
    }
    let (raster, info, sha256) = (prepared.raster, prepared.info, prepared.sha256);
    let mut stages = prepared.stages;
    let mut cache = CacheOutcome::Miss;
    let common = &request.common;
    let masks = single_look(common, || match prepared.model {
        LoadedModel::Sam3(model) => {
            let (masks, hit) = detect_text(
                state,
                common,
                &sha256,
                raster,
                &model,
                SAM3_EVERYTHING,
                request.confidence_threshold,
                &mut stages,
            )?;
            cache = hit;
            Ok(masks)
        }
        LoadedModel::Promptable(model) => {
            let (masks, hit) = generate_whole(
                state,
                &request,
                &sha256,
                raster,
                info.width,
                info.height,
                &model,
            )?;
            cache = hit;
            stages.mark("generate");
            Ok(masks)
        }
    })?;
    finish(state, &request.common, &info, masks, cache, stages)
}

/// SAM/SAM2: the automatic mask generator over the whole image (crops from cached embeddings).
fn generate_whole(
    state: &AppState,
    request: &AutomaticRequest,
    sha256: &str,
    raster: OpenRaster,
    width: u32,
    height: u32,
    model: &Arc<dyn PromptableModel>,
) -> Result<(Vec<Mask>, CacheOutcome), AppError> {
    let deadline = request.common.deadline;
    let side = model.input_side();
    let (full, cache) = embedding_for(
        state,
        &request.common,
        sha256,
        &raster,
        side,
        |rgb, w, h| model.encode(rgb, w, h),
    )?;
    // Crops other than the whole image: encoded from a window of the raster, cached like any
    // embedding. Errors keep their status through `failure`.
    let raster = Mutex::new(raster);
    let failure: Mutex<Option<AppError>> = Mutex::new(None);
    let common = &request.common;
    let embed_crop = |crop: CropBox| -> Result<Arc<Embedding>, ModelError> {
        if crop.is_full(width, height) {
            return Ok(full.clone());
        }
        let key = EmbeddingKey {
            model_version: common.model_version.clone(),
            model_id: common.model_id.clone(),
            image_sha256: sha256.to_string(),
            options: format!(
                "bands={};crop={},{},{},{}",
                common.bands.key(),
                crop.x0,
                crop.y0,
                crop.x1,
                crop.y1
            ),
        };
        let result = state.embeddings.get_or_compute(&key, &deadline, || {
            deadline.check()?;
            let rgb = raster.lock().read_rgb_window(
                &common.bands,
                (crop.x0, crop.y0, crop.x1, crop.y1),
                side,
            )?;
            Ok(model.encode(&rgb, crop.width(), crop.height())?)
        });
        result
            .map(|(e, _)| e)
            .map_err(|e| keep_failure(&failure, e))
    };
    let masks = run_generator(
        model.as_ref(),
        deadline,
        &failure,
        width,
        height,
        &embed_crop,
        &request.params,
    )?;
    Ok((masks, cache))
}

/// Runs [`generate`] with the deadline checked per decoder batch; the first error recorded in
/// `failure` (with its status) wins over the generator's own.
fn run_generator(
    model: &dyn PromptableModel,
    deadline: Deadline,
    failure: &Mutex<Option<AppError>>,
    width: u32,
    height: u32,
    embed_crop: &(dyn Fn(CropBox) -> Result<Arc<Embedding>, ModelError> + Sync),
    params: &AutomaticParams,
) -> Result<Vec<Mask>, AppError> {
    let checked = WithDeadline {
        model,
        deadline,
        failure,
    };
    let output = generate(&checked, width, height, embed_crop, params);
    if let Some(e) = failure.lock().take() {
        return Err(e);
    }
    let output = output?;
    tracing::debug!(
        encode_ms = output.timings.encode.as_millis() as u64,
        decode_ms = output.timings.decode.as_millis() as u64,
        postprocess_ms = output.timings.postprocess.as_millis() as u64,
        candidates = output.candidates,
        masks = output.masks.len(),
        "automatic masks generated"
    );
    Ok(output.masks)
}

/// Records `e` in `failure` (the first one wins) and gives the generator a plain model error.
fn keep_failure(failure: &Mutex<Option<AppError>>, e: AppError) -> ModelError {
    let message = e.detail.clone();
    failure.lock().get_or_insert(e);
    ModelError::Inference(message)
}

/// A tiled run: per tile, SAM/SAM2's generator on that tile's own embedding (not cached), or
/// SAM3's "everything" detector; then the merge across tiles.
fn run_tiled(
    state: &AppState,
    request: &AutomaticRequest,
    raster: OpenRaster,
    info: &crate::raster::RasterInfo,
    model: LoadedModel,
    plan: TilePlan,
    mut stages: Stages,
) -> Result<PipelineOutput, AppError> {
    let common = &request.common;
    let grid_info = plan.grid.info(info);
    let source = TiledRaster::new(raster, plan.grid, common.bands.clone());
    let (tiles, counts) = match model {
        LoadedModel::Sam3(model) => {
            let mut detector =
                TileDetector::new(&model, SAM3_EVERYTHING, request.confidence_threshold)?;
            run_tiles(&plan, &source, common, |tile| {
                detector.detect(&source, tile)
            })?
        }
        LoadedModel::Promptable(model) => {
            let side = model.input_side();
            let deadline = common.deadline;
            run_tiles(&plan, &source, common, |tile| {
                let failure: Mutex<Option<AppError>> = Mutex::new(None);
                let embed_crop = |crop: CropBox| -> Result<Arc<Embedding>, ModelError> {
                    let window = (
                        tile.x0 + crop.x0,
                        tile.y0 + crop.y0,
                        tile.x0 + crop.x1,
                        tile.y0 + crop.y1,
                    );
                    let encoded = deadline
                        .check()
                        .and_then(|_| Ok(source.read(window, side)?))
                        .and_then(|rgb| Ok(model.encode(&rgb, crop.width(), crop.height())?));
                    encoded.map(Arc::new).map_err(|e| keep_failure(&failure, e))
                };
                run_generator(
                    model.as_ref(),
                    deadline,
                    &failure,
                    tile.width(),
                    tile.height(),
                    &embed_crop,
                    &request.params,
                )
            })?
        }
    };
    stages.mark("tiles");
    let mut masks = merge(
        tiles,
        grid_info.width,
        grid_info.height,
        request.params.box_nms_thresh,
    );
    number_masks(&mut masks);
    stages.mark("merge");
    let mut output = finish(state, common, &grid_info, masks, CacheOutcome::Miss, stages)?;
    output.tiles = Some(counts);
    Ok(output)
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
