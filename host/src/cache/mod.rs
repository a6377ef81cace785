//! What stays in memory between requests: loaded models, image embeddings, and the bound on
//! inferences running at once.

mod embeddings;
mod held_embedding;
mod limiter;
mod models;

pub use embeddings::{CacheOutcome, EmbeddingCache, EmbeddingKey};
pub use held_embedding::EmbeddingPrecision;
pub use limiter::{BackgroundPermit, InferenceLimiter, InferencePermit};
pub use models::{ModelCache, ModelKey};
