//! SAM2 (Hiera tiny/small/base-plus/large): an image encoder giving the embedding and two
//! high-resolution feature maps, and a decoder that takes prompt batches. Two decoder exports:
//! `scripts/export-models`' with all four mask tokens, on which single-mask requests follow
//! `SAM2ImagePredictor` exactly (the single-mask token unless its logits are unstable, then
//! the best multimask candidate), and samexporter's with the three multimask tokens only, on
//! which a single mask is the best-scored of the three (not what the reference returns).

use std::path::Path;

use ndarray::{ArrayD, IxDyn};
use ort::session::Session;
use ort::value::TensorRef;
use parking_lot::Mutex;

use super::postprocess::LowResFrame;
use super::preprocess::{resize_for_sam2, to_chw_tensor_f32, Normalisation};
use super::runtime::OnnxRuntime;
use super::sam::{point_arrays, select_candidates, PromptLayout, Selection};
use super::tensors::{run_error as run_err, TensorNames};
use super::{DecodedMasks, DecoderPrompt, Embedding, ModelError, ModelFamily, PromptableModel};
use crate::raster::RgbImage;

const SIDE: u32 = 1024;
const LOW_RES: u32 = 256;
const ENCODER_OUTPUTS: [&str; 3] = ["image_embed", "high_res_feats_0", "high_res_feats_1"];
/// The hiera configs' `dynamic_multimask_stability_delta` and `_thresh` (SAM2 and SAM2.1).
const STABILITY_DELTA: f32 = 0.05;
const STABILITY_THRESH: f32 = 0.98;

/// A loaded SAM2 model.
pub struct Sam2 {
    encoder: Mutex<Session>,
    decoder: Mutex<Session>,
    names: TensorNames,
    /// Mask tokens in the decoder's `masks` output when its shape says (4 or 3).
    mask_tokens: Option<i64>,
}

impl Sam2 {
    /// Loads both sessions and checks their tensor names.
    pub fn load(
        runtime: &OnnxRuntime,
        encoder: &Path,
        decoder: &Path,
        names: TensorNames,
    ) -> Result<Sam2, ModelError> {
        let encoder_session = runtime.encoder_session(encoder)?;
        let decoder_session = runtime.session(decoder)?;
        let check = |s: &Session, file: &Path, wanted: &[&str], what: &str| {
            for w in wanted {
                let n = names.get(w);
                let present = s.inputs().iter().any(|i| i.name() == n)
                    || s.outputs().iter().any(|o| o.name() == n);
                if !present {
                    return Err(ModelError::Unavailable(format!(
                        "{} is not a SAM2 {what}: it has no tensor named '{n}'",
                        file.display()
                    )));
                }
            }
            Ok(())
        };
        check(
            &encoder_session,
            encoder,
            &["image", "image_embed"],
            "image encoder",
        )?;
        check(
            &decoder_session,
            decoder,
            &[
                "image_embed",
                "high_res_feats_0",
                "high_res_feats_1",
                "point_coords",
                "point_labels",
                "masks",
                "iou_predictions",
            ],
            "decoder",
        )?;
        let masks_name = names.get("masks");
        let mask_tokens = decoder_session
            .outputs()
            .iter()
            .find(|o| o.name() == masks_name)
            .and_then(|o| match o.dtype() {
                ort::value::ValueType::Tensor { shape, .. } => shape.get(1).copied(),
                _ => None,
            })
            .filter(|&k| k > 0);
        if let Some(k) = mask_tokens.filter(|&k| k != 3 && k != 4) {
            return Err(ModelError::Unavailable(format!(
                "{} is not a SAM2 decoder export: its '{masks_name}' output has {k} masks (expected 4, or samexporter's 3)",
                decoder.display()
            )));
        }
        Ok(Sam2 {
            encoder: Mutex::new(encoder_session),
            decoder: Mutex::new(decoder_session),
            names,
            mask_tokens,
        })
    }
}

impl PromptableModel for Sam2 {
    fn family(&self) -> ModelFamily {
        ModelFamily::Sam2
    }

    fn input_side(&self) -> u32 {
        SIDE
    }

    fn reference_difference(&self) -> Option<String> {
        (self.mask_tokens == Some(3)).then(|| {
            "its decoder has samexporter's 3 multimask outputs: a single-mask prompt gets the best-scored of the 3 candidates, where SAM2ImagePredictor uses the single-mask token (falling back to the best candidate when unstable); export with scripts/export-models for the reference's masks".to_string()
        })
    }

