//! Request pipelines: prompt parsing and automatic mask generation.

pub mod automatic;
pub mod prompts;
