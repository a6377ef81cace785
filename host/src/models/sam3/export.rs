//! Checks of a SAM3 export at load time: which inputs and outputs each of the three models
//! declares, and how each wants to be fed (element types, batching, box slots).

use std::path::Path;

use ort::session::Session;
use ort::value::{TensorElementType, ValueType};

use super::{clip_tokenizer, IMAGE_SIDE, VISION_OUTPUTS};
use crate::models::tensors::TensorNames;
use crate::models::ModelError;

/// Decoder inputs the backend knows how to feed, by standard name.
pub(super) const DECODER_INPUTS: [&str; 14] = [
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

/// How the image encoder wants its input.
#[derive(Debug, Clone, Copy)]
pub(super) struct ImageInput {
    pub(super) width: u32,
    pub(super) height: u32,
    /// `[1, 3, H, W]` instead of `[3, H, W]`.
    pub(super) batched: bool,
    /// f32 input normalised by the host to `(x/255 − 0.5)/0.5` instead of raw u8.
    pub(super) float: bool,
}

/// What the decoder declares.
#[derive(Debug, Clone)]
pub(super) struct DecoderSpec {
    /// Standard names of the inputs it declares (subset of [`DECODER_INPUTS`]).
    pub(super) inputs: Vec<&'static str>,
    /// `original_height`/`original_width` as `[1]` instead of 0-d scalars.
    pub(super) size_as_vector: bool,
    /// Fixed number of box slots, or `None` when `num_boxes` is dynamic.
    pub(super) box_slots: Option<usize>,
}

/// What the load-time checks found out about an export.
#[derive(Debug, Clone)]
pub(super) struct ExportLayout {
    pub(super) image_input: ImageInput,
    /// Tokens the language encoder takes.
    pub(super) context_length: usize,
    pub(super) decoder_spec: DecoderSpec,
    /// Encoder outputs kept in embeddings: the ones the decoder declares.
    pub(super) kept_outputs: Vec<&'static str>,
}

fn tensor_info(dtype: &ValueType) -> Option<(TensorElementType, Vec<i64>)> {
    match dtype {
        ValueType::Tensor { ty, shape, .. } => Some((*ty, shape.iter().copied().collect())),
        _ => None,
    }
}

/// Checks the three sessions' declared inputs and outputs (each file named in errors) and
/// reads how each wants to be fed.
pub(super) fn check(
    (encoder, encoder_path): (&Session, &Path),
    (language, language_path): (&Session, &Path),
    (decoder, decoder_path): (&Session, &Path),
    names: &TensorNames,
) -> Result<ExportLayout, ModelError> {
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
    let (ty, shape) = input(encoder, "image").ok_or_else(|| {
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
    let (ty, shape) = input(language, "tokens").ok_or_else(|| {
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
        if !has_output(language, out) {
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
        if !has_output(decoder, out) {
            return Err(not_a(
                decoder_path,
                "decoder",
                format!("it has no output '{}'", names.get(out)),
            ));
        }
    }
    let (ty, shape) =
        input(decoder, "original_height").unwrap_or((TensorElementType::Int64, vec![]));
    if ty != TensorElementType::Int64 || shape.len() > 1 {
        return Err(not_a(
            decoder_path,
            "decoder",
            format!("original_height is {ty:?} {shape:?}, not an i64 scalar"),
        ));
    }
    let size_as_vector = shape.len() == 1;
    let (_, box_shape) =
        input(decoder, "box_coords").unwrap_or((TensorElementType::Float32, vec![]));
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
        if !has_output(encoder, out) {
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
    Ok(ExportLayout {
        image_input,
        context_length,
        decoder_spec,
        kept_outputs,
    })
}
