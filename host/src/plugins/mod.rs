//! WebAssembly plugins: output formatters and mask filters, components of the WIT package
//! `samgeo:plugin` run by wasmtime.
//!
//! - [`bindings`]: generated bindings, one module per supported WIT version;
//! - [`engine`]: the engine, its epoch ticker, the linker and the compiled-component cache;
//! - [`limits`]: one call's sandbox (fresh store, memory cap, deadline) and fault mapping;
//! - [`host_imports`]: the `host` interface (log, transform-points);
//! - [`validate`]: checks on plugin output;
//! - [`registry`]: one generation of loaded plugins;
//! - [`watch`]: a debounced file watcher on its own thread (for `--reload`).
//!
//! Every plugin call blocks its thread (run them in `tokio::task::spawn_blocking`).

mod bindings;
mod engine;
mod error;
mod host_imports;
mod limits;
mod params;
mod registry;
mod validate;
pub mod watch;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::config::PluginsConfig;
use crate::masks::{FormattedOutput, MaskSet, PluginRequest};

pub use self::bindings::{ParamSpec, ParamType};
pub use self::engine::CacheStats;
pub use self::error::{PluginError, PluginId};
pub use self::registry::{FailedPlugin, PluginKind};

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
    current: RwLock<Arc<Registry>>,
    /// Serialises reloads (two at once would both compile and race to swap).
    reloading: Mutex<()>,
    /// The configuration file a reload re-reads `[plugins]` from (`None`: reloads keep the
    /// current `[plugins]` settings and only re-scan the directory).
    config_file: Option<PathBuf>,
}

/// One entry of `GET /plugins`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PluginDescription {
    /// The `output_format` value for a formatter; the reported name for a filter.
    pub name: String,
    pub kind: PluginKind,
    /// The `samgeo:plugin` version the component was bound with, e.g. `"0.2.0"`.
    pub wit_version: String,
    /// The plugin's own version (`null` for WIT 0.1.0 components, which have none).
    pub version: Option<String>,
    /// File name in the plugin directory.
    pub file: String,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    pub description: String,
    /// The parameters the plugin declares (none for WIT 0.1.0 components).
    pub params: Vec<ParamSpec>,
    /// For a filter: whether the configured chain runs it (else only a request's `filters`
    /// field does). Absent for formatters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_chain: Option<bool>,
}

/// What a reload changed, by plugin name (as in [`PluginDescription::name`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReloadReport {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    pub unchanged: Vec<String>,
    /// Files in the directory that failed to load. A reload with failures is not applied.
    pub failed: Vec<FailedPlugin>,
}

/// A reload that was not applied: why, and what the new generation would have been (the
/// current one stays in place).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{reason}")]
pub struct ReloadFailure {
    /// What failed, in one message (the configuration error, or the files that failed).
    pub reason: String,
    /// What loaded and what failed; empty when the configuration itself was unusable.
    pub report: Box<ReloadReport>,
}

impl PluginHost {
    /// Builds the engine and loads every component in `config.directory`, compiling through
    /// the cache in `<cache_dir>/plugins/`. Fails when a component the configuration references
    /// (`formats`, `filters`) is missing, fails to load or has the wrong kind.
    pub fn new(config: &PluginsConfig, cache_dir: &Path) -> anyhow::Result<PluginHost> {
        PluginHost::with_config_file(config, cache_dir, None)
    }

    /// Like [`PluginHost::new`]; every [`reload`](Self::reload) re-reads `[plugins]` from
    /// `config_file` (with the `SAMGEO_*` environment applied, as at start-up).
    pub fn with_config_file(
        config: &PluginsConfig,
        cache_dir: &Path,
        config_file: Option<PathBuf>,
    ) -> anyhow::Result<PluginHost> {
        let engine = PluginEngine::new(cache_dir)?;
        let registry = Registry::load(&engine, config, None)?;
        Ok(PluginHost {
            inner: Arc::new(Inner {
                engine,
                current: RwLock::new(Arc::new(registry)),
                reloading: Mutex::new(()),
                config_file,
            }),
        })
    }

