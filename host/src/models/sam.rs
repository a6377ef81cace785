//! SAM (ViT-B/L/H): the official image encoder export (or samexporter's encoder with built-in
//! preprocessing) and the official prompt decoder export, or the fast decoder that
//! `scripts/export-models --decoder fast` writes (no `orig_im_size` input, no in-graph
//! upsampling, a batch of prompt rows per call), recognised by its inputs.

use std::path::Path;

use ndarray::{Array, ArrayD, IxDyn};
use ort::session::Session;
use ort::value::TensorRef;
use parking_lot::Mutex;

use super::postprocess::LowResFrame;
use super::preprocess::{longest_side_size, resize_for_sam, to_chw_tensor, Normalisation};
use super::runtime::OnnxRuntime;
use super::tensors::{run_error as run_err, TensorNames};
use super::{DecodedMasks, DecoderPrompt, Embedding, ModelError, ModelFamily, PromptableModel};
use crate::raster::RgbImage;

/// The encoder's square input side.
const SIDE: u32 = 1024;
/// Side of the decoder's low-resolution masks.
const LOW_RES: u32 = 256;
/// Most prompt rows the fast decoder gets in one call (its outputs: 4 × 256² logits per row).
const MAX_ROWS_PER_CALL: usize = 64;

/// A loaded SAM model. ONNX Runtime sessions need exclusive access to run, hence the locks.
pub struct Sam {
    encoder: Mutex<Session>,
    decoder: Mutex<Session>,
    names: TensorNames,
    /// samexporter's encoder takes raw `input_image` [H, W, 3] and normalises inside.
    raw_input_encoder: bool,
    /// The decoder has no `orig_im_size` input: `export-models --decoder fast`, which takes
    /// several prompt rows per call and returns only `low_res_masks` and `iou_predictions`.
    fast_decoder: bool,
}

impl Sam {
    /// Loads both sessions and checks that they are SAM exports.
    pub fn load(
        runtime: &OnnxRuntime,
        encoder: &Path,
        decoder: &Path,
        names: TensorNames,
    ) -> Result<Sam, ModelError> {
        let encoder_session = runtime.encoder_session(encoder)?;
        let decoder_session = runtime.session(decoder)?;
        let has_input = |s: &Session, n: &str| s.inputs().iter().any(|i| i.name() == n);
        let raw_input_encoder = has_input(&encoder_session, &names.get("input_image"));
        if !raw_input_encoder && !has_input(&encoder_session, &names.get("image")) {
            return Err(ModelError::Unavailable(format!(
                "{} is not a SAM image encoder: it has no input named '{}' or '{}'",
                encoder.display(),
                names.get("image"),
                names.get("input_image")
            )));
        }
        let fast_decoder = !has_input(&decoder_session, &names.get("orig_im_size"));
        let has_output = |s: &Session, n: &str| s.outputs().iter().any(|o| o.name() == n);
        for output in ["low_res_masks", "iou_predictions"] {
            if !has_output(&decoder_session, &names.get(output)) {
                return Err(ModelError::Unavailable(format!(
                    "{} is not a SAM decoder export: it has no output named '{}'",
                    decoder.display(),
                    names.get(output)
                )));
            }
        }
        for input in [
            "image_embeddings",
            "point_coords",
            "point_labels",
            "mask_input",
            "has_mask_input",
        ] {
            if !has_input(&decoder_session, &names.get(input)) {
                return Err(ModelError::Unavailable(format!(
                    "{} is not a SAM decoder export: it has no input named '{}'",
                    decoder.display(),
                    names.get(input)
                )));
            }
        }
        Ok(Sam {
            encoder: Mutex::new(encoder_session),
            decoder: Mutex::new(decoder_session),
            names,
            raw_input_encoder,
            fast_decoder,
        })
    }

