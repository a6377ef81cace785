//! Placeholder until the wasmtime plugin host lands (branch plugin-host).
#![allow(missing_docs, dead_code)]
use std::path::Path;

use crate::config::PluginsConfig;
use crate::masks::{FormattedOutput, MaskSet, PluginRequest};

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PluginError(pub String);

impl PluginError {
    pub fn status_code(&self) -> u16 {
        502
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PluginDescription {
    pub name: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ReloadReport {}

#[derive(Clone)]
pub struct PluginHost;

impl PluginHost {
    pub fn new(_config: &PluginsConfig, _cache_dir: &Path) -> anyhow::Result<PluginHost> {
        Ok(PluginHost)
    }
    pub fn format_names(&self) -> Vec<String> {
        vec!["geojson".into()]
    }
    pub fn list(&self) -> Vec<PluginDescription> {
        Vec::new()
    }
    pub fn apply_filters(&self, req: PluginRequest) -> Result<MaskSet, PluginError> {
        Ok(req.masks)
    }
    pub fn format(
        &self,
        _name: &str,
        _req: &PluginRequest,
    ) -> Result<FormattedOutput, PluginError> {
        Err(PluginError("not yet".into()))
    }
    pub fn reload(&self) -> anyhow::Result<ReloadReport> {
        Ok(ReloadReport {})
    }
}
