//! Tensor names: the standard exports' names, overridable per model in samgeo.toml.

use std::collections::BTreeMap;

use ndarray::ArrayD;
use ort::session::SessionOutputs;

use super::ModelError;

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

impl TensorNames {
    /// The f32 output with standard name `standard` of a session run, copied out.
    pub fn output_f32(
        &self,
        outputs: &SessionOutputs<'_>,
        standard: &str,
    ) -> Result<ArrayD<f32>, ModelError> {
        let name = self.get(standard);
        Ok(outputs
            .get(&name)
            .ok_or_else(|| ModelError::Inference(format!("the model has no output '{name}'")))?
            .try_extract_array::<f32>()
            .map_err(run_error)?
            .to_owned())
    }
}

/// An ONNX Runtime failure as a model error.
pub fn run_error(e: impl std::fmt::Display) -> ModelError {
    ModelError::Inference(e.to_string())
}
