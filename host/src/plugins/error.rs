//! What can go wrong in a plugin call, and which HTTP status each fault becomes.

use std::fmt;

/// Which plugin a fault belongs to: the name it is registered under and its component file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginId {
    pub name: String,
    pub file: String,
}

impl fmt::Display for PluginId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "plugin '{}' ({})", self.name, self.file)
    }
}

/// A failed plugin call. Every variant but [`PluginError::UnknownFormat`] names the plugin.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PluginError {
    /// The call ran past `call_timeout_ms` and was interrupted (epoch deadline).
    #[error("{plugin}: timed out after {limit_ms} ms")]
    Timeout { plugin: PluginId, limit_ms: u64 },
    /// The plugin tried to grow its linear memory past `memory_limit_bytes`.
    #[error("{plugin}: out of memory: it asked for {requested_bytes} bytes of linear memory, the limit is {limit_bytes}")]
    OutOfMemory {
        plugin: PluginId,
        limit_bytes: u64,
        requested_bytes: u64,
    },
    /// The plugin trapped (a panic, `unreachable`, a stack overflow, an exit, ...). The
    /// client sees a generic message naming the plugin; `message` (the trap, the panic text)
    /// went to the log with a backtrace.
    #[error("{plugin}: the plugin failed (the server log has the details)")]
    Trap { plugin: PluginId, message: String },
    /// The plugin returned something the host refuses to pass on.
    #[error("{plugin}: invalid output: {reason}")]
    InvalidOutput { plugin: PluginId, reason: String },
    /// The plugin returned `err(message)`, usually about a bad parameter. The message is meant
    /// for the client.
    #[error("{plugin}: {message}")]
    Rejected { plugin: PluginId, message: String },
    /// A value of a parameter the plugin declares has the wrong type (from the request or the
    /// configured options).
    #[error("plugin '{}': parameter '{param}': {reason}", plugin.name)]
    BadParameter {
        plugin: PluginId,
        param: String,
        reason: String,
    },
    /// The request's `filters` field names no installed filter, or per-request filters are
    /// disabled.
    #[error("{0}")]
    BadFilters(String),
    /// No formatter is registered under this name.
    #[error("unknown output format '{name}' (available: {})", available.join(", "))]
    UnknownFormat {
        name: String,
        available: Vec<String>,
    },
}

impl PluginError {
    /// The HTTP status the HTTP layer answers with:
    /// - 400 for [`Rejected`](Self::Rejected) (the plugin refused the request's parameters),
    ///   [`BadParameter`](Self::BadParameter) (a declared parameter of the wrong type),
    ///   [`BadFilters`](Self::BadFilters) and [`UnknownFormat`](Self::UnknownFormat);
    /// - 504 for [`Timeout`](Self::Timeout) (an upstream component did not answer in time);
    /// - 502 for [`OutOfMemory`](Self::OutOfMemory), [`Trap`](Self::Trap) and
    ///   [`InvalidOutput`](Self::InvalidOutput) (an upstream component failed).
    pub fn status_code(&self) -> u16 {
        match self {
            PluginError::Rejected { .. }
            | PluginError::UnknownFormat { .. }
            | PluginError::BadParameter { .. }
            | PluginError::BadFilters(_) => 400,
            PluginError::Timeout { .. } => 504,
            PluginError::OutOfMemory { .. }
            | PluginError::Trap { .. }
            | PluginError::InvalidOutput { .. } => 502,
        }
    }

    /// The plugin at fault, if any.
    pub fn plugin(&self) -> Option<&PluginId> {
        match self {
            PluginError::Timeout { plugin, .. }
            | PluginError::OutOfMemory { plugin, .. }
            | PluginError::Trap { plugin, .. }
            | PluginError::InvalidOutput { plugin, .. }
            | PluginError::Rejected { plugin, .. }
            | PluginError::BadParameter { plugin, .. } => Some(plugin),
            PluginError::UnknownFormat { .. } | PluginError::BadFilters(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> PluginId {
        PluginId {
            name: "geojson".into(),
            file: "geojson.wasm".into(),
        }
    }

    #[test]
    fn display_names_plugin_and_fault() {
        let e = PluginError::Timeout {
            plugin: id(),
            limit_ms: 500,
        };
        assert_eq!(
            e.to_string(),
            "plugin 'geojson' (geojson.wasm): timed out after 500 ms"
        );
        assert_eq!(e.status_code(), 504);
        let e = PluginError::Trap {
            plugin: id(),
            message: "panicked at src/lib.rs:27:41: secret".into(),
        };
        assert_eq!(e.status_code(), 502);
        assert!(!e.to_string().contains("secret"), "{e}");
        assert!(e.to_string().contains("'geojson'"), "{e}");
        let e = PluginError::Rejected {
            plugin: id(),
            message: "bad simplify".into(),
        };
        assert_eq!(e.status_code(), 400);
        assert!(e.to_string().contains("bad simplify"));
        let e = PluginError::UnknownFormat {
            name: "kml".into(),
            available: vec!["geojson".into(), "png".into()],
        };
        assert_eq!(
            e.to_string(),
            "unknown output format 'kml' (available: geojson, png)"
        );
    }
}
