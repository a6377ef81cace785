//! Opening a raster with GDAL (uploaded bytes from memory, or a stored image or `source` by
//! path, read in place) and reading the model's RGB image from it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use gdal::raster::{ColorInterpretation, GdalDataType, ResampleAlg};
use gdal::{Dataset, DatasetOptions, GdalOpenFlags};

use super::bands::BandSelection;
use super::stretch::percentile_stretch;
use super::{RasterError, RasterInfo, RgbImage};

/// Drivers the server accepts; everything else is refused before GDAL parses it.
const ALLOWED_DRIVERS: [&str; 3] = ["GTiff", "PNG", "JPEG"];

/// Limits checked on the header, before any pixel is read.
#[derive(Debug, Clone, Copy)]
pub struct RasterLimits {
    /// Largest image accepted, in pixels.
    pub max_pixels: u64,
}

/// Largest block (tile or strip) accepted for an image smaller than this, in pixels: 4096×4096.
const MIN_BLOCK_LIMIT: u64 = 4096 * 4096;

/// A `/vsimem/` file that GDAL owns; unlinked (and freed) on drop.
struct VsiMemFile(PathBuf);

impl Drop for VsiMemFile {
    fn drop(&mut self) {
        let _ = gdal::vsi::unlink_mem_file(&self.0);
    }
}

/// A raster opened with GDAL. The dataset is closed before its memory file (if any) goes.
pub struct OpenRaster {
    dataset: Dataset,
    info: RasterInfo,
    _file: Option<VsiMemFile>,
}

static NEXT_FILE: AtomicU64 = AtomicU64::new(0);

impl OpenRaster {
    /// Opens `bytes` (GeoTIFF, PNG or JPEG) and reads its header. Fails with a message naming
    /// the problem for empty, corrupt or unsupported files and with `TooLarge` past the limits.
    pub fn open(bytes: Vec<u8>, limits: RasterLimits) -> Result<OpenRaster, RasterError> {
        if bytes.is_empty() {
            return Err(RasterError::Invalid("The uploaded file is empty".into()));
        }
        let name = PathBuf::from(format!(
            "/vsimem/samgeo/upload-{}-{}",
            std::process::id(),
            NEXT_FILE.fetch_add(1, Ordering::Relaxed)
        ));
        gdal::vsi::create_mem_file(&name, bytes)
            .map_err(|e| RasterError::Invalid(format!("Cannot hold the upload in memory: {e}")))?;
        let file = VsiMemFile(name);
        let (dataset, info) = open_checked(&file.0, "the uploaded file", limits)?;
        Ok(OpenRaster {
            dataset,
            info,
            _file: Some(file),
        })
    }

    /// Opens the raster at `path` (a file, or a GDAL virtual path such as `/vsicurl/...`) in
    /// place: only its header is read here, pixels later window by window. `label` names it in
    /// messages (the client may not know the path, e.g. "the stored image").
    pub fn open_path(
        path: &std::path::Path,
        label: &str,
        limits: RasterLimits,
    ) -> Result<OpenRaster, RasterError> {
        let (dataset, info) = open_checked(path, label, limits)?;
        Ok(OpenRaster {
            dataset,
            info,
            _file: None,
        })
    }

    /// Size, bands and georeferencing.
    pub fn info(&self) -> &RasterInfo {
        &self.info
    }

    /// Reads the selected bands as 8-bit RGB, downsampled so the longest side is at most
    /// `max_side` (never upsampled). Byte bands are taken as they are; other types get a
    /// per-band 2–98 percentile stretch. Pixels that are nodata, NaN, masked or transparent
    /// become black.
    pub fn read_rgb(&self, bands: &BandSelection, max_side: u32) -> Result<RgbImage, RasterError> {
        self.read_rgb_window(bands, (0, 0, self.info.width, self.info.height), max_side)
    }

