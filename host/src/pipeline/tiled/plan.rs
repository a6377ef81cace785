//! Whether a request is tiled, the grid it works on (native pixels, or coarser at a requested
//! `resolution`), and its tiles in a fixed order.

use crate::config::Config;
use crate::error::AppError;
use crate::masks::Georef;
use crate::raster::RasterInfo;

/// The values of the `tiling` form field.
pub const TILING_MODES: [&str; 3] = ["auto", "on", "off"];

/// The `tiling` form field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TilingMode {
    /// Tile when the longest side exceeds `[tiling] auto_above_px` (or a `resolution` is given).
    Auto,
    /// Always tile (a raster smaller than a tile is one tile, at native resolution).
    On,
    /// Look at the whole raster once, downsampled to the model's input (the seed's behaviour).
    Off,
}

impl TilingMode {
    /// Parses `auto`, `on` or `off`.
    pub fn parse(text: &str) -> Result<TilingMode, AppError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(TilingMode::Auto),
            "on" => Ok(TilingMode::On),
            "off" => Ok(TilingMode::Off),
            other => Err(AppError::bad_request(format!(
                "Invalid tiling '{other}'. Must be one of: auto, on, off"
            ))),
        }
    }
}

/// Smallest `tile_size`.
pub const MIN_TILE_SIZE: u32 = 256;
/// Largest `tile_size` (a tile larger than the model's input is looked at downsampled).
pub const MAX_TILE_SIZE: u32 = 4096;
/// Smallest `tile_overlap`: fragments of an object cut by a seam are matched by the pixels they
/// share in the overlap.
pub const MIN_TILE_OVERLAP: u32 = 32;

/// The tiling fields of a request, checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TilingRequest {
    pub mode: TilingMode,
    /// Side of a tile, in pixels of the working grid.
    pub tile_size: u32,
    /// Overlap of neighbouring tiles, in pixels of the working grid.
    pub tile_overlap: u32,
    /// CRS units per pixel of the working grid; `None` = the raster's own pixels.
    pub resolution: Option<f64>,
    /// `[tiling] auto_above_px`.
    pub auto_above_px: u32,
}

impl TilingRequest {
    /// Checks the form fields; absent sizes take the `[tiling]` defaults. 400 naming the field.
    pub fn new(
        config: &Config,
        mode: &str,
        tile_size: Option<i64>,
        tile_overlap: Option<i64>,
        resolution: Option<f64>,
    ) -> Result<TilingRequest, AppError> {
        let mode = TilingMode::parse(mode)?;
        let tile_size = tile_size.unwrap_or(config.tiling.tile_size.into());
        if !(MIN_TILE_SIZE as i64..=MAX_TILE_SIZE as i64).contains(&tile_size) {
            return Err(AppError::bad_request(format!(
                "tile_size must be between {MIN_TILE_SIZE} and {MAX_TILE_SIZE} (got {tile_size})"
            )));
        }
        let tile_overlap = tile_overlap.unwrap_or(config.tiling.tile_overlap.into());
        if tile_overlap < MIN_TILE_OVERLAP as i64 || tile_overlap * 2 >= tile_size {
            return Err(AppError::bad_request(format!(
                "tile_overlap must be at least {MIN_TILE_OVERLAP} and less than half of tile_size {tile_size} (got {tile_overlap})"
            )));
        }
        if let Some(r) = resolution {
            if !(r.is_finite() && r > 0.0) {
                return Err(AppError::bad_request(format!(
                    "resolution must be a positive number of CRS units per pixel (got {r})"
                )));
            }
            if mode == TilingMode::Off {
                return Err(AppError::bad_request(
                    "resolution applies to tiled runs; it cannot be combined with tiling=off",
                ));
            }
        }
        Ok(TilingRequest {
            mode,
            tile_size: tile_size as u32,
            tile_overlap: tile_overlap as u32,
            resolution,
            auto_above_px: config.tiling.auto_above_px,
        })
    }

    /// The largest raster this request may open, in pixels: `max_tiled_pixels` unless tiling
    /// is off.
    pub fn max_pixels(&self, config: &Config) -> u64 {
        match self.mode {
            TilingMode::Off => config.server.max_pixels,
            _ => config.server.max_tiled_pixels,
        }
    }

    /// The tile plan for a raster, or `None` for one look at the whole raster. An untiled
    /// raster above `max_pixels` is 413; a `resolution` finer than the raster's, or on a raster
    /// without a geotransform, is 400.
    pub fn plan(&self, info: &RasterInfo, max_pixels: u64) -> Result<Option<TilePlan>, AppError> {
        let grid = match self.resolution {
            Some(r) => WorkingGrid::at_resolution(info, r)?,
            None => WorkingGrid::native(info),
        };
        let tiled = match self.mode {
            TilingMode::Off => false,
            TilingMode::On => true,
            TilingMode::Auto => {
                self.resolution.is_some() || info.width.max(info.height) > self.auto_above_px
            }
        };
        if !tiled {
            let pixels = info.width as u64 * info.height as u64;
            if pixels > max_pixels {
                return Err(AppError::too_large(format!(
                    "The image has {}×{} = {pixels} pixels; this server accepts at most {max_pixels} without tiling (send tiling=auto or on)",
                    info.width, info.height
                )));
            }
            return Ok(None);
        }
        Ok(Some(TilePlan::new(grid, self.tile_size, self.tile_overlap)))
    }
}

