//! SAM3 backend tests: slot planning and point encoding always; end to end on the demo models
//! (`python3 scripts/gen_demo_models.py`) when they, ONNX Runtime and the CLIP vocabulary exist.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::exemplars::slot_groups;
use super::*;
use crate::masks::BBox;
use crate::masks::Mask;
use crate::raster::RgbImage;

const RED: [u8; 3] = [220, 30, 30];
const GREEN: [u8; 3] = [40, 160, 40];
const BLUE: [u8; 3] = [30, 60, 200];
const RED_SQUARES: [(u32, u32, u32, u32); 2] = [(40, 40, 110, 110), (250, 160, 330, 240)];
const BLUE_SQUARE: (u32, u32, u32, u32) = (160, 60, 220, 120);
const W: u32 = 400;
const H: u32 = 300;

fn test_image() -> RgbImage {
    let mut pixels = Vec::with_capacity((W * H * 3) as usize);
    let inside =
        |r: (u32, u32, u32, u32), x: u32, y: u32| x >= r.0 && x < r.2 && y >= r.1 && y < r.3;
    for y in 0..H {
        for x in 0..W {
            let c = if RED_SQUARES.iter().any(|&r| inside(r, x, y)) {
                RED
            } else if inside(BLUE_SQUARE, x, y) {
                BLUE
            } else {
                GREEN
            };
            pixels.extend(c);
        }
    }
    RgbImage {
        width: W,
        height: H,
        pixels,
    }
}

fn rect_mask(r: (u32, u32, u32, u32)) -> Mask {
    let mut dense = vec![false; (W * H) as usize];
    for y in r.1..r.3 {
        for x in r.0..r.2 {
            dense[(y * W + x) as usize] = true;
        }
    }
    Mask::from_dense(1, 1.0, 1.0, W, H, &dense).expect("non-empty")
}

/// The best IoU of each expected rectangle against `masks`.
fn best_ious(masks: &[Mask], expected: &[(u32, u32, u32, u32)]) -> Vec<f64> {
    expected
        .iter()
        .map(|&r| {
            let truth = rect_mask(r);
            masks
                .iter()
                .map(|m| instances::mask_iou(m, &truth))
                .fold(0.0, f64::max)
        })
        .collect()
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn runtime() -> Option<&'static OnnxRuntime> {
    crate::test_skip::test_runtime("sam3 demo model tests")
}

/// The demo SAM3 model, or `None` with a notice when something it needs is missing.
fn demo_model() -> Option<Sam3> {
    let demo = workspace().join("models/demo");
    let files = ModelFiles {
        encoder: Some(demo.join("sam3_image_encoder.onnx")),
        decoder: Some(demo.join("sam3_decoder.onnx")),
        language_encoder: Some(demo.join("sam3_language_encoder.onnx")),
        tokenizer_vocab: Some(clip_tokenizer::tests::test_vocab()?),
        ..Default::default()
    };
    if !demo.join("sam3_decoder.onnx").is_file() {
        crate::test_skip::skip(
            "sam3 demo model tests",
            "demo models not generated (scripts/setup generates them)",
        );
        return None;
    }
    let runtime = runtime()?;
    Some(Sam3::load(runtime, "sam3.demo", &files).expect("demo SAM3 loads"))
}

#[test]
fn points_are_refused_naming_what_the_export_lacks() {
    let detail = points_unsupported("models.sam3.\"facebook/sam3\"");
    assert!(detail.contains("instance head"), "{detail}");
    assert!(detail.contains("models.sam3.\"facebook/sam3\""), "{detail}");
}

#[test]
fn boxes_are_ordered_and_clipped() {
    let e = box_exemplars(
        &[[50.0, 40.0, 10.0, -5.0], [500.0, 0.0, 600.0, 10.0]],
        400,
        300,
    );
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].bbox, [10.0, 0.0, 50.0, 40.0]);
}

#[test]
fn slot_groups_fill_fixed_capacity() {
    let p = |x: f64| Exemplar {
        bbox: [x, 0.0, x + 1.0, 1.0],
        positive: true,
    };
    let n = |x: f64| Exemplar {
        bbox: [x, 0.0, x + 1.0, 1.0],
        positive: false,
    };
    assert_eq!(slot_groups(&[], Some(1)), vec![Vec::<Exemplar>::new()]);
    assert_eq!(slot_groups(&[p(1.0), p(2.0)], None).len(), 1);
    assert_eq!(slot_groups(&[p(1.0), n(2.0)], Some(4)).len(), 1);
    let g = slot_groups(&[p(1.0), p(2.0), p(3.0), n(4.0)], Some(2));
    assert_eq!(g, vec![vec![p(1.0), p(2.0)], vec![p(3.0), n(4.0)]]);
    let g = slot_groups(&[p(1.0), p(2.0)], Some(1));
    assert_eq!(g, vec![vec![p(1.0)], vec![p(2.0)]]);
}

