//! The embedding codec: round trip within fp16 error, corrupt input refused, and (demo models)
//! the masks decoded from an fp16-rounded embedding against those from the original.

use std::sync::Arc;

use ndarray::{ArrayD, IxDyn};

use super::*;
use crate::models::{DecoderPrompt, ModelFamily, PromptableModel};
use crate::raster::RgbImage;

/// Deterministic standard-normal values (xorshift and Box–Muller; no `rand` dependency).
fn normal_values(n: usize, mut seed: u64) -> Vec<f32> {
    let mut uniform = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        ((seed >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let (u, v) = (uniform(), uniform());
            ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
        })
        .collect()
}

fn tensor(shape: &[usize], seed: u64) -> ArrayD<f32> {
    let n = shape.iter().product();
    ArrayD::from_shape_vec(IxDyn(shape), normal_values(n, seed)).unwrap()
}

/// Tensors of several ranks and names, one not in standard order.
fn mixed() -> Embedding {
    let transposed = tensor(&[3, 5], 3).reversed_axes();
    assert!(transposed.as_slice().is_none());
    Embedding {
        tensors: vec![
            ("image_embeddings".into(), tensor(&[1, 16, 8, 8], 1)),
            ("high_res_feats_0".into(), tensor(&[1, 4, 16, 16], 2)),
            ("transposed".into(), transposed),
            ("scalar".into(), ArrayD::from_elem(IxDyn(&[]), 2.5)),
            ("empty".into(), ArrayD::zeros(IxDyn(&[0, 4]))),
        ],
        width: 600,
        height: 450,
    }
}

fn assert_within_fp16(original: &Embedding, decoded: &Embedding) {
    assert_eq!(
        (decoded.width, decoded.height),
        (original.width, original.height)
    );
    assert_eq!(decoded.tensors.len(), original.tensors.len());
    for ((name, a), (decoded_name, b)) in original.tensors.iter().zip(&decoded.tensors) {
        assert_eq!(name, decoded_name);
        assert_eq!(a.shape(), b.shape(), "{name}");
        for (x, y) in a.iter().zip(b.iter()) {
            // fp16 keeps 11 significant bits: relative error at most 2^-11 (normal range),
            // absolute 2^-25 below it.
            let tolerance = (x.abs() * 2f32.powi(-11)).max(2f32.powi(-24));
            assert!((x - y).abs() <= tolerance, "{name}: {x} came back as {y}");
        }
    }
}

#[test]
fn round_trip_keeps_names_shapes_and_values_within_fp16_error() {
    let original = mixed();
    let bytes = encode(&original).unwrap();
    assert!(bytes.starts_with(MAGIC));
    let decoded = decode(&bytes).unwrap();
    assert_within_fp16(&original, &decoded);
    // A value fp16 holds exactly comes back exactly.
    assert_eq!(decoded.tensor("scalar").unwrap().iter().next(), Some(&2.5));
}

#[test]
fn both_levels_decode_and_special_values_survive() {
    let mut values = normal_values(1000, 9);
    values[0] = f32::NAN;
    values[1] = f32::INFINITY;
    values[2] = -0.0;
    values[3] = 1e-9; // below fp16's smallest subnormal: becomes 0
    let original = Embedding {
        tensors: vec![(
            "e".into(),
            ArrayD::from_shape_vec(IxDyn(&[1000]), values).unwrap(),
        )],
        width: 1,
        height: 1,
    };
    for level in [1, 3] {
        let decoded = decode(&encode_with_level(&original, level).unwrap()).unwrap();
        let got: Vec<f32> = decoded.tensors[0].1.iter().copied().collect();
        assert!(got[0].is_nan());
        assert_eq!(got[1], f32::INFINITY);
        assert!(got[2] == 0.0 && got[2].is_sign_negative());
        assert_eq!(got[3], 0.0);
        assert!((got[500] - original.tensors[0].1[[500]]).abs() < 1e-2);
    }
}

