//! `/segment/text` (and SAM3's automatic mode): a text prompt → one mask per detected instance.

use super::shared::{
    embedding_for, filter_and_format, model_for, open_raster, sha256_hex, PipelineOutput,
    SegmentRequest, Stages,
};
use crate::error::AppError;
use crate::models::LoadedModel;
use crate::state::AppState;

/// A checked text request.
pub struct TextRequest {
    pub common: SegmentRequest,
    pub prompt: String,
    pub confidence_threshold: f32,
}

/// Runs the request (blocking).
pub fn run(state: &AppState, mut request: TextRequest) -> Result<PipelineOutput, AppError> {
    let mut stages = Stages::start();
    let config = state.config();
    let deadline = request.common.deadline;
    let bytes = std::mem::take(&mut request.common.bytes);
    let sha256 = sha256_hex(&bytes);
    let raster = open_raster(&config, bytes)?;
    let info = raster.info().clone();
    request.common.bands.resolve(info.band_count)?;
    stages.mark("prepare");
    let LoadedModel::Sam3(model) = model_for(
        state,
        &config,
        &request.common.model_version,
        &request.common.model_id,
    )?
    else {
        return Err(AppError::bad_request(
            "Text prompts need a SAM3 model (model_version sam3)",
        ));
    };
    deadline.check()?;
    let (embedding, cache_hit) = embedding_for(
        state,
        &request.common,
        &sha256,
        &raster,
        model.input_side(),
        |rgb, w, h| model.encode_image(rgb, w, h),
    )?;
    drop(raster);
    stages.mark("embedding");
    deadline.check()?;
    let text = model.encode_text(&request.prompt)?;
    let masks = model.detect(&embedding, &text, &[], request.confidence_threshold)?;
    stages.mark("decode");
    let (output, mask_count) = filter_and_format(state, &request.common, &info, masks)?;
    stages.mark("plugins");
    Ok(PipelineOutput {
        output,
        cache_hit,
        mask_count,
        stages,
    })
}
