//! Formatter plugin: the label raster as a greyscale PNG
