//! Tiled segmentation of large rasters at native resolution (or a requested coarser one): the
//! plan (which tiles, in what order), the loop over tiles, and the merge of their masks into
//! one set for the raster. See README, "Tiled segmentation".
//!
//! Tile embeddings are computed, used and dropped; they never enter the embedding cache (a
//! run visits each tile once, and thousands of tile embeddings would only evict the entries
//! other requests reuse).

pub mod merge;
pub mod plan;
pub mod rows;
pub mod run;

pub use merge::{merge, TileMasks};
pub use plan::{Tile, TilePlan, TilingMode, TilingRequest, WorkingGrid, TILING_MODES};
pub use run::{run_tiles, single_look, TileCounts, TiledRaster};
