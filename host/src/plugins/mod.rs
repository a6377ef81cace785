//! WebAssembly plugins: output formatters and mask filters, components of the WIT package
//! `samgeo:plugin` run by wasmtime.
//!
//! - [`bindings`]: generated bindings, one module per supported WIT version;
//! - [`engine`]: the engine, its epoch ticker, the linker and the compiled-component cache;
//! - [`limits`]: one call's sandbox (fresh store, memory cap, deadline) and fault mapping;
//! - [`host_imports`]: the `host` interface (log, transform-points);
//! - [`validate`]: checks on plugin output;
//! - [`registry`]: one generation of loaded plugins;
//! - [`watch`]: reload on file changes or SIGHUP.
//!
//! Every plugin call blocks its thread (run them in `tokio::task::spawn_blocking`).

mod bindings;
mod engine;
mod error;
mod host_imports;
mod limits;
mod registry;
mod validate;
mod watch;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::config::PluginsConfig;
use crate::masks::{FormattedOutput, MaskSet, PluginRequest};

pub use self::engine::CacheStats;
pub use self::error::{PluginError, PluginId};
pub use self::registry::{FailedPlugin, PluginKind};
pub use self::watch::WatchGuard;

use self::engine::PluginEngine;
use self::limits::CallLimits;
use self::registry::{LoadedPlugin, Registry};

/// The plugin host: the engine and the current generation of plugins. Cloning is cheap (an
/// `Arc`); clones share everything. A call keeps the generation it started with, so a reload
/// never disturbs calls in flight.
#[derive(Clone)]
pub struct PluginHost {
    inner: Arc<Inner>,
}

struct Inner {
    engine: PluginEngine,
    config: PluginsConfig,
    current: RwLock<Arc<Registry>>,
    /// Serialises reloads (two at once would both compile and race to swap).
    reloading: Mutex<()>,
}

/// One entry of `GET /plugins`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PluginDescription {
    /// The `output_format` value for a formatter; the reported name for a filter.
    pub name: String,
    pub kind: PluginKind,
    /// The `samgeo:plugin` version the component was bound with, e.g. `"0.1.0"`.
    pub wit_version: String,
    /// File name in the plugin directory.
    pub file: String,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    pub description: String,
}

/// What a reload changed, by plugin name (as in [`PluginDescription::name`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReloadReport {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    pub unchanged: Vec<String>,
    /// Files in the directory that failed to load (not referenced by the configuration).
    pub failed: Vec<FailedPlugin>,
}

impl PluginHost {
    /// Builds the engine and loads every component in `config.directory`, compiling through
    /// the cache in `<cache_dir>/plugins/`. Fails when a component the configuration references
    /// (`formats`, `filters`) is missing, fails to load or has the wrong kind.
    pub fn new(config: &PluginsConfig, cache_dir: &Path) -> anyhow::Result<PluginHost> {
        let engine = PluginEngine::new(cache_dir)?;
        let registry = Registry::load(&engine, config, None)?;
        Ok(PluginHost {
            inner: Arc::new(Inner {
                engine,
                config: config.clone(),
                current: RwLock::new(Arc::new(registry)),
                reloading: Mutex::new(()),
            }),
        })
    }

    fn registry(&self) -> Arc<Registry> {
        Arc::clone(&self.inner.current.read())
    }

    fn limits(&self) -> CallLimits {
        CallLimits {
            memory_limit_bytes: self.inner.config.memory_limit_bytes,
            call_timeout_ms: self.inner.config.call_timeout_ms,
        }
    }

    /// The registered `output_format` names, sorted.
    pub fn format_names(&self) -> Vec<String> {
        self.registry().formats.keys().cloned().collect()
    }

    /// Every loaded plugin: formatters by name (once per registered name), then the filters of
    /// the chain in order, then the other filters in the directory.
    pub fn list(&self) -> Vec<PluginDescription> {
        describe(&self.registry())
    }

    /// Components in the directory that failed to load and were skipped.
    pub fn failed(&self) -> Vec<FailedPlugin> {
        self.registry().failed.clone()
    }

    /// Compile/cache-hit counters of the compiled-component cache since start.
    pub fn cache_stats(&self) -> CacheStats {
        self.inner.engine.cache.stats()
    }

    /// Runs the filter chain over `req.masks`. Each filter gets the previous filter's masks,
    /// the request's georeferencing, and the request's params over the filter's configured
    /// options (configured options are defaults; request params override them). Blocking.
    pub fn apply_filters(&self, req: PluginRequest) -> Result<MaskSet, PluginError> {
        let registry = self.registry();
        let mut req = req;
        for filter in &registry.filters {
            let id = filter.id(&filter.info.name);
            let params = merge_params(self.options_for(&[&filter.info.name]), &req.params);
            let bindings::Exports::Filter(exports) = &filter.exports else {
                // The registry only puts filters in the chain.
                continue;
            };
            let started = std::time::Instant::now();
            let masks = limits::call(&self.inner.engine.engine, &id, self.limits(), |store| {
                exports.apply(store, &req, &params)
            });
            crate::metrics::plugin_call(&id.name, started.elapsed(), &masks);
            let masks = masks?;
            validate::filtered_masks(&masks, req.masks.width, req.masks.height).map_err(
                |reason| PluginError::InvalidOutput {
                    plugin: id.clone(),
                    reason,
                },
            )?;
            req.masks.masks = masks;
        }
        Ok(req.masks)
    }

