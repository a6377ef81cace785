//! SAM2 (Hiera tiny/small/base-plus/large), samexporter's export: an image encoder giving the
//! embedding and two high-resolution feature maps, and a decoder that takes prompt batches.

use std::path::Path;

use ndarray::{ArrayD, IxDyn};
use ort::session::Session;
use ort::value::TensorRef;
use parking_lot::Mutex;

use super::postprocess::LowResFrame;
use super::preprocess::{resize_rgb, to_chw_tensor, Normalisation};
use super::runtime::OnnxRuntime;
use super::sam::{point_arrays, select_candidates};
use super::tensors::{run_error as run_err, TensorNames};
use super::{DecodedMasks, DecoderPrompt, Embedding, ModelError, ModelFamily, PromptableModel};
use crate::raster::RgbImage;

const SIDE: u32 = 1024;
const LOW_RES: u32 = 256;
const ENCODER_OUTPUTS: [&str; 3] = ["image_embed", "high_res_feats_0", "high_res_feats_1"];

/// A loaded SAM2 model.
pub struct Sam2 {
    encoder: Mutex<Session>,
    decoder: Mutex<Session>,
    names: TensorNames,
}

impl Sam2 {
    /// Loads both sessions and checks their tensor names.
    pub fn load(
        runtime: &OnnxRuntime,
        encoder: &Path,
        decoder: &Path,
        names: TensorNames,
    ) -> Result<Sam2, ModelError> {
        let encoder_session = runtime.session(encoder)?;
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
        Ok(Sam2 {
            encoder: Mutex::new(encoder_session),
            decoder: Mutex::new(decoder_session),
            names,
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

    fn encode(&self, image: &RgbImage, width: u32, height: u32) -> Result<Embedding, ModelError> {
        let resized = resize_rgb(image, SIDE, SIDE);
        let tensor = to_chw_tensor(&resized, SIDE as usize, Normalisation::IMAGENET);
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
        let frame = LowResFrame {
            width: LOW_RES,
            height: LOW_RES,
            scale_x: LOW_RES as f64 / w as f64,
            scale_y: LOW_RES as f64 / h as f64,
            image_width: w,
            image_height: h,
        };
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
        let rows: Vec<(Vec<f32>, Vec<f32>)> =
            prompts.iter().map(|p| point_arrays(p, sx, sy)).collect();
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
                results[index] = Some(select_candidates(
                    &m.into_dyn(),
                    &s.into_dyn(),
                    multimask,
                    frame,
                )?);
            }
        }
        Ok(results.into_iter().flatten().collect())
    }
}