    fn encode(&self, image: &RgbImage, width: u32, height: u32) -> Result<Embedding, ModelError> {
        let resized = resize_for_sam2(image, SIDE, SIDE);
        let tensor = to_chw_tensor_f32(&resized, SIDE as usize, Normalisation::IMAGENET);
        let mut session = self.encoder.lock();
        let outputs = session
            .run(ort::inputs![self.names.get("image") => TensorRef::from_array_view(tensor.view()).map_err(run_err)?])
            .map_err(run_err)?;
        let mut tensors = Vec::with_capacity(3);
        for standard in ENCODER_OUTPUTS {
            let value = self.names.output_f32(&outputs, standard)?;
            tensors.push((standard.to_string(), value));
        }
        Ok(Embedding {
            tensors,
            width,
            height,
        })
    }

    fn decode(
        &self,
        embedding: &Embedding,
        prompts: &[DecoderPrompt],
        multimask: bool,
    ) -> Result<Vec<DecodedMasks>, ModelError> {
        let (w, h) = (embedding.width, embedding.height);
        let (sx, sy) = (SIDE as f64 / w as f64, SIDE as f64 / h as f64);
        // As SAM2Transforms.postprocess_masks: straight to the original size.
        let frame = LowResFrame::direct(LOW_RES, w, h);
        let feature = |name: &str| {
            embedding
                .tensor(name)
                .ok_or_else(|| ModelError::Inference(format!("embedding lacks {name}")))
        };
        let (embed, feats0, feats1) = (
            feature("image_embed")?,
            feature("high_res_feats_0")?,
            feature("high_res_feats_1")?,
        );
        // Rows decoded together must have the same number of points; group them by count.
        let rows: Vec<(Vec<f32>, Vec<f32>)> = prompts
            .iter()
            .map(|p| point_arrays(p, sx, sy, PromptLayout::Sam2))
            .collect();
        let mut results: Vec<Option<DecodedMasks>> = vec![None; prompts.len()];
        let mut session = self.decoder.lock();
        let mut remaining: Vec<usize> = (0..rows.len()).collect();
        while let Some(&first) = remaining.first() {
            let n = rows[first].1.len();
            let batch: Vec<usize> = remaining
                .iter()
                .copied()
                .filter(|&i| rows[i].1.len() == n)
                .collect();
            remaining.retain(|i| !batch.contains(i));
            let l = batch.len();
            let coords: Vec<f32> = batch.iter().flat_map(|&i| rows[i].0.clone()).collect();
            let labels: Vec<f32> = batch.iter().flat_map(|&i| rows[i].1.clone()).collect();
            let coords = ArrayD::from_shape_vec(IxDyn(&[l, n, 2]), coords).map_err(run_err)?;
            let labels = ArrayD::from_shape_vec(IxDyn(&[l, n]), labels).map_err(run_err)?;
            let mask_input = ArrayD::<f32>::zeros(IxDyn(&[l, 1, 256, 256]));
            let has_mask_input = ArrayD::<f32>::zeros(IxDyn(&[l]));
            let outputs = session
                .run(ort::inputs![
                    self.names.get("image_embed") => TensorRef::from_array_view(embed.view()).map_err(run_err)?,
                    self.names.get("high_res_feats_0") => TensorRef::from_array_view(feats0.view()).map_err(run_err)?,
                    self.names.get("high_res_feats_1") => TensorRef::from_array_view(feats1.view()).map_err(run_err)?,
                    self.names.get("point_coords") => TensorRef::from_array_view(coords.view()).map_err(run_err)?,
                    self.names.get("point_labels") => TensorRef::from_array_view(labels.view()).map_err(run_err)?,
                    self.names.get("mask_input") => TensorRef::from_array_view(mask_input.view()).map_err(run_err)?,
                    self.names.get("has_mask_input") => TensorRef::from_array_view(has_mask_input.view()).map_err(run_err)?,
                ])
                .map_err(run_err)?;
            let masks = self.names.output_f32(&outputs, "masks")?;
            let scores = self.names.output_f32(&outputs, "iou_predictions")?;
            if masks.shape().first() != Some(&l) || scores.shape().first() != Some(&l) {
                return Err(ModelError::Inference(format!(
                    "decoder returned masks {:?} and scores {:?} for {l} prompts",
                    masks.shape(),
                    scores.shape()
                )));
            }
            for (row, &index) in batch.iter().enumerate() {
                let m = masks
                    .index_axis(ndarray::Axis(0), row)
                    .insert_axis(ndarray::Axis(0))
                    .to_owned();
                let s = scores.index_axis(ndarray::Axis(0), row).to_owned();
                let (m, s) = (m.into_dyn(), s.into_dyn());
                results[index] = Some(if multimask {
                    select_candidates(&m, &s, Selection::Multimask, frame)?
                } else {
                    single_mask(select_candidates(&m, &s, Selection::All, frame)?)?
                });
            }
        }
        Ok(results.into_iter().flatten().collect())
    }
}

