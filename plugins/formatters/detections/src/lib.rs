//! Formatter plugin: per-label bounding boxes as a GeoJSON FeatureCollection in map coordinates
