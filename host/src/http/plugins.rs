//! `/plugins`: what is loaded, and reloading without a restart.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::error::AppError;
use crate::state::AppState;

/// `GET /plugins`: name, kind, WIT version and file hash of every loaded component.
#[utoipa::path(get, path = "/plugins", responses((status = 200, description = "Loaded plugins", body = Object)))]
pub async fn list(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "plugins": state.plugins.list(), "failed": state.plugins.failed() }))
}

/// `POST /plugins/reload`: loads new or changed components; on failure the previous set stays.
#[utoipa::path(post, path = "/plugins/reload", responses((status = 200, description = "Reloaded", body = Object), (status = 400, description = "A component failed to load; the previous set stays")))]
pub async fn reload(State(state): State<AppState>) -> Result<Json<Value>, AppError> {
    let plugins = state.plugins.clone();
    let report = tokio::task::spawn_blocking(move || plugins.reload())
        .await
        .map_err(|e| AppError::internal(format!("plugin reload task failed: {e}")))?
        .map_err(|e| {
            AppError::bad_request(format!(
                "Plugin reload failed; the previous plugins stay loaded: {e:#}"
            ))
        })?;
    Ok(Json(json!({ "status": "reloaded", "report": report })))
}
