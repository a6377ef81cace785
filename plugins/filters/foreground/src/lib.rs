//! Filter plugin: drops background masks