#[test]
fn a_finite_value_beyond_fp16_is_refused_not_turned_into_infinity() {
    let original = Embedding {
        tensors: vec![("big".into(), ArrayD::from_elem(IxDyn(&[4]), 1e6))],
        width: 1,
        height: 1,
    };
    let err = encode(&original).unwrap_err();
    assert!(
        matches!(err, CodecError::OutOfRange(ref n) if n == "big"),
        "{err}"
    );
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = encode(&mixed()).unwrap();
    for len in 0..bytes.len() {
        assert!(
            decode(&bytes[..len]).is_err(),
            "{len} of {} bytes",
            bytes.len()
        );
    }
}

/// Each byte changed in turn (three ways): an error, or (where zstd ignores the bit: an
/// unused flag, an encoding detail) exactly the original embedding. Never a different one.
#[test]
fn a_changed_byte_is_an_error_or_changes_nothing() {
    let bytes = encode(&mixed()).unwrap();
    let original = decode(&bytes).unwrap();
    let mut harmless = Vec::new();
    for i in 0..bytes.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut garbled = bytes.clone();
            garbled[i] ^= flip;
            if let Ok(decoded) = decode(&garbled) {
                assert_eq!(decoded.width, original.width);
                for ((n, a), (_, b)) in original.tensors.iter().zip(&decoded.tensors) {
                    let same = a
                        .iter()
                        .zip(b.iter())
                        .all(|(x, y)| x.to_bits() == y.to_bits());
                    assert!(
                        same && a.shape() == b.shape(),
                        "byte {i} xor {flip:#x} changed '{n}'"
                    );
                }
                harmless.push((i, flip));
            }
        }
    }
    eprintln!(
        "{} of {} changes decoded to the same embedding: {harmless:?}",
        harmless.len(),
        bytes.len() * 3
    );
    // The header (up to the zstd frame) is covered by the digest: any change there is refused.
    let frame = bytes.len() - zstd_frame_len(&bytes);
    assert!(harmless.iter().all(|(i, _)| *i >= frame), "{harmless:?}");
}

/// Length of the zstd frame at the end of `bytes` (it starts with zstd's magic number).
fn zstd_frame_len(bytes: &[u8]) -> usize {
    let magic = [0x28, 0xb5, 0x2f, 0xfd];
    let start = bytes.windows(4).position(|w| w == magic).unwrap();
    bytes.len() - start
}

#[test]
fn garbage_trailing_bytes_and_other_versions_are_errors() {
    let bytes = encode(&mixed()).unwrap();
    let mut longer = bytes.clone();
    longer.extend_from_slice(b"junk");
    assert!(decode(&longer).is_err());
    assert!(decode(b"").is_err());
    assert!(decode(b"not an embedding at all").is_err());
    let mut other = bytes.clone();
    other[4] = VERSION + 1;
    let err = decode(&other).unwrap_err().to_string();
    assert!(err.contains("version"), "{err}");
}

/// A header claiming 2^32 × 2^32 values is refused before anything is allocated for them.
#[test]
fn a_header_claiming_huge_tensors_is_refused() {
    let mut header = Vec::new();
    header.extend_from_slice(MAGIC);
    header.push(VERSION);
    header.extend_from_slice(&1u32.to_le_bytes());
    header.extend_from_slice(&1u32.to_le_bytes());
    header.extend_from_slice(&1u16.to_le_bytes());
    header.extend_from_slice(&1u16.to_le_bytes());
    header.push(b'e');
    header.push(2);
    header.extend_from_slice(&u32::MAX.to_le_bytes());
    header.extend_from_slice(&u32::MAX.to_le_bytes());
    let err = decode(&header).unwrap_err().to_string();
    assert!(err.contains("values"), "{err}");
}

// ---- Sizes (run by hand: `cargo test -p samgeo-host --lib embedding_codec -- --ignored
// --nocapture`) and mask parity on the demo models ----

