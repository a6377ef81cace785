//! The tile loop: one tile at a time (so memory is bounded by the tile, whatever the raster's
//! size), skipping tiles without data, taking up tiles an earlier attempt finished, reporting
//! each tile to the request's [`TileProgress`], and logging how far it is.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use parking_lot::Mutex;

use super::merge::TileMasks;
use super::plan::{Tile, TilePlan, WorkingGrid};
use crate::error::AppError;
use crate::masks::Mask;
use crate::pipeline::SegmentRequest;
use crate::raster::{BandSelection, OpenRaster, RasterError, RgbImage, WindowContent};

/// How often a tiled run logs its progress.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// What a tiled run did with its tiles (the `X-Samgeo-Tiles` header).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TileCounts {
    pub total: usize,
    /// Tiles segmented by this run.
    pub processed: usize,
    /// Tiles without valid pixels (never written, nodata, masked or transparent).
    pub skipped: usize,
    /// Tiles an earlier attempt had finished (their masks came from the progress sink).
    pub resumed: usize,
}

impl TileCounts {
    /// `total=49,processed=12,skipped=37,resumed=0`.
    pub fn header_value(&self) -> String {
        format!(
            "total={},processed={},skipped={},resumed={}",
            self.total, self.processed, self.skipped, self.resumed
        )
    }
}

/// The raster of a tiled run, read window by window in the run's working grid.
pub struct TiledRaster {
    raster: Mutex<OpenRaster>,
    grid: WorkingGrid,
    bands: BandSelection,
}

impl TiledRaster {
    pub fn new(raster: OpenRaster, grid: WorkingGrid, bands: BandSelection) -> TiledRaster {
        TiledRaster {
            raster: Mutex::new(raster),
            grid,
            bands,
        }
    }

    /// The window x0..x1 × y0..y1 of the working grid as RGB, downsampled to at most
    /// `max_side` on its longest side.
    pub fn read(
        &self,
        (x0, y0, x1, y1): (u32, u32, u32, u32),
        max_side: u32,
    ) -> Result<RgbImage, RasterError> {
        let (w, h) = (x1 - x0, y1 - y0);
        let scale = (max_side as f64 / w.max(h).max(1) as f64).min(1.0);
        let size = (
            ((w as f64 * scale).round() as u32).max(1),
            ((h as f64 * scale).round() as u32).max(1),
        );
        let source = self.grid.source_window((x0, y0, x1, y1));
        self.raster
            .lock()
            .read_rgb_window_sized(&self.bands, source, size)
    }

    /// What the tile holds, with its validity per working-grid pixel.
    fn content(&self, tile: &Tile) -> Result<WindowContent, RasterError> {
        let source = self.grid.source_window(tile.window());
        self.raster
            .lock()
            .window_content(&self.bands, source, (tile.width(), tile.height()))
    }
}