    /// Decodes with the fast export: rows with the same number of points go together, at most
    /// [`MAX_ROWS_PER_CALL`] per call, against one copy of the embedding.
    fn decode_batched(
        &self,
        image_embeddings: &ArrayD<f32>,
        rows: &[(Vec<f32>, Vec<f32>)],
        selection: Selection,
        frame: LowResFrame,
    ) -> Result<Vec<DecodedMasks>, ModelError> {
        let mask_input = ArrayD::<f32>::zeros(IxDyn(&[1, 1, 256, 256]));
        let has_mask_input = Array::from_vec(vec![0f32]).into_dyn();
        let mut results: Vec<Option<DecodedMasks>> = vec![None; rows.len()];
        let mut by_count: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
        for (i, row) in rows.iter().enumerate() {
            by_count.entry(row.1.len()).or_default().push(i);
        }
        let mut session = self.decoder.lock();
        for (n, members) in by_count {
            for batch in members.chunks(MAX_ROWS_PER_CALL) {
                let l = batch.len();
                let coords: Vec<f32> = batch.iter().flat_map(|&i| rows[i].0.clone()).collect();
                let labels: Vec<f32> = batch.iter().flat_map(|&i| rows[i].1.clone()).collect();
                let coords = ArrayD::from_shape_vec(IxDyn(&[l, n, 2]), coords).map_err(run_err)?;
                let labels = ArrayD::from_shape_vec(IxDyn(&[l, n]), labels).map_err(run_err)?;
                let outputs = session
                    .run(ort::inputs![
                        self.names.get("image_embeddings") => TensorRef::from_array_view(image_embeddings.view()).map_err(run_err)?,
                        self.names.get("point_coords") => TensorRef::from_array_view(coords.view()).map_err(run_err)?,
                        self.names.get("point_labels") => TensorRef::from_array_view(labels.view()).map_err(run_err)?,
                        self.names.get("mask_input") => TensorRef::from_array_view(mask_input.view()).map_err(run_err)?,
                        self.names.get("has_mask_input") => TensorRef::from_array_view(has_mask_input.view()).map_err(run_err)?,
                    ])
                    .map_err(run_err)?;
                let scores = self.names.output_f32(&outputs, "iou_predictions")?;
                let low_res = self.names.output_f32(&outputs, "low_res_masks")?;
                if low_res.shape().first() != Some(&l) || scores.shape().first() != Some(&l) {
                    return Err(ModelError::Inference(format!(
                        "decoder returned low_res_masks {:?} and scores {:?} for {l} prompts",
                        low_res.shape(),
                        scores.shape()
                    )));
                }
                for (row, &index) in batch.iter().enumerate() {
                    let m = low_res
                        .index_axis(ndarray::Axis(0), row)
                        .insert_axis(ndarray::Axis(0))
                        .to_owned()
                        .into_dyn();
                    let s = scores
                        .index_axis(ndarray::Axis(0), row)
                        .to_owned()
                        .into_dyn();
                    results[index] = Some(select_candidates(&m, &s, selection, frame)?);
                }
            }
        }
        Ok(results.into_iter().flatten().collect())
    }
}

impl PromptableModel for Sam {
    fn family(&self) -> ModelFamily {
        ModelFamily::Sam
    }

    fn input_side(&self) -> u32 {
        SIDE
    }

