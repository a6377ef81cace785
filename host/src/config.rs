//! The server's configuration: `samgeo.toml`, overridden by `SAMGEO_*` environment variables and
//! then by command-line flags. Unknown keys and bad values stop start-up with a message naming them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

mod include;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub runtime: RuntimeConfig,
    pub caches: CacheConfig,
    /// Model files per version ("sam", "sam2", "sam3") and model id.
    pub models: BTreeMap<String, BTreeMap<String, ModelFiles>>,
    pub plugins: PluginsConfig,
    pub metrics: MetricsConfig,
    pub api: ApiConfig,
    pub tiling: TilingConfig,
    pub inputs: InputsConfig,
    pub jobs: JobsConfig,
    pub web: WebConfig,
    pub cluster: ClusterConfig,
}

/// `[server]`: the HTTP side.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    /// Largest accepted request body (the upload plus form fields), in bytes.
    pub max_upload_bytes: u64,
    /// Bytes of request bodies received or held at once (each counted at its declared
    /// `Content-Length`, or `max_upload_bytes` when it has none) until its response is ready;
    /// past it the client gets 503 with Retry-After. At least `max_upload_bytes`.
    pub max_buffered_upload_bytes: u64,
    /// Largest image looked at whole (downsampled to the model's input), in pixels
    /// (width × height).
    pub max_pixels: u64,
    /// Largest image segmented tile by tile or window by window, in pixels.
    pub max_tiled_pixels: u64,
    /// Time limit for one request, in seconds; past it the client gets 504.
    pub request_timeout_secs: u64,
    /// Inferences that may run at once.
    pub max_concurrent_inferences: usize,
    /// Requests that may wait for an inference slot; past that the client gets 503.
    pub max_queued_requests: usize,
    /// When set, every route but `/health` needs `Authorization: Bearer <key>`.
    pub api_key: Option<String>,
    /// Origins allowed by CORS (e.g. `https://gis.example`); `*` allows any origin (without
    /// credentials); empty allows none.
    pub cors_origins: Vec<String>,
    /// Log lines as `text` or `json` (`--log-format` overrides).
    pub log_format: crate::logging::LogFormat,
    /// The only directory the server writes to (compiled plugin cache).
    pub cache_dir: PathBuf,
    /// Seconds in-flight requests get to finish after SIGTERM.
    pub shutdown_grace_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host: "0.0.0.0".into(),
            port: 8000,
            max_upload_bytes: 512 * 1024 * 1024,
            max_buffered_upload_bytes: 2 * 1024 * 1024 * 1024,
            max_pixels: 268_435_456,
            max_tiled_pixels: 2_500_000_000,
            request_timeout_secs: 300,
            max_concurrent_inferences: 2,
            max_queued_requests: 32,
            api_key: None,
            cors_origins: Vec::new(),
            log_format: crate::logging::LogFormat::Text,
            cache_dir: PathBuf::from(".samgeo-cache"),
            shutdown_grace_secs: 30,
        }
    }
}

/// `[runtime]`: ONNX Runtime.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Path of `libonnxruntime.so` (the `ORT_DYLIB_PATH` environment variable wins when set).
    pub onnxruntime_library: PathBuf,
    /// Execution providers in order of preference: "cuda", "cpu".
    pub execution_providers: Vec<String>,
    /// Threads per inference (intra-op); 0 lets ONNX Runtime choose.
    pub intra_threads: usize,
    /// Whether image encoder sessions keep ONNX Runtime's CPU memory arena. Off (the
    /// default), an encode's activations are returned to the system after each call, so the
    /// process's memory follows the caches; on, they stay reserved (faster repeated encodes,
    /// a peak that never goes down).
    pub encoder_memory_arena: bool,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            onnxruntime_library: PathBuf::from(".ort/libonnxruntime.so.1.31.1"),
            execution_providers: vec!["cuda".into(), "cpu".into()],
            intra_threads: 0,
            encoder_memory_arena: false,
        }
    }
}