/// Runs `segment` on every tile of `plan` in index order and returns each tile's masks in
/// working-grid coordinates, following the [`TileProgress`](crate::pipeline::progress::TileProgress)
/// contract of `common.progress`. `segment` gets a tile and returns masks in the tile's own
/// pixel frame. Masks lying mostly on invalid pixels (nodata, masked) are dropped. Between
/// tiles the deadline and the progress sink's `cancelled()` are checked (409 when cancelled).
pub fn run_tiles(
    plan: &TilePlan,
    source: &TiledRaster,
    common: &SegmentRequest,
    mut segment: impl FnMut(&Tile) -> Result<Vec<Mask>, AppError>,
) -> Result<(Vec<TileMasks>, TileCounts), AppError> {
    let progress = &common.progress;
    let mut counts = TileCounts {
        total: plan.len(),
        ..TileCounts::default()
    };
    progress.planned(counts.total);
    tracing::info!(
        tiles = counts.total,
        cols = plan.cols,
        rows = plan.rows,
        tile_size = plan.tile_size,
        overlap = plan.overlap,
        width = plan.grid.width,
        height = plan.grid.height,
        "tiled run planned"
    );
    let started = Instant::now();
    let mut last_log = started;
    let mut out: Vec<TileMasks> = Vec::new();
    for tile in plan.tiles() {
        if progress.cancelled() {
            return Err(AppError::new(
                StatusCode::CONFLICT,
                format!(
                    "The tiled run was cancelled after {} of {} tiles",
                    tile.index, counts.total
                ),
            ));
        }
        common.deadline.check()?;
        let masks = if let Some(masks) = progress.finished(tile.index) {
            counts.resumed += 1;
            masks
        } else {
            let masks = match source.content(&tile)? {
                WindowContent::Empty => {
                    counts.skipped += 1;
                    Vec::new()
                }
                WindowContent::Data { valid } => {
                    counts.processed += 1;
                    let local = segment(&tile)?;
                    to_grid(local, &tile, valid.as_deref())
                }
            };
            progress.tile_done(tile.index, &masks);
            masks
        };
        if !masks.is_empty() {
            out.push(TileMasks { tile, masks });
        }
        if last_log.elapsed() >= LOG_EVERY {
            last_log = Instant::now();
            log_progress(&counts, tile.index + 1, started);
        }
    }
    log_progress(&counts, counts.total, started);
    // Cancelled during the last tile: nothing is merged (a one-tile run of a cluster's worker
    // stops here too, see `jobs::tile_worker`).
    if progress.cancelled() {
        return Err(AppError::new(
            StatusCode::CONFLICT,
            format!(
                "The tiled run was cancelled after its last tile ({} tiles)",
                counts.total
            ),
        ));
    }
    Ok((out, counts))
}

/// One look at the whole raster, as a run of one tile (so a job sees the same contract).
pub fn single_look(
    common: &SegmentRequest,
    segment: impl FnOnce() -> Result<Vec<Mask>, AppError>,
) -> Result<Vec<Mask>, AppError> {
    let progress = &common.progress;
    progress.planned(1);
    if progress.cancelled() {
        return Err(AppError::new(
            StatusCode::CONFLICT,
            "The run was cancelled before its only tile",
        ));
    }
    if let Some(masks) = progress.finished(0) {
        return Ok(masks);
    }
    let masks = segment()?;
    progress.tile_done(0, &masks);
    Ok(masks)
}

fn log_progress(counts: &TileCounts, done: usize, started: Instant) {
    tracing::info!(
        done,
        total = counts.total,
        processed = counts.processed,
        skipped = counts.skipped,
        resumed = counts.resumed,
        elapsed_s = started.elapsed().as_secs_f64(),
        "tiles done"
    );
}

/// Moves a tile's masks into the working grid, dropping those mostly on invalid pixels.
fn to_grid(masks: Vec<Mask>, tile: &Tile, valid: Option<&[bool]>) -> Vec<Mask> {
    let w = tile.width() as usize;
    masks
        .into_iter()
        .filter(|m| {
            let Some(valid) = valid else { return true };
            let mut inside = 0u64;
            m.for_each_pixel(|x, y| {
                if valid
                    .get(y as usize * w + x as usize)
                    .copied()
                    .unwrap_or(false)
                {
                    inside += 1;
                }
            });
            inside * 2 > m.area
        })
        .map(|mut m| {
            m.bbox.x += tile.x0;
            m.bbox.y += tile.y0;
            m
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_on_nodata_are_dropped_and_the_rest_moved_to_the_grid() {
        let tile = Tile {
            index: 3,
            col: 1,
            row: 1,
            x0: 100,
            y0: 200,
            x1: 104,
            y1: 202,
        };
        // Valid: the left half of the 4×2 tile.
        let valid = [true, true, false, false, true, true, false, false];
        let left = Mask::from_dense(1, 0.9, 1.0, 4, 2, &valid).unwrap();
        let right_dense: Vec<bool> = valid.iter().map(|v| !v).collect();
        let right = Mask::from_dense(2, 0.9, 1.0, 4, 2, &right_dense).unwrap();
        let out = to_grid(vec![left, right], &tile, Some(&valid));
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].id, out[0].bbox.x, out[0].bbox.y), (1, 100, 200));
    }
}
