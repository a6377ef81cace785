//! Formatter plugin: per-label bounding boxes in pixel coordinates as JSON
