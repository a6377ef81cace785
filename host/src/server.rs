//! Start-up and shutdown: configuration, logging, ONNX Runtime, plugins, preloaded models, the
//! listener, signals (SIGTERM/Ctrl-C: graceful stop; SIGHUP: plugin reload) and `--reload`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::cli::{parse_preload, Cli};
use crate::config::{model_ids, Config, MODEL_VERSIONS};
use crate::models::OnnxRuntime;
use crate::plugins::PluginHost;
use crate::state::AppState;

/// Reads the configuration with the command line's overrides applied. A file named with
/// `--config` must exist; only the implicit `./samgeo.toml` may be absent.
pub fn load_config(cli: &Cli) -> Result<Config> {
    let mut config = match &cli.config {
        Some(path) => Config::load_file(path, std::env::vars())?,
        None => Config::load(&cli.config_path(), std::env::vars())?,
    };
    if let Some(host) = &cli.host {
        config.server.host = host.clone();
    }
    if let Some(port) = cli.port {
        config.server.port = port;
    }
    Ok(config)
}

/// Sends GDAL's messages to the log instead of stderr, keeps GDAL from writing sidecar files or
/// listing directories, and bounds its block cache (`caches.gdal_cache_bytes`). Called before
/// GDAL reads anything.
fn route_gdal_messages(cache_bytes: u64) {
    // At least 1 MiB (GDAL reads a value under 100 000 as MiB, larger ones as bytes).
    let cache = cache_bytes.max(1 << 20).to_string();
    if let Err(e) = gdal::config::set_config_option("GDAL_CACHEMAX", &cache) {
        tracing::warn!("cannot set GDAL_CACHEMAX: {e}");
    }
    for (key, value) in [
        ("GDAL_PAM_ENABLED", "NO"),
        ("GDAL_DISABLE_READDIR_ON_OPEN", "EMPTY_DIR"),
    ] {
        if let Err(e) = gdal::config::set_config_option(key, value) {
            tracing::warn!("cannot set GDAL option {key}: {e}");
        }
    }
    gdal::config::set_error_handler(|class, code, message| {
        tracing::debug!(target: "gdal", ?class, code, "{message}");
    });
}

/// Runs the server until SIGTERM or Ctrl-C.
pub async fn run(cli: Cli) -> Result<()> {
    let config = load_config(&cli)?;
    crate::logging::init(
        &cli.log_level,
        cli.log_format.unwrap_or(config.server.log_format),
    );
    crate::metrics::init();
    let preloads = cli
        .preload
        .iter()
        .map(|p| parse_preload(p).map_err(anyhow::Error::msg))
        .collect::<Result<Vec<_>>>()?;
    for (version, id) in &preloads {
        if !MODEL_VERSIONS.contains(&version.as_str()) {
            bail!("--preload {version}:{id}: invalid model_version '{version}' (one of {MODEL_VERSIONS:?})");
        }
        if !model_ids(version).contains(&id.as_str()) {
            bail!(
                "--preload {version}:{id}: invalid model_id '{id}' for {version} (one of {:?})",
                model_ids(version)
            );
        }
    }
    route_gdal_messages(config.caches.gdal_cache_bytes);
    std::fs::create_dir_all(&config.server.cache_dir).with_context(|| {
        format!(
            "creating the cache directory {}",
            config.server.cache_dir.display()
        )
    })?;
    let runtime = OnnxRuntime::init(&config.runtime)?;
    // Reloads (SIGHUP, POST /plugins/reload, --reload) re-read [plugins] from this file.
    let plugins = PluginHost::with_config_file(
        &config.plugins,
        &config.server.cache_dir,
        Some(cli.config_path()),
    )
    .context("loading plugins")?;
    let state = AppState::new(config.clone(), runtime, plugins);
    state.set_config_loader(Box::new(load_config_fn(&cli)));
    start_jobs(&state, &config).await?;
    for (version, id) in &preloads {
        let state = state.clone();
        let (v, i) = (version.clone(), id.clone());
        tokio::task::spawn_blocking(move || {
            let config = state.config();
            crate::pipeline::predict::preload(&state, &config, &v, &i)
        })
        .await?
        .map_err(|e| anyhow::anyhow!("--preload {version}:{id}: {}", e.detail))?;
        tracing::info!(%version, %id, "model preloaded");
    }
    spawn_sighup_reload(state.clone());
    let _watch = if cli.reload {
        Some(watch_config_and_plugins(state.clone())?)
    } else {
        None
    };
    let address = format!("{}:{}", config.server.host, config.server.port);
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .with_context(|| format!("binding {address}"))?;
    tracing::info!(address = %listener.local_addr()?, "samgeo-api listening");
    if let Some(port) = config.metrics.port {
        serve_metrics(state.clone(), &config.server.host, port).await?;
    }
    let grace = Duration::from_secs(config.server.shutdown_grace_secs);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server =
        axum::serve(listener, crate::http::router(state)).with_graceful_shutdown(async move {
            shutdown_signal().await;
            tracing::info!("shutting down: no new connections, finishing requests in flight");
            let _ = stop_tx.send(true);
        });
    let mut stop_rx_clone = stop_rx.clone();
    tokio::select! {
        result = server => result.context("serving")?,
        _ = async {
            let _ = stop_rx_clone.wait_for(|s| *s).await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!(grace_secs = grace.as_secs(), "requests still running after the grace period; exiting");
        }
    }
    Ok(())
}

