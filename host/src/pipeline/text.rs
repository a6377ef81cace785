//! `/segment/text` (and SAM3's automatic mode): a text prompt → one mask per detected instance.

use std::sync::Arc;

use super::steps::{embedding_for, finish, prepare};
use super::{PipelineOutput, SegmentRequest, Stages};
use crate::error::AppError;
use crate::masks::Mask;
use crate::models::sam3::Sam3;
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
