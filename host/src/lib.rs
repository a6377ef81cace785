//! samgeo-host: an HTTP server that runs Segment Anything models on geospatial rasters.
//!
//! Data flows one way: upload → [`raster`] → embedding ([`models`], [`cache`]) → masks
//! ([`masks`]) → filters and formatter ([`plugins`]) → response ([`http`]).

pub mod config;
pub mod masks;
pub mod error;
pub mod raster;
pub mod models;
pub mod cache;
pub mod pipeline;