/// `[caches]`: what stays in memory between requests.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Loaded models kept at once (least recently used goes first).
    pub max_loaded_models: usize,
    /// Bytes of image embeddings kept (least recently used goes first).
    pub embedding_cache_bytes: u64,
    /// How they are kept: `f32` as computed, or `f16` (half the bytes, so twice the images;
    /// widened back for each use, and masks can differ from f32's by a pixel at an edge).
    pub embedding_precision: crate::cache::EmbeddingPrecision,
    /// Bytes of rasters kept by `POST /images` under `server.cache_dir` (least recently used
    /// goes first).
    pub image_store_bytes: u64,
    /// Bytes of GDAL's raster block cache (`GDAL_CACHEMAX`). GDAL's own default is 5 % of the
    /// machine's memory, which a tiled run over a large raster fills with blocks it reads once;
    /// a window is read whole, so a small cache costs no re-reads.
    pub gdal_cache_bytes: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            max_loaded_models: 2,
            embedding_cache_bytes: 1024 * 1024 * 1024,
            embedding_precision: crate::cache::EmbeddingPrecision::F32,
            image_store_bytes: 20 * 1024 * 1024 * 1024,
            gdal_cache_bytes: 256 * 1024 * 1024,
        }
    }
}

/// `[tiling]`: when and how a large raster is segmented tile by tile at native resolution.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TilingConfig {
    /// `tiling = auto` tiles a raster whose longest side exceeds this many pixels.
    pub auto_above_px: u32,
    /// Default side of a tile, in pixels (form field `tile_size`).
    pub tile_size: u32,
    /// Default overlap of neighbouring tiles, in pixels (form field `tile_overlap`).
    pub tile_overlap: u32,
}

impl Default for TilingConfig {
    fn default() -> Self {
        TilingConfig {
            auto_above_px: 4096,
            tile_size: 1024,
            tile_overlap: 128,
        }
    }
}

/// `[inputs]`: rasters read in place through the `source` field, and rasters stored once
/// through `POST /images`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InputsConfig {
    /// Prefixes a `source` must start with (local directories, `/vsicurl/https://host/`,
    /// `/vsis3/bucket/`); empty disables `source`.
    pub allowed_sources: Vec<String>,
    /// Largest body `POST /images` accepts, in bytes. Streamed to disk (never held in memory,
    /// so outside `server.max_buffered_upload_bytes`); other routes keep
    /// `server.max_upload_bytes`.
    pub max_image_bytes: u64,
}

impl Default for InputsConfig {
    fn default() -> Self {
        InputsConfig {
            allowed_sources: Vec::new(),
            max_image_bytes: 8 * 1024 * 1024 * 1024,
        }
    }
}

/// `[jobs]`: long work run in the background (OGC API – Processes).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    /// Jobs that run at once.
    pub max_running: usize,
    /// Jobs accepted and not yet finished; past it a new job gets 503.
    pub max_accepted: usize,
    /// Time limit of one job, in seconds.
    pub job_timeout_secs: u64,
    /// Hours a finished job's results are kept.
    pub keep_results_hours: u64,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            max_running: 1,
            max_accepted: 100,
            job_timeout_secs: 24 * 3600,
            keep_results_hours: 72,
        }
    }
}

