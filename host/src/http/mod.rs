//! The HTTP surface: routes, and the layers around them (request id, access log and metrics;
//! API key, CORS, body limit).

mod auth;
mod fields;
pub mod form;
pub mod forms;
mod image_views;
mod images;
mod jobs;
mod meta;
mod observe;
mod openapi;
mod plugin_docs;
mod plugins;
pub mod processes;
mod response;
mod scrape;
mod segment;
pub(crate) mod upload_limit;
mod web;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method};
use axum::routing::{get, post};
use axum::Router;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::Config;
use crate::state::AppState;

/// The application router.
pub fn router(state: AppState) -> Router {
    let config = state.config();
    let node = node_header(&state);
    let mut app = Router::new()
        .route("/health", get(meta::health))
        .route("/models", get(meta::list_models).delete(meta::clear_models))
        .route("/plugins", get(plugins::list))
        .route("/plugins/reload", post(plugins::reload))
        .route(
            "/images",
            post(images::upload).layer(DefaultBodyLimit::max(
                usize::try_from(config.inputs.max_image_bytes).unwrap_or(usize::MAX),
            )),
        )
        .route(
            "/images/{image_id}",
            get(images::get).delete(images::delete),
        )
        .route(
            "/images/{image_id}/preview.png",
            get(image_views::preview_png),
        )
        .route(
            "/images/{image_id}/tiles/{z}/{x}/{y}",
            get(image_views::tile_png),
        )
        .route("/segment/predict", post(segment::predict))
        .route("/segment/automatic", post(segment::automatic))
        .route("/segment/text", post(segment::text))
        .route("/processes", get(processes::list))
        .route("/processes/{process_id}", get(processes::describe))
        .route(
            "/processes/{process_id}/execution",
            post(processes::execute),
        )
        .route("/jobs", get(jobs::list))
        .route("/jobs/{job_id}", get(jobs::status).delete(jobs::dismiss))
        .route("/jobs/{job_id}/results", get(jobs::results))
        .merge(openapi::routes())
        .merge(metrics_route(&config))
        .merge(web::routes(&config))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            plugin_docs::document,
        ))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_api_key,
        ))
        .layer(axum::middleware::from_fn_with_state(
            upload_limit::UploadLimits {
                state: state.clone(),
                budget: state.uploads.clone(),
            },
            upload_limit::enforce,
        ))
        .layer(DefaultBodyLimit::max(
            usize::try_from(config.server.max_upload_bytes).unwrap_or(usize::MAX),
        ))
        .with_state(state);
    if let Some(cors) = cors_layer(&config) {
        app = app.layer(cors);
    }
    if let Some(node) = node {
        app = app.layer(axum::middleware::map_response(
            move |mut response: axum::response::Response| {
                response.headers_mut().insert(NODE_HEADER, node.clone());
                std::future::ready(response)
            },
        ));
    }
    app.layer(axum::middleware::from_fn(observe::observe))
}

/// The replica that answered (`cluster.node_id`, else host name and process id), on every
/// response when a cluster is configured (`cluster.redis_url`): which replica a proxy chose.
pub const NODE_HEADER: axum::http::HeaderName =
    axum::http::HeaderName::from_static("x-samgeo-node");

/// The value of [`NODE_HEADER`] for this replica; `None` on a single node (or a node id that
/// is not a valid header value).
fn node_header(state: &AppState) -> Option<HeaderValue> {
    let cluster = state.cluster.as_ref()?;
    HeaderValue::from_str(cluster.node_id()).ok()
}

/// `GET /metrics` on the API's port, unless `metrics.port` moves it to [`metrics_router`].
fn metrics_route(config: &Config) -> Router<AppState> {
    match config.metrics.port {
        None => Router::new().route("/metrics", get(scrape::metrics)),
        Some(_) => Router::new(),
    }
}

/// The router of the separate metrics listener (`metrics.port`): `GET /metrics` alone, with the
/// same API key rule.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(scrape::metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_api_key,
        ))
        .with_state(state)
        .layer(axum::middleware::from_fn(observe::observe))
}

/// Unknown path: 404 `{"detail": "Not Found"}`, as the seed (FastAPI) answers.
async fn not_found() -> crate::error::AppError {
    crate::error::AppError::new(axum::http::StatusCode::NOT_FOUND, "Not Found")
}

/// Known path, wrong method: 405 `{"detail": "Method Not Allowed"}`, as the seed answers.
async fn method_not_allowed() -> crate::error::AppError {
    crate::error::AppError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "Method Not Allowed",
    )
}

/// CORS for the configured origins; none configured → no CORS headers at all; `*` → any
/// origin (never with credentials). The origins were checked at start-up
/// ([`Config::validate`]).
fn cors_layer(config: &Config) -> Option<CorsLayer> {
    let origins = &config.server.cors_origins;
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok())
                .collect::<Vec<_>>(),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
            .allow_headers([
                axum::http::header::AUTHORIZATION,
                axum::http::header::CONTENT_TYPE,
            ]),
    )
}
