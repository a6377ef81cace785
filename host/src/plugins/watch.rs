//! Reloading plugins while the server runs: on changes in the plugin directory (`--reload`) and
//! on SIGHUP.

use std::time::Duration;

use anyhow::Context;
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::PluginHost;

/// Quiet time after the last change before reloading (a copy shows up as several events).
const DEBOUNCE: Duration = Duration::from_millis(200);

/// Keeps the directory watcher alive; dropping it stops watching.
pub struct WatchGuard {
    _watcher: notify::RecommendedWatcher,
    task: JoinHandle<()>,
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PluginHost {
    /// Watches the plugin directory (not recursively) and reloads, on `handle`'s blocking pool,
    /// 200 ms after the last change to a `*.wasm` file. A failed reload is logged and the
    /// current plugins stay.
    pub fn watch(&self, handle: Handle) -> anyhow::Result<WatchGuard> {
        let (tx, rx) = mpsc::unbounded_channel::<()>();
        let mut watcher =
            notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
                Ok(event) => {
                    let relevant = !matches!(event.kind, EventKind::Access(_))
                        && event
                            .paths
                            .iter()
                            .any(|p| p.extension().is_some_and(|e| e == "wasm"));
                    if relevant {
                        let _ = tx.send(());
                    }
                }
                Err(e) => tracing::warn!(error = %e, "plugin directory watcher error"),
            })
            .context("creating the plugin directory watcher")?;
        let dir = self.inner.config.directory.clone();
        watcher
            .watch(&dir, RecursiveMode::NonRecursive)
            .with_context(|| format!("watching {}", dir.display()))?;
        let task = handle.spawn(debounced_reloads(self.clone(), rx));
        tracing::info!(dir = %dir.display(), "watching the plugin directory");
        Ok(WatchGuard {
            _watcher: watcher,
            task,
        })
    }

    /// Spawns a task on `handle` that reloads the plugins on every SIGHUP until the runtime
    /// shuts down (or the returned handle is aborted).
    pub fn spawn_sighup_reloader(&self, handle: &Handle) -> anyhow::Result<JoinHandle<()>> {
        use tokio::signal::unix::{signal, SignalKind};
        let _enter = handle.enter();
        let mut hup = signal(SignalKind::hangup()).context("listening for SIGHUP")?;
        let host = self.clone();
        Ok(handle.spawn(async move {
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading plugins");
                reload_logged(&host).await;
            }
        }))
    }
}

async fn debounced_reloads(host: PluginHost, mut rx: mpsc::UnboundedReceiver<()>) {
    while rx.recv().await.is_some() {
        loop {
            match tokio::time::timeout(DEBOUNCE, rx.recv()).await {
                Ok(Some(())) => continue,
                Ok(None) => return,
                Err(_) => break,
            }
        }
        reload_logged(&host).await;
    }
}

async fn reload_logged(host: &PluginHost) {
    let host = host.clone();
    let result = tokio::task::spawn_blocking(move || host.reload()).await;
    match result {
        Ok(Ok(report)) => tracing::info!(report = ?report, "plugin reload done"),
        Ok(Err(e)) => {
            tracing::error!(error = %format!("{e:#}"), "plugin reload failed; keeping the current plugins")
        }
        Err(e) => tracing::error!(error = %e, "plugin reload task failed"),
    }
}