fn demo_model(family: ModelFamily) -> Option<Arc<dyn PromptableModel>> {
    const TEST: &str = "fp16 embedding parity";
    let prefix = match family {
        ModelFamily::Sam => "sam",
        ModelFamily::Sam2 => "sam2",
    };
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/demo");
    let (encoder, decoder) = (
        dir.join(format!("{prefix}_encoder.onnx")),
        dir.join(format!("{prefix}_decoder.onnx")),
    );
    if !encoder.is_file() || !decoder.is_file() {
        crate::test_skip::skip(TEST, "demo models missing (scripts/setup generates them)");
        return None;
    }
    let rt = crate::test_skip::test_runtime(TEST)?;
    let files = crate::config::ModelFiles {
        encoder: Some(encoder),
        decoder: Some(decoder),
        demo: true,
        ..Default::default()
    };
    Some(crate::models::load(rt, family, "test", &files).expect("demo model loads"))
}

/// Coloured rectangles on a gradient, with a little pixel noise, 600×450.
fn scene() -> RgbImage {
    let (w, h) = (600u32, 450u32);
    let noise = normal_values((w * h) as usize, 77);
    let mut pixels = Vec::with_capacity((w * h * 3) as usize);
    let rects = [
        (40, 30, 240, 180, [220u8, 30, 30]),
        (300, 60, 520, 180, [30, 60, 200]),
        (120, 260, 380, 410, [230, 210, 40]),
        (450, 250, 560, 420, [20, 160, 60]),
    ];
    for y in 0..h {
        for x in 0..w {
            let base = [(x * 160 / w) as u8 + 40, (y * 160 / h) as u8 + 40, 110];
            let rgb = rects
                .iter()
                .find(|(x0, y0, x1, y1, _)| x >= *x0 && x < *x1 && y >= *y0 && y < *y1)
                .map_or(base, |r| r.4);
            let n = noise[(y * w + x) as usize] * 6.0;
            pixels.extend(rgb.map(|c| (c as f32 + n).clamp(0.0, 255.0) as u8));
        }
    }
    RgbImage {
        width: w,
        height: h,
        pixels,
    }
}

/// Prompts over the scene: single points on a 6×5 grid, and a box per rectangle.
fn prompts() -> Vec<DecoderPrompt> {
    let mut rows = Vec::new();
    for gy in 0..5 {
        for gx in 0..6 {
            rows.push(DecoderPrompt {
                points: vec![[50.0 + gx as f64 * 100.0, 45.0 + gy as f64 * 90.0]],
                labels: vec![1],
                bbox: None,
            });
        }
    }
    for b in [
        [40.0, 30.0, 240.0, 180.0],
        [300.0, 60.0, 520.0, 180.0],
        [120.0, 260.0, 380.0, 410.0],
    ] {
        rows.push(DecoderPrompt {
            points: vec![],
            labels: vec![],
            bbox: Some(b),
        });
    }
    rows
}

/// Full-resolution masks (threshold 0, as predict uses) of every candidate of every row.
fn dense_masks(
    model: &dyn PromptableModel,
    embedding: &Embedding,
    rows: &[DecoderPrompt],
) -> Vec<Vec<bool>> {
    let decoded = model.decode(embedding, rows, true).unwrap();
    let (w, h) = (embedding.width, embedding.height);
    decoded
        .iter()
        .flat_map(|row| {
            row.logits.iter().map(|logits| {
                crate::models::mask_from_logits(logits, &row.frame, 1, 0.0, 0.0, 1.0)
                    .map_or_else(|| vec![false; (w * h) as usize], |m| m.to_dense(w, h))
            })
        })
        .collect()
}

/// (pooled IoU over all masks, lowest IoU of one mask) between two lists of dense masks.
fn ious(a: &[Vec<bool>], b: &[Vec<bool>]) -> (f64, f64) {
    assert_eq!(a.len(), b.len());
    let (mut inter_all, mut union_all, mut lowest) = (0u64, 0u64, 1.0f64);
    for (x, y) in a.iter().zip(b) {
        let inter = x.iter().zip(y).filter(|(p, q)| **p && **q).count() as u64;
        let union = x.iter().zip(y).filter(|(p, q)| **p || **q).count() as u64;
        inter_all += inter;
        union_all += union;
        if union > 0 {
            lowest = lowest.min(inter as f64 / union as f64);
        }
    }
    (inter_all as f64 / union_all.max(1) as f64, lowest)
}

