//! SAM3 (promptable concept segmentation), samexporter's three-model export: an image encoder
//! (u8 `[3, 1008, 1008]` → three FPN levels and their position encodings), a CLIP language
//! encoder (`tokens` i64 `[1, 32]`) and a grounding decoder that finds every instance of the text
//! concept, optionally guided by exemplar boxes (points become 1 %-sized boxes).
//!
//! The decoder's declared inputs are read at load time: inputs an export dropped (onnxsim may
//! remove unused position encodings) are not fed, `original_height`/`original_width` are fed as
//! 0-d or `[1]` tensors as declared, and a fixed number of box slots is filled (padding masked)
//! or, with more exemplars than slots, decoded slot-full by slot-full and merged with NMS.

pub mod clip_tokenizer;
mod instances;

use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use lru::LruCache;
use ndarray::{ArrayD, IxDyn};
use ort::session::{Session, SessionInputValue};
use ort::value::{TensorElementType, TensorRef, ValueType};
use parking_lot::Mutex;

pub use clip_tokenizer::ClipTokenizer;

use super::preprocess::resize_rgb;
use super::runtime::OnnxRuntime;
use super::tensors::TensorNames;
use super::{configured_file, Embedding, ModelError};
use crate::config::ModelFiles;
use crate::masks::Mask;
use crate::raster::RgbImage;
use instances::Frames;

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
/// Side of the box a point prompt becomes, as a fraction of the image's width and height
/// (samexporter: `[x/W, y/H, 0.01, 0.01]`).
pub const POINT_BOX_FRACTION: f64 = 0.01;
/// Default longest side of the frame the decoder renders masks in; larger images get masks at
/// this size, scaled up to the original frame (SAM3's mask head works at 288×288).
pub const DEFAULT_MAX_MASK_SIDE: u32 = 2048;
/// Mask IoU above which detections from separate decoder runs are merged.
pub const MERGE_IOU: f64 = 0.5;
/// Prompts whose language-encoder outputs are kept.
const TEXT_CACHE_ENTRIES: usize = 256;

/// Decoder inputs the backend knows how to feed, by standard name.
const DECODER_INPUTS: [&str; 14] = [
    "original_height",
    "original_width",
    "vision_pos_enc_0",
    "vision_pos_enc_1",
    "vision_pos_enc_2",
    "backbone_fpn_0",
    "backbone_fpn_1",
    "backbone_fpn_2",
    "language_mask",
    "language_features",
    "language_embeds",
    "box_coords",
    "box_labels",
    "box_masks",
];
/// Decoder inputs every SAM3 decoder export must declare.
const REQUIRED_DECODER_INPUTS: [&str; 7] = [
    "original_height",
    "original_width",
    "language_mask",
    "language_features",
    "box_coords",
    "box_labels",
    "box_masks",
];

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

/// An exemplar box in original pixel coordinates `[x0, y0, x1, y1]`: positive ("more like
/// this", label 1) or negative ("not this", label 0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exemplar {
    /// `[x0, y0, x1, y1]` in original pixels.
    pub bbox: [f64; 4],
    /// Label 1 (true) or 0 (false).
    pub positive: bool,
}

/// Exemplars for point prompts, as samexporter encodes them: each point becomes a box of
/// [`POINT_BOX_FRACTION`] of the image's width and height centred on it. Label 1 gives a
/// positive exemplar, 0 a negative one; other labels are ignored.
pub fn point_exemplars(
    points: &[[f64; 2]],
    labels: &[i32],
    width: u32,
    height: u32,
) -> Vec<Exemplar> {
    let (hw, hh) = (
        width as f64 * POINT_BOX_FRACTION / 2.0,
        height as f64 * POINT_BOX_FRACTION / 2.0,
    );
    points
        .iter()
        .zip(labels)
        .filter(|(_, &l)| l == 0 || l == 1)
        .map(|(p, &l)| Exemplar {
            bbox: [p[0] - hw, p[1] - hh, p[0] + hw, p[1] + hh],
            positive: l == 1,
        })
        .collect()
}

