//! `/plugins`: what is loaded, and reloading without a restart.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::error::AppError;
use crate::state::AppState;

/// `GET /plugins`: name, kind, WIT version and file hash of every loaded component.
#[utoipa::path(get, path = "/plugins", responses((status = 200, description = "Loaded plugins", body = Object)))]
pub async fn list(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "plugins": state.plugins.list(), "failed": state.plugins.failed() }))
}

/// `POST /plugins/reload`: re-reads `[plugins]` from the configuration file and re-scans the
/// plugin directory (other changed sections are logged as needing a restart). Applied whole or not at all: 200 with what was added, changed, removed and
/// kept; 400 with `detail` (what failed and why) and the same report when anything failed, in
/// which case the previous plugins and settings stay.
#[utoipa::path(post, path = "/plugins/reload", responses((status = 200, description = "Reloaded", body = Object), (status = 400, description = "Something failed to load; nothing changed, the previous set stays")))]
pub async fn reload(State(state): State<AppState>) -> Result<Response, AppError> {
    let reloading = state.clone();
    let result = tokio::task::spawn_blocking(move || reloading.reload_plugins())
        .await
        .map_err(|e| AppError::internal(format!("plugin reload task failed: {e}")))?;
    Ok(match result {
        Ok(report) => Json(json!({ "status": "reloaded", "report": report })).into_response(),
        Err(failure) => (
            StatusCode::BAD_REQUEST,
            Json(json!({
                "detail": format!(
                    "Plugin reload failed; the previous plugins stay loaded: {}",
                    failure.reason
                ),
                "report": failure.report,
            })),
        )
            .into_response(),
    })
}
