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

/// Sends GDAL's messages to the log instead of stderr, and keeps GDAL from writing sidecar
/// files or listing directories.
fn route_gdal_messages() {
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
    route_gdal_messages();
    std::fs::create_dir_all(&config.server.cache_dir).with_context(|| {
        format!(
            "creating the cache directory {}",
            config.server.cache_dir.display()
        )
    })?;
    let runtime = OnnxRuntime::init(&config.runtime)?;
    let plugins =
        PluginHost::new(&config.plugins, &config.server.cache_dir).context("loading plugins")?;
    let state = AppState::new(config.clone(), runtime, plugins);
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
    if cli.reload {
        spawn_config_watch(state.clone(), cli.config_path());
    }
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

/// SIGHUP reloads the plugins.
fn spawn_sighup_reload(state: AppState) {
    let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        return;
    };
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading plugins");
            reload_plugins(&state).await;
        }
    });
}

async fn reload_plugins(state: &AppState) {
    let plugins = state.plugins.clone();
    match tokio::task::spawn_blocking(move || plugins.reload()).await {
        Ok(Ok(report)) => tracing::info!(?report, "plugins reloaded"),
        Ok(Err(e)) => tracing::error!("plugin reload failed, previous plugins stay: {e:#}"),
        Err(e) => tracing::error!("plugin reload task failed: {e}"),
    }
}

/// `--reload`: polls the config file and the plugin directory (every 500 ms) and applies
/// changes: model files and plugin options from the config, new or changed components.
fn spawn_config_watch(state: AppState, config_path: PathBuf) {
    tokio::spawn(async move {
        let mut last = fingerprint(&config_path, &state.config().plugins.directory);
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let config = state.config();
            let now = fingerprint(&config_path, &config.plugins.directory);
            if now == last {
                continue;
            }
            last = now;
            match Config::load(&config_path, std::env::vars()) {
                Ok(mut new_config) => {
                    new_config.server = config.server.clone();
                    state.replace_config(new_config);
                    tracing::info!(path = %config_path.display(), "configuration reloaded (server settings need a restart)");
                }
                Err(e) => tracing::error!("configuration not reloaded: {e:#}"),
            }
            reload_plugins(&state).await;
        }
    });
}

/// Modification times and sizes of the config file and the plugin directory's entries.
fn fingerprint(
    config: &Path,
    plugin_dir: &Path,
) -> Vec<(PathBuf, u64, Option<std::time::SystemTime>)> {
    let stat = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| (p.to_path_buf(), m.len(), m.modified().ok()))
            .unwrap_or((p.to_path_buf(), 0, None))
    };
    let mut entries = vec![stat(config)];
    if let Ok(dir) = std::fs::read_dir(plugin_dir) {
        let mut files: Vec<_> = dir.flatten().map(|e| stat(&e.path())).collect();
        files.sort();
        entries.extend(files);
    }
    entries
}
