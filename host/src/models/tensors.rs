//! Tensor names: the standard exports' names, overridable per model in samgeo.toml.

use std::collections::BTreeMap;

/// Maps a standard tensor name to the name in a particular export.
#[derive(Debug, Clone, Default)]
pub struct TensorNames {
    overrides: BTreeMap<String, String>,
}

impl TensorNames {
    /// Names with the configured overrides (standard name → export name).
    pub fn new(overrides: &BTreeMap<String, String>) -> TensorNames {
        TensorNames {
            overrides: overrides.clone(),
        }
    }

    /// The export's name for `standard`.
    pub fn get(&self, standard: &str) -> String {
        self.overrides
            .get(standard)
            .cloned()
            .unwrap_or_else(|| standard.to_string())
    }
}
