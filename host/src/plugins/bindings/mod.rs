//! Typed access to plugin components, one module per supported version of the WIT package
//! `samgeo:plugin`.
//!
//! Version policy: every supported WIT version has its own module here (`v0_1`, later `v0_2`,
//! ...) generated from a frozen copy of that version's WIT, and one entry in [`SUPPORTED`]
//! (newest first). A component is bound with the newest version whose `formatter` or `filter`
//! interface it exports. Adding a version is one new module plus one line in [`SUPPORTED`]; the
//! rest of the host only sees the version-neutral traits below and the types of
//! [`crate::masks`].

use wasmtime::component::{Component, Linker};
use wasmtime::Store;

use crate::masks::{FormattedOutput, Mask, PluginRequest};

use super::limits::HostState;

mod typecheck;
pub(crate) mod v0_1;
pub(crate) mod v0_2;

/// What a plugin says about itself (`info()`), version-neutral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Info {
    pub name: String,
    /// The plugin's own version (0.2.0 and later).
    pub version: Option<String>,
    pub description: String,
    /// Declared parameters (0.2.0 and later; none before).
    pub params: Vec<ParamSpec>,
}

/// The type of a declared parameter, as the host checks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    String,
    Integer,
    Number,
    Boolean,
}

/// A parameter a plugin declares in `info()`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ParamSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: ParamType,
    /// The plugin's default, as text (documentation).
    pub default: Option<String>,
    pub description: String,
}

/// The exports of an output formatter, whatever WIT version it was built against. Each call
/// instantiates the component in the given (fresh) store.
pub(crate) trait FormatterExports: Send + Sync {
    /// Type-checks every exported function against this version's bindings (done once, at load
    /// time); `Ok(Err(message))` names the function and the path of the item that differs.
    fn check_types(&self, store: &mut Store<HostState>) -> wasmtime::Result<Result<(), String>>;
    /// Calls `info()`.
    fn info(&self, store: &mut Store<HostState>) -> wasmtime::Result<Info>;
    /// Calls `format(req)` with `params` in place of `req.params`; the inner `Err` is the
    /// plugin's own error message.
    fn format(
        &self,
        store: &mut Store<HostState>,
        req: &PluginRequest,
        params: &[(String, String)],
    ) -> wasmtime::Result<Result<FormattedOutput, String>>;
}

/// The exports of a mask filter, whatever WIT version it was built against. Each call
/// instantiates the component in the given (fresh) store.
pub(crate) trait FilterExports: Send + Sync {
    /// See [`FormatterExports::check_types`].
    fn check_types(&self, store: &mut Store<HostState>) -> wasmtime::Result<Result<(), String>>;
    /// Calls `info()`.
    fn info(&self, store: &mut Store<HostState>) -> wasmtime::Result<Info>;
    /// Calls `apply(req)` with `params` in place of `req.params`; the inner `Err` is the
    /// plugin's own error message.
    fn apply(
        &self,
        store: &mut Store<HostState>,
        req: &PluginRequest,
        params: &[(String, String)],
    ) -> wasmtime::Result<Result<Vec<Mask>, String>>;
}

/// A component bound to the typed exports of one plugin kind.
pub(crate) enum Exports {
    Formatter(Box<dyn FormatterExports>),
    Filter(Box<dyn FilterExports>),
}

impl Exports {
    /// Type-checks the exports whatever the kind (see [`FormatterExports::check_types`]).
    pub fn check_types(
        &self,
        store: &mut Store<HostState>,
    ) -> wasmtime::Result<Result<(), String>> {
        match self {
            Exports::Formatter(f) => f.check_types(store),
            Exports::Filter(f) => f.check_types(store),
        }
    }

    /// Calls `info()` whatever the kind.
    pub fn info(&self, store: &mut Store<HostState>) -> wasmtime::Result<Info> {
        match self {
            Exports::Formatter(f) => f.info(store),
            Exports::Filter(f) => f.info(store),
        }
    }
}

/// A component bound to the newest WIT version it supports.
pub(crate) struct Bound {
    /// The WIT package version, e.g. `"0.1.0"`.
    pub wit_version: &'static str,
    pub exports: Exports,
}

/// One supported version of `samgeo:plugin`.
pub(crate) struct VersionSupport {
    /// The package version, e.g. `"0.1.0"`.
    pub version: &'static str,
    /// Adds this version's `host` interface to the linker.
    pub add_to_linker: fn(&mut Linker<HostState>) -> wasmtime::Result<()>,
    /// Binds a component that exports this version's `formatter` or `filter` interface;
    /// `Ok(None)` when it exports neither.
    pub bind: fn(&Linker<HostState>, &Component) -> wasmtime::Result<Option<Exports>>,
}

/// Supported versions, newest first.
pub(crate) const SUPPORTED: &[VersionSupport] = &[v0_2::SUPPORT, v0_1::SUPPORT];

/// The supported versions, newest first, for messages ("0.2.0, 0.1.0").
pub(crate) fn supported_versions() -> String {
    SUPPORTED
        .iter()
        .map(|v| v.version)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Adds the `host` interface of every supported version to `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    for v in SUPPORTED {
        (v.add_to_linker)(linker)?;
    }
    Ok(())
}

/// Binds `component` with the newest supported version it exports; `Ok(None)` when it exports
/// no supported `formatter` or `filter` interface.
pub(crate) fn bind(
    linker: &Linker<HostState>,
    component: &Component,
) -> wasmtime::Result<Option<Bound>> {
    for v in SUPPORTED {
        if let Some(exports) = (v.bind)(linker, component)? {
            return Ok(Some(Bound {
                wit_version: v.version,
                exports,
            }));
        }
    }
    Ok(None)
}

/// The names of the interfaces `component` exports (for error messages).
pub(crate) fn export_names(component: &Component) -> Vec<String> {
    let engine = component.engine();
    component
        .component_type()
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect()
}
