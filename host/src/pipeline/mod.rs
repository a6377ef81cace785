//! The request pipeline, one way: upload → raster → embedding → masks → filters → formatter.
//! Everything here is blocking and runs on the blocking thread pool.

pub mod automatic;
pub mod deadline;
pub mod detections;
pub mod mask_generator;
pub mod predict;
pub mod progress;
pub mod prompts;
mod request;
mod steps;
pub mod text;
pub mod tiled;
pub mod windows;

pub use deadline::Deadline;
pub use request::{ImageInput, PipelineOutput, SegmentRequest, Stages};
pub use steps::{check_job_image, unknown_image};
