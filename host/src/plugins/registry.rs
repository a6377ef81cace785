//! One generation of loaded plugins: every component in the plugin directory, the formatters
//! by name and the filter chain, built from `PluginsConfig`.
//!
//! Rules:
//! - every `*.wasm` file directly in `directory` is loaded (compiled through the disk cache),
//!   its kind and WIT version detected from its exports, and `info()` called once;
//! - a formatter listed in `formats` registers under each configured name, any other formatter
//!   under the name it reports (a name already taken makes it fail);
//! - the filter chain is `filters`, in order;
//! - a file referenced by `formats` or `filters` that is missing, fails to load or has the wrong
//!   kind is an error; any other file that fails is skipped with a warning and listed as failed;
//! - a file whose SHA-256 is unchanged since the previous generation is reused as is.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};

use crate::config::PluginsConfig;

use super::bindings::{self, Exports, Info};
use super::engine::PluginEngine;
use super::error::PluginId;
use super::limits::{self, clean_message, CallLimits};

/// Formatter or filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    Formatter,
    Filter,
}

/// A component loaded and bound, ready to be called.
pub(crate) struct LoadedPlugin {
    /// What `info()` said (name and description).
    pub info: Info,
    pub kind: PluginKind,
    /// The WIT package version it was bound with.
    pub wit_version: &'static str,
    /// File name inside the plugin directory.
    pub file: String,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    pub exports: Exports,
}

impl LoadedPlugin {
    /// The id used in errors and logs when called under `name`.
    pub fn id(&self, name: &str) -> PluginId {
        PluginId {
            name: name.to_string(),
            file: self.file.clone(),
        }
    }
}

/// A component in the plugin directory that could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FailedPlugin {
    pub file: String,
    /// SHA-256 of the file, hex, when it could be read.
    pub sha256: Option<String>,
    pub error: String,
}

/// A generation that could not be built: why, and the files that failed to load on the way.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub(crate) struct LoadError {
    pub message: String,
    pub failed: Vec<FailedPlugin>,
}

/// One generation of plugins.
pub(crate) struct Registry {
    /// Formatters by `output_format` name.
    pub formats: BTreeMap<String, Arc<LoadedPlugin>>,
    /// The filter chain, in order.
    pub filters: Vec<Arc<LoadedPlugin>>,
    /// Every loaded component, by file name.
    pub by_file: BTreeMap<String, Arc<LoadedPlugin>>,
    /// Components that failed to load (none of them referenced by the configuration).
    pub failed: Vec<FailedPlugin>,
    /// The `[plugins]` configuration this generation was built from: its options and limits
    /// apply to calls made with it, so a reload changes components, chain and options at once.
    pub config: PluginsConfig,
}

impl Registry {
    /// Scans `config.directory` and builds a registry, reusing components of `previous` whose
    /// file is unchanged.
    pub fn load(
        engine: &PluginEngine,
        config: &PluginsConfig,
        previous: Option<&Registry>,
    ) -> Result<Registry, LoadError> {
        let dir = &config.directory;
        let limits = CallLimits {
            memory_limit_bytes: config.memory_limit_bytes,
            call_timeout_ms: config.call_timeout_ms,
        };
        let mut by_file = BTreeMap::new();
        let mut failed = Vec::new();
        for file in wasm_files(dir).map_err(|e| LoadError {
            message: format!("{e:#}"),
            failed: Vec::new(),
        })? {
            let path = dir.join(&file);
            let bytes = match fs::read(&path) {
                Ok(b) => b,
                Err(e) => {
                    failed.push(FailedPlugin {
                        file,
                        sha256: None,
                        error: format!("cannot read {}: {e}", path.display()),
                    });
                    continue;
                }
            };
            let sha256 = hex::encode(Sha256::digest(&bytes));
            if let Some(old) = previous
                .and_then(|p| p.by_file.get(&file))
                .filter(|old| old.sha256 == sha256)
            {
                by_file.insert(file, Arc::clone(old));
                continue;
            }
            match load_one(engine, limits, &file, &bytes, &sha256) {
                Ok(p) => {
                    tracing::info!(
                        file,
                        name = p.info.name,
                        kind = ?p.kind,
                        wit_version = p.wit_version,
                        "loaded plugin"
                    );
                    by_file.insert(file, Arc::new(p));
                }
                Err(e) => failed.push(FailedPlugin {
                    file,
                    sha256: Some(sha256),
                    error: format!("{e:#}"),
                }),
            }
        }

        // Files the configuration depends on must be there, loaded, and of the right kind.
        let mut errors = Vec::new();
        let mut require =
            |what: String, file: &str, kind: PluginKind| -> Option<Arc<LoadedPlugin>> {
                if let Some(p) = by_file.get(file) {
                    if p.kind == kind {
                        return Some(Arc::clone(p));
                    }
                    errors.push(format!("{what}: {file} is a {:?}, not a {kind:?}", p.kind));
                } else if let Some(f) = failed.iter().find(|f| f.file == file) {
                    errors.push(format!("{what}: {file} failed to load: {}", f.error));
                } else {
                    errors.push(format!("{what}: {file} is not in {}", dir.display()));
                }
                None
            };
        let mut formats = BTreeMap::new();
        for (name, file) in &config.formats {
            if let Some(p) = require(
                format!("plugins.formats.{name}"),
                file,
                PluginKind::Formatter,
            ) {
                formats.insert(name.clone(), p);
            }
        }
        let mut filters = Vec::new();
        for (i, file) in config.filters.iter().enumerate() {
            if let Some(p) = require(format!("plugins.filters[{i}]"), file, PluginKind::Filter) {
                filters.push(p);
            }
        }
        if !errors.is_empty() {
            return Err(LoadError {
                message: format!("plugin configuration: {}", errors.join("; ")),
                failed,
            });
        }

        // Other formatters register under the name they report.
        let configured: BTreeSet<&String> = config.formats.values().collect();
        let mut collisions = Vec::new();
        for (file, p) in &by_file {
            if p.kind != PluginKind::Formatter || configured.contains(file) {
                continue;
            }
            if let Some(other) = formats.get(&p.info.name) {
                collisions.push(FailedPlugin {
                    file: file.clone(),
                    sha256: Some(p.sha256.clone()),
                    error: format!(
                        "format name '{}' is already taken by {}",
                        p.info.name, other.file
                    ),
                });
            } else {
                formats.insert(p.info.name.clone(), Arc::clone(p));
            }
        }
        for c in collisions {
            by_file.remove(&c.file);
            failed.push(c);
        }

        // Configured options must have the types their plugin declares.
        let mut errors = Vec::new();
        for (name, options) in &config.options {
            let plugin = formats.get(name).or_else(|| {
                by_file
                    .values()
                    .find(|p| p.kind == PluginKind::Filter && p.info.name == *name)
            });
            let Some(plugin) = plugin else { continue };
            let pairs: Vec<(String, String)> = options
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if let Err((param, reason)) = super::params::check(&plugin.info.params, &pairs) {
                errors.push(format!("plugins.options.{name}.{param}: {reason}"));
            }
        }
        if !errors.is_empty() {
            return Err(LoadError {
                message: format!("plugin configuration: {}", errors.join("; ")),
                failed,
            });
        }
        for f in &failed {
            tracing::warn!(file = f.file, error = f.error, "plugin skipped");
        }
        Ok(Registry {
            formats,
            filters,
            by_file,
            failed,
            config: config.clone(),
        })
    }
}

