//! A debounced file watcher for `--reload`: watches directories (not recursively) and calls a
//! blocking callback on its own thread once the matching files have been quiet for a moment.
//! Nothing here runs on the async executor: `notify` delivers events on its thread, and the
//! debounce loop and the callback (which compiles plugins, reads files) run on a dedicated
//! `plugin-watch` thread.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context;
use notify::{EventKind, RecursiveMode, Watcher};

/// Quiet time after the last change before calling back (a copy shows up as several events).
pub const DEBOUNCE: Duration = Duration::from_millis(200);

/// Keeps the watcher alive; dropping it stops watching and ends the callback thread.
pub struct WatchGuard {
    _watcher: notify::RecommendedWatcher,
}

/// Watches `dirs` (each non-recursively) and calls `on_change` on a dedicated thread
/// [`DEBOUNCE`] after the last event on a path for which `relevant` returns true. Events that
/// only read files are ignored.
pub fn watch(
    dirs: &[PathBuf],
    relevant: impl Fn(&Path) -> bool + Send + 'static,
    on_change: impl Fn() + Send + 'static,
) -> anyhow::Result<WatchGuard> {
    let (tx, rx) = mpsc::channel::<()>();
    let mut watcher =
        notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
            Ok(event) => {
                if !matches!(event.kind, EventKind::Access(_))
                    && event.paths.iter().any(|p| relevant(p))
                {
                    let _ = tx.send(());
                }
            }
            Err(e) => tracing::warn!(error = %e, "file watcher error"),
        })
        .context("creating the file watcher")?;
    for dir in dirs {
        watcher
            .watch(dir, RecursiveMode::NonRecursive)
            .with_context(|| format!("watching {}", dir.display()))?;
    }
    std::thread::Builder::new()
        .name("plugin-watch".into())
        .spawn(move || debounce(rx, on_change))
        .context("starting the watcher thread")?;
    tracing::info!(dirs = ?dirs, "watching for changes");
    Ok(WatchGuard { _watcher: watcher })
}

/// Calls `on_change` after each burst of events; returns when the sender is dropped.
fn debounce(rx: mpsc::Receiver<()>, on_change: impl Fn()) {
    while rx.recv().is_ok() {
        loop {
            match rx.recv_timeout(DEBOUNCE) {
                Ok(()) => continue,
                Err(mpsc::RecvTimeoutError::Timeout) => break,
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        }
        on_change();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn a_burst_of_changes_calls_back_once_off_the_caller() {
        let dir = std::env::temp_dir().join(format!("samgeo-watch-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&calls);
        let caller = std::thread::current().id();
        let _guard = watch(
            std::slice::from_ref(&dir),
            |p| p.extension().is_some_and(|e| e == "wasm"),
            move || {
                assert_ne!(std::thread::current().id(), caller);
                seen.fetch_add(1, Ordering::SeqCst);
            },
        )
        .unwrap();
        std::fs::write(dir.join("ignored.txt"), b"x").unwrap();
        for i in 0..3 {
            std::fs::write(dir.join("a.wasm"), [i]).unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while calls.load(Ordering::SeqCst) == 0 {
            assert!(Instant::now() < deadline, "no callback");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(DEBOUNCE * 3);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        std::fs::remove_dir_all(&dir).ok();
    }
}
