//! Loaded models: one instance per (version, id), least recently used dropped past the
//! configured count. Request options are never part of the key.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, OnceLock};

use lru::LruCache;
use parking_lot::Mutex;

use crate::error::AppError;
use crate::models::LoadedModel;

/// (model_version, model_id).
pub type ModelKey = (String, String);

type Slot = Arc<OnceLock<Result<LoadedModel, AppError>>>;

/// The loaded models.
pub struct ModelCache {
    loaded: Mutex<LruCache<ModelKey, LoadedModel>>,
    loading: Mutex<HashMap<ModelKey, Slot>>,
}

impl ModelCache {
    /// A cache holding at most `capacity` models.
    pub fn new(capacity: usize) -> ModelCache {
        ModelCache {
            loaded: Mutex::new(LruCache::new(
                NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN),
            )),
            loading: Mutex::new(HashMap::new()),
        }
    }

    /// The model for `key`, loading it with `load` when absent. Concurrent callers for the same
    /// key wait for one load. Blocking.
    pub fn get_or_load(
        &self,
        key: &ModelKey,
        load: impl FnOnce() -> Result<LoadedModel, AppError>,
    ) -> Result<LoadedModel, AppError> {
        if let Some(model) = self.loaded.lock().get(key) {
            return Ok(model.clone());
        }
        let slot = self.loading.lock().entry(key.clone()).or_default().clone();
        let mut loaded_here = false;
        let result = slot.get_or_init(|| {
            loaded_here = true;
            let started = std::time::Instant::now();
            let loaded = load();
            crate::metrics::model_load(&key.0, started.elapsed());
            loaded
        });
        let outcome = match result {
            Ok(model) => {
                if loaded_here {
                    self.loaded.lock().put(key.clone(), model.clone());
                }
                Ok(model.clone())
            }
            Err(e) => Err(e.clone()),
        };
        if loaded_here {
            self.loading.lock().remove(key);
        }
        outcome
    }

    /// Keys of the loaded models, most recently used first.
    pub fn loaded(&self) -> Vec<ModelKey> {
        self.loaded.lock().iter().map(|(k, _)| k.clone()).collect()
    }

    /// The loaded models with their keys, most recently used first (no use is recorded).
    pub fn loaded_models(&self) -> Vec<(ModelKey, LoadedModel)> {
        self.loaded
            .lock()
            .iter()
            .map(|(k, m)| (k.clone(), m.clone()))
            .collect()
    }

    /// Drops every loaded model (requests holding one finish with it).
    pub fn clear(&self) {
        self.loaded.lock().clear();
    }
}
