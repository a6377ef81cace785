//! SAM3 (promptable concept segmentation), samexporter's three-model export: an image encoder
//! (u8 `[3, 1008, 1008]` → three FPN levels and their position encodings), a CLIP language
//! encoder (`tokens` i64 `[1, 32]`) and a grounding decoder that finds every instance of the text
//! concept, optionally guided by exemplar boxes. That export has no interactive instance head,
//! so point prompts (the object under the point) are refused ([`points_unsupported`]).
//!
//! The decoder's declared inputs are read at load time: inputs an export dropped (onnxsim may
//! remove unused position encodings) are not fed, `original_height`/`original_width` are fed as
//! 0-d or `[1]` tensors as declared, and a fixed number of box slots is filled (padding masked)
//! or, with more exemplars than slots, decoded slot-full by slot-full and merged with NMS.

pub mod clip_tokenizer;
mod decode;
mod encode;
mod exemplars;
mod export;
mod instances;

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use lru::LruCache;
use ort::session::Session;
use parking_lot::Mutex;

pub use clip_tokenizer::ClipTokenizer;
pub use decode::Detection;
pub use encode::TextFeatures;
pub use exemplars::{box_exemplars, points_unsupported, Exemplar};

use super::runtime::OnnxRuntime;
use super::tensors::TensorNames;
use super::{configured_file, ModelError};
use crate::config::ModelFiles;
use export::{DecoderSpec, ExportLayout, ImageInput};

/// Side of the square image the SAM3 image encoder takes (when its input shape is dynamic).
pub const IMAGE_SIDE: u32 = 1008;
/// The image encoder's outputs, by standard name, in export order.
pub const VISION_OUTPUTS: [&str; 6] = [
    "vision_pos_enc_0",
    "vision_pos_enc_1",
    "vision_pos_enc_2",
    "backbone_fpn_0",
    "backbone_fpn_1",
    "backbone_fpn_2",
];
/// Default longest side of the frame the decoder renders masks in; larger images get masks at
/// this size, scaled up to the original frame (SAM3's mask head works at 288×288).
pub const DEFAULT_MAX_MASK_SIDE: u32 = 2048;
/// Mask IoU above which detections from separate decoder runs are merged.
pub const MERGE_IOU: f64 = 0.5;
/// Prompts whose language-encoder outputs are kept.
const TEXT_CACHE_ENTRIES: usize = 256;

/// A loaded SAM3 model: three ONNX Runtime sessions (each behind a lock, as `Session::run`
/// needs exclusive access), the CLIP tokenizer and a per-prompt cache of text features.
pub struct Sam3 {
    image_encoder: Mutex<Session>,
    language_encoder: Mutex<Session>,
    decoder: Mutex<Session>,
    names: TensorNames,
    tokenizer: ClipTokenizer,
    image_input: ImageInput,
    context_length: usize,
    decoder_spec: DecoderSpec,
    /// Encoder outputs kept in embeddings: the ones the decoder declares.
    kept_outputs: Vec<&'static str>,
    text_cache: Mutex<LruCache<Vec<i64>, Arc<TextFeatures>>>,
    text_encoder_runs: AtomicU64,
    max_mask_side: u32,
}

impl std::fmt::Debug for Sam3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sam3")
            .field("image_input", &self.image_input)
            .field("decoder_spec", &self.decoder_spec)
            .field("max_mask_side", &self.max_mask_side)
            .finish_non_exhaustive()
    }
}

fn run_err(e: impl std::fmt::Display) -> ModelError {
    ModelError::Inference(e.to_string())
}

impl Sam3 {
    /// Loads the three sessions and the tokenizer from `files` (`encoder`, `language_encoder`,
    /// `decoder`, `tokenizer_vocab`, and `tensors` name overrides) and checks the declared
    /// inputs and outputs. `config_key` names the model in error messages. Blocking.
    pub fn load(
        runtime: &OnnxRuntime,
        config_key: &str,
        files: &ModelFiles,
    ) -> Result<Sam3, ModelError> {
        let encoder = configured_file(config_key, "encoder", &files.encoder)?;
        let language = configured_file(config_key, "language_encoder", &files.language_encoder)?;
        let decoder = configured_file(config_key, "decoder", &files.decoder)?;
        let vocab = configured_file(config_key, "tokenizer_vocab", &files.tokenizer_vocab)?;
        let tokenizer = ClipTokenizer::from_file(&vocab)
            .map_err(|e| ModelError::Unavailable(format!("{config_key}.tokenizer_vocab: {e}")))?;
        let names = TensorNames::new(&files.tensors);
        let (encoder_session, language_session, decoder_session) = (
            runtime.encoder_session(&encoder)?,
            runtime.encoder_session(&language)?,
            runtime.session(&decoder)?,
        );
        let layout = export::check(
            (&encoder_session, &encoder),
            (&language_session, &language),
            (&decoder_session, &decoder),
            &names,
        )?;
        Ok(Sam3::new(
            [encoder_session, language_session, decoder_session],
            names,
            tokenizer,
            layout,
        ))
    }

    /// A model from checked sessions (image encoder, language encoder, decoder).
    fn new(
        [encoder, language, decoder]: [Session; 3],
        names: TensorNames,
        tokenizer: ClipTokenizer,
        layout: ExportLayout,
    ) -> Sam3 {
        Sam3 {
            image_encoder: Mutex::new(encoder),
            language_encoder: Mutex::new(language),
            decoder: Mutex::new(decoder),
            names,
            tokenizer,
            image_input: layout.image_input,
            context_length: layout.context_length,
            decoder_spec: layout.decoder_spec,
            kept_outputs: layout.kept_outputs,
            text_cache: Mutex::new(LruCache::new(
                NonZeroUsize::new(TEXT_CACHE_ENTRIES).unwrap_or(NonZeroUsize::MIN),
            )),
            text_encoder_runs: AtomicU64::new(0),
            max_mask_side: DEFAULT_MAX_MASK_SIDE,
        }
    }

    /// Sets the longest side of the frame masks are rendered in (0: always the original size).
    pub fn set_max_mask_side(&mut self, side: u32) {
        self.max_mask_side = side;
    }

    /// Longest side of the RGB image the encoder wants (the raster is read at most this large).
    pub fn input_side(&self) -> u32 {
        self.image_input.width.max(self.image_input.height)
    }

    /// The CLIP tokenizer.
    pub fn tokenizer(&self) -> &ClipTokenizer {
        &self.tokenizer
    }

    /// How many times the language encoder has run (prompt cache misses).
    pub fn text_encoder_runs(&self) -> u64 {
        self.text_encoder_runs.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests;
