//! The request pipeline, one way: upload → raster → embedding → masks → filters → formatter.
//! Everything here is blocking and runs on the blocking thread pool.

pub mod automatic;
pub mod automatic_run;
pub mod deadline;
pub mod detections;
pub mod predict;
pub mod prompts;
mod shared;
pub mod text;

pub use deadline::Deadline;
pub use shared::{PipelineOutput, SegmentRequest, Stages};
