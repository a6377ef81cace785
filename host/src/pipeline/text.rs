//! `/segment/text` (and SAM3's automatic mode): a text prompt → one mask per detected instance.

use std::sync::Arc;

use super::detections;
use super::shared::{
    apply_filters, embedding_for, finish, prepare, PipelineOutput, SegmentRequest, Stages,
};
use crate::error::AppError;
use crate::masks::Mask;
use crate::models::sam3::{Detection, Sam3};
use crate::models::LoadedModel;
use crate::raster::OpenRaster;
use crate::state::AppState;

/// A checked text request.
pub struct TextRequest {
    pub common: SegmentRequest,
    pub prompt: String,
    pub confidence_threshold: f32,
}

/// Runs the request (blocking).
pub fn run(state: &AppState, mut request: TextRequest) -> Result<PipelineOutput, AppError> {
    let prepared = prepare(state, &mut request.common, |_, _| Ok(()))?;
    let LoadedModel::Sam3(model) = prepared.model else {
        return Err(AppError::bad_request(
            "Text prompts need a SAM3 model (model_version sam3)",
        ));
    };
    let mut stages = prepared.stages;
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
    let (masks, cache_hit) = detect_text(
        state,
        &request.common,
        &prepared.sha256,
        prepared.raster,
        &model,
        &request.prompt,
        request.confidence_threshold,
        &mut stages,
    )?;
    finish(
        state,
        &request.common,
        &prepared.info,
        masks,
        cache_hit,
        stages,
    )
}

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
    let (embedding, cache_hit) = embedding_for(
        state,
        common,
        &sha256,
        &raster,
        model.input_side(),
        |rgb, w, h| model.encode_image(rgb, w, h),
    )?;
    drop(raster);
    stages.mark("embedding");
    common.deadline.check()?;
    let text = model.encode_text(&request.prompt)?;
    let found = model.detect_with_boxes(&embedding, &text, &[], request.confidence_threshold)?;
    stages.mark("decode");
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
        cache_hit,
        mask_count: listed.len(),
        stages,
    })
}

/// SAM3 on the (cached) image embedding with a text prompt; whether the embedding was cached.
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
) -> Result<(Vec<Mask>, bool), AppError> {
    let (embedding, cache_hit) = embedding_for(
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
    let masks = model.detect(&embedding, &text, &[], confidence_threshold)?;
    stages.mark("decode");
    Ok((masks, cache_hit))
}