    /// As [`read_rgb`](Self::read_rgb), for the pixel window columns x0..x1, rows y0..y1.
    pub fn read_rgb_window(
        &self,
        bands: &BandSelection,
        (x0, y0, x1, y1): (u32, u32, u32, u32),
        max_side: u32,
    ) -> Result<RgbImage, RasterError> {
        let chosen = bands.resolve_with(self.info.band_count, self.rgb_bands())?;
        if x1 > self.info.width || y1 > self.info.height || x0 >= x1 || y0 >= y1 {
            return Err(RasterError::Invalid(format!(
                "window {x0},{y0}..{x1},{y1} is outside the {}×{} image",
                self.info.width, self.info.height
            )));
        }
        let (w, h) = (x1 - x0, y1 - y0);
        let scale = (max_side as f64 / w.max(h) as f64).min(1.0);
        let ow = ((w as f64 * scale).round() as u32).max(1);
        let oh = ((h as f64 * scale).round() as u32).max(1);
        let n = ow as usize * oh as usize;
        let mut valid = vec![true; n];
        let mut planes: Vec<Vec<u8>> = Vec::with_capacity(3);
        for &index in &chosen {
            let band = self
                .dataset
                .rasterband(index)
                .map_err(|e| RasterError::Invalid(format!("Cannot read band {index}: {e}")))?;
            let read_err = |e: gdal::errors::GdalError| {
                RasterError::Invalid(format!(
                    "Cannot read the pixels of band {index}: {}",
                    gdal_message(&e)
                ))
            };
            let has_invalid = band.no_data_value().is_some()
                || band
                    .mask_flags()
                    .map(|f| !f.is_all_valid())
                    .unwrap_or(false);
            let resample = if has_invalid || scale >= 1.0 {
                ResampleAlg::NearestNeighbour
            } else {
                ResampleAlg::Average
            };
            let origin = (x0 as isize, y0 as isize);
            let window = (w as usize, h as usize);
            let size = (ow as usize, oh as usize);
            if has_invalid {
                let mask = band.open_mask_band().map_err(read_err)?;
                let m = mask
                    .read_as::<u8>(origin, window, size, Some(ResampleAlg::NearestNeighbour))
                    .map_err(read_err)?;
                for (v, &mv) in valid.iter_mut().zip(m.data()) {
                    *v &= mv != 0;
                }
            }
            let plane = if band.band_type() == GdalDataType::UInt8 {
                band.read_as::<u8>(origin, window, size, Some(resample))
                    .map_err(read_err)?
                    .into_shape_and_vec()
                    .1
            } else {
                let values = band
                    .read_as::<f32>(origin, window, size, Some(resample))
                    .map_err(read_err)?
                    .into_shape_and_vec()
                    .1;
                let band_valid: Vec<bool> = values
                    .iter()
                    .zip(&valid)
                    .map(|(v, ok)| *ok && v.is_finite())
                    .collect();
                percentile_stretch(&values, &band_valid)
            };
            planes.push(plane);
        }
        let mut pixels = vec![0u8; n * 3];
        for (i, px) in pixels.chunks_exact_mut(3).enumerate() {
            if valid[i] {
                px[0] = planes[0][i];
                px[1] = planes[1][i];
                px[2] = planes[2][i];
            }
        }
        Ok(RgbImage {
            width: ow,
            height: oh,
            pixels,
        })
    }

    /// The 1-based indexes of the bands labelled red, green and blue, when all three are.
    fn rgb_bands(&self) -> Option<[usize; 3]> {
        let find = |wanted: ColorInterpretation| {
            (1..=self.info.band_count).find(|&i| {
                self.dataset
                    .rasterband(i)
                    .map(|b| b.color_interpretation() == wanted)
                    .unwrap_or(false)
            })
        };
        Some([
            find(ColorInterpretation::RedBand)?,
            find(ColorInterpretation::GreenBand)?,
            find(ColorInterpretation::BlueBand)?,
        ])
    }

    /// The GDAL dataset, for georeferencing work.
    pub fn dataset(&self) -> &Dataset {
        &self.dataset
    }
}

