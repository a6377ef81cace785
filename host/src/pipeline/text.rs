//! `/segment/text` (and SAM3's automatic mode): a text prompt → one mask per detected instance.

use std::sync::Arc;

use super::detections;
use super::mask_generator::number_masks;
use super::steps::{apply_filters, embedding_for, finish, prepare_within};
use super::tiled::{merge, run_tiles, single_look, Tile, TilePlan, TiledRaster, TilingRequest};
use super::{PipelineOutput, SegmentRequest, Stages};
use crate::cache::CacheOutcome;
use crate::error::AppError;
use crate::masks::Mask;
use crate::models::sam3::{Detection, Sam3, TextFeatures};
use crate::models::LoadedModel;
use crate::raster::OpenRaster;
use crate::state::AppState;

/// Longest text prompt accepted, in bytes of UTF-8. SAM3's language encoder reads 32 tokens (30
/// after the start and end tokens): a few words. 4 KiB leaves room for any real prompt and
/// keeps a request from making the server clean up megabytes of text.
pub const MAX_PROMPT_BYTES: usize = 4096;

/// 400 for a prompt longer than [`MAX_PROMPT_BYTES`], naming the limit.
pub fn check_prompt(prompt: &str) -> Result<(), AppError> {
    if prompt.len() > MAX_PROMPT_BYTES {
        return Err(AppError::bad_request(format!(
            "prompt is {} bytes; at most {MAX_PROMPT_BYTES} are accepted (SAM3 reads only the first 30 tokens of a prompt)",
            prompt.len()
        )));
    }
    Ok(())
}

/// A checked text request.
pub struct TextRequest {
    pub common: SegmentRequest,
    pub prompt: String,
    pub confidence_threshold: f32,
    /// Whether and how the raster is tiled.
    pub tiling: TilingRequest,
}

/// Runs the request (blocking).
pub fn run(state: &AppState, mut request: TextRequest) -> Result<PipelineOutput, AppError> {
    let tiling = request.tiling;
    let config = state.config();
    let single_look_max = config.server.max_pixels;
    let prepared = prepare_within(
        state,
        &mut request.common,
        tiling.max_pixels(&config),
        |_, info| tiling.plan(info, single_look_max),
    )?;
    let LoadedModel::Sam3(model) = prepared.model else {
        return Err(AppError::bad_request(
            "Text prompts need a SAM3 model (model_version sam3)",
        ));
    };
    let mut stages = prepared.stages;
    if let Some(plan) = prepared.checked {
        return run_tiled(
            state,
            &request,
            prepared.raster,
            &prepared.info,
            &model,
            plan,
            stages,
        );
    }
    if detections::FORMATS.contains(&request.common.output_format.as_str()) {
        return detector_boxes(
            state,
            &request,
            prepared.sha256,
            prepared.raster,
            &model,
            stages,
        );
    }
    let mut cache = CacheOutcome::Miss;
    let masks = single_look(&request.common, || {
        let (masks, hit) = detect_text(
            state,
            &request.common,
            &prepared.sha256,
            prepared.raster,
            &model,
            &request.prompt,
            request.confidence_threshold,
            &mut stages,
        )?;
        cache = hit;
        Ok(masks)
    })?;
    finish(state, &request.common, &prepared.info, masks, cache, stages)
}

/// SAM3's detector on one tile at a time: the prompt is encoded once, each tile's image
/// embedding is computed, used and dropped (never cached).
pub struct TileDetector<'a> {
    model: &'a Sam3,
    text: Arc<TextFeatures>,
    confidence_threshold: f32,
}

impl<'a> TileDetector<'a> {
    /// Encodes `prompt` once for every tile.
    pub fn new(
        model: &'a Sam3,
        prompt: &str,
        confidence_threshold: f32,
    ) -> Result<TileDetector<'a>, AppError> {
        Ok(TileDetector {
            model,
            text: model.encode_text(prompt)?,
            confidence_threshold,
        })
    }

    /// The masks found in `tile`, in the tile's pixel frame.
    pub fn detect(&mut self, source: &TiledRaster, tile: &Tile) -> Result<Vec<Mask>, AppError> {
        let rgb = source.read(tile.window(), self.model.input_side())?;
        let embedding = self.model.encode_image(&rgb, tile.width(), tile.height())?;
        drop(rgb);
        let found =
            self.model
                .detect_with_boxes(&embedding, &self.text, &[], self.confidence_threshold)?;
        Ok(found.into_iter().map(|d| d.mask).collect())
    }
}

