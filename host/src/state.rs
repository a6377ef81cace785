//! Everything a request handler needs, shared across requests.

use std::sync::Arc;

use parking_lot::RwLock;

use crate::cache::{EmbeddingCache, InferenceLimiter, ModelCache};
use crate::config::Config;
use crate::images::ImageStore;
use crate::models::OnnxRuntime;
use crate::plugins::PluginHost;

/// Shared server state (cheap to clone: everything is behind `Arc`).
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// The parts of [`AppState`].
pub struct Inner {
    config: RwLock<Arc<Config>>,
    pub runtime: OnnxRuntime,
    pub models: ModelCache,
    pub embeddings: EmbeddingCache,
    pub limiter: InferenceLimiter,
    pub plugins: PluginHost,
    /// Rasters stored by `POST /images`.
    pub images: ImageStore,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Builds the state from a checked configuration (indexing the image store on disk).
    pub fn new(config: Config, runtime: OnnxRuntime, plugins: PluginHost) -> AppState {
        AppState(Arc::new(Inner {
            models: ModelCache::new(config.caches.max_loaded_models),
            embeddings: EmbeddingCache::new(config.caches.embedding_cache_bytes),
            images: ImageStore::open(
                config.server.cache_dir.join("images"),
                config.caches.image_store_bytes,
            ),
            limiter: InferenceLimiter::new(
                config.server.max_concurrent_inferences,
                config.server.max_queued_requests,
            ),
            config: RwLock::new(Arc::new(config)),
            runtime,
            plugins,
        }))
    }

    /// The configuration in force now (a request keeps the one it started with).
    pub fn config(&self) -> Arc<Config> {
        self.config.read().clone()
    }

    /// Replaces the model and plugin settings after a config reload.
    pub fn replace_config(&self, config: Config) {
        *self.config.write() = Arc::new(config);
    }
}