/// Opens `path` with the accepted drivers and checks its header against `limits`.
fn open_checked(
    path: &std::path::Path,
    label: &str,
    limits: RasterLimits,
) -> Result<(Dataset, RasterInfo), RasterError> {
    let options = DatasetOptions {
        open_flags: GdalOpenFlags::GDAL_OF_RASTER | GdalOpenFlags::GDAL_OF_READONLY,
        allowed_drivers: Some(&ALLOWED_DRIVERS),
        ..Default::default()
    };
    let dataset = Dataset::open_ex(path, options).map_err(|e| {
        let detail = match gdal_message(&e) {
            m if m.is_empty() || m.contains("NULL pointer") => {
                "the format is not recognised".to_string()
            }
            m => m,
        };
        // A path on this server is not the client's business: it knows the label.
        let detail = detail.replace(&*path.to_string_lossy(), label);
        RasterError::Invalid(format!(
            "Cannot read {label} as a GeoTIFF, PNG or JPEG image: {detail}"
        ))
    })?;
    let (w, h) = dataset.raster_size();
    let band_count = dataset.raster_count();
    if w == 0 || h == 0 || band_count == 0 {
        return Err(RasterError::Invalid(format!(
            "The image has no pixels ({w}×{h}, {band_count} bands)"
        )));
    }
    let pixels = w as u64 * h as u64;
    if pixels > limits.max_pixels {
        return Err(RasterError::TooLarge(format!(
            "The image has {w}×{h} = {pixels} pixels; this server accepts at most {}",
            limits.max_pixels
        )));
    }
    // A tiny file can declare huge tiles or strips (a 9×4 image in 65340×65295 tiles, found
    // by fuzzing): GDAL allocates a whole block (here 4 GB) to read any pixel of it. Blocks
    // larger than the image, or than MIN_BLOCK_LIMIT pixels for small images, are refused.
    let block_limit = pixels.max(MIN_BLOCK_LIMIT);
    for index in 1..=band_count {
        let Ok(band) = dataset.rasterband(index) else {
            continue;
        };
        let (bx, by) = band.block_size();
        if bx as u64 * by as u64 > block_limit {
            return Err(RasterError::TooLarge(format!(
                    "The image ({w}×{h} pixels) is stored in blocks (tiles or strips) of {bx}×{by} pixels; this server accepts blocks of at most {block_limit} pixels"
                )));
        }
    }
    let first = dataset
        .rasterband(1)
        .map_err(|e| RasterError::Invalid(format!("Cannot read band 1: {e}")))?;
    let info = RasterInfo {
        width: w as u32,
        height: h as u32,
        band_count,
        data_type: first.band_type().name(),
        driver: dataset.driver().short_name(),
        georef: super::georef::georef_of(&dataset),
    };
    Ok((dataset, info))
}

/// The message of a GDAL error without the error-class boilerplate.
pub(crate) fn gdal_message(e: &gdal::errors::GdalError) -> String {
    match e {
        gdal::errors::GdalError::CplError { msg, .. } => clean_gdal_message(msg),
        other => clean_gdal_message(&other.to_string()),
    }
}

/// GDAL messages name the `/vsimem/` path; the client only knows "the uploaded file".
fn clean_gdal_message(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find("/vsimem/") {
        out.push_str(&rest[..start]);
        out.push_str("the uploaded file");
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| c.is_whitespace() || c == '\'' || c == '"' || c == ',' || c == ')')
            .unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `width`×`height` GeoTIFF in `block`×`block` tiles, nothing written (sparse).
    fn tiled(width: usize, height: usize, block: usize) -> Vec<u8> {
        let name = format!("/vsimem/samgeo-test-tiled-{width}-{height}-{block}.tif");
        let driver = gdal::DriverManager::get_driver_by_name("GTiff").unwrap();
        let options: gdal::raster::RasterCreationOptions = [
            "TILED=YES".to_string(),
            format!("BLOCKXSIZE={block}"),
            format!("BLOCKYSIZE={block}"),
            "SPARSE_OK=TRUE".to_string(),
        ]
        .into_iter()
        .collect();
        let ds = driver
            .create_with_band_type_with_options::<u8, _>(&name, width, height, 1, &options)
            .unwrap();
        drop(ds);
        gdal::vsi::get_vsi_mem_file_bytes_owned(&name).unwrap()
    }

    #[test]
    fn huge_blocks_in_a_small_image_are_refused() {
        let limits = RasterLimits {
            max_pixels: 1 << 28,
        };
        // Found by fuzzing (fuzz/regressions/raster_decode/): 9×4 pixels in 65340×65295 tiles.
        match OpenRaster::open(tiled(9, 4, 8192), limits) {
            Err(RasterError::TooLarge(m)) => assert!(m.contains("8192×8192"), "{m}"),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("8192×8192 tiles for a 9×4 image were accepted"),
        }
        // Ordinary tiling, even with tiles larger than the image, is fine.
        assert!(OpenRaster::open(tiled(9, 4, 256), limits).is_ok());
        assert!(OpenRaster::open(tiled(5000, 4000, 512), limits).is_ok());
    }

    #[test]
    fn gdal_messages_hide_memory_paths() {
        assert_eq!(
            clean_gdal_message("'/vsimem/samgeo/upload-1-2' not recognized as a supported file"),
            "'the uploaded file' not recognized as a supported file"
        );
    }
}
