//! `/health` and `/models`.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::config::{default_model_id, model_ids, MODEL_VERSIONS};
use crate::state::AppState;

/// `GET /health`: answers while inference runs (nothing here waits on it).
#[utoipa::path(get, path = "/health", responses((status = 200, description = "The server is up", body = Object, example = json!({"status": "ok", "version": "0.1.0"}))))]
pub async fn health() -> Json<Value> {
    Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

/// `GET /models`: the seed's model ids per version, the loaded models, and which ids have
/// files configured here (and which of those are the project's demo models); for loaded models
/// whose export gives other masks than the reference on the same weights, why.
#[utoipa::path(get, path = "/models", responses((status = 200, description = "Available and loaded models", body = Object)))]
pub async fn list_models(State(state): State<AppState>) -> Json<Value> {
    let config = state.config();
    let mut models = serde_json::Map::new();
    let mut configured = serde_json::Map::new();
    let mut defaults = serde_json::Map::new();
    let mut demo = Vec::new();
    for version in MODEL_VERSIONS {
        models.insert(version.into(), json!(model_ids(version)));
        defaults.insert(version.into(), json!(default_model_id(version)));
        let ids: Vec<&str> = model_ids(version)
            .iter()
            .copied()
            .filter(|id| config.model_files(version, id).is_some())
            .collect();
        for id in &ids {
            if config.model_files(version, id).is_some_and(|f| f.demo) {
                demo.push(json!([version, id]));
            }
        }
        configured.insert(version.into(), json!(ids));
    }
    let loaded: Vec<Value> = state
        .models
        .loaded()
        .into_iter()
        .map(|(v, id)| json!([v, id]))
        .collect();
    let differs: Vec<Value> = state
        .models
        .loaded_models()
        .into_iter()
        .filter_map(|((v, id), model)| match model {
            crate::models::LoadedModel::Promptable(m) => m
                .reference_difference()
                .map(|why| json!({"model_version": v, "model_id": id, "reason": why})),
            crate::models::LoadedModel::Sam3(_) => None,
        })
        .collect();
    Json(json!({
        "models": models,
        "loaded": loaded,
        "differs_from_reference": differs,
        "defaults": defaults,
        "configured": configured,
        "demo": demo,
    }))
}

/// `DELETE /models`: drops the loaded models and the cached embeddings. Requests in flight
/// keep what they hold and finish.
#[utoipa::path(delete, path = "/models", responses((status = 200, description = "Caches cleared", body = Object, example = json!({"status": "cleared"}))))]
pub async fn clear_models(State(state): State<AppState>) -> Json<Value> {
    state.models.clear();
    state.embeddings.clear();
    Json(json!({ "status": "cleared" }))
}