#[test]
fn demo_model_end_to_end() {
    let Some(mut model) = demo_model() else {
        return;
    };
    assert_eq!(model.input_side(), 1008);
    let image = test_image();
    let t = Instant::now();
    let embedding = model.encode_image(&image, W, H).expect("encode");
    let encode_ms = t.elapsed().as_millis();
    assert_eq!(embedding.tensors.len(), 6);
    assert_eq!((embedding.width, embedding.height), (W, H));
    assert_eq!(
        embedding
            .tensor("backbone_fpn_0")
            .map(|t| t.shape().to_vec()),
        Some(vec![1, 256, 288, 288])
    );

    let t = Instant::now();
    let red = model.encode_text("red").expect("text");
    let text_ms = t.elapsed().as_millis();
    assert_eq!(&red.tokens[..3], &[49406, 736, 49407]);
    assert_eq!(red.attention_mask.shape(), &[1, 32]);
    assert!(!red.attention_mask[[0, 2]] && red.attention_mask[[0, 3]]);
    assert_eq!(model.text_encoder_runs(), 1);
    let again = model.encode_text("  RED ").expect("cached text");
    assert!(Arc::ptr_eq(&red, &again));
    assert_eq!(
        model.text_encoder_runs(),
        1,
        "same tokens: served from the cache"
    );

    // Text: both red squares.
    let t = Instant::now();
    let masks = model
        .detect(&embedding, &red, &[], 0.5)
        .expect("detect red");
    let detect_ms = t.elapsed().as_millis();
    assert_eq!(masks.len(), 2, "{masks:?}");
    for (i, m) in masks.iter().enumerate() {
        assert_eq!((m.id, m.label), (i as u32 + 1, i as u32 + 1));
        assert!((m.score - 0.9).abs() < 1e-6);
        assert_eq!(m.stability, 1.0);
    }
    let ious = best_ious(&masks, &RED_SQUARES);
    assert!(ious.iter().all(|&iou| iou >= 0.85), "red IoUs {ious:?}");
    // Equal scores: ordered by bounding box (top first).
    assert!(masks[0].bbox.y < masks[1].bbox.y);
    eprintln!("demo SAM3 on {W}x{H}: encode_image {encode_ms} ms, encode_text {text_ms} ms, detect {detect_ms} ms");

    // Threshold above the demo's 0.9 score: nothing.
    assert!(model
        .detect(&embedding, &red, &[], 0.95)
        .expect("detect")
        .is_empty());

    // A colour that is not there.
    let purple = model.encode_text("purple").expect("text");
    assert!(model
        .detect(&embedding, &purple, &[], 0.5)
        .expect("detect purple")
        .is_empty());

    // Everything: the three squares.
    let everything = model.encode_text("everything").expect("text");
    let masks = model
        .detect(&embedding, &everything, &[], 0.5)
        .expect("detect everything");
    assert_eq!(masks.len(), 3, "{masks:?}");
    let mut all = RED_SQUARES.to_vec();
    all.push(BLUE_SQUARE);
    let ious = best_ious(&masks, &all);
    assert!(
        ious.iter().all(|&iou| iou >= 0.85),
        "everything IoUs {ious:?}"
    );

    // A box exemplar around one red square finds both (the demo ignores the text then).
    let blue = model.encode_text("blue").expect("text");
    let r = RED_SQUARES[0];
    let exemplar = [
        r.0 as f64 - 3.0,
        r.1 as f64 - 3.0,
        r.2 as f64 + 3.0,
        r.3 as f64 + 3.0,
    ];
    let masks = model
        .detect(&embedding, &blue, &[exemplar], 0.5)
        .expect("detect box");
    assert_eq!(masks.len(), 2, "{masks:?}");
    assert!(best_ious(&masks, &RED_SQUARES)
        .iter()
        .all(|&iou| iou >= 0.85));

    // Two boxes (one slot each, the demo's num_boxes is dynamic).
    let r2 = RED_SQUARES[1];
    let second = [r2.0 as f64, r2.1 as f64, r2.2 as f64, r2.3 as f64];
    let masks = model
        .detect(&embedding, &everything, &[exemplar, second], 0.5)
        .expect("two boxes");
    assert_eq!(masks.len(), 2, "{masks:?}");

    // The same, one decoder run per box, merged with NMS.
    model.decoder_spec.box_slots = Some(1);
    let merged = model
        .detect(&embedding, &everything, &[exemplar, second], 0.5)
        .expect("per box");
    assert_eq!(merged.len(), 2, "{merged:?}");
    assert_eq!(
        merged.iter().map(|m| m.bbox).collect::<Vec<BBox>>(),
        masks.iter().map(|m| m.bbox).collect::<Vec<BBox>>()
    );
    model.decoder_spec.box_slots = None;

    // A small positive exemplar inside the blue square finds the blue square; a negative one
    // alone, nothing.
    let c = ((BLUE_SQUARE.0 + BLUE_SQUARE.2) / 2) as f64;
    let cy = ((BLUE_SQUARE.1 + BLUE_SQUARE.3) / 2) as f64;
    let small = |positive| Exemplar {
        bbox: [c - 2.0, cy - 1.5, c + 2.0, cy + 1.5],
        positive,
    };
    let masks = model
        .detect_exemplars(&embedding, &red, &[small(true)], 0.5)
        .expect("small exemplar");
    assert_eq!(masks.len(), 1, "{masks:?}");
    assert!(best_ious(&masks, &[BLUE_SQUARE])[0] >= 0.85);
    let masks = model
        .detect_exemplars(&embedding, &purple, &[small(false)], 0.5)
        .expect("negative exemplar");
    assert!(masks.is_empty());

    // Masks rendered in a smaller frame and scaled up to the original.
    model.set_max_mask_side(200);
    let masks = model
        .detect(&embedding, &red, &[], 0.5)
        .expect("detect small frame");
    assert_eq!(masks.len(), 2);
    let ious = best_ious(&masks, &RED_SQUARES);
    assert!(
        ious.iter().all(|&iou| iou >= 0.85),
        "scaled-frame IoUs {ious:?}"
    );
}

#[test]
fn model_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Sam3>();
    assert_send_sync::<TextFeatures>();
}
