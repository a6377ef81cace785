//! Formatter plugin: the label raster as a Deflate-compressed GeoTIFF