/// Positive exemplars for boxes `[x0, y0, x1, y1]` in original pixels: corners are ordered and
/// clipped to the image; boxes with nothing inside the image are dropped.
pub fn box_exemplars(boxes: &[[f64; 4]], width: u32, height: u32) -> Vec<Exemplar> {
    let (w, h) = (width as f64, height as f64);
    boxes
        .iter()
        .filter_map(|b| {
            let x0 = b[0].min(b[2]).clamp(0.0, w);
            let x1 = b[0].max(b[2]).clamp(0.0, w);
            let y0 = b[1].min(b[3]).clamp(0.0, h);
            let y1 = b[1].max(b[3]).clamp(0.0, h);
            (b.iter().all(|v| v.is_finite()) && x1 > x0 && y1 > y0).then_some(Exemplar {
                bbox: [x0, y0, x1, y1],
                positive: true,
            })
        })
        .collect()
}

/// How the image encoder wants its input.
#[derive(Debug, Clone, Copy)]
struct ImageInput {
    width: u32,
    height: u32,
    /// `[1, 3, H, W]` instead of `[3, H, W]`.
    batched: bool,
    /// f32 input normalised by the host to `(x/255 − 0.5)/0.5` instead of raw u8.
    float: bool,
}

/// What the decoder declares.
#[derive(Debug, Clone)]
struct DecoderSpec {
    /// Standard names of the inputs it declares (subset of [`DECODER_INPUTS`]).
    inputs: Vec<&'static str>,
    /// `original_height`/`original_width` as `[1]` instead of 0-d scalars.
    size_as_vector: bool,
    /// Fixed number of box slots, or `None` when `num_boxes` is dynamic.
    box_slots: Option<usize>,
}

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

