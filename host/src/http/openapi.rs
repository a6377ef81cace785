//! The OpenAPI document at `/openapi.json` and Swagger UI at `/docs` (assets built in).

use axum::Router;
use utoipa::{OpenApi, ToSchema};
use utoipa_swagger_ui::SwaggerUi;

use crate::state::AppState;

/// Form of `POST /segment/predict`.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct PredictForm {
    /// The image: GeoTIFF, PNG or JPEG.
    #[schema(format = Binary, value_type = String)]
    file: Vec<u8>,
    /// sam or sam2 (default sam2).
    model_version: Option<String>,
    /// Model id; the version's default when absent.
    model_id: Option<String>,
    /// geojson (default), geotiff, png, json, detections, or any installed formatter plugin.
    output_format: Option<String>,
    /// JSON [[x, y], ...], in pixels or in `point_crs`.
    point_coords: Option<String>,
    /// JSON [1, 0, ...]: 1 foreground, 0 background (default all 1).
    point_labels: Option<String>,
    /// JSON [[xmin, ymin, xmax, ymax], ...]: one mask per box.
    boxes: Option<String>,
    /// CRS of the prompt coordinates, e.g. EPSG:4326.
    point_crs: Option<String>,
    /// Return the three candidate masks per prompt with their scores.
    multimask_output: Option<bool>,
    /// Smallest mask kept, in pixels.
    min_size: Option<i64>,
    /// Largest mask kept, in pixels (≤ 0: no limit).
    max_size: Option<i64>,
    /// Bands used as R,G,B, 1-based, e.g. "4,3,2".
    bands: Option<String>,
}

/// Form of `POST /segment/automatic`.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct AutomaticForm {
    #[schema(format = Binary, value_type = String)]
    file: Vec<u8>,
    model_version: Option<String>,
    model_id: Option<String>,
    output_format: Option<String>,
    foreground: Option<bool>,
    unique: Option<bool>,
    min_size: Option<i64>,
    max_size: Option<i64>,
    points_per_side: Option<i64>,
    pred_iou_thresh: Option<f64>,
    stability_score_thresh: Option<f64>,
    bands: Option<String>,
}

/// Form of `POST /segment/text`.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct TextForm {
    #[schema(format = Binary, value_type = String)]
    file: Vec<u8>,
    /// What to find, e.g. "building".
    prompt: String,
    model_id: Option<String>,
    /// meta or transformers (both run the ONNX model).
    backend: Option<String>,
    output_format: Option<String>,
    confidence_threshold: Option<f64>,
    min_size: Option<i64>,
    max_size: Option<i64>,
    bands: Option<String>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "samgeo-rs",
        description = "Segment Anything on geospatial rasters over HTTP, compatible with segment-geospatial's REST API."
    ),
    paths(
        super::meta::health,
        super::meta::list_models,
        super::meta::clear_models,
        super::plugins::list,
        super::plugins::reload,
        super::segment::predict,
        super::segment::automatic,
        super::segment::text,
    ),
    components(schemas(PredictForm, AutomaticForm, TextForm))
)]
struct ApiDoc;

/// `/openapi.json` and `/docs`.
pub fn routes() -> Router<AppState> {
    Router::new().merge(SwaggerUi::new("/docs").url("/openapi.json", ApiDoc::openapi()))
}
