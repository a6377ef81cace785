//! The SAM3 grounding decoder: every instance of the text concept, guided by exemplars.

use ndarray::{ArrayD, IxDyn};
use ort::session::SessionInputValue;
use ort::value::{TensorElementType, TensorRef};

use super::encode::TextFeatures;
use super::exemplars::{box_exemplars, slot_groups, Exemplar};
use super::instances::{self, Frames};
use super::{run_err, Sam3, MERGE_IOU};
use crate::masks::Mask;
use crate::models::{Embedding, ModelError};

impl Sam3 {
    /// Finds every instance of the text concept, guided by positive exemplar `boxes`
    /// (`[x0, y0, x1, y1]` in original pixels; may be empty). See [`Sam3::detect_exemplars`].
    pub fn detect(
        &self,
        embedding: &Embedding,
        text: &TextFeatures,
        boxes: &[[f64; 4]],
        confidence_threshold: f32,
    ) -> Result<Vec<Mask>, ModelError> {
        let exemplars = box_exemplars(boxes, embedding.width, embedding.height);
        self.detect_exemplars(embedding, text, &exemplars, confidence_threshold)
    }

    /// Finds every instance of the text concept, guided by positive and negative exemplars.
    /// Boxes go to the decoder as `(cx, cy, w, h)` normalised to the image; no exemplar means
    /// one masked slot. With a fixed number of slots smaller than the positive exemplars, the
    /// decoder runs once per slot-full (negatives fill the slots left) and the detections are
    /// merged with mask NMS (IoU > [`MERGE_IOU`]). Returns the masks scoring at least
    /// `confidence_threshold`, ids 1..n by descending score, then by bounding box.
    pub fn detect_exemplars(
        &self,
        embedding: &Embedding,
        text: &TextFeatures,
        exemplars: &[Exemplar],
        confidence_threshold: f32,
    ) -> Result<Vec<Mask>, ModelError> {
        let detections =
            self.detect_with_boxes(embedding, text, exemplars, confidence_threshold)?;
        Ok(detections.into_iter().map(|d| d.mask).collect())
    }

    /// [`Sam3::detect_exemplars`], with each mask's box as the detector gave it.
    pub fn detect_with_boxes(
        &self,
        embedding: &Embedding,
        text: &TextFeatures,
        exemplars: &[Exemplar],
        confidence_threshold: f32,
    ) -> Result<Vec<Detection>, ModelError> {
        let frames = Frames::new(embedding.width, embedding.height, self.max_mask_side);
        let groups = slot_groups(exemplars, self.decoder_spec.box_slots);
        let mut masks = Vec::new();
        // Until the final ids are set, a mask's id is the index of its box here.
        let mut boxes = Vec::new();
        for group in &groups {
            masks.extend(self.decode_once(
                embedding,
                text,
                group,
                frames,
                confidence_threshold,
                &mut boxes,
            )?);
        }
        if groups.len() > 1 {
            masks = instances::nms(masks, MERGE_IOU);
        }
        instances::sort_masks(&mut masks);
        let boxes: Vec<[f64; 4]> = masks
            .iter()
            .map(|m| boxes.get(m.id as usize).copied().unwrap_or_default())
            .collect();
        // `finish` sorts stably what is already sorted: the boxes stay aligned.
        Ok(instances::finish(masks)
            .into_iter()
            .zip(boxes)
            .map(|(mask, bbox)| Detection { mask, bbox })
            .collect())
    }