    /// Formats `req` with the formatter registered as `name`, passing the request's params over
    /// the formatter's configured options. Blocking.
    pub fn format(&self, name: &str, req: &PluginRequest) -> Result<FormattedOutput, PluginError> {
        let registry = self.registry();
        let Some(formatter) = registry.formats.get(name) else {
            return Err(PluginError::UnknownFormat {
                name: name.to_string(),
                available: registry.formats.keys().cloned().collect(),
            });
        };
        let bindings::Exports::Formatter(exports) = &formatter.exports else {
            return Err(PluginError::UnknownFormat {
                name: name.to_string(),
                available: registry.formats.keys().cloned().collect(),
            });
        };
        let id = formatter.id(name);
        let params = merge_params(self.options_for(&[name, &formatter.info.name]), &req.params);
        let started = std::time::Instant::now();
        let out = limits::call(&self.inner.engine.engine, &id, self.limits(), |store| {
            exports.format(store, req, &params)
        });
        crate::metrics::plugin_call(&id.name, started.elapsed(), &out);
        let out = out?;
        validate::formatted_output(&out)
            .map_err(|reason| PluginError::InvalidOutput { plugin: id, reason })?;
        Ok(out)
    }

    /// The configured options of the first of `names` that has some.
    fn options_for(&self, names: &[&str]) -> Option<&BTreeMap<String, String>> {
        names.iter().find_map(|n| self.inner.config.options.get(*n))
    }

    /// Re-scans the plugin directory (with the configuration given at start) and swaps in the
    /// new generation. Unchanged files keep their loaded component; new and changed ones are
    /// compiled through the disk cache. On any error the current generation stays in place.
    /// Blocking.
    pub fn reload(&self) -> anyhow::Result<ReloadReport> {
        let _serial = self.inner.reloading.lock();
        let old = self.registry();
        let new = Registry::load(&self.inner.engine, &self.inner.config, Some(&old))?;
        let report = diff(&old, &new);
        *self.inner.current.write() = Arc::new(new);
        tracing::info!(
            added = ?report.added,
            changed = ?report.changed,
            removed = ?report.removed,
            failed = report.failed.len(),
            "plugins reloaded"
        );
        Ok(report)
    }
}

/// Configured options that the request does not set, then the request's params.
fn merge_params(
    options: Option<&BTreeMap<String, String>>,
    request: &[(String, String)],
) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(request.len() + options.map_or(0, |o| o.len()));
    if let Some(options) = options {
        for (k, v) in options {
            if !request.iter().any(|(rk, _)| rk == k) {
                out.push((k.clone(), v.clone()));
            }
        }
    }
    out.extend(request.iter().cloned());
    out
}

fn description(name: &str, p: &LoadedPlugin) -> PluginDescription {
    PluginDescription {
        name: name.to_string(),
        kind: p.kind,
        wit_version: p.wit_version.to_string(),
        file: p.file.clone(),
        sha256: p.sha256.clone(),
        description: p.info.description.clone(),
    }
}

fn describe(registry: &Registry) -> Vec<PluginDescription> {
    let mut out: Vec<PluginDescription> = registry
        .formats
        .iter()
        .map(|(name, p)| description(name, p))
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    let chain = registry.filters.iter();
    let others = registry
        .by_file
        .values()
        .filter(|p| p.kind == PluginKind::Filter);
    for p in chain.chain(others) {
        if seen.insert(p.file.clone()) {
            out.push(description(&p.info.name, p));
        }
    }
    out
}

fn diff(old: &Registry, new: &Registry) -> ReloadReport {
    let key = |d: &PluginDescription| (d.name.clone(), d.kind);
    let old: BTreeMap<_, _> = describe(old).into_iter().map(|d| (key(&d), d)).collect();
    let new: BTreeMap<_, _> = describe(new).into_iter().map(|d| (key(&d), d)).collect();
    let mut report = ReloadReport::default();
    for (k, d) in &new {
        match old.get(k) {
            None => report.added.push(d.name.clone()),
            Some(o) if o.sha256 != d.sha256 || o.file != d.file => {
                report.changed.push(d.name.clone())
            }
            Some(_) => report.unchanged.push(d.name.clone()),
        }
    }
    for (k, d) in &old {
        if !new.contains_key(k) {
            report.removed.push(d.name.clone());
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_params_override_configured_options() {
        let options: BTreeMap<String, String> = [("min_size", "10"), ("simplify", "0.5")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let request = vec![("min_size".to_string(), "100".to_string())];
        let merged = merge_params(Some(&options), &request);
        assert_eq!(
            merged,
            vec![
                ("simplify".to_string(), "0.5".to_string()),
                ("min_size".to_string(), "100".to_string()),
            ]
        );
        assert_eq!(merge_params(None, &request), request);
    }
}