fn tensor_info(dtype: &ValueType) -> Option<(TensorElementType, Vec<i64>)> {
    match dtype {
        ValueType::Tensor { ty, shape, .. } => Some((*ty, shape.iter().copied().collect())),
        _ => None,
    }
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
        Sam3::from_sessions(
            (runtime.session(&encoder)?, &encoder),
            (runtime.session(&language)?, &language),
            (runtime.session(&decoder)?, &decoder),
            names,
            tokenizer,
        )
    }

    fn from_sessions(
        (encoder, encoder_path): (Session, &Path),
        (language, language_path): (Session, &Path),
        (decoder, decoder_path): (Session, &Path),
        names: TensorNames,
        tokenizer: ClipTokenizer,
    ) -> Result<Sam3, ModelError> {
        let not_a = |file: &Path, what: &str, detail: String| {
            ModelError::Unavailable(format!("{} is not a SAM3 {what}: {detail}", file.display()))
        };
        let input = |s: &Session, standard: &str| {
            let n = names.get(standard);
            s.inputs()
                .iter()
                .find(|i| i.name() == n)
                .and_then(|i| tensor_info(i.dtype()))
        };
        let has_output = |s: &Session, standard: &str| {
            let n = names.get(standard);
            s.outputs().iter().any(|o| o.name() == n)
        };

        // Image encoder: u8 (or f32) [3, H, W] (or [1, 3, H, W]), six outputs.
        let (ty, shape) = input(&encoder, "image").ok_or_else(|| {
            not_a(
                encoder_path,
                "image encoder",
                format!("it has no tensor input '{}'", names.get("image")),
            )
        })?;
        let float = match ty {
            TensorElementType::Uint8 => false,
            TensorElementType::Float32 => true,
            other => {
                return Err(not_a(
                    encoder_path,
                    "image encoder",
                    format!("input image is {other:?}, not u8 or f32"),
                ))
            }
        };
        let batched = match shape.len() {
            3 => false,
            4 => true,
            _ => {
                return Err(not_a(
                    encoder_path,
                    "image encoder",
                    format!("input image has shape {shape:?}"),
                ))
            }
        };
        let side = |d: i64| if d > 0 { d as u32 } else { IMAGE_SIDE };
        let image_input = ImageInput {
            height: side(shape[shape.len() - 2]),
            width: side(shape[shape.len() - 1]),
            batched,
            float,
        };

        // Language encoder: tokens i64 [1, L] → mask, memory, embeds.
        let (ty, shape) = input(&language, "tokens").ok_or_else(|| {
            not_a(
                language_path,
                "language encoder",
                format!("it has no input '{}'", names.get("tokens")),
            )
        })?;
        if ty != TensorElementType::Int64 || shape.len() != 2 {
            return Err(not_a(
                language_path,
                "language encoder",
                format!("tokens is {ty:?} {shape:?}, not i64 [1, L]"),
            ));
        }
        let context_length = if shape[1] > 0 {
            shape[1] as usize
        } else {
            clip_tokenizer::CONTEXT_LENGTH
        };
        for out in ["text_attention_mask", "text_memory", "text_embeds"] {
            if !has_output(&language, out) {
                return Err(not_a(
                    language_path,
                    "language encoder",
                    format!("it has no output '{}'", names.get(out)),
                ));
            }
        }

        // Decoder: every declared input must be one we can feed.
        let mut declared = Vec::new();
        for i in decoder.inputs() {
            let standard = DECODER_INPUTS
                .iter()
                .copied()
                .find(|s| names.get(s) == i.name())
                .ok_or_else(|| {
                    not_a(
                        decoder_path,
                        "decoder",
                        format!("unexpected input '{}'", i.name()),
                    )
                })?;
            declared.push(standard);
        }
        for required in REQUIRED_DECODER_INPUTS {
            if !declared.contains(&required) {
                return Err(not_a(
                    decoder_path,
                    "decoder",
                    format!("it has no input '{}'", names.get(required)),
                ));
            }
        }
        for out in ["boxes", "scores", "masks"] {
            if !has_output(&decoder, out) {
                return Err(not_a(
                    decoder_path,
                    "decoder",
                    format!("it has no output '{}'", names.get(out)),
                ));
            }
        }
        let (ty, shape) =
            input(&decoder, "original_height").unwrap_or((TensorElementType::Int64, vec![]));
        if ty != TensorElementType::Int64 || shape.len() > 1 {
            return Err(not_a(
                decoder_path,
                "decoder",
                format!("original_height is {ty:?} {shape:?}, not an i64 scalar"),
            ));
        }
        let size_as_vector = shape.len() == 1;
        let (_, box_shape) =
            input(&decoder, "box_coords").unwrap_or((TensorElementType::Float32, vec![]));
        if box_shape.len() != 3 {
            return Err(not_a(
                decoder_path,
                "decoder",
                format!("box_coords has shape {box_shape:?}, not [num_boxes, 1, 4]"),
            ));
        }
        let box_slots = (box_shape[0] > 0).then_some(box_shape[0] as usize);
        let kept_outputs: Vec<&'static str> = VISION_OUTPUTS
            .iter()
            .copied()
            .filter(|o| declared.contains(o))
            .collect();
        for out in &kept_outputs {
            if !has_output(&encoder, out) {
                return Err(not_a(
                    encoder_path,
                    "image encoder",
                    format!("it has no output '{}'", names.get(out)),
                ));
            }
        }
        let decoder_spec = DecoderSpec {
            inputs: declared,
            size_as_vector,
            box_slots,
        };
        Ok(Sam3 {
            image_encoder: Mutex::new(encoder),
            language_encoder: Mutex::new(language),
            decoder: Mutex::new(decoder),
            names,
            tokenizer,
            image_input,
            context_length,
            decoder_spec,
            kept_outputs,
            text_cache: Mutex::new(LruCache::new(
                NonZeroUsize::new(TEXT_CACHE_ENTRIES).unwrap_or(NonZeroUsize::MIN),
            )),
            text_encoder_runs: AtomicU64::new(0),
            max_mask_side: DEFAULT_MAX_MASK_SIDE,
        })
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

/// Splits exemplars into decoder runs of at most `slots` boxes (`None`: one run with all).
/// No exemplar gives one empty run (a masked slot). Positives are spread over the runs; each
/// run's spare slots take negatives.
fn slot_groups(exemplars: &[Exemplar], slots: Option<usize>) -> Vec<Vec<Exemplar>> {
    let Some(slots) = slots.filter(|&s| s < exemplars.len()) else {
        return vec![exemplars.to_vec()];
    };
    let slots = slots.max(1);
    let (positives, negatives): (Vec<Exemplar>, Vec<Exemplar>) =
        exemplars.iter().partition(|e| e.positive);
    if positives.is_empty() {
        return negatives.chunks(slots).map(<[Exemplar]>::to_vec).collect();
    }
    positives
        .chunks(slots)
        .map(|chunk| {
            let mut group = chunk.to_vec();
            group.extend(negatives.iter().take(slots - chunk.len()).copied());
            group
        })
        .collect()
}

#[cfg(test)]
mod tests;
