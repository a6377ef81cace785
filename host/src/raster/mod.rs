//! Raster input: uploaded bytes → GDAL dataset in memory (`/vsimem/`, no temporary files) →
//! georeferencing, prompt coordinates in pixels, and the 8-bit RGB image the models take.

mod bands;
mod coverage;
pub mod georef;
mod open;
pub mod preview;
mod stretch;
pub mod tiles;
mod warp;

pub use bands::BandSelection;
pub use coverage::WindowContent;
pub use georef::{georef_of, to_pixel_coords};
pub use open::{OpenRaster, RasterLimits};
pub use stretch::percentile_stretch;

/// A raster problem the client caused (bad file, bad band, bad CRS) or a limit it hit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RasterError {
    /// The input is wrong: 400.
    Invalid(String),
    /// The input is larger than configured: 413.
    TooLarge(String),
}

impl From<RasterError> for crate::error::AppError {
    fn from(e: RasterError) -> Self {
        match e {
            RasterError::Invalid(m) => crate::error::AppError::bad_request(m),
            RasterError::TooLarge(m) => crate::error::AppError::too_large(m),
        }
    }
}

impl std::fmt::Display for RasterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RasterError::Invalid(m) | RasterError::TooLarge(m) => f.write_str(m),
        }
    }
}

/// An 8-bit RGB image, row-major, 3 bytes per pixel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

/// Size and georeferencing of an opened raster, read from its header alone.
#[derive(Debug, Clone, PartialEq)]
pub struct RasterInfo {
    pub width: u32,
    pub height: u32,
    pub band_count: usize,
    /// GDAL's name of the first band's data type ("Byte", "UInt16", "Float32", ...).
    pub data_type: String,
    pub driver: String,
    pub georef: crate::masks::Georef,
}
