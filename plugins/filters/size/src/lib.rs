//! Filter plugin: drops masks outside [min_size, max_size] pixels
