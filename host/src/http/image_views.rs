//! `GET /images/{image_id}/preview.png` and `GET /images/{image_id}/tiles/{z}/{x}/{y}.png`:
//! pictures of a stored image for the web page's map, drawn with the bands and stretch the model
//! sees (`bands` query parameter as on the segment forms). The preview is warped to web
//! mercator when the image has a CRS and says where it lies in `X-Samgeo-Bounds`
//! (xmin,ymin,xmax,ymax) and `X-Samgeo-Bounds-Crs` (`EPSG:3857`, or `pixel`: the image's pixel
//! extent, rows growing down). GDAL work runs on blocking threads.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::error::AppError;
use crate::pipeline::unknown_image;
use crate::raster::{preview, tiles, BandSelection, OpenRaster, RasterLimits};
use crate::state::AppState;

/// Longest side of the preview before warping, in pixels.
const PREVIEW_MAX_SIDE: u32 = 2048;

/// Query of both routes.
#[derive(Debug, Deserialize, Default)]
pub struct ViewQuery {
    /// Bands as red, green, blue (1-based, e.g. `4,3,2`); default: as the segment endpoints.
    bands: Option<String>,
}

/// Opens the stored image `image_id` (blocking).
fn open_stored(state: &AppState, image_id: &str) -> Result<OpenRaster, AppError> {
    let stored = crate::images::is_image_id(image_id)
        .then(|| state.images.get(image_id))
        .flatten()
        .ok_or_else(|| unknown_image(image_id))?;
    let limits = RasterLimits {
        max_pixels: state.config().server.max_tiled_pixels,
    };
    OpenRaster::open_path(&stored.path, "the stored image", limits).map_err(|e| {
        if stored.path.exists() {
            e.into()
        } else {
            unknown_image(image_id)
        }
    })
}

/// The picture of a content-addressed image never changes: cached by the browser for a day.
const CACHE: &str = "private, max-age=86400";

/// `GET /images/{image_id}/preview.png`.
pub async fn preview_png(
    State(state): State<AppState>,
    Path(image_id): Path<String>,
    Query(query): Query<ViewQuery>,
) -> Result<Response, AppError> {
    let bands = BandSelection::parse(query.bands.as_deref())?;
    let picture = tokio::task::spawn_blocking(move || {
        let raster = open_stored(&state, &image_id)?;
        preview::preview(&raster, &bands, PREVIEW_MAX_SIDE).map_err(AppError::from)
    })
    .await
    .map_err(|e| AppError::internal(format!("drawing the preview failed: {e}")))??;
    let bounds = picture.bounds.map(|v| format!("{v:.6}")).join(",");
    let crs = if picture.georeferenced {
        "EPSG:3857"
    } else {
        "pixel"
    };
    let mut response = (
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, CACHE),
        ],
        picture.png,
    )
        .into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-samgeo-bounds", bounds.as_str()),
        ("x-samgeo-bounds-crs", crs),
    ] {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    Ok(response)
}

/// `GET /images/{image_id}/tiles/{z}/{x}/{y}.png` (the last segment is `{y}.png`).
pub async fn tile_png(
    State(state): State<AppState>,
    Path((image_id, z, x, y_png)): Path<(String, String, String, String)>,
    Query(query): Query<ViewQuery>,
) -> Result<Response, AppError> {
    let number = |what: &str, text: &str| {
        text.parse::<u32>().map_err(|_| {
            AppError::bad_request(format!("tile {what} {text:?} is not a whole number"))
        })
    };
    let (z, x) = (number("zoom", &z)?, number("column", &x)?);
    let y = number("row", y_png.strip_suffix(".png").unwrap_or("not .png"))?;
    let bands = BandSelection::parse(query.bands.as_deref())?;
    let png = tokio::task::spawn_blocking(move || {
        let raster = open_stored(&state, &image_id)?;
        tiles::tile(&raster, &bands, z, x, y).map_err(AppError::from)
    })
    .await
    .map_err(|e| AppError::internal(format!("drawing the tile failed: {e}")))??;
    Ok((
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, CACHE),
        ],
        png,
    )
        .into_response())
}
