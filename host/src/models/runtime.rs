//! ONNX Runtime: the shared library loaded at start-up and sessions built on the configured
//! execution providers, in order, with a log line saying which one each session got.
//!
//! Image encoders get their own memory settings (`runtime.encoder_memory_arena`): with ONNX
//! Runtime's CPU arena, the few GiB of activations of one ViT encode stay reserved by the
//! process after the call; without it they go back to the system when the call returns.

use std::path::Path;

use ort::environment::Environment;
use ort::ep::{ExecutionProvider, CPU, CUDA};
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;

use super::ModelError;
use crate::config::RuntimeConfig;

/// The loaded ONNX Runtime library and the session settings from `[runtime]`.
#[derive(Clone)]
pub struct OnnxRuntime {
    environment: Environment,
    providers: Vec<String>,
    intra_threads: usize,
    encoder_memory_arena: bool,
}

/// What a session is for: image encoders run rarely and need a lot of scratch memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    /// Image (or text) encoders: `runtime.encoder_memory_arena` applies.
    Encoder,
    /// Prompt decoders: the arena stays on (many small, same-shaped runs).
    Decoder,
}

impl OnnxRuntime {
    /// Loads `libonnxruntime` (the `ORT_DYLIB_PATH` environment variable wins over the
    /// configured path). Fails with a message naming the file instead of panicking.
    pub fn init(config: &RuntimeConfig) -> anyhow::Result<OnnxRuntime> {
        let path = std::env::var_os("ORT_DYLIB_PATH")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| config.onnxruntime_library.clone());
        if !path.is_file() {
            anyhow::bail!(
                "ONNX Runtime library {} not found (set runtime.onnxruntime_library or ORT_DYLIB_PATH; scripts/setup installs it)",
                path.display()
            );
        }
        let environment = ort::init_from(&path)
            .map_err(|e| anyhow::anyhow!("cannot load ONNX Runtime from {}: {e}", path.display()))?
            .with_name("samgeo")
            // Microsoft's builds collect telemetry by default (and keep a device id and an event
            // store under $HOME/.cache): the server sends nothing anywhere and writes nothing
            // outside server.cache_dir.
            .with_telemetry(false)
            .build()
            .map_err(|e| anyhow::anyhow!("cannot start ONNX Runtime: {e}"))?;
        tracing::info!(library = %path.display(), "ONNX Runtime loaded");
        Ok(OnnxRuntime {
            environment,
            providers: config.execution_providers.clone(),
            intra_threads: config.intra_threads,
            encoder_memory_arena: config.encoder_memory_arena,
        })
    }

    /// Builds a decoder session for `model` (see [`OnnxRuntime::session_for`]).
    pub fn session(&self, model: &Path) -> Result<Session, ModelError> {
        self.session_for(model, SessionKind::Decoder)
    }

    /// Builds an encoder session for `model` (see [`OnnxRuntime::session_for`]).
    pub fn encoder_session(&self, model: &Path) -> Result<Session, ModelError> {
        self.session_for(model, SessionKind::Encoder)
    }

    /// Builds a session for `model`, trying the configured execution providers in order.
    pub fn session_for(&self, model: &Path, kind: SessionKind) -> Result<Session, ModelError> {
        let mut last_error = String::from("no execution provider configured");
        for provider in &self.providers {
            match self.try_session(model, provider, kind) {
                Ok(session) => {
                    tracing::info!(model = %model.display(), provider = %provider, "session ready");
                    return Ok(session);
                }
                Err(e) => {
                    tracing::info!(model = %model.display(), provider = %provider, error = %e, "execution provider not used");
                    last_error = e;
                }
            }
        }
        Err(ModelError::Unavailable(format!(
            "cannot load model {}: {last_error}",
            model.display()
        )))
    }

    fn try_session(
        &self,
        model: &Path,
        provider: &str,
        kind: SessionKind,
    ) -> Result<Session, String> {
        // The CPU arena keeps its high-water mark for the life of the session; an encoder's
        // is the whole activation memory of one encode.
        let arena = kind == SessionKind::Decoder || self.encoder_memory_arena;
        let dispatch = match provider {
            "cuda" => {
                if !CUDA::is_available().unwrap_or(false) {
                    return Err("this ONNX Runtime build has no CUDA provider".into());
                }
                CUDA::default().build().error_on_failure()
            }
            _ => CPU::default()
                .with_arena_allocator(arena)
                .build()
                .error_on_failure(),
        };
        let mut builder = Session::builder(&self.environment)
            .map_err(|e| e.to_string())?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(|e| e.to_string())?
            .with_execution_providers([dispatch])
            .map_err(|e| e.to_string())?;
        if self.intra_threads > 0 {
            builder = builder
                .with_intra_threads(self.intra_threads)
                .map_err(|e| e.to_string())?;
        }
        builder.commit_from_file(model).map_err(|e| e.to_string())
    }
}
