//! `/segment/predict`: points and boxes → one mask per prompt row (with `multimask_output`, the
//! best of three candidates as the seed returns, or all three with `all_candidates`). On a
//! large raster (see [`Tiling`]) the model looks at windows at native resolution around the
//! prompts ([`super::windows`]); masks always come back in full-raster coordinates.

use super::prompts::Prompts;
use super::steps::{embedding_for, finish, prepare_within, window_embedding_for, Prepared};
use super::windows::{self, Tiling, WindowGroup};
use super::{PipelineOutput, SegmentRequest};
use crate::cache::CacheOutcome;
use crate::error::AppError;
use crate::masks::Mask;
use crate::models::sam3::{self, box_exemplars};
use crate::models::{mask_from_logits, DecoderPrompt, LoadedModel};
use crate::raster::{to_pixel_coords, RasterInfo};
use crate::state::AppState;

/// A checked predict request.
pub struct PredictRequest {
    pub common: SegmentRequest,
    pub prompts: Prompts,
    pub point_crs: Option<String>,
    pub multimask: bool,
    /// With `multimask`: every candidate instead of the best one.
    pub all_candidates: bool,
    /// Windows at native resolution, or one downsampled look.
    pub tiling: Tiling,
}

/// Logit threshold of a mask pixel, and the offset of the stability score (SAM's values).
const MASK_THRESHOLD: f32 = 0.0;
const STABILITY_OFFSET: f32 = 1.0;

/// Runs the request (blocking).
pub fn run(state: &AppState, mut request: PredictRequest) -> Result<PipelineOutput, AppError> {
    let config = state.config();
    // A raster above max_pixels is still looked at, in windows, unless tiling is off.
    let max_pixels = match request.tiling {
        Tiling::Off => config.server.max_pixels,
        _ => config.server.max_tiled_pixels,
    };
    let (prompts, point_crs) = (&request.prompts, request.point_crs.as_deref());
    let prepared = prepare_within(state, &mut request.common, max_pixels, |raster, info| {
        pixel_prompts(raster, info, prompts, point_crs)
    })?;
    let info = prepared.info.clone();
    let windowed = request.tiling.windowed(
        info.width,
        info.height,
        config.tiling.auto_above_px,
        config.server.max_pixels,
    );
    let (masks, cache, stages) = if windowed {
        let side = config.tiling.tile_size;
        run_windows(state, &request, prepared, side)?
    } else {
        run_whole(state, &request, prepared)?
    };
    finish(state, &request.common, &info, masks, cache, stages)
}

/// One look at the whole raster, downsampled to the model's input size.
fn run_whole(
    state: &AppState,
    request: &PredictRequest,
    prepared: Prepared<Vec<DecoderPrompt>>,
) -> Result<(Vec<Mask>, CacheOutcome, super::Stages), AppError> {
    let (raster, info, sha256, rows) = (
        prepared.raster,
        prepared.info,
        prepared.sha256,
        prepared.checked,
    );
    let mut stages = prepared.stages;
    let deadline = request.common.deadline;
    let (masks, cache) = match prepared.model {
        LoadedModel::Promptable(model) => {
            let (embedding, cache) = embedding_for(
                state,
                &request.common,
                &sha256,
                &raster,
                model.input_side(),
                |rgb, w, h| model.encode(rgb, w, h),
            )?;
            drop(raster);
            stages.mark("embedding");
            deadline.check()?;
            let decoded = model.decode(&embedding, &rows, request.multimask)?;
            stages.mark("decode");
            let masks = masks_from_decoded(&decoded, !request.all_candidates);
            stages.mark("masks");
            (masks, cache)
        }
        LoadedModel::Sam3(model) => {
            let (embedding, cache) = embedding_for(
                state,
                &request.common,
                &sha256,
                &raster,
                model.input_side(),
                |rgb, w, h| model.encode_image(rgb, w, h),
            )?;
            drop(raster);
            stages.mark("embedding");
            deadline.check()?;
            let masks = sam3_exemplar_masks(&model, &embedding, &rows, info.width, info.height)?;
            stages.mark("decode");
            (masks, cache)
        }
    };
    Ok((masks, cache, stages))
}