    fn encode(&self, image: &RgbImage, width: u32, height: u32) -> Result<Embedding, ModelError> {
        let (rw, rh) = longest_side_size(width, height, SIDE);
        let resized = resize_for_sam(image, rw, rh);
        let (input_name, tensor) = if self.raw_input_encoder {
            let data: Vec<f32> = resized.pixels.iter().map(|&v| v as f32).collect();
            let t = ArrayD::from_shape_vec(IxDyn(&[rh as usize, rw as usize, 3]), data)
                .map_err(run_err)?;
            (self.names.get("input_image"), t)
        } else {
            (
                self.names.get("image"),
                to_chw_tensor(&resized, SIDE as usize, Normalisation::SAM),
            )
        };
        let mut session = self.encoder.lock();
        let outputs = session
            .run(ort::inputs![input_name => TensorRef::from_array_view(tensor.view()).map_err(run_err)?])
            .map_err(run_err)?;
        let embedding = self.names.output_f32(&outputs, "image_embeddings")?;
        Ok(Embedding {
            tensors: vec![("image_embeddings".into(), embedding)],
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
        let (rw, rh) = longest_side_size(w, h, SIDE);
        let (sx, sy) = (rw as f64 / w as f64, rh as f64 / h as f64);
        let image_embeddings = embedding
            .tensor("image_embeddings")
            .ok_or_else(|| ModelError::Inference("embedding lacks image_embeddings".into()))?;
        // As segment-anything's postprocess_masks: to 1024², crop the padding, to w×h.
        let frame = LowResFrame::via_padded(LOW_RES, SIDE, (rw, rh), (w, h));
        let selection = if multimask {
            Selection::Multimask
        } else {
            Selection::Single
        };
        if self.fast_decoder {
            let rows: Vec<(Vec<f32>, Vec<f32>)> = prompts
                .iter()
                .map(|p| point_arrays(p, sx, sy, PromptLayout::Sam))
                .collect();
            return self.decode_batched(image_embeddings, &rows, selection, frame);
        }
        // The decoder's full-size `masks` output is not used (we upsample the low-res logits
        // ourselves, only where a mask is), so ask for it at a small size of the same shape.
        let (small_w, small_h) = longest_side_size(w, h, LOW_RES);
        let orig_im_size = Array::from_vec(vec![small_h as f32, small_w as f32]).into_dyn();
        let mask_input = ArrayD::<f32>::zeros(IxDyn(&[1, 1, 256, 256]));
        let has_mask_input = Array::from_vec(vec![0f32]).into_dyn();
        let mut session = self.decoder.lock();
        let mut results = Vec::with_capacity(prompts.len());
        for prompt in prompts {
            let (coords, labels) = point_arrays(prompt, sx, sy, PromptLayout::Sam);
            let n = labels.len();
            let coords = ArrayD::from_shape_vec(IxDyn(&[1, n, 2]), coords).map_err(run_err)?;
            let labels = ArrayD::from_shape_vec(IxDyn(&[1, n]), labels).map_err(run_err)?;
            let outputs = session
                .run(ort::inputs![
                    self.names.get("image_embeddings") => TensorRef::from_array_view(image_embeddings.view()).map_err(run_err)?,
                    self.names.get("point_coords") => TensorRef::from_array_view(coords.view()).map_err(run_err)?,
                    self.names.get("point_labels") => TensorRef::from_array_view(labels.view()).map_err(run_err)?,
                    self.names.get("mask_input") => TensorRef::from_array_view(mask_input.view()).map_err(run_err)?,
                    self.names.get("has_mask_input") => TensorRef::from_array_view(has_mask_input.view()).map_err(run_err)?,
                    self.names.get("orig_im_size") => TensorRef::from_array_view(orig_im_size.view()).map_err(run_err)?,
                ])
                .map_err(run_err)?;
            let scores = self.names.output_f32(&outputs, "iou_predictions")?;
            let low_res = self.names.output_f32(&outputs, "low_res_masks")?;
            results.push(select_candidates(&low_res, &scores, selection, frame)?);
        }
        Ok(results)
    }
}

/// How a family's decoder export wants a prompt row laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PromptLayout {
    /// segment-anything's official export: points, then the box corners; the caller adds the
    /// not-a-point padding token (label -1) when there is no box, as `SamPredictor` pads.
    Sam,
    /// SAM2 exports (samexporter's and ours): the box corners first, then the points, as
    /// `SAM2ImagePredictor` concatenates them; the graph adds the one padding token itself.
    Sam2,
}

/// Points and labels in the 1024 frame, the box as corner points labelled 2 and 3.
pub(super) fn point_arrays(
    prompt: &DecoderPrompt,
    sx: f64,
    sy: f64,
    layout: PromptLayout,
) -> (Vec<f32>, Vec<f32>) {
    let mut coords = Vec::with_capacity(prompt.points.len() * 2 + 4);
    let mut labels = Vec::with_capacity(prompt.points.len() + 2);
    let push_box = |coords: &mut Vec<f32>, labels: &mut Vec<f32>| {
        if let Some(b) = prompt.bbox {
            coords.extend([(b[0] * sx) as f32, (b[1] * sy) as f32]);
            coords.extend([(b[2] * sx) as f32, (b[3] * sy) as f32]);
            labels.extend([2.0, 3.0]);
        }
    };
    if layout == PromptLayout::Sam2 {
        push_box(&mut coords, &mut labels);
    }
    for (p, &l) in prompt.points.iter().zip(&prompt.labels) {
        coords.extend([(p[0] * sx) as f32, (p[1] * sy) as f32]);
        labels.push(l as f32);
    }
    if layout == PromptLayout::Sam {
        push_box(&mut coords, &mut labels);
        if prompt.bbox.is_none() {
            coords.extend([0.0, 0.0]);
            labels.push(-1.0);
        }
    }
    (coords, labels)
}

/// Which candidates of a prompt row to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Selection {
    /// With 4 masks (single-mask token + 3) the first (as `SamPredictor` with
    /// `multimask_output=False`); with any other count the best-scored one.
    Single,
    /// With 4 masks the last three; with any other count all of them.
    Multimask,
    /// Every mask the decoder gave, in order.
    All,
}

/// Picks the candidates of one prompt row (`low_res` [1, K, h, w], `scores` K values).
pub(super) fn select_candidates(
    low_res: &ArrayD<f32>,
    scores: &ArrayD<f32>,
    selection: Selection,
    frame: LowResFrame,
) -> Result<DecodedMasks, ModelError> {
    let shape = low_res.shape();
    if shape.len() != 4 || shape[2] != frame.height as usize || shape[3] != frame.width as usize {
        return Err(ModelError::Inference(format!(
            "decoder masks have shape {shape:?}; expected [1, K, {}, {}]",
            frame.height, frame.width
        )));
    }
    let k = shape[1];
    let scores: Vec<f32> = scores.iter().copied().collect();
    if scores.len() != k {
        return Err(ModelError::Inference(format!(
            "decoder gives {} scores for {k} masks",
            scores.len()
        )));
    }
    let chosen: Vec<usize> = match (k, selection) {
        (_, Selection::All) => (0..k).collect(),
        (4, Selection::Multimask) => vec![1, 2, 3],
        (4, Selection::Single) => vec![0],
        (_, Selection::Multimask) => (0..k).collect(),
        (_, Selection::Single) => {
            let best = (0..k)
                .max_by(|&a, &b| scores[a].total_cmp(&scores[b]))
                .unwrap_or(0);
            vec![best]
        }
    };
    let plane = frame.width as usize * frame.height as usize;
    let flat = low_res
        .as_slice()
        .map(<[f32]>::to_vec)
        .unwrap_or_else(|| low_res.iter().copied().collect());
    Ok(DecodedMasks {
        logits: chosen
            .iter()
            .map(|&i| flat[i * plane..(i + 1) * plane].to_vec())
            .collect(),
        scores: chosen.iter().map(|&i| scores[i]).collect(),
        frame,
    })
}