/// `[cluster]`: several replicas sharing embeddings, images, jobs and tiles through Redis.
/// Without `redis_url` the server runs alone (the default) and none of the rest applies.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// `redis://host:port/db` of the shared tier (also `SAMGEO_CLUSTER_REDIS_URL`); absent: no
    /// cluster.
    pub redis_url: Option<String>,
    /// This replica's name in the cluster (consumer name of the tile stream, lock owner);
    /// absent: the host name and process id.
    pub node_id: Option<String>,
    /// A directory every replica sees (a shared volume): stored images (`images/`) and job files
    /// (`jobs/`) live there instead of under `server.cache_dir`. Absent: under `cache_dir`.
    pub shared_dir: Option<PathBuf>,
    /// Seconds an embedding is kept in Redis after it was last written.
    pub embedding_ttl_secs: u64,
    /// Seconds the cross-replica encode lock lives at most (a crashed holder frees it then).
    pub encode_lock_secs: u64,
    /// Connect, read and write time limit of one Redis call, in milliseconds.
    pub redis_timeout_ms: u64,
    /// After a failed Redis call, seconds before the next attempt (meanwhile the replica serves
    /// from its own cache and runs its jobs alone).
    pub redis_retry_secs: u64,
    /// Spread a tiled job's tiles over every replica through a Redis stream.
    pub tile_fanout: bool,
    /// Milliseconds a tile may stay claimed by a silent replica before another takes it over;
    /// also the lifetime of a job's lease (a dead coordinator's job is taken over after it).
    pub tile_claim_idle_ms: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            redis_url: None,
            node_id: None,
            shared_dir: None,
            embedding_ttl_secs: 24 * 3600,
            encode_lock_secs: 120,
            redis_timeout_ms: 1000,
            redis_retry_secs: 5,
            tile_fanout: true,
            tile_claim_idle_ms: 30_000,
        }
    }
}

/// `[web]`: the page at `GET /` (a map to open a raster and segment it by clicking).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// Serve the page and its assets (`/`, `/ui/...`); `false` answers 404 there.
    pub enabled: bool,
    /// XYZ tile URL of a basemap drawn under the image (`https://tiles.example/{z}/{x}/{y}.png`);
    /// absent: no basemap (the page then fetches nothing from anywhere but this server).
    pub basemap_url: Option<String>,
    /// Attribution shown for the basemap (HTML-escaped by the page).
    pub basemap_attribution: Option<String>,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            enabled: true,
            basemap_url: None,
            basemap_attribution: None,
        }
    }
}

impl WebConfig {
    fn validate(&self) -> Result<()> {
        if let Some(url) = &self.basemap_url {
            let ok = (url.starts_with("https://") || url.starts_with("http://"))
                && url.contains("{z}")
                && url.contains("{x}")
                && url.contains("{y}");
            if !ok {
                bail!(
                    "web.basemap_url {url:?} must be an http(s) URL with {{z}}, {{x}} and {{y}} in it"
                );
            }
        }
        Ok(())
    }
}

/// `[models.<version>.<id>]`: the ONNX files of one model and, where an export differs from the
/// standard one, its tensor names.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ModelFiles {
    /// Image encoder (SAM, SAM2, SAM3).
    pub encoder: Option<PathBuf>,
    /// Prompt/mask decoder (SAM, SAM2, SAM3).
    pub decoder: Option<PathBuf>,
    /// Language encoder (SAM3 only).
    pub language_encoder: Option<PathBuf>,
    /// CLIP BPE vocabulary (SAM3 only).
    pub tokenizer_vocab: Option<PathBuf>,
    /// True for the project's generated demo models (not SAM; shown in `GET /models`).
    #[serde(default)]
    pub demo: bool,
    /// Tensor name overrides: standard name → name in this export.
    #[serde(default)]
    pub tensors: BTreeMap<String, String>,
}

/// `[plugins]`: the WebAssembly formatters and filters.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginsConfig {
    /// Directory holding the components (`*.wasm`).
    pub directory: PathBuf,
    /// `output_format` name → component file (relative to `directory`). Formatter components
    /// in the directory that are not listed register under the name they report.
    pub formats: BTreeMap<String, String>,
    /// Filter chain: component files (relative to `directory`), applied in order.
    pub filters: Vec<String>,
    /// Options passed to a plugin with every call, per plugin name.
    pub options: BTreeMap<String, BTreeMap<String, String>>,
    /// Linear memory one plugin call may use, in bytes.
    pub memory_limit_bytes: u64,
    /// Time one plugin call may take, in milliseconds.
    pub call_timeout_ms: u64,
    /// Whether a request may name extra filters to run after the chain (form field `filters`).
    pub allow_request_filters: bool,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        let formats = ["geojson", "geotiff", "png", "json", "detections"]
            .into_iter()
            .map(|n| (n.to_string(), format!("{n}.wasm")))
            .collect();
        PluginsConfig {
            directory: PathBuf::from("target/plugins/dist"),
            formats,
            filters: vec![
                "size.wasm".into(),
                "foreground.wasm".into(),
                "unique.wasm".into(),
            ],
            options: BTreeMap::new(),
            memory_limit_bytes: 512 * 1024 * 1024,
            call_timeout_ms: 30_000,
            allow_request_filters: true,
        }
    }
}

