//! One decoded batch → the candidates that pass the per-mask filters, in the reference's
//! order: predicted IoU, then (only for those) upsampling with the stability score, then the
//! stability threshold, then the crop-edge test. Rejected candidates keep no buffers.

use super::crops::{is_box_near_crop_edge, CropBox};
use super::nms::XyxyBox;
use super::parallel::parallel_map;
use super::params::AutomaticParams;
use crate::masks::Mask;
use crate::models::{mask_from_logits, DecodedMasks, LowResFrame, ModelError};

/// A mask that passed the per-candidate filters, in image coordinates.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The mask (id 0 until the final numbering), score = predicted IoU.
    pub mask: Mask,
    /// Its box as the reference computes it (inclusive last row and column).
    pub bbox: XyxyBox,
}

/// One candidate mask's logits awaiting upsampling.
struct Job<'a> {
    logits: &'a [f32],
    score: f32,
    frame: &'a LowResFrame,
}

/// Filters the candidates of `decoded` (prompt rows of one batch, decoded against the
/// embedding of `crop`) and moves the survivors into the `width`×`height` image's frame.
/// Upsampling runs on `params.threads` threads; the output keeps the input order (row, then
/// candidate).
pub fn filter_batch(
    decoded: &[DecodedMasks],
    crop: &CropBox,
    width: u32,
    height: u32,
    params: &AutomaticParams,
) -> Result<Vec<Candidate>, ModelError> {
    let mut jobs = Vec::new();
    for row in decoded {
        let plane = row.frame.width as usize * row.frame.height as usize;
        if row.logits.len() != row.scores.len() {
            return Err(ModelError::Inference(format!(
                "decoder gave {} masks and {} scores",
                row.logits.len(),
                row.scores.len()
            )));
        }
        for (logits, &score) in row.logits.iter().zip(&row.scores) {
            if logits.len() != plane {
                return Err(ModelError::Inference(format!(
                    "decoder mask has {} logits; expected {}×{}",
                    logits.len(),
                    row.frame.width,
                    row.frame.height
                )));
            }
            // Written so that a NaN score fails the filter, as `score > thresh` does.
            if params.pred_iou_thresh > 0.0 && (score <= params.pred_iou_thresh || score.is_nan()) {
                continue;
            }
            jobs.push(Job {
                logits,
                score,
                frame: &row.frame,
            });
        }
    }
    let results = parallel_map(&jobs, params.threads, |job| {
        let mut mask = mask_from_logits(
            job.logits,
            job.frame,
            0,
            job.score,
            params.mask_threshold,
            params.stability_score_offset,
        )?;
        if params.stability_score_thresh > 0.0
            && (mask.stability < params.stability_score_thresh || mask.stability.is_nan())
        {
            return None;
        }
        mask.bbox.x += crop.x0;
        mask.bbox.y += crop.y0;
        let bbox = XyxyBox::of_bbox(&mask.bbox);
        if is_box_near_crop_edge(&bbox, crop, width, height) {
            return None;
        }
        Some(Candidate { mask, bbox })
    });
    Ok(results.into_iter().flatten().collect())
}
