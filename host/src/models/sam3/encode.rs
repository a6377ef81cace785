//! SAM3 encoders: the image encoder (an embedding of the image) and the language encoder (text
//! features of a prompt, cached per token sequence).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use ndarray::{ArrayD, IxDyn};
use ort::value::TensorRef;

use super::export::ImageInput;
use super::{run_err, Sam3};
use crate::models::preprocess::resize_rgb;
use crate::models::{Embedding, ModelError};
use crate::raster::RgbImage;

/// The language encoder's outputs for one prompt (shared through the prompt cache).
#[derive(Debug)]
pub struct TextFeatures {
    /// CLIP tokens fed to the encoder: `[49406, ids..., 49407, 0...]`.
    pub tokens: Vec<i64>,
    /// `text_attention_mask` `[1, L]`: true on padding.
    pub attention_mask: ArrayD<bool>,
    /// `text_memory` `[L, 1, 256]` (the decoder's `language_features`).
    pub memory: ArrayD<f32>,
    /// `text_embeds` `[L, 1, 1024]` (the decoder's `language_embeds`).
    pub embeds: ArrayD<f32>,
}

impl Sam3 {
    /// Encodes `image`, a possibly downsampled view of an original of `width`×`height` pixels:
    /// squash-resized to 1008×1008 (bilinear, antialiased) and fed as u8 CHW. The embedding
    /// holds the vision outputs the decoder uses (all six for the standard export) under their
    /// standard names, with the original size.
    pub fn encode_image(
        &self,
        image: &RgbImage,
        width: u32,
        height: u32,
    ) -> Result<Embedding, ModelError> {
        let ImageInput {
            width: iw,
            height: ih,
            batched,
            float,
        } = self.image_input;
        let resized = resize_rgb(image, iw, ih);
        let (w, h) = (iw as usize, ih as usize);
        let mut shape = vec![3, h, w];
        if batched {
            shape.insert(0, 1);
        }
        let mut chw = vec![0u8; 3 * w * h];
        for (i, px) in resized.pixels.chunks_exact(3).enumerate() {
            for c in 0..3 {
                chw[c * w * h + i] = px[c];
            }
        }
        let name = self.names.get("image");
        let mut session = self.image_encoder.lock();
        let outputs = if float {
            let data: Vec<f32> = chw
                .iter()
                .map(|&v| (v as f32 / 255.0 - 0.5) / 0.5)
                .collect();
            let t = ArrayD::from_shape_vec(IxDyn(&shape), data).map_err(run_err)?;
            session
                .run(ort::inputs![name => TensorRef::from_array_view(t.view()).map_err(run_err)?])
        } else {
            let t = ArrayD::from_shape_vec(IxDyn(&shape), chw).map_err(run_err)?;
            session
                .run(ort::inputs![name => TensorRef::from_array_view(t.view()).map_err(run_err)?])
        }
        .map_err(run_err)?;
        let mut tensors = Vec::with_capacity(self.kept_outputs.len());
        for standard in &self.kept_outputs {
            let n = self.names.get(standard);
            let value = outputs
                .get(&n)
                .ok_or_else(|| {
                    ModelError::Inference(format!("image encoder gave no output '{n}'"))
                })?
                .try_extract_array::<f32>()
                .map_err(run_err)?
                .to_owned();
            tensors.push((standard.to_string(), value));
        }
        Ok(Embedding {
            tensors,
            width,
            height,
        })
    }

    /// Runs the language encoder on `prompt` (CLIP tokens), or returns the cached result for a
    /// prompt with the same tokens (an LRU of 256 prompts).
    pub fn encode_text(&self, prompt: &str) -> Result<Arc<TextFeatures>, ModelError> {
        let tokens = self
            .tokenizer
            .encode_with_context(prompt, self.context_length);
        if let Some(hit) = self.text_cache.lock().get(&tokens) {
            return Ok(hit.clone());
        }
        let input =
            ArrayD::from_shape_vec(IxDyn(&[1, tokens.len()]), tokens.clone()).map_err(run_err)?;
        let features = {
            let mut session = self.language_encoder.lock();
            self.text_encoder_runs.fetch_add(1, Ordering::Relaxed);
            let outputs = session
                .run(ort::inputs![self.names.get("tokens") => TensorRef::from_array_view(input.view()).map_err(run_err)?])
                .map_err(run_err)?;
            let get = |standard: &str| {
                let n = self.names.get(standard);
                outputs.get(&n).ok_or_else(|| {
                    ModelError::Inference(format!("language encoder gave no output '{n}'"))
                })
            };
            TextFeatures {
                tokens: tokens.clone(),
                attention_mask: get("text_attention_mask")?
                    .try_extract_array::<bool>()
                    .map_err(run_err)?
                    .to_owned(),
                memory: get("text_memory")?
                    .try_extract_array::<f32>()
                    .map_err(run_err)?
                    .to_owned(),
                embeds: get("text_embeds")?
                    .try_extract_array::<f32>()
                    .map_err(run_err)?
                    .to_owned(),
            }
        };
        let features = Arc::new(features);
        self.text_cache.lock().put(tokens, features.clone());
        Ok(features)
    }
}
