//! Promptable segmentation models behind one trait: encode an image once, decode many prompts
//! against its embedding. One implementation per family (SAM, SAM2), each on ONNX Runtime.

#[cfg(test)]
mod fast_decoder_tests;
#[cfg(test)]
mod parity_tests;
mod postprocess;
mod preprocess;
mod resample;
pub mod runtime;
mod sam;
mod sam2;
pub mod sam3;
mod tensors;

use std::path::PathBuf;
use std::sync::Arc;

use ndarray::ArrayD;

pub use postprocess::{mask_from_logits, LowResFrame, Upsampling};
pub use preprocess::{resize_for_sam, resize_for_sam2, resize_rgb, Normalisation};
pub use runtime::OnnxRuntime;

use crate::config::ModelFiles;
use crate::raster::RgbImage;

/// The model families the server knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelFamily {
    Sam,
    Sam2,
}

/// An image encoded once, reused for every prompt on that image.
#[derive(Debug)]
pub struct Embedding {
    /// Encoder outputs by standard tensor name.
    pub tensors: Vec<(String, ArrayD<f32>)>,
    /// Size of the original image in pixels (prompts and masks live in this frame).
    pub width: u32,
    pub height: u32,
}

impl Embedding {
    /// Bytes held, for the cache's budget.
    pub fn size_bytes(&self) -> u64 {
        self.tensors
            .iter()
            .map(|(_, t)| (t.len() * std::mem::size_of::<f32>()) as u64)
            .sum::<u64>()
            + 64
    }

    /// A tensor by standard name.
    pub fn tensor(&self, name: &str) -> Option<&ArrayD<f32>> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }
}

/// One prompt row: points (with labels 1/0) and at most one box, in original pixel coordinates.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DecoderPrompt {
    pub points: Vec<[f64; 2]>,
    pub labels: Vec<i32>,
    pub bbox: Option<[f64; 4]>,
}

/// Candidate masks of one prompt row: low-resolution logits and a predicted IoU each.
#[derive(Debug, Clone)]
pub struct DecodedMasks {
    /// Each candidate's logits, row-major over `frame`.
    pub logits: Vec<Vec<f32>>,
    pub scores: Vec<f32>,
    /// How the logits map onto the original image.
    pub frame: LowResFrame,
}

/// Why a model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file is missing or is not the export we expect (server configuration): 503.
    #[error("{0}")]
    Unavailable(String),
    /// ONNX Runtime failed while running: 500.
    #[error("inference failed: {0}")]
    Inference(String),
}

impl From<ModelError> for crate::error::AppError {
    fn from(e: ModelError) -> Self {
        match e {
            ModelError::Unavailable(m) => crate::error::AppError::unavailable(m),
            ModelError::Inference(m) => crate::error::AppError::internal(m),
        }
    }
}

/// A model that encodes an image once and decodes prompts against the embedding.
pub trait PromptableModel: Send + Sync {
    /// Which family this is.
    fn family(&self) -> ModelFamily;

    /// Why this model's masks differ from the reference implementation's on the same weights,
    /// when they do (shown in `GET /models`).
    fn reference_difference(&self) -> Option<String> {
        None
    }

    /// Longest side of the RGB image the encoder wants (the raster is read at most this large).
    fn input_side(&self) -> u32;

    /// Encodes `image`, a possibly downsampled view of an original of `width`×`height` pixels.
    fn encode(&self, image: &RgbImage, width: u32, height: u32) -> Result<Embedding, ModelError>;

    /// Decodes prompt rows against `embedding`. With `multimask`, every candidate comes back;
    /// otherwise the single best mask per row.
    fn decode(
        &self,
        embedding: &Embedding,
        prompts: &[DecoderPrompt],
        multimask: bool,
    ) -> Result<Vec<DecodedMasks>, ModelError>;
}

/// A model in the cache: a promptable SAM/SAM2 model or a SAM3 model.
#[derive(Clone)]
pub enum LoadedModel {
    Promptable(Arc<dyn PromptableModel>),
    Sam3(Arc<sam3::Sam3>),
}

/// The file configured under `<config_key>.<what>`; 503-class error when it is missing.
pub(crate) fn configured_file(
    config_key: &str,
    what: &str,
    path: &Option<PathBuf>,
) -> Result<PathBuf, ModelError> {
    let path = path
        .clone()
        .ok_or_else(|| ModelError::Unavailable(format!("{config_key}.{what} is not configured")))?;
    if !path.is_file() {
        return Err(ModelError::Unavailable(format!(
            "{config_key}.{what}: model file {} does not exist",
            path.display()
        )));
    }
    Ok(path)
}

/// Loads the model of `family` from `files` (blocking: reads and optimises the ONNX graphs).
pub fn load(
    runtime: &OnnxRuntime,
    family: ModelFamily,
    config_key: &str,
    files: &ModelFiles,
) -> Result<Arc<dyn PromptableModel>, ModelError> {
    let encoder = configured_file(config_key, "encoder", &files.encoder)?;
    let decoder = configured_file(config_key, "decoder", &files.decoder)?;
    let names = tensors::TensorNames::new(&files.tensors);
    Ok(match family {
        ModelFamily::Sam => Arc::new(sam::Sam::load(runtime, &encoder, &decoder, names)?),
        ModelFamily::Sam2 => Arc::new(sam2::Sam2::load(runtime, &encoder, &decoder, names)?),
    })
}