    fn registry(&self) -> Arc<Registry> {
        Arc::clone(&self.inner.current.read())
    }

    /// The configuration file reloads re-read, if any.
    pub fn config_file(&self) -> Option<PathBuf> {
        self.inner.config_file.clone()
    }

    /// The `[plugins]` configuration in force now.
    pub fn config(&self) -> PluginsConfig {
        self.registry().config.clone()
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

    /// Runs the filter chain over `req.masks`, then the filters the request names in its
    /// `filters` param (comma-separated filter names, in order; refused when
    /// `allow_request_filters` is off). Each filter gets the previous filter's masks, the
    /// request's georeferencing, and its configured options merged with the request's params
    /// (see [`params`] for precedence), checked against the parameters it declares. Blocking.
    pub fn apply_filters(&self, req: PluginRequest) -> Result<MaskSet, PluginError> {
        let registry = self.registry();
        let mut steps: Vec<Arc<LoadedPlugin>> = registry.filters.clone();
        steps.extend(request_filters(&registry, &req.params)?);
        let mut req = req;
        for filter in &steps {
            let id = filter.id(&filter.info.name);
            let params = call_params(&registry, filter, &id, &[&filter.info.name], &req.params)?;
            let bindings::Exports::Filter(exports) = &filter.exports else {
                // Only filters are chained or looked up as filters.
                continue;
            };
            let started = std::time::Instant::now();
            let masks = limits::call(
                &self.inner.engine.engine,
                &id,
                limits_of(&registry),
                |store| exports.apply(store, &req, &params),
            );
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
        let params = call_params(
            &registry,
            formatter,
            &id,
            &[name, &formatter.info.name],
            &req.params,
        )?;
        let started = std::time::Instant::now();
        let out = limits::call(
            &self.inner.engine.engine,
            &id,
            limits_of(&registry),
            |store| exports.format(store, req, &params),
        );
        crate::metrics::plugin_call(&id.name, started.elapsed(), &out);
        let out = out?;
        validate::formatted_output(&out)
            .map_err(|reason| PluginError::InvalidOutput { plugin: id, reason })?;
        Ok(out)
    }

    /// Reloads: re-reads `[plugins]` from the configuration file (when the host has one, else
    /// keeps the current settings), re-scans the plugin directory and swaps in the new
    /// generation — components, filter chain, format map, options and limits together — or,
    /// when anything fails (the configuration, a referenced component, any file in the
    /// directory), changes nothing and says why. Unchanged files keep their loaded component;
    /// new and changed ones are compiled through the disk cache. Blocking.
    pub fn reload(&self) -> Result<ReloadReport, ReloadFailure> {
        let config = match &self.inner.config_file {
            Some(path) => crate::config::Config::load(path, std::env::vars())
                .map(|c| c.plugins)
                .map_err(|e| ReloadFailure {
                    reason: format!("configuration {}: {e:#}", path.display()),
                    report: Box::default(),
                })?,
            None => self.config(),
        };
        self.reload_with(&config)
    }

    /// Reloads with the given `[plugins]` configuration; see [`PluginHost::reload`].
    pub fn reload_with(&self, config: &PluginsConfig) -> Result<ReloadReport, ReloadFailure> {
        let _serial = self.inner.reloading.lock();
        let old = self.registry();
        let new =
            Registry::load(&self.inner.engine, config, Some(&old)).map_err(|e| ReloadFailure {
                reason: e.message,
                report: Box::new(ReloadReport {
                    failed: e.failed,
                    ..ReloadReport::default()
                }),
            })?;
        let report = diff(&old, &new);
        if !report.failed.is_empty() {
            let reason = report
                .failed
                .iter()
                .map(|f| format!("{}: {}", f.file, f.error))
                .collect::<Vec<_>>()
                .join("; ");
            tracing::error!(%reason, "plugin reload not applied; the current plugins stay");
            return Err(ReloadFailure {
                reason: format!(
                    "{} component(s) failed to load: {reason}",
                    report.failed.len()
                ),
                report: Box::new(report),
            });
        }
        let config_changed = format!("{:?}", old.config) != format!("{:?}", new.config);
        *self.inner.current.write() = Arc::new(new);
        tracing::info!(
            added = ?report.added,
            changed = ?report.changed,
            removed = ?report.removed,
            config_changed,
            "plugins reloaded"
        );
        Ok(report)
    }
}

/// The configured options of the first of `names` that has some.
fn options_for<'a>(registry: &'a Registry, names: &[&str]) -> Option<&'a BTreeMap<String, String>> {
    names.iter().find_map(|n| registry.config.options.get(*n))
}

