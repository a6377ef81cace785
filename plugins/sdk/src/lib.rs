//! The SDK for samgeo plugins (`samgeo:plugin@0.2.0`, WIT in this crate's `wit/`): the
//! bindings, the mask types, and pure-Rust building blocks (RLE, painting, vectorising,
//! GeoTIFF/PNG helpers).
//!
//! A plugin keeps its logic in functions over the [`model`] types, unit-tested natively, and
//! one line, [`export_formatter!`] or [`export_filter!`], connects it to the WIT bindings this
//! crate generates for the wasm target (no `wit_bindgen` in the plugin, no copy of the WIT):
//!
//! ```ignore
//! pub struct Count;
//! impl samgeo_plugin_sdk::Formatter for Count { /* info(), format() */ }
//! samgeo_plugin_sdk::export_formatter!(Count);
//! ```
//!
//! The crate's version follows the WIT package's: 0.2.x binds `samgeo:plugin@0.2.0`.
//!
//! Modules, one job each:
//! * [`model`]: Rust mirrors of the WIT records and the plugin traits;
//! * [`params`]: typed lookups in the request's string parameters;
//! * [`rle`]: the mask run-length encoding;
//! * [`raster`]: painting masks into one label raster;
//! * [`labels`]: per-label scores and painted extents;
//! * [`vectorize`]: label raster to polygons with holes (4-connectivity);
//! * [`transform`]: pixel to map coordinates, CRS names;
//! * [`geometry`]: ring area, orientation, containment;
//! * [`simplify`]: Douglas–Peucker for rings;
//! * [`json`]: a minimal JSON writer;
//! * [`geotiff`]: a GeoTIFF writer, strip by strip (feature `geotiff`, on by default);
//! * [`glue`]: the macros that export a plugin through the WIT bindings;
//! * `bindings` (wasm only): the generated bindings of both worlds.

/// The WIT package version these bindings implement.
pub const WIT_VERSION: &str = "0.2.0";

/// Bindings generated from `wit/` for the two worlds (used by the export macros). Each world
/// has its own module and its own copy of the record types.
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod bindings {
    /// World `formatter-plugin`.
    pub mod formatter {
        wit_bindgen::generate!({
            world: "formatter-plugin",
            path: "wit",
            default_bindings_module: "samgeo_plugin_sdk::bindings::formatter",
            pub_export_macro: true,
            export_macro_name: "export_formatter_world",
        });
    }
    /// World `filter-plugin`.
    pub mod filter {
        wit_bindgen::generate!({
            world: "filter-plugin",
            path: "wit",
            default_bindings_module: "samgeo_plugin_sdk::bindings::filter",
            pub_export_macro: true,
            export_macro_name: "export_filter_world",
        });
    }
}

pub mod geometry;
#[cfg(feature = "geotiff")]
pub mod geotiff;
pub mod glue;
pub mod json;
pub mod labels;
pub mod model;
pub mod params;
pub mod raster;
pub mod rle;
pub mod simplify;
pub mod testutil;
pub mod transform;
pub mod vectorize;

pub use model::{
    BBox, Filter, Formatter, Georef, Geotransform, Host, LogLevel, Mask, MaskSet, NoHost, Output,
    ParamSpec, ParamType, PluginInfo, Request,
};
pub use params::Params;
