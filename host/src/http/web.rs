//! The web page at `GET /` and its assets under `/ui/`: a map (OpenLayers, vendored from npm at
//! build time by `host/build.rs`) on which a user opens a raster and segments it by clicking.
//! Everything is built into the binary; nothing is fetched from elsewhere (a basemap only when
//! `[web] basemap_url` names one). The page and its assets need no API key (like `/health`);
//! the API calls the page makes do. `[web] enabled = false` leaves these routes out (404).

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::state::AppState;

/// The vendored map library, when it was installed at build time.
pub struct Vendored {
    ol_js: &'static [u8],
    ol_css: &'static [u8],
    version: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/web_vendored.rs"));

const INDEX_HTML: &str = include_str!("../../../web/index.html");
const APP_JS: &str = include_str!("../../../web/app.js");
const APP_CSS: &str = include_str!("../../../web/app.css");

/// Shown at `/` when the server was built without the map library.
const SETUP_NEEDED_HTML: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>samgeo-rs</title></head><body><h1>samgeo-rs</h1><p>The web page was not built into this server: its map library (OpenLayers, from npm) was missing at build time. Run <code>scripts/setup</code> (it runs <code>npm ci</code> in <code>web/</code>), then rebuild (<code>scripts/run</code>).</p><p>The API works: see <a href=\"docs\">/docs</a>.</p></body></html>";

/// Paths that answer without an API key: the page and its static assets. The API calls the
/// page makes carry the key the user gives.
pub fn is_public_path(path: &str) -> bool {
    path == "/" || path.starts_with("/ui/")
}

/// The page's routes, or none when `[web] enabled = false`.
pub fn routes(config: &Config) -> Router<AppState> {
    if !config.web.enabled {
        return Router::new();
    }
    Router::new()
        .route("/", get(index))
        .route(
            "/ui/app.js",
            get(|h: HeaderMap| async move { asset(&h, Asset::AppJs) }),
        )
        .route(
            "/ui/app.css",
            get(|h: HeaderMap| async move { asset(&h, Asset::AppCss) }),
        )
        .route(
            "/ui/ol.js",
            get(|h: HeaderMap| async move { asset(&h, Asset::OlJs) }),
        )
        .route(
            "/ui/ol.css",
            get(|h: HeaderMap| async move { asset(&h, Asset::OlCss) }),
        )
        .route("/ui/config.json", get(page_config))
}

/// One built-in file.
#[derive(Clone, Copy)]
enum Asset {
    Index,
    SetupNeeded,
    AppJs,
    AppCss,
    OlJs,
    OlCss,
}

impl Asset {
    fn bytes(self) -> Option<&'static [u8]> {
        Some(match self {
            Asset::Index => INDEX_HTML.as_bytes(),
            Asset::SetupNeeded => SETUP_NEEDED_HTML.as_bytes(),
            Asset::AppJs => APP_JS.as_bytes(),
            Asset::AppCss => APP_CSS.as_bytes(),
            Asset::OlJs => VENDORED.as_ref()?.ol_js,
            Asset::OlCss => VENDORED.as_ref()?.ol_css,
        })
    }

    fn content_type(self) -> &'static str {
        match self {
            Asset::Index | Asset::SetupNeeded => "text/html; charset=utf-8",
            Asset::AppJs | Asset::OlJs => "text/javascript; charset=utf-8",
            Asset::AppCss | Asset::OlCss => "text/css; charset=utf-8",
        }
    }

    /// A strong validator: the SHA-256 of the content, computed once.
    fn etag(self) -> &'static str {
        static TAGS: [OnceLock<String>; 6] = [const { OnceLock::new() }; 6];
        TAGS[self as usize].get_or_init(|| {
            let digest = Sha256::digest(self.bytes().unwrap_or_default());
            format!("\"{}\"", hex::encode(&digest[..12]))
        })
    }
}

/// `GET /`: the page, or a note saying how to build it in.
async fn index(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let which = if VENDORED.is_some() {
        Asset::Index
    } else {
        Asset::SetupNeeded
    };
    let mut response = asset(&headers, which);
    let csp = content_security_policy(state.config().web.basemap_url.as_deref());
    if let Ok(value) = HeaderValue::from_str(&csp) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

/// Scripts, styles and connections from this server only; images also from the basemap's
/// origin when one is configured.
fn content_security_policy(basemap_url: Option<&str>) -> String {
    let basemap = basemap_url.and_then(origin_of).unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob: {basemap}; connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'self'"
    )
    .replace(" ;", ";")
}

/// `https://host:port` of a URL.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split('/').next()?;
    (!host.is_empty()).then(|| format!("{scheme}://{host}"))
}

/// A built-in file with its content type, `Cache-Control: no-cache` and an ETag (the browser
/// revalidates and gets 304 until the server is rebuilt with other files).
fn asset(headers: &HeaderMap, which: Asset) -> Response {
    let Some(bytes) = which.bytes() else {
        return crate::error::AppError::new(
            StatusCode::NOT_FOUND,
            "The map library was not built into this server: run scripts/setup and rebuild",
        )
        .into_response();
    };
    let etag = which.etag();
    let common = [
        (header::ETAG, etag),
        (header::CACHE_CONTROL, "no-cache"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if matches {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        common,
        [(header::CONTENT_TYPE, which.content_type())],
        bytes,
    )
        .into_response()
}

/// `GET /ui/config.json`: what the page needs to know of this server's configuration.
async fn page_config(State(state): State<AppState>) -> Response {
    let config = state.config();
    let body = json!({
        "basemap_url": config.web.basemap_url,
        "basemap_attribution": config.web.basemap_attribution,
        "map_library": VENDORED.as_ref().map(|v| format!("ol {}", v.version)),
        "version": env!("CARGO_PKG_VERSION"),
    });
    ([(header::CACHE_CONTROL, "no-cache")], Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csp_allows_only_this_server_and_the_basemap() {
        let none = content_security_policy(None);
        assert!(none.contains("img-src 'self' data: blob:;"), "{none}");
        let with = content_security_policy(Some("https://tiles.example:8443/{z}/{x}/{y}.png"));
        assert!(
            with.contains("img-src 'self' data: blob: https://tiles.example:8443;"),
            "{with}"
        );
        assert!(with.contains("connect-src 'self';"), "{with}");
    }

    #[test]
    fn only_the_page_and_its_assets_are_public() {
        assert!(is_public_path("/"));
        assert!(is_public_path("/ui/ol.js"));
        assert!(!is_public_path("/models"));
        assert!(!is_public_path("/uix"));
        assert!(!is_public_path("/images/abc/preview.png"));
    }

    #[test]
    fn etags_differ_per_file_and_are_quoted() {
        let (a, b) = (Asset::AppJs.etag(), Asset::AppCss.etag());
        assert_ne!(a, b);
        assert!(a.starts_with('"') && a.ends_with('"'));
    }
}
