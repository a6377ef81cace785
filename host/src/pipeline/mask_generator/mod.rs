//! Automatic mask generation: segment-anything's `SamAutomaticMaskGenerator` (and SAM2's,
//! without the optional mask-to-mask refinement) over any [`PromptableModel`].
//!
//! For every crop (the whole image, then `crop_n_layers` layers of overlapping crops):
//! 1. the pipeline encodes the crop (`embed_crop`, so it can cache embeddings);
//! 2. a grid of points (one prompt row each, label 1) is decoded `points_per_batch` rows at a
//!    time with every candidate mask (multimask);
//! 3. candidates whose predicted IoU is not above `pred_iou_thresh` are dropped before any
//!    upsampling; the others are upsampled with their stability score (`mask_threshold ±
//!    stability_score_offset`), dropped below `stability_score_thresh`, and dropped when their
//!    box lies within 20 px of a crop edge that is not an image edge ([`candidates`]);
//! 4. NMS at `box_nms_thresh` by predicted IoU removes duplicates within the crop ([`nms`]).
//!
//! Then NMS at `crop_nms_thresh` between crops (the mask from the smaller crop wins), the
//! optional `min_mask_region_area` clean-up with its own NMS ([`regions`]), and numbering.
//!
//! Differences from the reference, all deliberate: empty candidate masks are dropped (the
//! reference keeps them only when `stability_score_thresh` ≤ 0); NMS ties go to the lower
//! index (the reference's sort order is unspecified); the output order is fixed (see
//! [`number_masks`]).

pub mod candidates;
pub mod crops;
pub mod grid;
pub mod nms;
mod parallel;
pub mod params;
pub mod regions;

use std::cmp::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use crops::CropBox;
pub use params::AutomaticParams;

use crate::masks::Mask;
use crate::models::{DecoderPrompt, Embedding, ModelError, PromptableModel};
use candidates::Candidate;
use nms::XyxyBox;

/// Where the time of one generation went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timings {
    /// Inside `embed_crop` (cache hits included).
    pub encode: Duration,
    /// Inside the model's `decode`.
    pub decode: Duration,
    /// Everything else: upsampling, filters, NMS, region clean-up, ordering.
    pub postprocess: Duration,
}

/// The result of [`generate`].
#[derive(Debug, Clone, PartialEq)]
pub struct AutomaticOutput {
    /// Masks in image coordinates, numbered 1..n in the order of [`number_masks`].
    pub masks: Vec<Mask>,
    pub timings: Timings,
    /// Candidate masks the decoder returned, over all crops, before any filter.
    pub candidates: usize,
}