/// Opens the job store under `cache_dir` (on a cluster: the shared store in Redis, files under
/// `shared_root()`), resumes the jobs a previous process left running or accepted (on a
/// cluster: takes over the jobs no replica holds, and starts this replica's tile worker), and
/// starts the sweep of expired results.
async fn start_jobs(state: &AppState, config: &Config) -> Result<()> {
    let planner = std::sync::Arc::new(crate::http::processes::SegmentPlanner(state.clone()));
    let (cache_dir, limiter, jobs_config) = (
        config.server.cache_dir.clone(),
        state.limiter.clone(),
        config.jobs.clone(),
    );
    let (cluster, cluster_config, shared_root) = (
        state.cluster.clone(),
        config.cluster.clone(),
        config.shared_root().to_path_buf(),
    );
    let jobs = tokio::task::spawn_blocking(move || match cluster {
        Some(redis) => crate::jobs::Jobs::open_shared(
            redis,
            &cluster_config,
            &shared_root,
            planner,
            limiter,
            jobs_config,
        ),
        None => crate::jobs::Jobs::open(&cache_dir, planner, limiter, jobs_config),
    })
    .await?
    .context("opening the job store")?;
    state.set_jobs(jobs.clone());
    if let Some(redis) = &state.cluster {
        // Redis may be down now: the takeover scan retries, the worker waits for it.
        jobs.spawn_takeover();
        if jobs.fans_out() {
            crate::jobs::tile_worker::spawn(
                jobs.clone(),
                redis.clone(),
                &config.cluster,
                tokio::runtime::Handle::current(),
            )
            .context("starting the tile worker")?;
        }
    } else {
        let resumed = jobs
            .recover()
            .await
            .map_err(|e| anyhow::anyhow!("resuming jobs: {}", e.detail))?;
        if resumed > 0 {
            tracing::info!(jobs = resumed, "resuming jobs left by the previous run");
        }
    }
    jobs.spawn_sweeper();
    Ok(())
}

/// `[metrics] port`: `GET /metrics` on its own listener, until the process ends.
async fn serve_metrics(state: AppState, host: &str, port: u16) -> Result<()> {
    let address = format!("{host}:{port}");
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .with_context(|| format!("binding {address} (metrics.port)"))?;
    tracing::info!(address = %listener.local_addr()?, "metrics listening");
    let app = crate::http::metrics_router(state);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("metrics listener stopped: {e}");
        }
    });
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// SIGHUP reloads the plugins (re-reading `[plugins]` from the config file).
fn spawn_sighup_reload(state: AppState) {
    let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        return;
    };
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading plugins");
            let state = state.clone();
            match tokio::task::spawn_blocking(move || state.reload_plugins()).await {
                Ok(Ok(report)) => tracing::info!(?report, "plugins reloaded"),
                Ok(Err(e)) => tracing::error!("plugin reload failed, previous plugins stay: {e}"),
                Err(e) => tracing::error!("plugin reload task failed: {e}"),
            }
        }
    });
}

/// How `--reload` re-reads the configuration: as at start-up, command-line overrides included.
fn load_config_fn(cli: &Cli) -> impl Fn() -> Result<Config> + Send + Sync + 'static {
    let cli = Cli {
        host: cli.host.clone(),
        port: cli.port,
        config: cli.config.clone(),
        preload: Vec::new(),
        reload: cli.reload,
        log_level: cli.log_level.clone(),
        log_format: cli.log_format,
    };
    move || load_config(&cli)
}