/// Windows at native resolution around the prompts: each group of prompts is decoded against
/// its window's embedding (cached per window), and its masks moved into full-raster
/// coordinates. The request's cache outcome is the costliest of its windows' (a hit when every
/// window's embedding was cached here).
fn run_windows(
    state: &AppState,
    request: &PredictRequest,
    prepared: Prepared<Vec<DecoderPrompt>>,
    side: u32,
) -> Result<(Vec<Mask>, CacheOutcome, super::Stages), AppError> {
    let (raster, info, sha256, rows) = (
        prepared.raster,
        prepared.info,
        prepared.sha256,
        prepared.checked,
    );
    let mut stages = prepared.stages;
    let deadline = request.common.deadline;
    let groups = windows::plan(rows, info.width, info.height, side);
    tracing::debug!(windows = groups.len(), "predict: prompts in windows");
    let mut masks = Vec::new();
    let mut cache = CacheOutcome::Hit;
    for WindowGroup { window, rows } in groups {
        let (w, h) = (window.width(), window.height());
        let found = match &prepared.model {
            LoadedModel::Promptable(model) => {
                let (embedding, hit) = window_embedding_for(
                    state,
                    &request.common,
                    &sha256,
                    &raster,
                    window.bounds(),
                    model.input_side(),
                    |rgb, w, h| model.encode(rgb, w, h),
                )?;
                cache = cache.and(hit);
                deadline.check()?;
                let decoded = model.decode(&embedding, &rows, request.multimask)?;
                masks_from_decoded(&decoded, !request.all_candidates)
            }
            LoadedModel::Sam3(model) => {
                let (embedding, hit) = window_embedding_for(
                    state,
                    &request.common,
                    &sha256,
                    &raster,
                    window.bounds(),
                    model.input_side(),
                    |rgb, w, h| model.encode_image(rgb, w, h),
                )?;
                cache = cache.and(hit);
                deadline.check()?;
                sam3_exemplar_masks(model, &embedding, &rows, w, h)?
            }
        };
        for mut mask in found {
            mask.bbox.x += window.x0;
            mask.bbox.y += window.y0;
            mask.id = masks.len() as u32 + 1;
            mask.label = mask.id;
            masks.push(mask);
        }
    }
    drop(raster);
    stages.mark("windows");
    Ok((masks, cache, stages))
}

/// SAM3: boxes are exemplars, every object like them in the `width`×`height` image (as the
/// seed). Points never get here ([`check_sam3_points`]).
fn sam3_exemplar_masks(
    model: &crate::models::sam3::Sam3,
    embedding: &crate::models::Embedding,
    rows: &[DecoderPrompt],
    width: u32,
    height: u32,
) -> Result<Vec<Mask>, AppError> {
    let boxes: Vec<[f64; 4]> = rows.iter().filter_map(|r| r.bbox).collect();
    let exemplars = box_exemplars(&boxes, width, height);
    let text = model.encode_text(SAM3_EXEMPLAR_PROMPT)?;
    Ok(model.detect_exemplars(embedding, &text, &exemplars, SAM3_CONFIDENCE)?)
}

/// The text SAM3 gets when only exemplars are given (as the reference does).
const SAM3_EXEMPLAR_PROMPT: &str = "visual";
/// SAM3's default detection threshold.
const SAM3_CONFIDENCE: f32 = 0.5;

/// Thresholds the candidates of every row into masks (empty ones skipped): with `best_only`,
/// only the candidate with the highest predicted IoU (the seed's choice), else every one. A
/// row's candidates go largest first, so that in a label raster the smaller ones stay visible on
/// top; ids follow that order.
fn masks_from_decoded(
    decoded: &[crate::models::DecodedMasks],
    best_only: bool,
) -> Vec<crate::masks::Mask> {
    let mut masks = Vec::new();
    for row in decoded {
        let best = row
            .scores
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i);
        let mut candidates: Vec<crate::masks::Mask> = row
            .logits
            .iter()
            .zip(&row.scores)
            .enumerate()
            .filter(|(i, _)| !best_only || Some(*i) == best)
            .filter_map(|(_, (logits, &score))| {
                mask_from_logits(
                    logits,
                    &row.frame,
                    0,
                    score,
                    MASK_THRESHOLD,
                    STABILITY_OFFSET,
                )
            })
            .collect();
        candidates.sort_by_key(|m| std::cmp::Reverse(m.area));
        for mut mask in candidates {
            mask.id = masks.len() as u32 + 1;
            mask.label = mask.id;
            masks.push(mask);
        }
    }
    masks
}

