//! Runs the host's automatic mask generation (whole image, no crop layers) on one image and
//! prints every mask as JSON, for `bench/parity.py --auto` to match mask by mask against
//! segment-anything's / sam2's generators (the server's label rasters hide overlapping masks).
//!
//! ```sh
//! cargo run --release -p samgeo-host --example automatic_dump -- \
//!     CONFIG VERSION ID IMAGE POINTS_PER_SIDE > masks.json
//! ```
//!
//! Output: `{"width", "height", "masks": [{"bbox": [x, y, w, h], "runs": [...], "score",
//! "stability", "area"}]}` with the run-length encoding of `samgeo_host::masks::Mask`.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use samgeo_host::config::Config;
use samgeo_host::models::{self, ModelError, ModelFamily, OnnxRuntime};
use samgeo_host::pipeline::mask_generator::{generate, AutomaticParams, CropBox};
use samgeo_host::raster::{BandSelection, OpenRaster, RasterLimits};
use serde_json::json;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [config, version, id, image, pps] = args.as_slice() else {
        bail!("usage: automatic_dump CONFIG VERSION ID IMAGE POINTS_PER_SIDE");
    };
    let config = Config::load(Path::new(config), std::env::vars())?;
    let family = match version.as_str() {
        "sam" => ModelFamily::Sam,
        "sam2" => ModelFamily::Sam2,
        other => bail!("model version {other}: sam or sam2"),
    };
    let files = config
        .model_files(version, id)
        .with_context(|| format!("models.{version}.\"{id}\" is not configured"))?;
    let runtime = OnnxRuntime::init(&config.runtime)?;
    let model = models::load(&runtime, family, &format!("models.{version}.{id}"), files)?;
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
        .read_rgb(&BandSelection::default(), model.input_side())
        .map_err(|e| anyhow::anyhow!("{image}: {e:?}"))?;
    let embedding = Arc::new(model.encode(&rgb, w, h)?);
    let params = AutomaticParams {
        points_per_side: pps.parse().context("POINTS_PER_SIDE")?,
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
    let out = generate(model.as_ref(), w, h, &embed, &params)?;
    let masks: Vec<_> = out
        .masks
        .iter()
        .map(|m| {
            json!({
                "bbox": [m.bbox.x, m.bbox.y, m.bbox.width, m.bbox.height],
                "runs": m.runs,
                "score": m.score,
                "stability": m.stability,
                "area": m.area,
            })
        })
        .collect();
    println!(
        "{}",
        json!({"width": w, "height": h, "candidates": out.candidates, "masks": masks})
    );
    Ok(())
}
