//! `POST /images`, `GET /images/{image_id}` and `DELETE /images/{image_id}`: rasters uploaded
//! once and named by `image_id` in later requests ([`crate::images::ImageStore`]).
//!
//! An upload is streamed to a partial file in the store's directory (hashed on the way, never
//! held whole in memory), checked with GDAL, and renamed into place; a bad raster leaves
//! nothing behind. Filesystem, hashing and GDAL work run on blocking threads.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::error::AppError;
use crate::images::{describe, extension_for, ImageDescription, StoreError};
use crate::raster::{OpenRaster, RasterLimits};
use crate::state::AppState;

/// Form of `POST /images`.
#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
pub struct ImageUploadForm {
    /// The raster: GeoTIFF, PNG or JPEG.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// `POST /images`: stores the raster and describes it. 201 when it was stored now, 200 when
/// the same bytes were stored already (the same `image_id`).
#[utoipa::path(post, path = "/images",
    request_body(content = ImageUploadForm, content_type = "multipart/form-data"),
    responses((status = 201, description = "Stored", body = ImageDescription),
        (status = 200, description = "The same bytes were stored already", body = ImageDescription),
        (status = 400, description = "Not a readable raster"), (status = 413, description = "Upload or image too large"),
        (status = 422, description = "No file part"), (status = 503, description = "Busy")))]
pub async fn upload(
    State(state): State<AppState>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, AppError> {
    let Ok(multipart) = multipart else {
        return Err(AppError::unprocessable(
            "Field required: file (send a multipart/form-data body with the image as 'file')",
        ));
    };
    let limit = Duration::from_secs(state.config().server.request_timeout_secs);
    let partial = state.images.partial_path();
    let guard = PartialFile(Some(partial.clone()));
    let received = tokio::time::timeout(limit, receive_file(multipart, partial))
        .await
        .map_err(|_| {
            AppError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "The request body was not received within the server's limit of {} s",
                    limit.as_secs()
                ),
            )
        })??;
    let job_state = state.clone();
    let (description, created) =
        tokio::task::spawn_blocking(move || store(&job_state, guard, received))
            .await
            .map_err(|e| AppError::internal(format!("storing the image failed: {e}")))??;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(description)).into_response())
}

/// `GET /images/{image_id}`: the stored image's description.
#[utoipa::path(get, path = "/images/{image_id}",
    params(("image_id" = String, Path, description = "The id `POST /images` answered")),
    responses((status = 200, description = "The stored image", body = ImageDescription),
        (status = 404, description = "No such image")))]
pub async fn get(
    State(state): State<AppState>,
    Path(image_id): Path<String>,
) -> Result<Json<ImageDescription>, AppError> {
    tokio::task::spawn_blocking(move || {
        crate::images::is_image_id(&image_id)
            .then(|| state.images.get(&image_id))
            .flatten()
            .map(|i| Json(i.description))
            .ok_or_else(|| crate::pipeline::unknown_image(&image_id))
    })
    .await
    .map_err(|e| AppError::internal(format!("image lookup failed: {e}")))?
}

/// `DELETE /images/{image_id}`: removes the stored image (204).
#[utoipa::path(delete, path = "/images/{image_id}",
    params(("image_id" = String, Path, description = "The id `POST /images` answered")),
    responses((status = 204, description = "Removed"), (status = 404, description = "No such image")))]
pub async fn delete(
    State(state): State<AppState>,
    Path(image_id): Path<String>,
) -> Result<StatusCode, AppError> {
    tokio::task::spawn_blocking(move || {
        if crate::images::is_image_id(&image_id) && state.images.remove(&image_id) {
            Ok(StatusCode::NO_CONTENT)
        } else {
            Err(crate::pipeline::unknown_image(&image_id))
        }
    })
    .await
    .map_err(|e| AppError::internal(format!("image removal failed: {e}")))?
}

/// A partial upload file, removed on drop unless it was handed to the store.
struct PartialFile(Option<PathBuf>);

impl Drop for PartialFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// What was received: the upload's SHA-256 (hex) and size.
struct ReceivedFile {
    sha256: String,
    bytes: u64,
}

/// Reads the form, streaming the `file` part to `partial` through a blocking writer thread
/// (which also hashes it). Other parts are ignored. No `file` part → 422.
async fn receive_file(
    mut multipart: Multipart,
    partial: PathBuf,
) -> Result<ReceivedFile, AppError> {
    let mut received = None;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        if field.name() != Some("file") || received.is_some() {
            continue;
        }
        let (tx, rx) = mpsc::channel::<axum::body::Bytes>(8);
        let path = partial.clone();
        let writer = tokio::task::spawn_blocking(move || write_and_hash(&path, rx));
        let mut outcome = Ok(());
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) => {
                    if tx.send(chunk).await.is_err() {
                        // The writer stopped: its error follows.
                        outcome = Err(AppError::internal("writing the upload stopped early"));
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    outcome = Err(multipart_error(e));
                    break;
                }
            }
        }
        // The writer finishes (and closes the file) before anything else happens to it.
        drop(tx);
        let written = writer
            .await
            .map_err(|e| AppError::internal(format!("writing the upload failed: {e}")))?
            .map_err(|e| AppError::internal(format!("writing the upload: {e}")))?;
        outcome?;
        received = Some(written);
    }
    received.ok_or_else(|| AppError::unprocessable("Field required: file (the image to store)"))
}

/// Writes the chunks from `rx` to `path` and hashes them (blocking).
fn write_and_hash(
    path: &std::path::Path,
    mut rx: mpsc::Receiver<axum::body::Bytes>,
) -> std::io::Result<ReceivedFile> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut hash = Sha256::new();
    let mut bytes = 0u64;
    while let Some(chunk) = rx.blocking_recv() {
        hash.update(&chunk);
        file.write_all(&chunk)?;
        bytes += chunk.len() as u64;
    }
    file.flush()?;
    Ok(ReceivedFile {
        sha256: hex::encode(hash.finalize()),
        bytes,
    })
}

/// Checks the received file with GDAL and moves it into the store (blocking).
fn store(
    state: &AppState,
    mut partial: PartialFile,
    received: ReceivedFile,
) -> Result<(ImageDescription, bool), AppError> {
    let path = partial.0.clone().unwrap_or_default();
    if received.bytes == 0 {
        return Err(AppError::bad_request("The uploaded file is empty"));
    }
    if let Some(existing) = state.images.get(&received.sha256) {
        return Ok((existing.description, false));
    }
    let limits = RasterLimits {
        max_pixels: state.config().server.max_tiled_pixels,
    };
    let (description, ext) = {
        let raster = OpenRaster::open_path(&path, "the uploaded file", limits)?;
        let ext = extension_for(&raster.info().driver);
        (describe(&received.sha256, &raster), ext)
    };
    let stored = state.images.insert(&path, ext, description);
    partial.0 = None; // the store moved or removed it
    match stored {
        Ok((image, created)) => {
            tracing::info!(image_id = %image.description.image_id, bytes = image.bytes, created, "image stored");
            Ok((image.description, created))
        }
        Err(e @ StoreError::TooLarge { .. }) => Err(AppError::too_large(e.to_string())),
        Err(e) => Err(AppError::internal(e.to_string())),
    }
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> AppError {
    super::form::multipart_error(e)
}