/// Prompts in pixel coordinates, checked against the image: one row per box (each with all
/// points), or one row with all points when there is no box.
fn pixel_prompts(
    raster: &crate::raster::OpenRaster,
    info: &RasterInfo,
    prompts: &Prompts,
    crs: Option<&str>,
) -> Result<Vec<DecoderPrompt>, AppError> {
    let points = to_pixel_coords(raster.dataset(), &info.georef, &prompts.points, crs)?;
    let (w, h) = (info.width as f64, info.height as f64);
    for (i, (p, given)) in points.iter().zip(&prompts.points).enumerate() {
        if !(0.0..=w).contains(&p[0]) || !(0.0..=h).contains(&p[1]) {
            return Err(AppError::bad_request(format!(
                "point_coords[{i}] = [{}, {}] lies outside the image ({}×{} pixels{})",
                given[0],
                given[1],
                info.width,
                info.height,
                if crs.is_some() {
                    format!("; at pixel [{:.1}, {:.1}]", p[0], p[1])
                } else {
                    String::new()
                }
            )));
        }
    }
    let corners: Vec<[f64; 2]> = prompts
        .boxes
        .iter()
        .flat_map(|b| [[b[0], b[1]], [b[2], b[3]], [b[0], b[3]], [b[2], b[1]]])
        .collect();
    let corners = to_pixel_coords(raster.dataset(), &info.georef, &corners, crs)?;
    let mut boxes = Vec::with_capacity(prompts.boxes.len());
    for (i, c) in corners.chunks_exact(4).enumerate() {
        let xs = c.iter().map(|p| p[0]);
        let ys = c.iter().map(|p| p[1]);
        let x0 = xs.clone().fold(f64::INFINITY, f64::min).max(0.0);
        let x1 = xs.fold(f64::NEG_INFINITY, f64::max).min(w);
        let y0 = ys.clone().fold(f64::INFINITY, f64::min).max(0.0);
        let y1 = ys.fold(f64::NEG_INFINITY, f64::max).min(h);
        if x0 >= x1 || y0 >= y1 {
            return Err(AppError::bad_request(format!(
                "boxes[{i}] = {:?} does not overlap the image ({}×{} pixels)",
                prompts.boxes[i], info.width, info.height
            )));
        }
        boxes.push([x0, y0, x1, y1]);
    }
    let row = |bbox| DecoderPrompt {
        points: points.clone(),
        labels: prompts.labels.clone(),
        bbox,
    };
    Ok(if boxes.is_empty() {
        vec![row(None)]
    } else {
        boxes.into_iter().map(|b| row(Some(b))).collect()
    })
}

/// SAM3 point prompts are the seed's `predict_inst`: the object under the point, from SAM3's
/// interactive instance head. The SAM3 exports this server loads (samexporter's) lack that
/// head, so a configured SAM3 model answers points with 400 naming what it lacks, rather than
/// treating them as exemplars (every similar object). Without files configured the request goes
/// on to the usual 503 naming the key to add.
pub fn check_sam3_points(
    config: &crate::config::Config,
    version: &str,
    id: &str,
    prompts: &Prompts,
) -> Result<(), AppError> {
    if version == "sam3" && !prompts.points.is_empty() && config.model_files(version, id).is_some()
    {
        return Err(AppError::bad_request(sam3::points_unsupported(
            &super::steps::config_key(version, id),
        )));
    }
    Ok(())
}

/// Loads a model at start-up (`--preload`).
pub fn preload(
    state: &AppState,
    config: &crate::config::Config,
    version: &str,
    id: &str,
) -> Result<(), AppError> {
    super::steps::model_for(state, config, version, id).map(|_| ())
}
