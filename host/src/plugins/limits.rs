//! One plugin call's sandbox: a fresh [`Store`] with an empty WASI context, a memory cap, table
//! and instance caps, an epoch deadline, and the mapping of what went wrong to [`PluginError`].
//!
//! Instance policy: each component is linked once into an `InstancePre` (at load); every call
//! gets a fresh `Store` and a fresh instance. Nothing a plugin does survives its call (no state
//! leaks between requests, a trap cannot poison later calls), and instantiating a pre-linked,
//! copy-on-write-initialised component costs tens of microseconds.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime::{Engine, ResourceLimiter, Store, Trap};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxView, WasiView};

use super::error::{PluginError, PluginId};
use super::host_imports::TransformCache;

/// Milliseconds between two epoch ticks (the engine's ticker thread).
pub(crate) const TICK_MS: u64 = 10;

/// Most table elements one table may hold.
const TABLE_ELEMENTS_LIMIT: usize = 100_000;
/// Most core instances, tables and memories one call may create (a wasip2 component has a
/// handful of each).
const INSTANCES_LIMIT: usize = 64;
const TABLES_LIMIT: usize = 64;
const MEMORIES_LIMIT: usize = 16;
/// Bytes of a plugin's stderr kept (panic messages land there).
const STDERR_CAPTURE_BYTES: usize = 64 * 1024;

/// Limits of one call, from `PluginsConfig`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallLimits {
    pub memory_limit_bytes: u64,
    pub call_timeout_ms: u64,
}

/// The store's resource limiter: caps the linear memory of the whole call (all memories
/// together) and records a refusal, so a trap that follows is reported as out of memory.
#[derive(Debug)]
pub(crate) struct CallLimiter {
    limit: usize,
    used: usize,
    /// The total the plugin asked for when a grow was refused.
    refused: Option<usize>,
}

impl CallLimiter {
    fn new(limit: u64) -> Self {
        CallLimiter {
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            used: 0,
            refused: None,
        }
    }
}

impl ResourceLimiter for CallLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.used.saturating_add(desired.saturating_sub(current));
        if total > self.limit {
            self.refused = Some(total);
            return Ok(false);
        }
        self.used = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= TABLE_ELEMENTS_LIMIT)
    }

    fn instances(&self) -> usize {
        INSTANCES_LIMIT
    }

    fn tables(&self) -> usize {
        TABLES_LIMIT
    }

    fn memories(&self) -> usize {
        MEMORIES_LIMIT
    }
}

/// What a plugin's store holds: an empty WASI context (no preopens, no environment, no
/// arguments, no network, stdin empty, stdout discarded, stderr captured for diagnostics), the
/// limiter and the plugin's name for the `host.log` import.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: CallLimiter,
    stderr: MemoryOutputPipe,
    /// The plugin's name, for log lines.
    pub plugin: Arc<str>,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A store for one call, with its start time.
pub(crate) struct CallStore {
    pub store: Store<HostState>,
    started: Instant,
    limits: CallLimits,
}

impl CallStore {
    /// A fresh store whose epoch deadline is `limits.call_timeout_ms` from now.
    pub fn new(engine: &Engine, plugin: &PluginId, limits: CallLimits) -> CallStore {
        let stderr = MemoryOutputPipe::new(STDERR_CAPTURE_BYTES);
        let wasi = WasiCtx::builder()
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let state = HostState {
            wasi,
            table: ResourceTable::new(),
            limiter: CallLimiter::new(limits.memory_limit_bytes),
            stderr,
            plugin: Arc::from(plugin.name.as_str()),
        };
        let mut store = Store::new(engine, state);
        store.limiter(|s| &mut s.limiter);
        store.set_epoch_deadline(limits.call_timeout_ms.div_ceil(TICK_MS).max(1));
        store.epoch_deadline_trap();
        CallStore {
            store,
            started: Instant::now(),
            limits,
        }
    }