/// The call limits of a generation.
fn limits_of(registry: &Registry) -> CallLimits {
    CallLimits {
        memory_limit_bytes: registry.config.memory_limit_bytes,
        call_timeout_ms: registry.config.call_timeout_ms,
    }
}

/// The params one call gets: the plugin's configured options (under the first of `names`
/// that has some) merged with the request's, checked against what the plugin declares.
fn call_params(
    registry: &Registry,
    plugin: &LoadedPlugin,
    id: &PluginId,
    names: &[&str],
    request: &[(String, String)],
) -> Result<Vec<(String, String)>, PluginError> {
    let merged = params::merge(options_for(registry, names), request);
    params::check(&plugin.info.params, &merged).map_err(|(param, reason)| {
        PluginError::BadParameter {
            plugin: id.clone(),
            param,
            reason,
        }
    })?;
    Ok(merged)
}

/// The filters a request names in its `filters` param (comma-separated, by reported name).
fn request_filters(
    registry: &Registry,
    request: &[(String, String)],
) -> Result<Vec<Arc<LoadedPlugin>>, PluginError> {
    let Some((_, value)) = request.iter().rev().find(|(k, _)| k == "filters") else {
        return Ok(Vec::new());
    };
    let names: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    if names.is_empty() || params::is_absent(value) {
        return Ok(Vec::new());
    }
    if !registry.config.allow_request_filters {
        return Err(PluginError::BadFilters(
            "filters: per-request filters are disabled on this server (plugins.allow_request_filters = false)".into(),
        ));
    }
    let installed = || {
        let mut names: Vec<&str> = registry
            .by_file
            .values()
            .filter(|p| p.kind == PluginKind::Filter)
            .map(|p| p.info.name.as_str())
            .collect();
        names.sort();
        names.join(", ")
    };
    names
        .into_iter()
        .map(|name| {
            registry
                .by_file
                .values()
                .find(|p| p.kind == PluginKind::Filter && p.info.name == name)
                .cloned()
                .ok_or_else(|| {
                    PluginError::BadFilters(format!(
                        "filters: no installed filter is named '{name}' (installed: {})",
                        installed()
                    ))
                })
        })
        .collect()
}

fn description(name: &str, p: &LoadedPlugin, in_chain: Option<bool>) -> PluginDescription {
    PluginDescription {
        name: name.to_string(),
        kind: p.kind,
        wit_version: p.wit_version.to_string(),
        version: p.info.version.clone(),
        file: p.file.clone(),
        sha256: p.sha256.clone(),
        description: p.info.description.clone(),
        params: p.info.params.clone(),
        in_chain,
    }
}

fn describe(registry: &Registry) -> Vec<PluginDescription> {
    let mut out: Vec<PluginDescription> = registry
        .formats
        .iter()
        .map(|(name, p)| description(name, p, None))
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    let chain = registry.filters.iter();
    let others = registry
        .by_file
        .values()
        .filter(|p| p.kind == PluginKind::Filter);
    for p in chain.chain(others) {
        if seen.insert(p.file.clone()) {
            let in_chain = registry.filters.iter().any(|f| f.file == p.file);
            out.push(description(&p.info.name, p, Some(in_chain)));
        }
    }
    out
}

fn diff(old: &Registry, new: &Registry) -> ReloadReport {
    let failed = new.failed.clone();
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
    report.failed = failed;
    report
}