/// A tiled text run: the detector per tile, then the merge across tiles. `json` and
/// `detections` list the merged masks' pixel boxes (a detection merged across seams has no
/// single detector box).
fn run_tiled(
    state: &AppState,
    request: &TextRequest,
    raster: OpenRaster,
    info: &crate::raster::RasterInfo,
    model: &Sam3,
    plan: TilePlan,
    mut stages: Stages,
) -> Result<PipelineOutput, AppError> {
    let common = &request.common;
    let grid_info = plan.grid.info(info);
    let source = TiledRaster::new(raster, plan.grid, common.bands.clone());
    let mut detector = TileDetector::new(model, &request.prompt, request.confidence_threshold)?;
    let (tiles, counts) = run_tiles(&plan, &source, common, |tile| {
        detector.detect(&source, tile)
    })?;
    stages.mark("tiles");
    let mut masks = merge(tiles, grid_info.width, grid_info.height, MERGE_NMS_IOU);
    number_masks(&mut masks);
    stages.mark("merge");
    if !detections::FORMATS.contains(&common.output_format.as_str()) {
        let mut output = finish(state, common, &grid_info, masks, CacheOutcome::Miss, stages)?;
        output.tiles = Some(counts);
        return Ok(output);
    }
    let kept = apply_filters(state, common, &grid_info, masks)?;
    let found: Vec<Detection> = kept.into_iter().map(box_of_mask).collect();
    let listed: Vec<&Detection> = found.iter().collect();
    let output = detections::format(&common.output_format, &grid_info, &listed);
    stages.mark("plugins");
    Ok(PipelineOutput {
        output,
        cache: CacheOutcome::Miss,
        mask_count: listed.len(),
        stages,
        model_version: common.model_version.clone(),
        model_id: common.model_id.clone(),
        tiles: Some(counts),
    })
}

/// A detection whose box is its mask's pixel extent.
fn box_of_mask(mask: Mask) -> Detection {
    let b = mask.bbox;
    let bbox = [
        b.x as f64,
        b.y as f64,
        (b.x + b.width) as f64,
        (b.y + b.height) as f64,
    ];
    Detection { mask, bbox }
}

/// IoU above which the final NMS of a tiled text run drops a duplicate (the generator's
/// default `box_nms_thresh`).
const MERGE_NMS_IOU: f32 = 0.7;

/// `json` / `detections`: the detector's boxes and scores (as the seed answers), for the
/// detections whose masks pass the filter chain.
fn detector_boxes(
    state: &AppState,
    request: &TextRequest,
    sha256: String,
    raster: OpenRaster,
    model: &Arc<Sam3>,
    mut stages: Stages,
) -> Result<PipelineOutput, AppError> {
    let common = &request.common;
    let info = raster.info().clone();
    // One tile for the progress contract: resumed masks come back with their own boxes.
    let mut cache = CacheOutcome::Miss;
    let mut found: Vec<Detection> = Vec::new();
    single_look(common, || {
        let (detected, hit) = detect_prompt(
            state,
            common,
            &sha256,
            raster,
            model,
            &request.prompt,
            request.confidence_threshold,
            &mut stages,
        )?;
        cache = hit;
        found = detected;
        Ok(found.iter().map(|d| d.mask.clone()).collect())
    })
    .map(|masks| {
        if found.is_empty() {
            found = masks.into_iter().map(box_of_mask).collect();
        }
    })?;
    let kept: std::collections::HashSet<u32> = apply_filters(
        state,
        common,
        &info,
        found.iter().map(|d| d.mask.clone()).collect(),
    )?
    .iter()
    .map(|m| m.id)
    .collect();
    let listed: Vec<&Detection> = found.iter().filter(|d| kept.contains(&d.mask.id)).collect();
    let output = detections::format(&common.output_format, &info, &listed);
    stages.mark("plugins");
    Ok(PipelineOutput {
        output,
        cache,
        mask_count: listed.len(),
        stages,
        model_version: common.model_version.clone(),
        model_id: common.model_id.clone(),
        tiles: None,
    })
}

/// SAM3 on the (cached) image embedding with a text prompt: the masks, and whether the
/// embedding was cached.
#[allow(clippy::too_many_arguments)]
pub fn detect_text(
    state: &AppState,
    common: &SegmentRequest,
    sha256: &str,
    raster: OpenRaster,
    model: &Arc<Sam3>,
    prompt: &str,
    confidence_threshold: f32,
    stages: &mut Stages,
) -> Result<(Vec<Mask>, CacheOutcome), AppError> {
    let (found, cache) = detect_prompt(
        state,
        common,
        sha256,
        raster,
        model,
        prompt,
        confidence_threshold,
        stages,
    )?;
    Ok((found.into_iter().map(|d| d.mask).collect(), cache))
}

/// [`detect_text`] with each instance's box as the detector gave it.
#[allow(clippy::too_many_arguments)]
fn detect_prompt(
    state: &AppState,
    common: &SegmentRequest,
    sha256: &str,
    raster: OpenRaster,
    model: &Arc<Sam3>,
    prompt: &str,
    confidence_threshold: f32,
    stages: &mut Stages,
) -> Result<(Vec<Detection>, CacheOutcome), AppError> {
    let (embedding, cache) = embedding_for(
        state,
        common,
        sha256,
        &raster,
        model.input_side(),
        |rgb, w, h| model.encode_image(rgb, w, h),
    )?;
    drop(raster);
    stages.mark("embedding");
    common.deadline.check()?;
    let text = model.encode_text(prompt)?;
    let found = model.detect_with_boxes(&embedding, &text, &[], confidence_threshold)?;
    stages.mark("decode");
    Ok((found, cache))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_prompts_are_refused_naming_the_limit() {
        assert!(check_prompt("red roofs").is_ok());
        assert!(check_prompt(&"a".repeat(MAX_PROMPT_BYTES)).is_ok());
        let e = check_prompt(&"a".repeat(MAX_PROMPT_BYTES + 1)).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.detail.contains("4096"), "{}", e.detail);
    }
}