/// `[metrics]`: the Prometheus endpoint `GET /metrics`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Whether `/metrics` needs the API key (when `server.api_key` is set).
    pub require_api_key: bool,
    /// Serve `/metrics` on this port (same host) instead of the API's port.
    pub port: Option<u16>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            require_api_key: true,
            port: None,
        }
    }
}

/// `[api]`: choices the seed's REST contract leaves open.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// `model_version` of `/segment/predict` when a request names none (the seed's REST
    /// document says sam2; its 1.4.2 code uses sam3).
    pub default_model_version_predict: String,
    /// `model_version` of `/segment/automatic` when a request names none.
    pub default_model_version_automatic: String,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            default_model_version_predict: "sam2".into(),
            default_model_version_automatic: "sam2".into(),
        }
    }
}

impl ApiConfig {
    fn validate(&self) -> Result<()> {
        for (key, version) in [
            (
                "default_model_version_predict",
                &self.default_model_version_predict,
            ),
            (
                "default_model_version_automatic",
                &self.default_model_version_automatic,
            ),
        ] {
            if !MODEL_VERSIONS.contains(&version.as_str()) {
                bail!("api.{key}: unknown model version '{version}' (known: sam, sam2, sam3)");
            }
        }
        Ok(())
    }
}

/// The three model families and their ids, as the seed names them.
pub const MODEL_VERSIONS: [&str; 3] = ["sam", "sam2", "sam3"];

/// Valid model ids per version, default first.
pub fn model_ids(version: &str) -> &'static [&'static str] {
    match version {
        "sam" => &["vit_h", "vit_l", "vit_b"],
        "sam2" => &[
            "sam2-hiera-tiny",
            "sam2-hiera-small",
            "sam2-hiera-base-plus",
            "sam2-hiera-large",
        ],
        "sam3" => &["facebook/sam3", "facebook/sam3.1"],
        _ => &[],
    }
}

/// The id used when a request names none.
pub fn default_model_id(version: &str) -> Option<&'static str> {
    match version {
        "sam" => Some("vit_h"),
        "sam2" => Some("sam2-hiera-large"),
        "sam3" => Some("facebook/sam3"),
        _ => None,
    }
}

impl Config {
    /// Reads `path` when it exists (else built-in defaults), applies `SAMGEO_*` variables from
    /// `env`, and checks the result. For the implicit `./samgeo.toml`; a file the operator named
    /// goes through [`Config::load_file`].
    pub fn load(path: &Path, env: impl IntoIterator<Item = (String, String)>) -> Result<Config> {
        if path.exists() {
            Config::load_file(path, env)
        } else {
            Config::from_table(toml::Table::new(), path, env)
        }
    }

    /// As [`Config::load`] for a file that must exist: missing or unreadable is an error naming
    /// it (an operator who names a config file must not get the built-in defaults instead).
    pub fn load_file(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
        let mut table = text
            .parse::<toml::Table>()
            .with_context(|| format!("parsing {}", path.display()))?;
        include::merge_includes(&mut table, path)?;
        Config::from_table(table, path, env)
    }

