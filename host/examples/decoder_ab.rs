//! Automatic mask generation with the official SAM decoder export (A) and the fast one (B,
//! `scripts/export-models --decoder fast`) on the same weights, interleaved in one run, on one
//! embedding (the encoder is the same for both, so it runs once and is not timed):
//!
//! ```sh
//! cargo run --release -p samgeo-host --example decoder_ab -- \
//!     ENCODER DECODER FAST_DECODER IMAGE [POINTS_PER_SIDE=16] [RUNS=1] [THREADS=2]
//! ```
//!
//! Prints the load average before and after, each run's time, the B/A ratio of the medians,
//! and whether both gave the same masks (`pred_iou_thresh` and `stability_score_thresh` 0, so
//! random weights keep candidates too).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use samgeo_host::config::{ModelFiles, RuntimeConfig};
use samgeo_host::models::{self, ModelError, ModelFamily, OnnxRuntime};
use samgeo_host::pipeline::mask_generator::{generate, AutomaticParams, CropBox};
use samgeo_host::raster::{BandSelection, OpenRaster, RasterLimits};

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [encoder, standard, fast, image, rest @ ..] = args.as_slice() else {
        bail!("usage: decoder_ab ENCODER DECODER FAST_DECODER IMAGE [PPS] [RUNS] [THREADS]");
    };
    let pps: u32 = rest.first().map_or(Ok(16), |v| v.parse())?;
    let runs: usize = rest.get(1).map_or(Ok(1), |v| v.parse())?;
    let threads: usize = rest.get(2).map_or(Ok(2), |v| v.parse())?;
    println!("load average before: {}", load_average());
    let runtime = OnnxRuntime::init(&RuntimeConfig {
        execution_providers: vec!["cpu".into()],
        intra_threads: threads,
        ..RuntimeConfig::default()
    })?;
    let load = |decoder: &String| {
        let files = ModelFiles {
            encoder: Some(PathBuf::from(encoder)),
            decoder: Some(PathBuf::from(decoder)),
            ..Default::default()
        };
        models::load(&runtime, ModelFamily::Sam, "ab", &files)
    };
    let (a, b) = (load(standard)?, load(fast)?);
    let bytes = std::fs::read(image).with_context(|| format!("reading {image}"))?;
    let raster = OpenRaster::open(
        bytes,
        RasterLimits {
            max_pixels: u64::MAX,
        },
    )
    .map_err(|e| anyhow::anyhow!("{image}: {e:?}"))?;
    let (w, h) = (raster.info().width, raster.info().height);
    let rgb = raster
        .read_rgb(&BandSelection::default(), a.input_side())
        .map_err(|e| anyhow::anyhow!("{image}: {e:?}"))?;
    let t = Instant::now();
    let embedding = Arc::new(a.encode(&rgb, w, h)?);
    println!(
        "encode (untimed in the A/B): {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let params = AutomaticParams {
        points_per_side: pps,
        pred_iou_thresh: 0.0,
        stability_score_thresh: 0.0,
        ..AutomaticParams::default()
    };
    let whole = CropBox::full(w, h);
    let embed = |crop: CropBox| {
        if crop == whole {
            Ok(embedding.clone())
        } else {
            Err(ModelError::Inference(
                "only the whole image is encoded".into(),
            ))
        }
    };
    let (mut ta, mut tb) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let t = Instant::now();
        let out_a = generate(a.as_ref(), w, h, &embed, &params)?;
        ta.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let out_b = generate(b.as_ref(), w, h, &embed, &params)?;
        tb.push(t.elapsed().as_secs_f64());
        let same = out_a.masks.len() == out_b.masks.len()
            && out_a
                .masks
                .iter()
                .zip(&out_b.masks)
                .all(|(x, y)| x.bbox == y.bbox && x.runs == y.runs);
        println!(
            "run {run}: standard {:.2} s ({} masks of {} candidates), fast {:.2} s ({} masks of {} candidates), same masks: {same}",
            ta[run],
            out_a.masks.len(),
            out_a.candidates,
            tb[run],
            out_b.masks.len(),
            out_b.candidates
        );
    }
    ta.sort_by(f64::total_cmp);
    tb.sort_by(f64::total_cmp);
    let (ma, mb) = (ta[runs / 2], tb[runs / 2]);
    println!(
        "automatic points_per_side {pps}, {runs} run(s): standard {ma:.2} s, fast {mb:.2} s, fast/standard {:.3}",
        mb / ma
    );
    println!("load average after: {}", load_average());
    Ok(())
}
