//! The fast SAM decoder (`scripts/export-models --decoder fast`: no `orig_im_size`, no in-graph
//! upsampling, prompt rows in batches) gives the same masks as the official export. Runs on the
//! demo pair `sam_decoder.onnx` / `sam_decoder_fast.onnx` (scripts/gen_demo_models.py), which
//! compute the same logits per row, so any difference is the host's batching, grouping or
//! row order. (On the random-weight ViT-B export, `bench/speed_means.py` compares the two graphs
//! themselves: see bench/RESULTS.md.)

use std::path::PathBuf;

use super::{load, DecodedMasks, DecoderPrompt, ModelFamily, PromptableModel};
use crate::config::ModelFiles;
use crate::raster::RgbImage;

const TEST: &str = "fast SAM decoder parity";

fn demo(decoder: &str) -> Option<std::sync::Arc<dyn PromptableModel>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/demo");
    let (encoder, decoder) = (dir.join("sam_encoder.onnx"), dir.join(decoder));
    if !encoder.is_file() || !decoder.is_file() {
        crate::test_skip::skip(TEST, "demo models missing (scripts/setup generates them)");
        return None;
    }
    let rt = crate::test_skip::test_runtime(TEST)?;
    let files = ModelFiles {
        encoder: Some(encoder),
        decoder: Some(decoder),
        demo: true,
        ..Default::default()
    };
    Some(load(rt, ModelFamily::Sam, "test", &files).expect("demo SAM loads"))
}

/// Coloured rectangles on grey, 600×450 (not square: the padding and crop matter).
fn image() -> RgbImage {
    let (w, h) = (600u32, 450u32);
    let mut pixels = vec![128u8; (w * h * 3) as usize];
    let rects = [
        (40, 30, 200, 150, [220, 30, 30]),
        (300, 60, 220, 120, [30, 60, 200]),
        (120, 260, 260, 150, [230, 210, 40]),
    ];
    for (x0, y0, rw, rh, c) in rects {
        for y in y0..y0 + rh {
            for x in x0..x0 + rw {
                let i = ((y * w + x) * 3) as usize;
                pixels[i..i + 3].copy_from_slice(&c);
            }
        }
    }
    RgbImage {
        width: w,
        height: h,
        pixels,
    }
}

fn assert_same(a: &[DecodedMasks], b: &[DecodedMasks]) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert_eq!(x.scores, y.scores, "row {i}");
        assert_eq!(x.frame, y.frame, "row {i}");
        assert_eq!(x.logits, y.logits, "row {i}");
    }
}

#[test]
fn fast_decoder_gives_the_official_exports_masks() {
    let (Some(standard), Some(fast)) = (demo("sam_decoder.onnx"), demo("sam_decoder_fast.onnx"))
    else {
        return;
    };
    let img = image();
    let embedding = standard.encode(&img, img.width, img.height).unwrap();
    let point = |x: f64, y: f64, l: i32| DecoderPrompt {
        points: vec![[x, y]],
        labels: vec![l],
        bbox: None,
    };
    let boxed = |b: [f64; 4]| DecoderPrompt {
        bbox: Some(b),
        ..Default::default()
    };
    // Mixed rows (1 point, 2 points, boxes, a box with a point): rows are grouped by length
    // and must come back in the request's order.
    let mut rows = vec![
        point(100.0, 80.0, 1),
        boxed([300.0, 60.0, 520.0, 180.0]),
        DecoderPrompt {
            points: vec![[150.0, 300.0], [350.0, 100.0]],
            labels: vec![1, 0],
            bbox: None,
        },
        point(400.0, 120.0, 1),
        boxed([120.0, 260.0, 380.0, 410.0]),
        DecoderPrompt {
            points: vec![[60.0, 50.0]],
            labels: vec![1],
            bbox: Some([40.0, 30.0, 240.0, 180.0]),
        },
    ];
    for multimask in [false, true] {
        let a = standard.decode(&embedding, &rows, multimask).unwrap();
        let b = fast.decode(&embedding, &rows, multimask).unwrap();
        assert_same(&a, &b);
        assert!(a.iter().any(|d| d.logits[0].iter().any(|&v| v > 0.0)));
    }
    // The automatic generator's grid, 16 per side: more rows than one call takes.
    rows = (0..16)
        .flat_map(|j| (0..16).map(move |i| (i, j)))
        .map(|(i, j)| {
            point(
                600.0 * (i as f64 + 0.5) / 16.0,
                450.0 * (j as f64 + 0.5) / 16.0,
                1,
            )
        })
        .collect();
    let a = standard.decode(&embedding, &rows, true).unwrap();
    let b = fast.decode(&embedding, &rows, true).unwrap();
    assert_eq!(a.len(), 256);
    assert_same(&a, &b);
}

#[test]
fn a_decoder_without_low_res_masks_is_refused() {
    // The SAM2 demo decoder has neither `orig_im_size` nor `low_res_masks`: not a SAM decoder.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/demo");
    let (encoder, decoder) = (dir.join("sam_encoder.onnx"), dir.join("sam2_decoder.onnx"));
    if !encoder.is_file() || !decoder.is_file() {
        crate::test_skip::skip(TEST, "demo models missing (scripts/setup generates them)");
        return;
    }
    let Some(rt) = crate::test_skip::test_runtime(TEST) else {
        return;
    };
    let files = ModelFiles {
        encoder: Some(encoder),
        decoder: Some(decoder),
        demo: true,
        ..Default::default()
    };
    let err = load(rt, ModelFamily::Sam, "test", &files)
        .err()
        .expect("refused");
    assert!(err.to_string().contains("low_res_masks"), "{err}");
}
