//! Command-line flags, the same as the seed's `samgeo-api` plus `--config` and `--log-level`.

use std::path::PathBuf;

use clap::Parser;

/// Run the samgeo REST API server.
#[derive(Debug, Parser)]
#[command(
    name = "samgeo-api",
    version,
    about = "Segment Anything on geospatial rasters over HTTP"
)]
pub struct Cli {
    /// Host to bind to [default: server.host, 0.0.0.0]
    #[arg(long)]
    pub host: Option<String>,
    /// Port to listen on [default: server.port, 8000]
    #[arg(long)]
    pub port: Option<u16>,
    /// Configuration file; it must exist [default: ./samgeo.toml, where built-in defaults
    /// apply when it does not exist]
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Load a model at start, as VERSION:MODEL_ID (repeatable), e.g. sam2:sam2-hiera-large.
    #[arg(long, value_name = "VERSION:MODEL_ID")]
    pub preload: Vec<String>,
    /// Watch the config file and the plugin directory and apply changes without a restart.
    #[arg(long)]
    pub reload: bool,
    /// Log filter: error, warn, info, debug, trace, or a tracing directive.
    #[arg(long, default_value = "info", env = "SAMGEO_LOG")]
    pub log_level: String,
    /// Log lines as text or JSON objects [default: server.log_format, text]
    #[arg(long, value_enum)]
    pub log_format: Option<crate::logging::LogFormat>,
}

/// The configuration file read when `--config` is not given (may be absent).
pub const DEFAULT_CONFIG: &str = "samgeo.toml";

impl Cli {
    /// The configuration file in force: `--config`, else [`DEFAULT_CONFIG`].
    pub fn config_path(&self) -> PathBuf {
        self.config
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG))
    }
}

/// Splits a `--preload` value; the message is the seed's.
pub fn parse_preload(value: &str) -> Result<(String, String), String> {
    match value.split_once(':') {
        Some((v, id)) if !v.is_empty() && !id.is_empty() => Ok((v.to_string(), id.to_string())),
        _ => Err("Invalid --preload format. Expected 'model_version:model_id', e.g. 'sam2:sam2-hiera-large'".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preload_values() {
        assert_eq!(
            parse_preload("sam:vit_b").unwrap(),
            ("sam".to_string(), "vit_b".to_string())
        );
        assert_eq!(
            parse_preload("sam3:facebook/sam3").unwrap().1,
            "facebook/sam3"
        );
        assert!(parse_preload("sam2")
            .unwrap_err()
            .contains("Invalid --preload format"));
        assert!(parse_preload(":x").is_err());
    }
}
