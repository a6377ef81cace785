//! Parity with the reference predictors where CI cannot run torch: the fixture recorded by
//! `bench/record_fixture.py` (host/tests/fixtures/parity) holds what segment-anything and sam2
//! compute for a small image (resizing, SAM2's normalised input) and for low-resolution logits
//! of the random-weight bench models (final masks); the host must compute the same.

use std::io::Read;
use std::path::PathBuf;

use serde_json::Value;

use super::postprocess::{mask_from_logits, LowResFrame};
use super::preprocess::{resize_for_sam, resize_for_sam2, to_chw_tensor_f32, Normalisation};
use crate::raster::RgbImage;

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/parity")
}

fn manifest() -> Value {
    let text = std::fs::read_to_string(fixture_dir().join("manifest.json"))
        .expect("host/tests/fixtures/parity/manifest.json (bench/record_fixture.py writes it)");
    serde_json::from_str(&text).expect("valid manifest")
}

fn blob(name: &Value) -> Vec<u8> {
    let path = fixture_dir().join(name.as_str().expect("file name"));
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(file)
        .read_to_end(&mut out)
        .expect("gzip blob");
    out
}

fn dim(v: &Value, key: &str) -> u32 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} in {v}")) as u32
}

/// IEEE half → single precision.
fn f16_to_f32(bits: u16) -> f32 {
    let sign = ((bits >> 15) as u32) << 31;
    let exp = ((bits >> 10) & 0x1f) as u32;
    let frac = (bits & 0x3ff) as u32;
    let value = match (exp, frac) {
        (0, 0) => sign,
        (0, _) => {
            // Subnormal: normalise.
            let shift = frac.leading_zeros() - 21;
            sign | ((127 - 15 + 1 - shift) << 23) | ((frac << shift) & 0x3ff) << 13
        }
        (31, _) => sign | 0x7f80_0000 | frac << 13,
        _ => sign | ((exp + 127 - 15) << 23) | frac << 13,
    };
    f32::from_bits(value)
}

fn image() -> RgbImage {
    let m = manifest();
    let img = &m["image"];
    RgbImage {
        width: dim(img, "width"),
        height: dim(img, "height"),
        pixels: blob(&img["file"]),
    }
}

#[test]
fn f16_conversion() {
    assert_eq!(f16_to_f32(0x3c00), 1.0);
    assert_eq!(f16_to_f32(0xc000), -2.0);
    assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
    assert_eq!(f16_to_f32(0x0001), 5.960_464_5e-8);
    assert_eq!(f16_to_f32(0x8000), -0.0);
}

#[test]
fn sam_resize_is_pillows_bilinear_bit_for_bit() {
    let m = manifest();
    let img = image();
    let cases = m["sam_resize"].as_array().expect("sam_resize cases");
    assert!(cases.len() >= 2);
    for case in cases {
        let (w, h) = (dim(case, "width"), dim(case, "height"));
        let expected = blob(&case["file"]);
        let got = resize_for_sam(&img, w, h);
        assert_eq!((got.width, got.height), (w, h));
        let differing = got
            .pixels
            .iter()
            .zip(&expected)
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(
            differing,
            0,
            "{w}x{h}: {differing} of {} values differ",
            expected.len()
        );
    }
}

#[test]
fn sam2_input_is_torchvisions_resize_and_normalisation() {
    let m = manifest();
    let img = image();
    for case in m["sam2_input"].as_array().expect("sam2_input cases") {
        let side = dim(case, "side") as usize;
        let expected: Vec<f32> = blob(&case["file"])
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let resized = resize_for_sam2(&img, side as u32, side as u32);
        let tensor = to_chw_tensor_f32(&resized, side, Normalisation::IMAGENET);
        let got = tensor.as_slice().expect("contiguous");
        assert_eq!(got.len(), expected.len());
        let worst = got
            .iter()
            .zip(&expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-4, "side {side}: largest difference {worst}");
    }
}

#[test]
fn upsampled_masks_equal_the_references() {
    let m = manifest();
    let cases = m["masks"].as_array().expect("mask cases");
    assert!(cases.iter().any(|c| c["family"] == "sam"));
    assert!(cases.iter().any(|c| c["family"] == "sam2"));
    for case in cases {
        let (w, h) = (dim(case, "width"), dim(case, "height"));
        let logits: Vec<f32> = blob(&case["logits"])
            .chunks_exact(2)
            .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
            .collect();
        assert_eq!(logits.len(), 256 * 256);
        let bits = blob(&case["mask"]);
        let expected: Vec<bool> = (0..(w * h) as usize)
            .map(|i| bits[i / 8] & (0x80 >> (i % 8)) != 0)
            .collect();
        let frame = match case["family"].as_str() {
            Some("sam") => LowResFrame::via_padded(
                256,
                1024,
                (dim(case, "input_width"), dim(case, "input_height")),
                (w, h),
            ),
            _ => LowResFrame::direct(256, w, h),
        };
        let got = mask_from_logits(&logits, &frame, 1, 0.5, 0.0, 1.0)
            .map(|mask| mask.to_dense(w, h))
            .unwrap_or_else(|| vec![false; (w * h) as usize]);
        let differing = got.iter().zip(&expected).filter(|(a, b)| a != b).count();
        let area = expected.iter().filter(|&&p| p).count();
        assert_eq!(area as u64, case["area"].as_u64().unwrap());
        // Rounding in the fused weights may flip a pixel whose logit is within ~1e-6 of 0.
        assert!(
            differing <= 2,
            "{} {}: {differing} of {} pixels differ (reference area {area})",
            case["family"],
            case["prompt"],
            w * h
        );
    }
}
