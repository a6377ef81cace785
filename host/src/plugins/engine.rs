//! The wasmtime [`Engine`] plugins run on, its epoch ticker, the [`Linker`] with the imports
//! plugins may use, and the on-disk cache of compiled components.
//!
//! Allocation: the default on-demand allocator, not the pooling allocator. Plugin calls are a
//! few per request (the filter chain and one formatter), next to model inference that takes
//! far longer, so the microseconds pooling saves per instantiation do not matter; on-demand
//! instantiation is still cheap here because memories are initialised copy-on-write from the
//! compiled image. The pooling allocator would instead reserve every slot up front
//! (`memory_limit_bytes` × concurrent calls) and cap concurrency with a second, less obvious
//! limit that would fail calls under load.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine};

use super::bindings;
use super::limits::{HostState, TICK_MS};

/// The wasmtime release line we build against (Cargo.toml pins the major version). Patch
/// releases are caught by wasmtime itself: it checks its exact version in an artifact's header
/// and refuses a mismatch, which makes us recompile and replace the file.
const WASMTIME_VERSION: &str = "wasmtime 48";

/// The engine, linker and artifact cache shared by every registry generation.
pub(crate) struct PluginEngine {
    pub engine: Engine,
    pub linker: Linker<HostState>,
    pub cache: ArtifactCache,
}

impl PluginEngine {
    /// Builds the engine (component model, epoch interruption), starts its ticker thread and
    /// links WASI p2 and the `host` interface of every supported WIT version.
    pub fn new(cache_dir: &Path) -> anyhow::Result<PluginEngine> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        config.parallel_compilation(true);
        config.cranelift_opt_level(wasmtime::OptLevel::Speed);
        let engine = Engine::new(&config)
            .map_err(anyhow::Error::from)
            .context("creating the wasmtime engine")?;
        start_epoch_ticker(&engine)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(anyhow::Error::from)
            .context("linking WASI p2")?;
        bindings::add_to_linker(&mut linker)
            .map_err(anyhow::Error::from)
            .context("linking the host interface")?;

        let cache = ArtifactCache::new(&engine, cache_dir.join("plugins"));
        Ok(PluginEngine {
            engine,
            linker,
            cache,
        })
    }
}

/// Increments the engine's epoch every [`TICK_MS`] ms until the engine is dropped.
fn start_epoch_ticker(engine: &Engine) -> anyhow::Result<()> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("plugin-epoch".into())
        .spawn(move || loop {
            std::thread::sleep(Duration::from_millis(TICK_MS));
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => break,
            }
        })
        .context("starting the epoch ticker thread")?;
    Ok(())
}

/// Compiled components on disk: `<cache_dir>/plugins/<sha256 of the component>-<engine>.cwasm`,
/// where `<engine>` is the first 16 hex digits of SHA-256 over the wasmtime version and
/// [`Engine::precompile_compatibility_hash`] (target, compiler settings, wasm features).
///
/// Safety of loading: `Component::deserialize` trusts its input (it loads the native code and
/// runs it). We only ever open files whose name is the key we computed, in the server's own
/// cache directory (`server.cache_dir`, documented as the one directory the server writes to,
/// so it must not be writable by anyone the server does not trust), that we wrote ourselves:
/// files are written to a temporary name in the same directory and renamed into place, so a
/// visible `.cwasm` is always complete; files writable by group or others are refused. Wasmtime
/// also checks the header (version, target, settings) and refuses incompatible artifacts, which
/// we then recompile and replace. Artifacts are read into memory, not mapped, so nothing that
/// happens to the file afterwards can affect a loaded component.
pub(crate) struct ArtifactCache {
    dir: Option<PathBuf>,
    engine_key: String,
    compiled: AtomicU64,
    loaded: AtomicU64,
}

/// How many components were compiled and how many were loaded from the disk cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct CacheStats {
    pub compiled: u64,
    pub loaded_from_cache: u64,
}