/// The pixel grid a tiled run works on: the raster's own, or a coarser one at a requested
/// resolution. Masks come back in this grid's pixels, with its geotransform.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WorkingGrid {
    pub width: u32,
    pub height: u32,
    /// Raster columns per grid column.
    pub scale_x: f64,
    /// Raster rows per grid row.
    pub scale_y: f64,
    raster_width: u32,
    raster_height: u32,
}

impl WorkingGrid {
    /// The raster's own pixels.
    pub fn native(info: &RasterInfo) -> WorkingGrid {
        WorkingGrid {
            width: info.width,
            height: info.height,
            scale_x: 1.0,
            scale_y: 1.0,
            raster_width: info.width,
            raster_height: info.height,
        }
    }

    /// `resolution` CRS units per pixel (never finer than the raster's own pixels).
    pub fn at_resolution(info: &RasterInfo, resolution: f64) -> Result<WorkingGrid, AppError> {
        let Some(gt) = info.georef.geotransform else {
            return Err(AppError::bad_request(
                "resolution needs a georeferenced raster; this one has no geotransform",
            ));
        };
        let (px, py) = (gt[1].hypot(gt[4]), gt[2].hypot(gt[5]));
        let native = px.max(py);
        if resolution < px.min(py) * (1.0 - 1e-9) {
            return Err(AppError::bad_request(format!(
                "resolution {resolution} is finer than the raster's own pixels ({native} CRS units); give {native} or more"
            )));
        }
        let side = |n: u32, pixel: f64| ((n as f64 * pixel / resolution).round() as u32).max(1);
        let (width, height) = (side(info.width, px), side(info.height, py));
        Ok(WorkingGrid {
            width,
            height,
            scale_x: info.width as f64 / width as f64,
            scale_y: info.height as f64 / height as f64,
            raster_width: info.width,
            raster_height: info.height,
        })
    }

    /// Whether the grid is the raster's own pixels.
    pub fn is_native(&self) -> bool {
        (self.width, self.height) == (self.raster_width, self.raster_height)
    }

    /// The raster window (columns x0..x1, rows y0..y1) under a window of this grid.
    pub fn source_window(&self, (x0, y0, x1, y1): (u32, u32, u32, u32)) -> (u32, u32, u32, u32) {
        let map = |v: u32, scale: f64, limit: u32| ((v as f64 * scale).round() as u32).min(limit);
        let (sx0, sy0) = (
            map(x0, self.scale_x, self.raster_width - 1),
            map(y0, self.scale_y, self.raster_height - 1),
        );
        let (sx1, sy1) = (
            map(x1, self.scale_x, self.raster_width).max(sx0 + 1),
            map(y1, self.scale_y, self.raster_height).max(sy0 + 1),
        );
        (sx0, sy0, sx1, sy1)
    }

    /// The raster's description in this grid: its size and a geotransform scaled to it.
    pub fn info(&self, raster: &RasterInfo) -> RasterInfo {
        let mut info = raster.clone();
        info.width = self.width;
        info.height = self.height;
        if let Some(g) = raster.georef.geotransform {
            let (sx, sy) = (self.scale_x, self.scale_y);
            info.georef = Georef {
                geotransform: Some([g[0], g[1] * sx, g[2] * sy, g[3], g[4] * sx, g[5] * sy]),
                ..raster.georef.clone()
            };
        }
        info
    }
}

/// One tile: columns x0..x1, rows y0..y1 of the working grid, at (col, row) of the tile grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    /// Position in the run's fixed order (row-major).
    pub index: usize,
    pub col: u32,
    pub row: u32,
    pub x0: u32,
    pub y0: u32,
    pub x1: u32,
    pub y1: u32,
}

impl Tile {
    pub fn width(&self) -> u32 {
        self.x1 - self.x0
    }

    pub fn height(&self) -> u32 {
        self.y1 - self.y0
    }

    /// (x0, y0, x1, y1).
    pub fn window(&self) -> (u32, u32, u32, u32) {
        (self.x0, self.y0, self.x1, self.y1)
    }
}

/// The tiles of a run, row-major. Neighbouring tiles overlap by `overlap` pixels; the last
/// tile of a row or column ends at the grid's edge (it may overlap its neighbour by more).
#[derive(Debug, Clone, PartialEq)]
pub struct TilePlan {
    pub grid: WorkingGrid,
    pub tile_size: u32,
    pub overlap: u32,
    pub cols: u32,
    pub rows: u32,
}