/// `*.wasm` regular files directly in `dir`, sorted.
fn wasm_files(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut files = Vec::new();
    let entries =
        fs::read_dir(dir).with_context(|| format!("reading plugin directory {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("reading plugin directory {}", dir.display()))?;
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("wasm") || !path.is_file() {
            continue;
        }
        match entry.file_name().into_string() {
            Ok(name) => files.push(name),
            Err(name) => tracing::warn!(?name, "skipping a plugin file whose name is not UTF-8"),
        }
    }
    files.sort();
    Ok(files)
}

/// Compiles (or loads from the cache), binds and asks one component for its `info()`.
fn load_one(
    engine: &PluginEngine,
    limits: CallLimits,
    file: &str,
    bytes: &[u8],
    sha256: &str,
) -> anyhow::Result<LoadedPlugin> {
    let component = engine.cache.load(&engine.engine, bytes, sha256)?;
    let Some(bound) = bindings::bind(&engine.linker, &component)
        .map_err(anyhow::Error::from)
        .with_context(|| {
            format!(
                "its samgeo:plugin types do not match this server's (supported WIT versions: {})",
                bindings::supported_versions()
            )
        })?
    else {
        bail!(
            "exports no supported samgeo:plugin formatter or filter interface (it exports: {}; this server supports samgeo:plugin versions {})",
            bindings::export_names(&component).join(", "),
            bindings::supported_versions()
        );
    };
    let kind = match bound.exports {
        Exports::Formatter(_) => PluginKind::Formatter,
        Exports::Filter(_) => PluginKind::Filter,
    };
    let id = PluginId {
        name: file.trim_end_matches(".wasm").to_string(),
        file: file.to_string(),
    };
    // Every exported function against this version's bindings, before anything is called: a
    // component built from an edited copy of the WIT is refused here, naming the item.
    limits::call(&engine.engine, &id, limits, |store| {
        bound.exports.check_types(store)
    })
    .map_err(|e| match e {
        super::error::PluginError::Rejected { message, .. } => anyhow::anyhow!(
            "its exports do not match samgeo:plugin@{} as this server defines it: {message} (supported WIT versions: {})",
            bound.wit_version,
            bindings::supported_versions()
        ),
        other => anyhow::Error::from(other),
    })?;
    let info = limits::call(&engine.engine, &id, limits, |store| {
        bound.exports.info(store).map(Ok)
    })?;
    check_name(&info.name).with_context(|| format!("info() returned the name {:?}", info.name))?;
    let description = clean_message(&info.description);
    let version = info.version.as_deref().map(clean_message);
    let mut seen = BTreeSet::new();
    for p in &info.params {
        check_name(&p.name)
            .with_context(|| format!("info() declares the parameter {:?}", p.name))?;
        if !seen.insert(p.name.as_str()) {
            bail!("info() declares the parameter {:?} twice", p.name);
        }
    }
    let params = info
        .params
        .into_iter()
        .map(|p| bindings::ParamSpec {
            description: clean_message(&p.description),
            default: p.default.as_deref().map(clean_message),
            ..p
        })
        .collect();
    Ok(LoadedPlugin {
        info: Info {
            name: info.name,
            version,
            description,
            params,
        },
        kind,
        wit_version: bound.wit_version,
        file: file.to_string(),
        sha256: sha256.to_string(),
        exports: bound.exports,
    })
}

/// A plugin name is 1 to 64 characters out of `A-Z a-z 0-9 _ - .`.
fn check_name(name: &str) -> anyhow::Result<()> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        bail!("a plugin name must be 1 to 64 characters out of A-Z a-z 0-9 _ - .");
    }
    Ok(())
}
