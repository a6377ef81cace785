//! Masks as they travel from the models through the filter chain to the formatters: a compact,
//! bbox-local run-length encoding (the same one the WIT package `samgeo:plugin` uses).
//!
//! [`Mask`], [`BBox`] and [`MaskSet`] are the plugin SDK's own types (`samgeo-plugin-sdk`,
//! built for the host without its default features), so host and plugins share one definition
//! and its tests; this module adds what only the host needs around them.

pub use samgeo_plugin_sdk::model::{BBox, Mask, MaskSet};

/// Where a raster lies on Earth; all `None` for an image without georeferencing.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Georef {
    /// GDAL's six affine coefficients.
    pub geotransform: Option<[f64; 6]>,
    /// The CRS as WKT.
    pub crs_wkt: Option<String>,
    /// The CRS's EPSG code where one matches.
    pub epsg: Option<u32>,
}

/// What the filters and the formatter of one request see.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PluginRequest {
    pub masks: MaskSet,
    pub georef: Georef,
    /// Form fields and configured plugin options, as strings.
    pub params: Vec<(String, String)>,
}

/// A formatter's result: the response body and how to label it.
#[derive(Debug, Clone, PartialEq)]
pub struct FormattedOutput {
    pub content_type: String,
    pub file_name: String,
    pub bytes: Vec<u8>,
}
