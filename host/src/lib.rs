//! samgeo-host: an HTTP server that runs Segment Anything models on geospatial rasters.