    /// The last lines the plugin wrote to stderr (a panic's message lands there), if any.
    fn stderr_tail(&self) -> Option<String> {
        let bytes = self.store.data().stderr.contents();
        if bytes.is_empty() {
            return None;
        }
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE"))
            .collect();
        let tail = lines[lines.len().saturating_sub(3)..].join(" | ");
        Some(truncate(&tail, 1000))
    }

    /// Maps an error out of wasmtime (trap, interrupt, refused grow, exit) to a [`PluginError`].
    pub fn classify(&self, plugin: &PluginId, err: wasmtime::Error) -> PluginError {
        let stderr = self.stderr_tail();
        let limiter = &self.store.data().limiter;
        if let Some(requested) = limiter.refused {
            return PluginError::OutOfMemory {
                plugin: plugin.clone(),
                limit_bytes: self.limits.memory_limit_bytes,
                requested_bytes: requested as u64,
            };
        }
        if err.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            tracing::warn!(
                plugin = %plugin,
                elapsed_ms = self.started.elapsed().as_millis() as u64,
                "plugin call interrupted"
            );
            return PluginError::Timeout {
                plugin: plugin.clone(),
                limit_ms: self.limits.call_timeout_ms,
            };
        }
        let mut message = match err.downcast_ref::<I32Exit>() {
            Some(exit) => format!("the plugin exited with status {}", exit.0),
            None => match err.downcast_ref::<Trap>() {
                Some(trap) => trap.to_string(),
                None => err.root_cause().to_string(),
            },
        };
        if let Some(tail) = stderr {
            message.push_str(&format!(" (stderr: {tail})"));
        }
        // The details go to the log only: the client gets a generic message naming the plugin.
        let backtrace = err
            .downcast_ref::<wasmtime::WasmBacktrace>()
            .map(|bt| bt.to_string())
            .unwrap_or_else(|| "(none: the component has no name section)".to_string());
        tracing::error!(
            plugin = %plugin,
            error = %message,
            %backtrace,
            "plugin trapped"
        );
        PluginError::Trap {
            plugin: plugin.clone(),
            message,
        }
    }

    /// Checks whether a grow was refused during a call that nevertheless returned (the plugin
    /// may have handled the failure and returned an error of its own).
    pub fn memory_refused(&self) -> Option<u64> {
        self.store.data().limiter.refused.map(|r| r as u64)
    }
}

/// Runs `f` in a fresh store for `plugin` and maps any failure to a [`PluginError`]. `f`
/// returns the plugin's own result: `Err(message)` becomes [`PluginError::Rejected`] (or
/// [`PluginError::OutOfMemory`] when a memory grow was refused on the way).
pub(crate) fn call<R>(
    engine: &Engine,
    plugin: &PluginId,
    limits: CallLimits,
    f: impl FnOnce(&mut Store<HostState>) -> wasmtime::Result<Result<R, String>>,
) -> Result<R, PluginError> {
    let _transforms = TransformCache::scope();
    let mut call = CallStore::new(engine, plugin, limits);
    match f(&mut call.store) {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(message)) => match call.memory_refused() {
            Some(requested) => Err(PluginError::OutOfMemory {
                plugin: plugin.clone(),
                limit_bytes: limits.memory_limit_bytes,
                requested_bytes: requested,
            }),
            None => Err(PluginError::Rejected {
                plugin: plugin.clone(),
                message: clean_message(&message),
            }),
        },
        Err(e) => Err(call.classify(plugin, e)),
    }
}

/// A plugin's message made safe to show: control characters replaced, at most 1000 bytes.
pub(crate) fn clean_message(message: &str) -> String {
    let cleaned: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    truncate(cleaned.trim(), 1000)
}

/// Cuts `s` to at most `max` bytes on a character boundary, marking the cut.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_caps_the_total_and_records_refusals() {
        let mut l = CallLimiter::new(100);
        assert!(l.memory_growing(0, 60, None).unwrap());
        assert!(l.memory_growing(0, 40, None).unwrap());
        assert!(!l.memory_growing(60, 61, None).unwrap());
        assert_eq!(l.refused, Some(101));
        assert_eq!(l.used, 100);
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h…");
        assert_eq!(truncate("abc", 5), "abc");
    }
}