/// `--reload`: watches the config file's directory and the plugin directory (a `notify`
/// watcher; the debounce and the reload run on a dedicated thread, never on the executor). On a
/// change it re-reads the configuration: `[plugins]` (components, filter chain, format map,
/// options, limits) is applied with the plugins, atomically; every other change needs a
/// restart, is named in the log and is not applied.
fn watch_config_and_plugins(state: AppState) -> Result<crate::plugins::watch::WatchGuard> {
    let current = state.config();
    let config_path = state_config_path(&state);
    let config_dir = config_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let plugin_dir = current.plugins.directory.clone();
    let config_name = config_path.file_name().map(|n| n.to_os_string());
    let relevant = move |p: &Path| {
        p.extension().is_some_and(|e| e == "wasm")
            || (config_name.is_some() && p.file_name() == config_name.as_deref())
    };
    crate::plugins::watch::watch(&[config_dir, plugin_dir], relevant, move || {
        match state.reload_plugins() {
            Ok(report) => tracing::info!(?report, "plugins reloaded"),
            Err(e) => tracing::error!(
                "plugin reload failed, previous plugins and configuration stay: {e}"
            ),
        }
    })
}

/// The configuration file the plugins re-read (the `--config` path).
fn state_config_path(state: &AppState) -> PathBuf {
    state
        .plugins
        .config_file()
        .unwrap_or_else(|| PathBuf::from("samgeo.toml"))
}

/// The settings outside `[plugins]` that differ between `old` and `new`, named by their
/// section (and model), which a running server does not pick up.
pub(crate) fn changes_needing_restart(old: &Config, new: &Config) -> Vec<String> {
    let differs =
        |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| format!("{a:?}") != format!("{b:?}");
    // Every section but `[plugins]` (applied live) and `[models]` (named per model below).
    let sections: [(&str, &dyn std::fmt::Debug, &dyn std::fmt::Debug); 10] = [
        ("[server]", &old.server, &new.server),
        ("[runtime]", &old.runtime, &new.runtime),
        ("[caches]", &old.caches, &new.caches),
        ("[metrics]", &old.metrics, &new.metrics),
        ("[api]", &old.api, &new.api),
        ("[tiling]", &old.tiling, &new.tiling),
        ("[inputs]", &old.inputs, &new.inputs),
        ("[jobs]", &old.jobs, &new.jobs),
        ("[web]", &old.web, &new.web),
        ("[cluster]", &old.cluster, &new.cluster),
    ];
    let mut out: Vec<String> = sections
        .iter()
        .filter(|(_, a, b)| differs(*a, *b))
        .map(|(name, _, _)| name.to_string())
        .collect();
    let versions: std::collections::BTreeSet<&String> =
        old.models.keys().chain(new.models.keys()).collect();
    for v in versions {
        let (a, b) = (old.models.get(v), new.models.get(v));
        let ids: std::collections::BTreeSet<&String> =
            a.into_iter().chain(b).flat_map(|m| m.keys()).collect();
        for id in ids {
            if differs(&a.and_then(|m| m.get(id)), &b.and_then(|m| m.get(id))) {
                out.push(format!(
                    "[models.{v}.\"{id}\"] (loaded models and cached embeddings would go stale)"
                ));
            }
        }
    }
    out
}

/// Logs each change of `new` against the running configuration that a reload does not apply.
pub(crate) fn log_changes_needing_restart(old: &Config, new: &Config) {
    for change in changes_needing_restart(old, new) {
        tracing::warn!(
            change,
            "configuration change not applied: it needs a restart"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_outside_plugins_are_named() {
        let old = Config::default();
        let mut new = old.clone();
        new.plugins.filters.clear();
        assert!(changes_needing_restart(&old, &new).is_empty());
        new.server.port += 1;
        new.jobs.max_running += 1;
        new.web.enabled = !new.web.enabled;
        new.models.entry("sam".into()).or_default().insert(
            "vit_b".into(),
            toml::from_str("encoder = \"e.onnx\"\ndecoder = \"d.onnx\"").unwrap(),
        );
        let changes = changes_needing_restart(&old, &new);
        assert_eq!(changes.len(), 4, "{changes:?}");
        assert_eq!(changes[..3], ["[server]", "[jobs]", "[web]"]);
        assert!(
            changes[3].starts_with("[models.sam.\"vit_b\"]"),
            "{changes:?}"
        );
    }
}
