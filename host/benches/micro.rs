//! Micro-benchmarks of the host's hot paths (no criterion: a timing loop printing medians).
//!
//!   cargo bench -p samgeo-host --bench micro            # all
//!   cargo bench -p samgeo-host --bench micro -- plugin  # names containing "plugin"
//!
//! Inputs: `SAMGEO_REAL_DATA` (RGB.byte.tif; default ../shared/data/rasters), the built plugins
//! (`SAMGEO_PLUGIN_DIR`, else `$CARGO_TARGET_DIR/plugins/dist`, else target/plugins/dist), the
//! demo models (`SAMGEO_DEMO_MODELS`, default models/demo) and
//! `ORT_DYLIB_PATH` (default .ort/libonnxruntime.so.1.31.1). A benchmark whose input is missing
//! prints why and is skipped.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use samgeo_host::config::{ModelFiles, PluginsConfig, RuntimeConfig};
use samgeo_host::masks::{Georef, Mask, MaskSet, PluginRequest};
use samgeo_host::models::{
    self, mask_from_logits, resize_for_sam, resize_for_sam2, LowResFrame, ModelFamily, OnnxRuntime,
};
use samgeo_host::plugins::PluginHost;
use samgeo_host::raster::{BandSelection, OpenRaster, RasterLimits};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `f` until `budget` is spent (at least 5, at most 200 times) after one warm-up call and
/// prints the median, min and max in microseconds.
fn bench<T>(filter: &Option<String>, name: &str, budget: Duration, mut f: impl FnMut() -> T) {
    if let Some(filter) = filter {
        if !name.contains(filter.as_str()) {
            return;
        }
    }
    black_box(f());
    let mut samples = Vec::new();
    let start = Instant::now();
    while samples.len() < 5 || (start.elapsed() < budget && samples.len() < 200) {
        let t = Instant::now();
        black_box(f());
        samples.push(t.elapsed().as_secs_f64() * 1e6);
    }
    samples.sort_by(f64::total_cmp);
    println!(
        "{name:<58} median {:>11.1} µs   min {:>11.1}   max {:>11.1}   (n={})",
        samples[samples.len() / 2],
        samples[0],
        samples[samples.len() - 1],
        samples.len()
    );
}

fn skip(name: &str, why: &str) {
    println!("{name:<58} skipped: {why}");
}

fn real_raster() -> Option<Vec<u8>> {
    let dir = std::env::var_os("SAMGEO_REAL_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("../shared/data/rasters"));
    std::fs::read(dir.join("RGB.byte.tif")).ok()
}

/// Logits on a 256×256 grid: positive inside a disc of `radius` cells around (cx, cy), with a
/// soft edge (as real decoder logits have).
fn disc_logits(cx: f32, cy: f32, radius: f32) -> Vec<f32> {
    (0..256 * 256)
        .map(|i| {
            let (x, y) = ((i % 256) as f32, (i / 256) as f32);
            let d = ((x - cx).powi(2) + (y - cy).powi(2)).sqrt();
            (radius - d) * 2.0
        })
        .collect()
}

/// `count` disc-shaped masks scattered over a `w`×`h` image (xorshift, fixed seed).
fn disc_masks(count: u32, w: u32, h: u32) -> Vec<Mask> {
    let mut state = 0x2545F4914F6CDD1Du64;
    let mut next = |m: u32| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % m as u64) as u32
    };
    (1..=count)
        .map(|id| {
            let r = 6 + next(30);
            let (cx, cy) = (r + next(w - 2 * r), r + next(h - 2 * r));
            let side = 2 * r + 1;
            let mut dense = vec![false; (side * side) as usize];
            for y in 0..side {
                for x in 0..side {
                    let (dx, dy) = (x as i64 - r as i64, y as i64 - r as i64);
                    // A wobbly outline so the polygons have many vertices.
                    let wobble = ((x * 7 + y * 3) % 5) as i64;
                    dense[(y * side + x) as usize] =
                        dx * dx + dy * dy <= (r as i64 * r as i64) - wobble * r as i64;
                }
            }
            let mut m = Mask::from_dense(id, 0.9, 0.95, side, side, &dense).unwrap();
            m.bbox.x += cx - r;
            m.bbox.y += cy - r;
            m
        })
        .collect()
}