/// `SAM2ImagePredictor`'s stability score of low-resolution logits: pixels above `delta` over
/// pixels above `-delta` (1 when none is above `-delta`).
fn stability(logits: &[f32], delta: f32) -> f32 {
    let inner = logits.iter().filter(|&&v| v > delta).count();
    let outer = logits.iter().filter(|&&v| v > -delta).count();
    if outer == 0 {
        1.0
    } else {
        inner as f32 / outer as f32
    }
}

/// The single mask of a prompt row from all the masks the decoder gave:
/// - 4 (single-mask token + 3): SAM2's `_dynamic_multimask_via_stability` — the single-mask
///   token when its stability is at least 0.98, else the best-scored multimask candidate;
/// - 3 (samexporter's export): the best-scored candidate.
fn single_mask(all: DecodedMasks) -> Result<DecodedMasks, ModelError> {
    let best_of = |from: usize| {
        (from..all.scores.len())
            .max_by(|&a, &b| all.scores[a].total_cmp(&all.scores[b]).then(b.cmp(&a)))
            .unwrap_or(from)
    };
    let chosen = match all.logits.len() {
        4 => {
            if stability(&all.logits[0], STABILITY_DELTA) >= STABILITY_THRESH {
                0
            } else {
                best_of(1)
            }
        }
        _ => best_of(0),
    };
    let DecodedMasks {
        mut logits,
        scores,
        frame,
    } = all;
    if chosen >= logits.len() {
        return Err(ModelError::Inference("the decoder returned no mask".into()));
    }
    Ok(DecodedMasks {
        logits: vec![logits.swap_remove(chosen)],
        scores: vec![scores[chosen]],
        frame,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(planes: &[[f32; 4]], scores: &[f32]) -> DecodedMasks {
        DecodedMasks {
            logits: planes.iter().map(|p| p.to_vec()).collect(),
            scores: scores.to_vec(),
            frame: LowResFrame::direct(2, 10, 10),
        }
    }

    #[test]
    fn stable_single_mask_token_wins() {
        // Token 0 has no pixel in (-0.05, 0.05]: stability 1 → token 0 despite a low score.
        let d = decoded(
            &[[5.0, -5.0, 5.0, -5.0], [1.0; 4], [2.0; 4], [3.0; 4]],
            &[0.1, 0.5, 0.9, 0.7],
        );
        let s = single_mask(d).unwrap();
        assert_eq!((s.logits[0][0], s.scores[0]), (5.0, 0.1));
    }

    #[test]
    fn unstable_single_mask_falls_back_to_best_multimask() {
        // Token 0: 1 pixel above 0.05 of 3 above -0.05 → 0.33 < 0.98 → best of tokens 1..3.
        let d = decoded(
            &[[1.0, 0.0, 0.01, -1.0], [1.0; 4], [2.0; 4], [3.0; 4]],
            &[0.99, 0.5, 0.9, 0.7],
        );
        let s = single_mask(d).unwrap();
        assert_eq!((s.logits[0][0], s.scores[0]), (2.0, 0.9));
        assert_eq!(stability(&[-1.0; 4], STABILITY_DELTA), 1.0);
    }

    #[test]
    fn three_token_exports_take_the_best_score() {
        let d = decoded(&[[1.0; 4], [2.0; 4], [3.0; 4]], &[0.5, 0.9, 0.7]);
        let s = single_mask(d).unwrap();
        assert_eq!((s.logits[0][0], s.scores[0]), (2.0, 0.9));
    }
}
