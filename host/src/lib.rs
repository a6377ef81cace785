//! samgeo-host: an HTTP server that runs Segment Anything models on geospatial rasters.
//!
//! Data flows one way: upload → [`raster`] → embedding ([`models`], [`cache`]) → masks
//! ([`masks`]) → filters and formatter ([`plugins`]) → response ([`http`]).

pub mod cache;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod error;
pub mod http;
pub mod images;
pub mod jobs;
pub mod logging;
pub mod masks;
pub mod metrics;
pub mod models;
pub mod pipeline;
pub mod plugins;
pub mod raster;
pub mod server;
pub mod state;
pub mod test_skip;