/// Masks decoded from the fp16-rounded embedding (what a replica serving `shared` decodes
/// with) against masks from the original, on the demo SAM and SAM2 models.
#[test]
fn fp16_embedding_gives_the_same_masks_on_the_demo_models() {
    let image = scene();
    let rows = prompts();
    for family in [ModelFamily::Sam, ModelFamily::Sam2] {
        let Some(model) = demo_model(family) else {
            return;
        };
        let original = model.encode(&image, image.width, image.height).unwrap();
        let rounded = decode(&encode(&original).unwrap()).unwrap();
        let a = dense_masks(model.as_ref(), &original, &rows);
        let b = dense_masks(model.as_ref(), &rounded, &rows);
        let set: usize = a.iter().map(|m| m.iter().filter(|p| **p).count()).sum();
        assert!(set > 0, "{family:?}: the prompts give no mask at all");
        let (pooled, lowest) = ious(&a, &b);
        eprintln!(
            "{family:?}: fp16 parity over {} masks: pooled IoU {pooled:.5}, lowest {lowest:.5}",
            a.len()
        );
        assert!(pooled >= 0.99, "{family:?}: pooled IoU {pooled}");
        assert!(lowest >= 0.99, "{family:?}: lowest IoU {lowest}");
    }
}

fn interleaved_size(embedding: &Embedding, level: i32) -> usize {
    let mut bytes = Vec::new();
    for (_, t) in &embedding.tensors {
        for v in t.iter() {
            bytes.extend_from_slice(&f16::from_f32(*v).to_bits().to_le_bytes());
        }
    }
    zstd::bulk::compress(&bytes, level).unwrap().len()
}

fn report(label: &str, embedding: &Embedding) {
    let raw = embedding.size_bytes() - 64;
    for level in [1, 3] {
        // Best of five: the machine may be busy.
        let (mut bytes, mut encode_ms, mut decode_ms) = (Vec::new(), f64::MAX, f64::MAX);
        for _ in 0..5 {
            let started = std::time::Instant::now();
            bytes = encode_with_level(embedding, level).unwrap();
            encode_ms = encode_ms.min(started.elapsed().as_secs_f64() * 1e3);
            let started = std::time::Instant::now();
            decode(&bytes).unwrap();
            decode_ms = decode_ms.min(started.elapsed().as_secs_f64() * 1e3);
        }
        eprintln!(
            "{label}: f32 {raw} B; level {level}: {} B ({:.1}% of f32, {:.1}% of fp16), \
             encode {encode_ms:.1} ms, decode {decode_ms:.1} ms; without byte planes {} B",
            bytes.len(),
            100.0 * bytes.len() as f64 / raw as f64,
            200.0 * bytes.len() as f64 / raw as f64,
            interleaved_size(embedding, level),
        );
    }
}

#[test]
#[ignore = "measurement: prints sizes and times"]
fn sizes_at_zstd_levels_1_and_3() {
    report(
        "random normal 256x64x64",
        &Embedding {
            tensors: vec![("image_embeddings".into(), tensor(&[1, 256, 64, 64], 5))],
            width: 1024,
            height: 1024,
        },
    );
    let image = scene();
    for family in [ModelFamily::Sam, ModelFamily::Sam2] {
        if let Some(model) = demo_model(family) {
            let e = model.encode(&image, image.width, image.height).unwrap();
            let shapes: Vec<String> = e
                .tensors
                .iter()
                .map(|(n, t)| format!("{n}{:?}", t.shape()))
                .collect();
            report(&format!("demo {family:?} {}", shapes.join(" ")), &e);
        }
    }
}
