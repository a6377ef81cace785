//! What a segmentation request carries through the pipeline, and what comes out of it.

use std::sync::Arc;

use super::progress::{NoProgress, TileProgress};
use super::Deadline;
use crate::masks::FormattedOutput;
use crate::raster::BandSelection;

/// Where a request's raster comes from.
pub enum ImageInput {
    /// The bytes of a multipart upload (the `file` field).
    Upload(Vec<u8>),
    /// A raster stored earlier with `POST /images`, by its id.
    Stored(String),
    /// A local path or GDAL virtual path (`/vsicurl/...`) under one of the operator's
    /// `[inputs] allowed_sources` prefixes (the `source` field).
    Source(String),
}

/// What every segmentation request carries once its fields are checked.
pub struct SegmentRequest {
    pub model_version: String,
    pub model_id: String,
    pub output_format: String,
    pub bands: BandSelection,
    /// The raster to segment.
    pub image: ImageInput,
    /// Parameters for the plugins (form fields and effective defaults).
    pub params: Vec<(String, String)>,
    pub deadline: Deadline,
    /// Told about each tile of a tiled run (a job's progress and resume); `NoProgress` for a
    /// plain request.
    pub progress: Arc<dyn TileProgress>,
}

impl SegmentRequest {
    /// The progress sink of a plain synchronous request.
    pub fn no_progress() -> Arc<dyn TileProgress> {
        Arc::new(NoProgress)
    }
}

/// A formatted response and how it was made.
pub struct PipelineOutput {
    pub output: FormattedOutput,
    /// Where the image embedding came from (`X-Samgeo-Cache`).
    pub cache: crate::cache::CacheOutcome,
    pub mask_count: usize,
    /// Time spent per stage, for the `Server-Timing` header.
    pub stages: Stages,
    /// The model that ran (for the access log and metrics).
    pub model_version: String,
    pub model_id: String,
    /// What a tiled run did with its tiles (the `X-Samgeo-Tiles` header); `None` untiled.
    pub tiles: Option<super::tiled::TileCounts>,
}

/// Wall time of the pipeline's stages, in order.
#[derive(Debug, Default, Clone)]
pub struct Stages {
    last: Option<std::time::Instant>,
    /// (stage name, milliseconds).
    pub spans: Vec<(&'static str, f64)>,
}

impl Stages {
    /// Starts timing now.
    pub fn start() -> Stages {
        Stages {
            last: Some(std::time::Instant::now()),
            spans: Vec::new(),
        }
    }

    /// Records the time since the previous mark as `stage`.
    pub fn mark(&mut self, stage: &'static str) {
        let now = std::time::Instant::now();
        if let Some(last) = self.last {
            self.spans
                .push((stage, now.duration_since(last).as_secs_f64() * 1000.0));
        }
        self.last = Some(now);
    }

    /// The `Server-Timing` header value, e.g. `raster;dur=1.2, embedding;dur=30.5`.
    pub fn header_value(&self) -> String {
        self.spans
            .iter()
            .map(|(name, ms)| format!("{name};dur={ms:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