impl TilePlan {
    pub fn new(grid: WorkingGrid, tile_size: u32, overlap: u32) -> TilePlan {
        let count = |side: u32| -> u32 {
            if side <= tile_size {
                1
            } else {
                (side - overlap).div_ceil(tile_size - overlap)
            }
        };
        TilePlan {
            cols: count(grid.width),
            rows: count(grid.height),
            grid,
            tile_size,
            overlap,
        }
    }

    /// Number of tiles.
    pub fn len(&self) -> usize {
        self.cols as usize * self.rows as usize
    }

    /// Whether the plan has no tile (never: a raster has at least one pixel).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The tile at (col, row).
    pub fn tile(&self, col: u32, row: u32) -> Tile {
        let stride = self.tile_size - self.overlap;
        let span = |i: u32, side: u32| -> (u32, u32) {
            let end = (i * stride + self.tile_size).min(side);
            (end.saturating_sub(self.tile_size), end)
        };
        let (x0, x1) = span(col, self.grid.width);
        let (y0, y1) = span(row, self.grid.height);
        Tile {
            index: row as usize * self.cols as usize + col as usize,
            col,
            row,
            x0,
            y0,
            x1,
            y1,
        }
    }

    /// Every tile, in index order.
    pub fn tiles(&self) -> impl Iterator<Item = Tile> + '_ {
        (0..self.rows).flat_map(move |r| (0..self.cols).map(move |c| self.tile(c, r)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(w: u32, h: u32, gt: Option<[f64; 6]>) -> RasterInfo {
        RasterInfo {
            width: w,
            height: h,
            band_count: 3,
            data_type: "Byte".into(),
            driver: "GTiff".into(),
            georef: Georef {
                geotransform: gt,
                ..Georef::default()
            },
        }
    }

    #[test]
    fn tiles_cover_the_grid_with_the_overlap() {
        let plan = TilePlan::new(WorkingGrid::native(&info(2000, 900, None)), 1024, 128);
        assert_eq!((plan.cols, plan.rows, plan.len()), (3, 1, 3));
        let t: Vec<Tile> = plan.tiles().collect();
        assert_eq!(t[0].window(), (0, 0, 1024, 900));
        assert_eq!(t[1].window(), (896, 0, 1920, 900));
        // The last tile ends at the edge and keeps its full size.
        assert_eq!(t[2].window(), (976, 0, 2000, 900));
        assert_eq!(t[2].index, 2);
        let one = TilePlan::new(WorkingGrid::native(&info(500, 300, None)), 1024, 128);
        assert_eq!(
            one.tiles().map(|t| t.window()).collect::<Vec<_>>(),
            vec![(0, 0, 500, 300)]
        );
    }

    #[test]
    fn auto_tiles_large_rasters_and_off_keeps_the_pixel_limit() {
        let config = Config::default();
        let auto = TilingRequest::new(&config, "auto", None, None, None).unwrap();
        assert!(auto
            .plan(&info(4096, 100, None), u64::MAX)
            .unwrap()
            .is_none());
        assert_eq!(
            auto.plan(&info(4097, 100, None), u64::MAX)
                .unwrap()
                .unwrap()
                .cols,
            5
        );
        let off = TilingRequest::new(&config, "off", None, None, None).unwrap();
        assert_eq!(
            off.plan(&info(6000, 6000, None), 1000).unwrap_err().status,
            413
        );
        for (size, overlap) in [(Some(100), None), (Some(512), Some(256)), (None, Some(8))] {
            let e = TilingRequest::new(&config, "on", size, overlap, None).unwrap_err();
            assert_eq!(e.status, 400, "{}", e.detail);
        }
        assert_eq!(
            TilingRequest::new(&config, "sometimes", None, None, None)
                .unwrap_err()
                .status,
            400
        );
    }

    #[test]
    fn resolution_makes_a_coarser_grid_with_its_geotransform() {
        let raster = info(
            10000,
            5000,
            Some([500000.0, 0.5, 0.0, 4000000.0, 0.0, -0.5]),
        );
        let grid = WorkingGrid::at_resolution(&raster, 2.0).unwrap();
        assert_eq!((grid.width, grid.height), (2500, 1250));
        assert_eq!(grid.source_window((100, 10, 200, 20)), (400, 40, 800, 80));
        let gt = grid.info(&raster).georef.geotransform.unwrap();
        assert_eq!(gt, [500000.0, 2.0, 0.0, 4000000.0, 0.0, -2.0]);
        assert_eq!(
            WorkingGrid::at_resolution(&raster, 0.25)
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(
            WorkingGrid::at_resolution(&info(10, 10, None), 1.0)
                .unwrap_err()
                .status,
            400
        );
    }
}