fn main() {
    // `cargo bench` passes `--bench`; the first other argument filters by name.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let short = Duration::from_secs(2);
    let long = Duration::from_secs(6);
    println!("samgeo-host micro-benchmarks (median of repeated calls, single thread)");

    // ---- raster decode ----------------------------------------------------------------------
    let rgb = match real_raster() {
        Some(bytes) => {
            let limits = RasterLimits {
                max_pixels: 1 << 28,
            };
            let bands = BandSelection::parse(None).unwrap();
            bench(
                &filter,
                "raster: open RGB.byte.tif (791x718)",
                short,
                || OpenRaster::open(bytes.clone(), limits).unwrap(),
            );
            bench(
                &filter,
                "raster: open + read_rgb(max 1024) RGB.byte.tif",
                short,
                || {
                    let r = OpenRaster::open(bytes.clone(), limits).unwrap();
                    r.read_rgb(&bands, 1024).unwrap()
                },
            );
            let r = OpenRaster::open(bytes.clone(), limits).unwrap();
            Some(r.read_rgb(&bands, 1024).unwrap())
        }
        None => {
            skip("raster: *", "RGB.byte.tif not found (set SAMGEO_REAL_DATA)");
            None
        }
    };

    // ---- preprocessing ----------------------------------------------------------------------
    if let Some(rgb) = &rgb {
        bench(
            &filter,
            "preprocess: resize_for_sam 791x718 -> 1024x929 (Pillow bicubic)",
            short,
            || resize_for_sam(rgb, 1024, 929),
        );
        bench(
            &filter,
            "preprocess: resize_for_sam2 791x718 -> 1024x1024 (f32 bilinear)",
            short,
            || resize_for_sam2(rgb, 1024, 1024),
        );
        // The full encode path (resize + normalise into [1,3,1024,1024] + copy-out) with the
        // demo encoder, whose graph is trivial: what the host adds around the real encoder.
        let ort = std::env::var_os("ORT_DYLIB_PATH")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace().join(".ort/libonnxruntime.so.1.31.1"));
        let demo = std::env::var_os("SAMGEO_DEMO_MODELS")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace().join("models/demo"));
        if ort.is_file() && demo.join("sam_encoder.onnx").is_file() {
            let runtime = OnnxRuntime::init(&RuntimeConfig {
                onnxruntime_library: ort,
                execution_providers: vec!["cpu".into()],
                intra_threads: 1,
                ..RuntimeConfig::default()
            })
            .unwrap();
            for (family, enc, dec, label) in [
                (
                    ModelFamily::Sam,
                    "sam_encoder.onnx",
                    "sam_decoder.onnx",
                    "SAM",
                ),
                (
                    ModelFamily::Sam2,
                    "sam2_encoder.onnx",
                    "sam2_decoder.onnx",
                    "SAM2",
                ),
            ] {
                let files = ModelFiles {
                    encoder: Some(demo.join(enc)),
                    decoder: Some(demo.join(dec)),
                    language_encoder: None,
                    tokenizer_vocab: None,
                    demo: true,
                    tensors: BTreeMap::new(),
                };
                let model = models::load(&runtime, family, "bench", &files).unwrap();
                bench(
                    &filter,
                    &format!("preprocess: encode() with demo {label} graph (791x718)"),
                    short,
                    || model.encode(rgb, rgb.width, rgb.height).unwrap(),
                );
            }
        } else {
            skip(
                "preprocess: encode() with demo graph",
                "ORT library or models/demo missing",
            );
        }
    }

    // ---- mask post-processing ---------------------------------------------------------------
    // SAM's two-step upsampling (256² → 1024² → crop → image size), as the server does it.
    let frame = |w: u32, h: u32| {
        let scale = 1024.0 / w.max(h) as f64;
        let input = (
            (w as f64 * scale).round() as u32,
            (h as f64 * scale).round() as u32,
        );
        LowResFrame::via_padded(256, 1024, input, (w, h))
    };
    let big = disc_logits(128.0, 128.0, 64.0); // a disc over ~20% of the image
    let small = disc_logits(40.0, 200.0, 6.0); // a small object
    bench(
        &filter,
        "postprocess: mask_from_logits 256² -> 4096² (large disc)",
        long,
        || mask_from_logits(&big, &frame(4096, 4096), 1, 0.9, 0.0, 1.0),
    );
    bench(
        &filter,
        "postprocess: mask_from_logits 256² -> 4096² (small disc)",
        short,
        || mask_from_logits(&small, &frame(4096, 4096), 1, 0.9, 0.0, 1.0),
    );
    bench(
        &filter,
        "postprocess: mask_from_logits 256² -> 791x718 (large disc)",
        short,
        || mask_from_logits(&big, &frame(791, 718), 1, 0.9, 0.0, 1.0),
    );

    // ---- plugins ----------------------------------------------------------------------------
    let dist = std::env::var_os("SAMGEO_PLUGIN_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR").map(|t| PathBuf::from(t).join("plugins/dist"))
        })
        .unwrap_or_else(|| workspace().join("target/plugins/dist"));
    if dist.join("geojson.wasm").is_file() {
        let cache = std::env::temp_dir().join(format!("samgeo-bench-{}", std::process::id()));
        let config = PluginsConfig {
            directory: dist,
            ..PluginsConfig::default()
        };
        let host = PluginHost::new(&config, &cache).unwrap();
        let georef = Georef {
            geotransform: Some([500_000.0, 10.0, 0.0, 6_100_000.0, 0.0, -10.0]),
            crs_wkt: None,
            epsg: Some(32633),
        };
        let request = |n: u32, w: u32, h: u32| PluginRequest {
            masks: MaskSet {
                width: w,
                height: h,
                masks: disc_masks(n, w, h),
            },
            georef: georef.clone(),
            params: Vec::new(),
        };
        let r500 = request(500, 4096, 4096);
        let r1 = request(1, 791, 718);
        bench(
            &filter,
            "plugin: geojson formatter, 500 masks on 4096²",
            long,
            || host.format("geojson", &r500).unwrap(),
        );
        bench(
            &filter,
            "plugin: geojson formatter, 1 mask on 791x718",
            short,
            || host.format("geojson", &r1).unwrap(),
        );
        bench(
            &filter,
            "plugin: geotiff formatter, 500 masks on 4096²",
            long,
            || host.format("geotiff", &r500).unwrap(),
        );
        bench(
            &filter,
            "plugin: filter chain (size, foreground, unique), 500 masks",
            short,
            || host.apply_filters(r500.clone()).unwrap(),
        );
        let _ = std::fs::remove_dir_all(&cache);
    } else {
        skip(
            "plugin: *",
            "geojson.wasm not found (bash plugins/build.sh, or SAMGEO_PLUGIN_DIR)",
        );
    }
}