/// Generates masks for a whole `image_width`×`image_height` image.
///
/// `embed_crop` encodes one crop of the image (crop 0 is the whole image) and returns an
/// embedding whose `width`×`height` is the crop's size, so prompts and masks live in the
/// crop's pixel frame. Parameters are checked with [`AutomaticParams::validate`] (an invalid
/// set is an error here; the HTTP layer should check first and answer 400).
///
/// The result depends only on the model, the image and the parameters, never on
/// `params.threads`.
pub fn generate(
    model: &dyn PromptableModel,
    image_width: u32,
    image_height: u32,
    embed_crop: &(dyn Fn(CropBox) -> Result<Arc<Embedding>, ModelError> + Sync),
    params: &AutomaticParams,
) -> Result<AutomaticOutput, ModelError> {
    params
        .validate()
        .map_err(|m| ModelError::Inference(format!("invalid automatic parameters: {m}")))?;
    let start = Instant::now();
    let mut timings = Timings::default();
    let mut candidates = 0usize;
    let (w, h) = (image_width, image_height);
    if w == 0 || h == 0 {
        return Ok(AutomaticOutput {
            masks: Vec::new(),
            timings,
            candidates,
        });
    }
    let grids = grid::layer_grids(
        params.points_per_side,
        params.crop_n_layers,
        params.crop_n_points_downscale_factor,
    );
    let crops = crops::crop_boxes(w, h, params.crop_n_layers, params.crop_overlap_ratio);

    // Per crop: candidates, NMS within the crop.
    let mut kept: Vec<Candidate> = Vec::new();
    let mut crop_areas: Vec<u64> = Vec::new();
    for layer_crop in &crops {
        let crop = layer_crop.crop;
        let t = Instant::now();
        let embedding = embed_crop(crop)?;
        timings.encode += t.elapsed();
        if (embedding.width, embedding.height) != (crop.width(), crop.height()) {
            return Err(ModelError::Inference(format!(
                "the embedding of crop {crop:?} is {}×{}; expected {}×{}",
                embedding.width,
                embedding.height,
                crop.width(),
                crop.height()
            )));
        }
        let grid = grids
            .get(layer_crop.layer as usize)
            .map_or(&[][..], Vec::as_slice);
        let points = grid::scale_points(grid, crop.width(), crop.height());
        let mut in_crop: Vec<Candidate> = Vec::new();
        for batch in points.chunks(params.points_per_batch as usize) {
            let prompts: Vec<DecoderPrompt> = batch
                .iter()
                .map(|&p| DecoderPrompt {
                    points: vec![p],
                    labels: vec![1],
                    bbox: None,
                })
                .collect();
            let t = Instant::now();
            let decoded = model.decode(&embedding, &prompts, true)?;
            timings.decode += t.elapsed();
            if decoded.len() != prompts.len() {
                return Err(ModelError::Inference(format!(
                    "decoder answered {} of {} prompt rows",
                    decoded.len(),
                    prompts.len()
                )));
            }
            candidates += decoded.iter().map(|d| d.scores.len()).sum::<usize>();
            in_crop.extend(candidates::filter_batch(&decoded, &crop, w, h, params)?);
        }
        drop(embedding);
        let boxes: Vec<XyxyBox> = in_crop.iter().map(|c| c.bbox).collect();
        let scores: Vec<f32> = in_crop.iter().map(|c| c.mask.score).collect();
        let keep = nms::nms(&boxes, &scores, params.box_nms_thresh);
        let mut slots: Vec<Option<Candidate>> = in_crop.into_iter().map(Some).collect();
        for i in keep {
            if let Some(c) = slots[i].take() {
                kept.push(c);
                crop_areas.push(crop.area());
            }
        }
    }

    // Between crops: the mask from the smaller crop wins.
    if crops.len() > 1 {
        let boxes: Vec<XyxyBox> = kept.iter().map(|c| c.bbox).collect();
        let keep = nms::crop_nms(&boxes, &crop_areas, params.crop_nms_thresh);
        let mut slots: Vec<Option<Candidate>> = kept.into_iter().map(Some).collect();
        kept = keep.into_iter().filter_map(|i| slots[i].take()).collect();
    }
    let mut masks: Vec<Mask> = kept.into_iter().map(|c| c.mask).collect();

    if params.min_mask_region_area > 0 {
        masks = regions::clean_small_regions(
            masks,
            params.min_mask_region_area,
            params.box_nms_thresh.max(params.crop_nms_thresh),
            params.threads,
            w,
            h,
        );
    }
    number_masks(&mut masks);
    timings.postprocess = start
        .elapsed()
        .saturating_sub(timings.encode)
        .saturating_sub(timings.decode);
    Ok(AutomaticOutput {
        masks,
        timings,
        candidates,
    })
}

/// Orders masks and numbers them 1..n (`id` and `label`): area descending (so painting in
/// order puts small masks over the large ones containing them), then bounding box (top,
/// left, height, width ascending), then predicted IoU and stability descending. Masks equal
/// in all of these keep their incoming order (the sort is stable).
pub fn number_masks(masks: &mut [Mask]) {
    masks.sort_by(|a, b| {
        b.area
            .cmp(&a.area)
            .then(a.bbox.y.cmp(&b.bbox.y))
            .then(a.bbox.x.cmp(&b.bbox.x))
            .then(a.bbox.height.cmp(&b.bbox.height))
            .then(a.bbox.width.cmp(&b.bbox.width))
            .then(b.score.total_cmp(&a.score))
            .then(b.stability.total_cmp(&a.stability))
            .then(Ordering::Equal)
    });
    for (i, m) in masks.iter_mut().enumerate() {
        m.id = i as u32 + 1;
        m.label = m.id;
    }
}

#[cfg(test)]
mod tests;