/// A std `Hasher` feeding SHA-256, to turn `precompile_compatibility_hash` into stable bytes.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        let d = self.0.clone().finalize();
        u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

impl ArtifactCache {
    fn new(engine: &Engine, dir: PathBuf) -> ArtifactCache {
        let mut h = Sha256Hasher(Sha256::new());
        h.write(WASMTIME_VERSION.as_bytes());
        engine.precompile_compatibility_hash().hash(&mut h);
        let engine_key = hex::encode(&h.0.finalize()[..8]);
        let dir = match fs::create_dir_all(&dir) {
            Ok(()) => Some(dir),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot create the plugin cache directory; compiling plugins without a cache");
                None
            }
        };
        ArtifactCache {
            dir,
            engine_key,
            compiled: AtomicU64::new(0),
            loaded: AtomicU64::new(0),
        }
    }

    /// Counters since start.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            compiled: self.compiled.load(Ordering::Relaxed),
            loaded_from_cache: self.loaded.load(Ordering::Relaxed),
        }
    }

    /// The cache file for a component with this SHA-256 (hex), if there is a cache directory.
    pub fn path_for(&self, sha256_hex: &str) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|d| d.join(format!("{sha256_hex}-{}.cwasm", self.engine_key)))
    }

    /// The component for `bytes` (whose SHA-256 is `sha256_hex`): from the cache when a usable
    /// artifact is there, else compiled and written to the cache.
    pub fn load(
        &self,
        engine: &Engine,
        bytes: &[u8],
        sha256_hex: &str,
    ) -> anyhow::Result<Component> {
        let path = self.path_for(sha256_hex);
        if let Some(path) = &path {
            if let Some(component) = self.try_deserialize(engine, path) {
                self.loaded.fetch_add(1, Ordering::Relaxed);
                return Ok(component);
            }
        }
        let started = Instant::now();
        let component = Component::new(engine, bytes)
            .map_err(anyhow::Error::from)
            .context("compiling the component")?;
        self.compiled.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            sha256 = sha256_hex,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "compiled plugin component"
        );
        if let Some(path) = &path {
            if let Err(e) = write_artifact(&component, path) {
                tracing::warn!(path = %path.display(), error = %format!("{e:#}"), "cannot write the compiled plugin to the cache");
            }
        }
        Ok(component)
    }

    fn try_deserialize(&self, engine: &Engine, path: &Path) -> Option<Component> {
        let meta = fs::symlink_metadata(path).ok()?;
        if !meta.file_type().is_file() {
            return None;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if meta.permissions().mode() & 0o022 != 0 {
                tracing::warn!(path = %path.display(), "ignoring a cached plugin writable by group or others");
                return None;
            }
        }
        let started = Instant::now();
        // Read into memory rather than `deserialize_file`'s mmap: a mapped file that someone
        // truncates or rewrites in place while we run would SIGBUS the whole server; a copy
        // costs well under a millisecond for a plugin-sized artifact.
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read a cached plugin; recompiling");
                return None;
            }
        };
        // SAFETY: see the type's documentation: the bytes come from a file with the name only
        // we give to artifacts we serialized, in our own cache directory, complete (atomic
        // rename) and not writable by group/others; wasmtime validates the header against this
        // engine.
        match unsafe { Component::deserialize(engine, &bytes) } {
            Ok(c) => {
                tracing::debug!(path = %path.display(), elapsed_us = started.elapsed().as_micros() as u64, "loaded compiled plugin from cache");
                Some(c)
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "unusable cached plugin; recompiling");
                None
            }
        }
    }
}

/// Serializes `component` to `path` atomically: a temporary file in the same directory, synced,
/// then renamed over `path`.
fn write_artifact(component: &Component, path: &Path) -> anyhow::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let bytes = component.serialize()?;
    let dir = path.parent().context("cache path has no directory")?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .context("cache path has no file name")?;
    let tmp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| -> anyhow::Result<()> {
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o644);
        }
        let mut f = options
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
