//! Everything a request handler needs, shared across requests.

use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;

use crate::cache::{EmbeddingCache, InferenceLimiter, ModelCache};
use crate::cluster::{Redis, SharedEmbeddings};
use crate::config::Config;
use crate::http::upload_limit::UploadBudget;
use crate::images::ImageStore;
use crate::jobs::Jobs;
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
    /// Shared with the jobs, which take its slots tile by tile.
    pub limiter: Arc<InferenceLimiter>,
    pub plugins: PluginHost,
    /// The jobs (set once at start-up, after the state exists: they run the pipeline with it).
    jobs: OnceLock<Arc<Jobs>>,
    /// Rasters stored by `POST /images`.
    pub images: ImageStore,
    /// The cluster's shared Redis (`[cluster] redis_url`); `None` on a single node.
    pub cluster: Option<Arc<Redis>>,
    /// Bytes of request bodies being received or held now (`server.max_buffered_upload_bytes`).
    pub uploads: Arc<UploadBudget>,
    /// Re-reads the configuration as at start-up (file, environment, command-line overrides),
    /// for reloads; set once by the server.
    config_loader: OnceLock<ConfigLoader>,
}

/// Reads the whole configuration again (see [`AppState::set_config_loader`]).
pub type ConfigLoader = Box<dyn Fn() -> anyhow::Result<Config> + Send + Sync>;

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// The image store under [`Config::shared_root`]. On a shared volume (`cluster.shared_dir`)
/// other replicas write there too: an unfinished upload is only taken for a crash's leftover
/// once it is older than twice the request time limit (at least 10 minutes).
fn open_images(config: &Config) -> ImageStore {
    let dir = config.shared_root().join("images");
    let budget = config.caches.image_store_bytes;
    match config.cluster.shared_dir {
        Some(_) => {
            let secs = config
                .server
                .request_timeout_secs
                .saturating_mul(2)
                .max(600);
            ImageStore::open_shared(dir, budget, std::time::Duration::from_secs(secs))
        }
        None => ImageStore::open(dir, budget),
    }
}

impl AppState {
    /// Builds the state from a checked configuration (indexing the image store on disk).
    pub fn new(config: Config, runtime: OnnxRuntime, plugins: PluginHost) -> AppState {
        // The URL was checked by `Config::validate`.
        let cluster = Redis::from_config(&config.cluster)
            .ok()
            .flatten()
            .map(Arc::new);
        let shared_embeddings = cluster
            .clone()
            .map(|redis| SharedEmbeddings::new(redis, &config.cluster));
        AppState(Arc::new(Inner {
            models: ModelCache::new(config.caches.max_loaded_models),
            embeddings: EmbeddingCache::new(config.caches.embedding_cache_bytes)
                .with_precision(config.caches.embedding_precision)
                .with_shared(shared_embeddings),
            images: open_images(&config),
            limiter: Arc::new(InferenceLimiter::new(
                config.server.max_concurrent_inferences,
                config.server.max_queued_requests,
            )),
            jobs: OnceLock::new(),
            config_loader: OnceLock::new(),
            cluster,
            uploads: Arc::new(UploadBudget::new(config.server.max_buffered_upload_bytes)),
            config: RwLock::new(Arc::new(config)),
            runtime,
            plugins,
        }))
    }

    /// The configuration in force now (a request keeps the one it started with).
    pub fn config(&self) -> Arc<Config> {
        self.config.read().clone()
    }

    /// The jobs; 503 when this server runs none (not set up).
    pub fn jobs(&self) -> Result<&Arc<Jobs>, crate::error::AppError> {
        self.jobs.get().ok_or_else(|| {
            crate::error::AppError::unavailable("Jobs are not available on this server")
        })
    }

    /// Sets the jobs once, at start-up.
    pub fn set_jobs(&self, jobs: Arc<Jobs>) {
        let _ = self.jobs.set(jobs);
    }

    /// Sets, once, how reloads re-read the configuration; without it a reload re-reads only
    /// `[plugins]` through the plugin host.
    pub fn set_config_loader(&self, loader: ConfigLoader) {
        let _ = self.config_loader.set(loader);
    }

    /// Reloads the plugins, for POST /plugins/reload, SIGHUP and `--reload` alike: re-reads the
    /// configuration, applies its `[plugins]` section with the components (atomically: on a
    /// failure nothing changes), and logs every other changed section as needing a restart.
    /// Blocking.
    pub fn reload_plugins(
        &self,
    ) -> Result<crate::plugins::ReloadReport, crate::plugins::ReloadFailure> {
        let Some(load) = self.config_loader.get() else {
            let report = self.plugins.reload()?;
            let mut config = (*self.config()).clone();
            config.plugins = self.plugins.config();
            self.replace_config(config);
            return Ok(report);
        };
        let new = load().map_err(|e| crate::plugins::ReloadFailure {
            reason: format!("configuration: {e:#}"),
            report: Box::default(),
        })?;
        let report = self.plugins.reload_with(&new.plugins)?;
        let old = self.config();
        crate::server::log_changes_needing_restart(&old, &new);
        let mut applied = (*old).clone();
        applied.plugins = new.plugins;
        self.replace_config(applied);
        Ok(report)
    }

    /// Replaces the model and plugin settings after a config reload.
    pub fn replace_config(&self, config: Config) {
        *self.config.write() = Arc::new(config);
    }
}