    /// One decoder run with `group` in the box slots.
    fn decode_once(
        &self,
        embedding: &Embedding,
        text: &TextFeatures,
        group: &[Exemplar],
        frames: Frames,
        confidence_threshold: f32,
        boxes_out: &mut Vec<[f64; 4]>,
    ) -> Result<Vec<Mask>, ModelError> {
        let spec = &self.decoder_spec;
        let slots = spec
            .box_slots
            .unwrap_or(group.len().max(1))
            .max(group.len())
            .max(1);
        let (w, h) = (
            embedding.width.max(1) as f64,
            embedding.height.max(1) as f64,
        );
        let mut coords = vec![0f32; slots * 4];
        let mut labels = vec![1i64; slots];
        let mut padding = vec![true; slots];
        for (i, e) in group.iter().enumerate() {
            let [x0, y0, x1, y1] = e.bbox;
            coords[i * 4..i * 4 + 4].copy_from_slice(&[
                ((x0 + x1) / 2.0 / w) as f32,
                ((y0 + y1) / 2.0 / h) as f32,
                ((x1 - x0) / w) as f32,
                ((y1 - y0) / h) as f32,
            ]);
            labels[i] = i64::from(e.positive);
            padding[i] = false;
        }
        let coords = ArrayD::from_shape_vec(IxDyn(&[slots, 1, 4]), coords).map_err(run_err)?;
        let labels = ArrayD::from_shape_vec(IxDyn(&[slots, 1]), labels).map_err(run_err)?;
        let padding = ArrayD::from_shape_vec(IxDyn(&[1, slots]), padding).map_err(run_err)?;
        let size_shape: &[usize] = if spec.size_as_vector { &[1] } else { &[] };
        let height = ArrayD::from_shape_vec(IxDyn(size_shape), vec![frames.frame_height as i64])
            .map_err(run_err)?;
        let width = ArrayD::from_shape_vec(IxDyn(size_shape), vec![frames.frame_width as i64])
            .map_err(run_err)?;

        let mut inputs: Vec<(String, SessionInputValue<'_>)> =
            Vec::with_capacity(spec.inputs.len());
        for &standard in &spec.inputs {
            let value: SessionInputValue<'_> = match standard {
                "original_height" => TensorRef::from_array_view(height.view())
                    .map_err(run_err)?
                    .into(),
                "original_width" => TensorRef::from_array_view(width.view())
                    .map_err(run_err)?
                    .into(),
                "language_mask" => TensorRef::from_array_view(text.attention_mask.view())
                    .map_err(run_err)?
                    .into(),
                "language_features" => TensorRef::from_array_view(text.memory.view())
                    .map_err(run_err)?
                    .into(),
                "language_embeds" => TensorRef::from_array_view(text.embeds.view())
                    .map_err(run_err)?
                    .into(),
                "box_coords" => TensorRef::from_array_view(coords.view())
                    .map_err(run_err)?
                    .into(),
                "box_labels" => TensorRef::from_array_view(labels.view())
                    .map_err(run_err)?
                    .into(),
                "box_masks" => TensorRef::from_array_view(padding.view())
                    .map_err(run_err)?
                    .into(),
                vision => {
                    let t = embedding.tensor(vision).ok_or_else(|| {
                        ModelError::Inference(format!(
                            "embedding lacks {vision} (encoded by another model?)"
                        ))
                    })?;
                    TensorRef::from_array_view(t.view())
                        .map_err(run_err)?
                        .into()
                }
            };
            inputs.push((self.names.get(standard), value));
        }

        let mut session = self.decoder.lock();
        let outputs = session.run(inputs).map_err(run_err)?;
        let get = |standard: &str| {
            let n = self.names.get(standard);
            outputs
                .get(&n)
                .ok_or_else(|| ModelError::Inference(format!("decoder gave no output '{n}'")))
        };
        let (_, scores) = get("scores")?
            .try_extract_tensor::<f32>()
            .map_err(run_err)?;
        let masks_value = get("masks")?;
        let n = scores.len();
        // Boxes `[n, 4]` (x0, y0, x1, y1) in the decoder's frame, scaled to the image.
        let (_, raw_boxes) = get("boxes")?.try_extract_tensor::<f32>().map_err(run_err)?;
        let (sx, sy) = (
            frames.width as f64 / frames.frame_width.max(1) as f64,
            frames.height as f64 / frames.frame_height.max(1) as f64,
        );
        let box_of = |i: usize| -> [f64; 4] {
            match raw_boxes.get(i * 4..i * 4 + 4) {
                Some(b) => [
                    b[0] as f64 * sx,
                    b[1] as f64 * sy,
                    b[2] as f64 * sx,
                    b[3] as f64 * sy,
                ],
                None => [0.0; 4],
            }
        };
        let mut push = |mask: Option<Mask>, i: usize, found: &mut Vec<Mask>| {
            if let Some(mut mask) = mask {
                mask.id = boxes_out.len() as u32;
                boxes_out.push(box_of(i));
                found.push(mask);
            }
        };
        let (fw, fh) = (frames.frame_width as usize, frames.frame_height as usize);
        let plane = fw * fh;
        let check_shape = |shape: &[i64], len: usize| -> Result<(), ModelError> {
            let ok = shape.len() == 4
                && shape[0] as usize == n
                && shape[1] == 1
                && shape[2] as usize == fh
                && shape[3] as usize == fw
                && len == n * plane;
            if ok {
                Ok(())
            } else {
                Err(ModelError::Inference(format!(
                    "decoder gave masks {shape:?} for {n} scores; expected [{n}, 1, {fh}, {fw}]"
                )))
            }
        };
        let mut found = Vec::new();
        let keep = |i: usize| scores[i].is_finite() && scores[i] >= confidence_threshold;
        match masks_value.dtype().tensor_type() {
            Some(TensorElementType::Bool) => {
                let (shape, data) = masks_value.try_extract_tensor::<bool>().map_err(run_err)?;
                check_shape(shape, data.len())?;
                for i in (0..n).filter(|&i| keep(i)) {
                    let mask = instances::plane_to_mask(
                        &data[i * plane..(i + 1) * plane],
                        frames,
                        0,
                        scores[i],
                    );
                    push(mask, i, &mut found);
                }
            }
            Some(TensorElementType::Float32) => {
                // Probabilities (not yet thresholded) from a variant export.
                let (shape, data) = masks_value.try_extract_tensor::<f32>().map_err(run_err)?;
                check_shape(shape, data.len())?;
                for i in (0..n).filter(|&i| keep(i)) {
                    let bools: Vec<bool> = data[i * plane..(i + 1) * plane]
                        .iter()
                        .map(|&v| v > 0.5)
                        .collect();
                    let mask = instances::plane_to_mask(&bools, frames, 0, scores[i]);
                    push(mask, i, &mut found);
                }
            }
            other => {
                return Err(ModelError::Inference(format!(
                    "decoder masks are {other:?}, not bool"
                )));
            }
        }
        Ok(found)
    }
}

/// One detected instance: its mask and the box the detector gave, `[x0, y0, x1, y1]` in image
/// pixels.
#[derive(Debug, Clone)]
pub struct Detection {
    pub mask: Mask,
    pub bbox: [f64; 4],
}
