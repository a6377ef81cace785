//! How a run over many tiles reports what it has done, takes up where an earlier attempt
//! stopped, and learns that it should stop. Jobs implement [`TileProgress`]; a synchronous
//! request passes [`NoProgress`].
//!
//! The contract, for a run that is split into `total` tiles numbered `0 .. total` in a fixed
//! order (the same raster and parameters always give the same tiles):
//! 1. `planned(total)` once, before the first tile (an untiled run plans 1 tile);
//! 2. per tile, `finished(index)`: `Some(masks)` when an earlier attempt completed it (the
//!    run uses those masks and skips the tile's inference), otherwise the run computes it
//!    and calls `tile_done(index, &masks)` with the tile's masks in full-raster coordinates,
//!    before any merging (tiles skipped as nodata report an empty list);
//! 3. `cancelled()` is checked between tiles and after the last one; when it is true the run
//!    stops with an error (nothing is merged).

use crate::masks::Mask;

/// Receives the progress of a tiled run. Called from the blocking thread that runs it.
pub trait TileProgress: Send + Sync {
    /// The run has `total` tiles.
    fn planned(&self, total: usize);
    /// The masks of tile `index` from an earlier attempt, when it completed then.
    fn finished(&self, index: usize) -> Option<Vec<Mask>>;
    /// Tile `index` is done; `masks` are in full-raster pixel coordinates, before merging.
    fn tile_done(&self, index: usize, masks: &[Mask]);
    /// Whether the run should stop before its next tile.
    fn cancelled(&self) -> bool;
}

/// The progress sink of a request nobody watches.
pub struct NoProgress;

impl TileProgress for NoProgress {
    fn planned(&self, _total: usize) {}

    fn finished(&self, _index: usize) -> Option<Vec<Mask>> {
        None
    }

    fn tile_done(&self, _index: usize, _masks: &[Mask]) {}

    fn cancelled(&self) -> bool {
        false
    }
}
