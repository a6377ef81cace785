//! Formatter plugin: masks as a GeoJSON FeatureCollection of polygons
