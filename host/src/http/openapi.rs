//! The OpenAPI document at `/openapi.json`, Swagger UI at `/docs` and ReDoc at `/redoc` (both
//! served from assets built into the binary: nothing is fetched from elsewhere).
//!
//! The forms' schemas come from the structs the handlers parse ([`super::forms`]). What a Rust
//! type cannot say is added per request from the values the handlers check against: the allowed
//! model versions and ids, the installed output formats, the configured default model version,
//! and the media types of the `file` part.

use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use super::forms::{AutomaticForm, PredictForm, TextForm, BACKENDS};
use crate::config::{model_ids, Config, MODEL_VERSIONS};
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "samgeo-rs",
        description = "Segment Anything on geospatial rasters over HTTP, compatible with segment-geospatial's REST API. Errors are `{\"detail\": \"...\"}`."
    ),
    paths(
        super::meta::health,
        super::meta::list_models,
        super::meta::clear_models,
        super::plugins::list,
        super::plugins::reload,
        super::images::upload,
        super::images::get,
        super::images::delete,
        super::segment::predict,
        super::segment::automatic,
        super::segment::text,
    ),
    components(schemas(
        PredictForm,
        AutomaticForm,
        TextForm,
        ErrorDetail,
        crate::images::ImageDescription
    ))
)]
struct ApiDoc;

/// The body of every error response.
#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
pub struct ErrorDetail {
    /// What went wrong, naming the field, file or limit.
    detail: String,
}

/// The output formats built in (JSON, TIFF or PNG); other formatter plugins choose their own
/// media type.
const BUILT_IN_FORMATS: [&str; 5] = ["geojson", "geotiff", "png", "json", "detections"];

/// Media types accepted in the `file` part.
const IMAGE_TYPES: &str = "image/tiff, image/png, image/jpeg, application/octet-stream";

/// The document as served: the generated one with the enums and defaults of this server.
pub fn document(config: &Config, formats: &[String]) -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or(Value::Null);
    let all_ids: Vec<&str> = MODEL_VERSIONS
        .iter()
        .flat_map(|v| model_ids(v).iter().copied())
        .collect();
    let api = &config.api;
    for (schema, default_version, ids) in [
        (
            "PredictForm",
            Some(&api.default_model_version_predict),
            &all_ids,
        ),
        (
            "AutomaticForm",
            Some(&api.default_model_version_automatic),
            &all_ids,
        ),
        ("TextForm", None, &model_ids("sam3").to_vec()),
    ] {
        let props = &mut doc["components"]["schemas"][schema]["properties"];
        if let Some(version) = default_version {
            set_enum(&mut props["model_version"], &MODEL_VERSIONS);
            props["model_version"]["default"] = json!(version);
        }
        set_enum(&mut props["model_id"], ids);
        set_enum(&mut props["output_format"], formats);
        if schema == "PredictForm" {
            set_enum(
                &mut props["tiling"],
                &crate::pipeline::windows::Tiling::NAMES,
            );
        }
        if schema == "TextForm" {
            set_enum(&mut props["backend"], &BACKENDS);
            props["model_id"]["default"] = json!("facebook/sam3");
        }
    }
    for path in ["/segment/predict", "/segment/automatic", "/segment/text"] {
        let post = &mut doc["paths"][path]["post"];
        let media = &mut post["requestBody"]["content"]["multipart/form-data"];
        media["encoding"] = json!({ "file": { "contentType": IMAGE_TYPES } });
        let responses = &mut post["responses"];
        let ok = responses["200"]["description"].clone();
        let mut content = json!({
            "application/json": { "schema": { "type": "object" } },
            "image/tiff": { "schema": { "type": "string", "format": "binary" } },
            "image/png": { "schema": { "type": "string", "format": "binary" } },
        });
        if formats
            .iter()
            .any(|f| !BUILT_IN_FORMATS.contains(&f.as_str()))
        {
            // A formatter plugin answers with its own media type.
            content["*/*"] = json!({ "schema": {} });
        }
        responses["200"] = json!({ "description": ok, "content": content });
        for (status, what) in SEGMENT_ERRORS {
            responses[status] = error_response(what);
        }
    }
    if config.server.api_key.is_some() {
        if let Some(paths) = doc["paths"].as_object_mut() {
            for (_, item) in paths.iter_mut().filter(|(p, _)| *p != "/health") {
                for op in item
                    .as_object_mut()
                    .into_iter()
                    .flat_map(|o| o.values_mut())
                {
                    op["responses"]["401"] =
                        error_response("Missing or wrong `Authorization: Bearer <key>`");
                }
            }
        }
    }
    doc
}

