//! `/segment/text` (and SAM3's automatic mode): a text prompt → one mask per detected instance.

use std::sync::Arc;

use super::detections;
use super::steps::{apply_filters, embedding_for, finish, prepare};
use super::{PipelineOutput, SegmentRequest, Stages};
use crate::error::AppError;
use crate::masks::Mask;
use crate::models::sam3::{Detection, Sam3};
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
    let (found, cache_hit) = detect_prompt(
        state,
        common,
        &sha256,
        raster,
        model,
        &request.prompt,
        request.confidence_threshold,
        &mut stages,
    )?;
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
        model_version: common.model_version.clone(),
        model_id: common.model_id.clone(),
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
) -> Result<(Vec<Mask>, bool), AppError> {
    let (found, cache_hit) = detect_prompt(
        state,
        common,
        sha256,
        raster,
        model,
        prompt,
        confidence_threshold,
        stages,
    )?;
    Ok((found.into_iter().map(|d| d.mask).collect(), cache_hit))
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
) -> Result<(Vec<Detection>, bool), AppError> {
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
    let found = model.detect_with_boxes(&embedding, &text, &[], confidence_threshold)?;
    stages.mark("decode");
    Ok((found, cache_hit))
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