    /// The configuration from the file's table (paths relative to `path`'s directory).
    fn from_table(
        mut table: toml::Table,
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config> {
        apply_env_overrides(&mut table, env)?;
        let mut config: Config = toml::Value::Table(table)
            .try_into()
            .with_context(|| format!("invalid configuration in {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        config.validate()?;
        Ok(config)
    }

    /// Makes relative file paths relative to the directory of the config file.
    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() && !base.as_os_str().is_empty() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.server.cache_dir);
        if let Some(dir) = self.cluster.shared_dir.as_mut() {
            fix(dir);
        }
        fix(&mut self.runtime.onnxruntime_library);
        fix(&mut self.plugins.directory);
        for ids in self.models.values_mut() {
            for files in ids.values_mut() {
                for p in [
                    &mut files.encoder,
                    &mut files.decoder,
                    &mut files.language_encoder,
                    &mut files.tokenizer_vocab,
                ]
                .into_iter()
                .flatten()
                {
                    fix(p);
                }
            }
        }
    }

    /// Where files every replica must see live: `cluster.shared_dir`, else `server.cache_dir`.
    pub fn shared_root(&self) -> &Path {
        self.cluster
            .shared_dir
            .as_deref()
            .unwrap_or(&self.server.cache_dir)
    }

    /// Checks values that the types alone cannot.
    pub fn validate(&self) -> Result<()> {
        crate::cluster::Redis::from_config(&self.cluster)?;
        self.api.validate()?;
        self.web.validate()?;
        if self.server.max_concurrent_inferences == 0 {
            bail!("server.max_concurrent_inferences must be at least 1");
        }
        if self.server.max_buffered_upload_bytes < self.server.max_upload_bytes {
            bail!(
                "server.max_buffered_upload_bytes ({}) must be at least server.max_upload_bytes ({}): the largest accepted upload could never be received",
                self.server.max_buffered_upload_bytes,
                self.server.max_upload_bytes
            );
        }
        if self.server.request_timeout_secs == 0 {
            bail!("server.request_timeout_secs must be at least 1");
        }
        if self.inputs.max_image_bytes == 0 {
            bail!("inputs.max_image_bytes must be above 0");
        }
        if self.server.max_tiled_pixels < self.server.max_pixels {
            bail!(
                "server.max_tiled_pixels ({}) must be at least server.max_pixels ({})",
                self.server.max_tiled_pixels,
                self.server.max_pixels
            );
        }
        if self.tiling.tile_size < 256
            || self.tiling.tile_size > 4096
            || self.tiling.tile_overlap < 32
            || self.tiling.tile_overlap * 2 >= self.tiling.tile_size
        {
            bail!(
                "tiling.tile_size must be 256 to 4096 and more than twice tiling.tile_overlap, which must be at least 32 (got {} and {})",
                self.tiling.tile_size,
                self.tiling.tile_overlap
            );
        }
        if self.jobs.max_running == 0 {
            bail!("jobs.max_running must be at least 1");
        }
        if self.caches.max_loaded_models == 0 {
            bail!("caches.max_loaded_models must be at least 1");
        }
        if self.plugins.call_timeout_ms == 0 {
            bail!("plugins.call_timeout_ms must be at least 1");
        }
        if self.plugins.memory_limit_bytes < 1024 * 1024 {
            bail!("plugins.memory_limit_bytes must be at least 1048576");
        }
        for ep in &self.runtime.execution_providers {
            if ep != "cuda" && ep != "cpu" {
                bail!("runtime.execution_providers: unknown provider '{ep}' (known: cuda, cpu)");
            }
        }
        for origin in &self.server.cors_origins {
            if origin != "*" && axum::http::HeaderValue::from_str(origin).is_err() {
                bail!(
                    "server.cors_origins: {origin:?} is not a valid origin (an HTTP header value such as \"https://gis.example\", or \"*\" for any origin)"
                );
            }
        }
        if self.metrics.port == Some(self.server.port) {
            bail!("metrics.port must differ from server.port (leave it out to serve /metrics on the API's port)");
        }
        if self.server.api_key.as_deref() == Some("") {
            bail!("server.api_key is empty: remove the key to disable authentication");
        }
        for (version, ids) in &self.models {
            if !MODEL_VERSIONS.contains(&version.as_str()) {
                bail!("models.{version}: unknown model version (known: sam, sam2, sam3)");
            }
            for (id, files) in ids {
                if !model_ids(version).contains(&id.as_str()) {
                    bail!(
                        "models.{version}.\"{id}\": unknown model id (known: {:?})",
                        model_ids(version)
                    );
                }
                let needs: &[(&str, bool)] = match version.as_str() {
                    "sam3" => &[
                        ("encoder", files.encoder.is_some()),
                        ("decoder", files.decoder.is_some()),
                        ("language_encoder", files.language_encoder.is_some()),
                        ("tokenizer_vocab", files.tokenizer_vocab.is_some()),
                    ],
                    _ => &[
                        ("encoder", files.encoder.is_some()),
                        ("decoder", files.decoder.is_some()),
                    ],
                };
                for (key, present) in needs {
                    if !present {
                        bail!("models.{version}.\"{id}\".{key} is missing");
                    }
                }
            }
        }
        Ok(())
    }

    /// The files configured for a model, if any.
    pub fn model_files(&self, version: &str, id: &str) -> Option<&ModelFiles> {
        self.models.get(version)?.get(id)
    }
}

/// Applies `SAMGEO_<SECTION>_<KEY>=value` (e.g. `SAMGEO_SERVER_PORT=9000`,
/// `SAMGEO_CACHES_MAX_LOADED_MODELS=4`). The value is read as a TOML value when it parses as one
/// (numbers, booleans, arrays), else as a string.
fn apply_env_overrides(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<()> {
    const SECTIONS: [&str; 11] = [
        "server", "runtime", "caches", "plugins", "metrics", "api", "tiling", "inputs", "jobs",
        "web", "cluster",
    ];
    for (name, raw) in env {
        let Some(rest) = name.strip_prefix("SAMGEO_") else {
            continue;
        };
        let lower = rest.to_ascii_lowercase();
        let Some((section, key)) = lower.split_once('_') else {
            continue;
        };
        if !SECTIONS.contains(&section) {
            // Other SAMGEO_* variables (SAMGEO_REAL_DATA, ...) are not configuration.
            continue;
        }
        let value = format!("v = {raw}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.clone()));
        let entry = table
            .entry(section.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let Some(section_table) = entry.as_table_mut() else {
            bail!("{name}: [{section}] in the config file is not a table");
        };
        section_table.insert(key.to_string(), value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(text: &str, env: &[(&str, &str)]) -> Result<Config> {
        let dir = std::env::temp_dir().join(format!("samgeo-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{}.toml", text.len()));
        std::fs::write(&path, text).unwrap();
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        let result = Config::load(&path, env);
        std::fs::remove_file(&path).ok();
        result
    }

    #[test]
    fn missing_file_gives_defaults() {
        let c = Config::load(Path::new("/nonexistent/samgeo.toml"), Vec::new()).unwrap();
        assert_eq!(c.server.port, 8000);
        assert_eq!(c.plugins.formats["geojson"], "geojson.wasm");
    }

    #[test]
    fn a_named_file_must_exist() {
        let missing = Path::new("/nonexistent/samgeo.toml");
        let err = Config::load_file(missing, Vec::new()).unwrap_err();
        assert!(
            format!("{err:#}").contains("/nonexistent/samgeo.toml"),
            "{err:#}"
        );
        // A directory is not readable as a file.
        let err = Config::load_file(&std::env::temp_dir(), Vec::new()).unwrap_err();
        assert!(
            format!("{err:#}").contains("cannot read the configuration file"),
            "{err:#}"
        );
    }

    #[test]
    fn web_section_defaults_and_checks() {
        let c = load_str("", &[]).unwrap();
        assert!(c.web.enabled);
        assert!(c.web.basemap_url.is_none());
        let c = load_str(
            "[web]\nenabled = false\nbasemap_url = \"https://t.example/{z}/{x}/{y}.png\"\n",
            &[],
        )
        .unwrap();
        assert!(!c.web.enabled);
        let err = load_str("[web]\nbasemap_url = \"file:///etc/passwd\"\n", &[]).unwrap_err();
        assert!(format!("{err:#}").contains("web.basemap_url"), "{err:#}");
        let c = load_str("", &[("SAMGEO_WEB_ENABLED", "false")]).unwrap();
        assert!(!c.web.enabled);
    }

    #[test]
    fn cors_origins_are_checked() {
        let c = load_str("[server]\ncors_origins = [\"*\"]\n", &[]).unwrap();
        assert_eq!(c.server.cors_origins, ["*"]);
        load_str(
            "[server]\ncors_origins = [\"https://gis.example\", \"http://localhost:3000\"]\n",
            &[],
        )
        .unwrap();
        let err = load_str(
            "[server]\ncors_origins = [\"https://ok.example\", \"http://bad\\norigin\"]\n",
            &[],
        )
        .unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("cors_origins") && text.contains("bad\\norigin"),
            "{text}"
        );
    }

    #[test]
    fn upload_budget_holds_the_largest_upload() {
        let c = load_str("", &[]).unwrap();
        assert!(c.server.max_buffered_upload_bytes >= c.server.max_upload_bytes);
        let err = load_str(
            "[server]\nmax_upload_bytes = 1000\nmax_buffered_upload_bytes = 999\n",
            &[],
        )
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("max_buffered_upload_bytes"),
            "{err:#}"
        );
    }

    #[test]
    fn unknown_key_is_named() {
        let err = load_str("[server]\nprot = 1\n", &[]).unwrap_err();
        assert!(format!("{err:#}").contains("prot"), "{err:#}");
    }

    #[test]
    fn env_overrides_file() {
        let c = load_str(
            "[server]\nport = 1234\n",
            &[("SAMGEO_SERVER_PORT", "4321"), ("SAMGEO_REAL_DATA", "/x")],
        )
        .unwrap();
        assert_eq!(c.server.port, 4321);
    }

    #[test]
    fn bad_env_value_is_named() {
        let err = load_str("", &[("SAMGEO_SERVER_PORT", "eighty")]).unwrap_err();
        assert!(format!("{err:#}").contains("port"), "{err:#}");
    }

    #[test]
    fn metrics_and_log_format_keys() {
        let c = load_str(
            "[server]\nlog_format = \"json\"\n[metrics]\nport = 9100\n",
            &[("SAMGEO_METRICS_REQUIRE_API_KEY", "false")],
        )
        .unwrap();
        assert_eq!(c.server.log_format, crate::logging::LogFormat::Json);
        assert_eq!(c.metrics.port, Some(9100));
        assert!(!c.metrics.require_api_key);
        let d = Config::default();
        assert!(d.metrics.require_api_key && d.metrics.port.is_none());
        let err = load_str("[metrics]\nport = 8000\n", &[]).unwrap_err();
        assert!(format!("{err:#}").contains("metrics.port"), "{err:#}");
        let err = load_str("[server]\nlog_format = \"xml\"\n", &[]).unwrap_err();
        assert!(format!("{err:#}").contains("log_format"), "{err:#}");
    }

    #[test]
    fn unknown_model_id_is_rejected() {
        let err = load_str(
            "[models.sam.vit_x]\nencoder = \"a\"\ndecoder = \"b\"\n",
            &[],
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("vit_x"));
    }

    #[test]
    fn relative_paths_follow_the_config_file() {
        let c = load_str(
            "[models.sam.vit_b]\nencoder = \"m/e.onnx\"\ndecoder = \"m/d.onnx\"\n",
            &[],
        )
        .unwrap();
        let enc = c
            .model_files("sam", "vit_b")
            .unwrap()
            .encoder
            .clone()
            .unwrap();
        assert!(enc.is_absolute() && enc.ends_with("m/e.onnx"), "{enc:?}");
    }
}