/// The error answers every segment endpoint may give, by status.
const SEGMENT_ERRORS: [(&str, &str); 8] = [
    (
        "400",
        "Invalid value: model version or id, output format, prompt, CRS, band, image",
    ),
    ("408", "The upload was not received within the time limit"),
    ("413", "Upload or image above the configured limits"),
    (
        "422",
        "A required field is missing or a value has the wrong type",
    ),
    ("500", "A fault of the server itself"),
    (
        "502",
        "A plugin trapped, ran out of memory or returned garbage",
    ),
    (
        "503",
        "Busy (with Retry-After), or the model has no files configured",
    ),
    ("504", "The request took longer than the time limit"),
];

/// A response with the `{"detail": ...}` body.
fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorDetail" } } },
    })
}

/// `enum` on a string property; a nullable one admits null too.
fn set_enum<S: AsRef<str>>(property: &mut Value, values: &[S]) {
    if property.is_object() {
        let mut values: Vec<Value> = values.iter().map(|v| json!(v.as_ref())).collect();
        let nullable = property["type"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == "null"));
        if nullable {
            values.push(Value::Null);
        }
        property["enum"] = Value::Array(values);
    }
}

/// `GET /openapi.json`.
async fn openapi_json(State(state): State<AppState>) -> Json<Value> {
    Json(document(&state.config(), &state.plugins.format_names()))
}

/// ReDoc's page, reading `/openapi.json`.
const REDOC_PAGE: &str = r#"<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>samgeo-rs API</title>
</head>
<body>
<redoc spec-url="/openapi.json"></redoc>
<script src="/redoc/redoc.standalone.js"></script>
</body>
</html>
"#;

/// ReDoc's bundle (redoc 2.5.4 from npm, MIT; see `host/assets/redoc/`).
const REDOC_JS: &[u8] = include_bytes!("../../assets/redoc/redoc.standalone.js");

/// `/openapi.json`, `/docs` and `/redoc`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi_json))
        .route("/redoc", get(|| async { Html(REDOC_PAGE) }))
        .route(
            "/redoc/redoc.standalone.js",
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                        (header::CACHE_CONTROL, "public, max-age=86400"),
                    ],
                    REDOC_JS,
                )
                    .into_response()
            }),
        )
        .merge(SwaggerUi::new("/docs").config(utoipa_swagger_ui::Config::from("/openapi.json")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_carry_every_field_with_enums_and_defaults() {
        let mut config = Config::default();
        config.api.default_model_version_automatic = "sam3".into();
        let doc = document(&config, &["geojson".into(), "png".into()]);
        let schemas = &doc["components"]["schemas"];
        let auto = &schemas["AutomaticForm"]["properties"];
        for field in [
            "points_per_batch",
            "crop_n_layers",
            "crop_nms_thresh",
            "crop_overlap_ratio",
            "crop_n_points_downscale_factor",
            "box_nms_thresh",
            "min_mask_region_area",
            "stability_score_offset",
            "confidence_threshold",
        ] {
            assert!(auto[field].is_object(), "AutomaticForm lacks {field}");
        }
        assert_eq!(auto["model_version"]["default"], "sam3");
        assert_eq!(auto["points_per_side"]["default"], 32);
        assert_eq!(auto["pred_iou_thresh"]["default"], 0.8);
        let predict = &schemas["PredictForm"]["properties"];
        assert_eq!(predict["model_version"]["default"], "sam2");
        // Optional fields are nullable: null (absent) is allowed too.
        assert_eq!(
            predict["model_version"]["enum"],
            json!(["sam", "sam2", "sam3", null])
        );
        assert_eq!(predict["output_format"]["enum"], json!(["geojson", "png"]));
        assert!(predict["all_candidates"].is_object());
        // file, image_id or source: none is required alone.
        assert!(schemas["PredictForm"]["required"].is_null());
        for field in ["file", "image_id", "source"] {
            assert!(predict[field].is_object(), "PredictForm lacks {field}");
        }
        assert_eq!(predict["tiling"]["enum"], json!(["auto", "on", "off"]));
        let text = &schemas["TextForm"];
        assert_eq!(text["required"], json!(["prompt"]));
        assert_eq!(
            text["properties"]["model_id"]["enum"],
            json!(["facebook/sam3", "facebook/sam3.1", null])
        );
        let text_post = &doc["paths"]["/segment/text"]["post"];
        assert_eq!(
            text_post["requestBody"]["content"]["multipart/form-data"]["encoding"]["file"]
                ["contentType"],
            IMAGE_TYPES
        );
        assert!(text_post["responses"]["200"]["content"]["*/*"].is_null());
        let with_plugin = document(&config, &["geojson".into(), "count".into()]);
        assert!(
            with_plugin["paths"]["/segment/text"]["post"]["responses"]["200"]["content"]["*/*"]
                .is_object()
        );
    }
}
