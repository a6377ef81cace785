//! Turning a pipeline result into an HTTP response.

use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};

use crate::pipeline::PipelineOutput;

/// `X-Samgeo-Cache: hit|shared|miss` says where the image embedding came from: this replica's
/// cache, the cluster's Redis, or the encoder.
pub const CACHE_HEADER: HeaderName = HeaderName::from_static("x-samgeo-cache");
/// Number of masks in the response.
pub const MASKS_HEADER: HeaderName = HeaderName::from_static("x-samgeo-masks");

/// `X-Samgeo-Tiles: total=..,processed=..,skipped=..,resumed=..` on tiled runs.
pub const TILES_HEADER: HeaderName = HeaderName::from_static("x-samgeo-tiles");

/// The formatter's bytes with its content type; binary outputs come as attachments.
pub fn formatted(result: PipelineOutput) -> Response {
    let out = result.output;
    let stages = &result.stages;
    let content_type = HeaderValue::from_str(&out.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let is_json = out.content_type.contains("json");
    let mut response = ([(header::CONTENT_TYPE, content_type)], out.bytes).into_response();
    let headers = response.headers_mut();
    if !is_json {
        let safe: String = out
            .file_name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            .collect();
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{safe}\"")) {
            headers.insert(header::CONTENT_DISPOSITION, v);
        }
    }
    headers.insert(
        CACHE_HEADER,
        HeaderValue::from_static(result.cache.as_str()),
    );
    headers.insert(MASKS_HEADER, HeaderValue::from(result.mask_count));
    if let Some(Ok(v)) = result
        .tiles
        .map(|t| HeaderValue::from_str(&t.header_value()))
    {
        headers.insert(TILES_HEADER, v);
    }
    if let Ok(v) = HeaderValue::from_str(&stages.header_value()) {
        headers.insert(HeaderName::from_static("server-timing"), v);
    }
    crate::metrics::stages(&stages.spans);
    response.extensions_mut().insert(super::observe::Served {
        model_version: result.model_version,
        model_id: result.model_id,
        cache: result.cache,
    });
    response
}
