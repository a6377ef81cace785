//! Which pixels of a window hold data: cheap enough to ask for every tile of a huge raster
//! before any pixel is read, so tiles of nodata (or never written, in a sparse GeoTIFF) are
//! skipped.

use gdal::raster::ResampleAlg;

use super::bands::BandSelection;
use super::open::{gdal_message, OpenRaster};
use super::RasterError;

/// `GDALGetDataCoverageStatus` flags (`#define`s in gdal.h, not in the generated bindings).
const COVERAGE_UNIMPLEMENTED: u32 = 0x01;
const COVERAGE_DATA: u32 = 0x02;
const COVERAGE_EMPTY: u32 = 0x04;

/// What a window of the selected bands holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowContent {
    /// No valid pixel: every block is absent from the file, or every pixel is nodata,
    /// masked or transparent.
    Empty,
    /// Some valid pixels; `valid` flags them at the requested output size (row-major), `None`
    /// when every pixel is valid.
    Data { valid: Option<Vec<bool>> },
}

impl OpenRaster {
    /// What the window columns x0..x1, rows y0..y1 of the selected bands holds, with its
    /// validity resampled (nearest) to `ow`×`oh`. First asks GDAL whether the window's
    /// blocks exist at all (`GDALGetDataCoverageStatus`: no pixel read for a sparse region),
    /// then reads the bands' mask bands (nodata, alpha or per-dataset mask) where they have one.
    pub fn window_content(
        &self,
        bands: &BandSelection,
        (x0, y0, x1, y1): (u32, u32, u32, u32),
        (ow, oh): (u32, u32),
    ) -> Result<WindowContent, RasterError> {
        let chosen = bands.resolve_with(self.info().band_count, self.rgb_bands())?;
        let dataset = self.dataset();
        let mut any_stored = false;
        let mut valid: Option<Vec<bool>> = None;
        for &index in &chosen {
            let band = dataset
                .rasterband(index)
                .map_err(|e| RasterError::Invalid(format!("Cannot read band {index}: {e}")))?;
            // SAFETY: the band handle is valid while `band` (borrowing the dataset) lives; the
            // call only reads the file's block index. A null pointer asks for no percentage.
            let status = unsafe {
                gdal_sys::GDALGetDataCoverageStatus(
                    band.c_rasterband(),
                    x0 as i32,
                    y0 as i32,
                    (x1 - x0) as i32,
                    (y1 - y0) as i32,
                    0,
                    std::ptr::null_mut(),
                )
            } as u32;
            let empty = status & COVERAGE_EMPTY != 0
                && status & COVERAGE_DATA == 0
                && status & COVERAGE_UNIMPLEMENTED == 0;
            any_stored |= !empty;
            let masked = band.no_data_value().is_some()
                || band
                    .mask_flags()
                    .map(|f| !f.is_all_valid())
                    .unwrap_or(false);
            if !masked || empty {
                continue;
            }
            let read_err = |e: gdal::errors::GdalError| {
                RasterError::Invalid(format!(
                    "Cannot read the mask of band {index}: {}",
                    gdal_message(&e)
                ))
            };
            let mask = band.open_mask_band().map_err(read_err)?;
            let m = mask
                .read_as::<u8>(
                    (x0 as isize, y0 as isize),
                    ((x1 - x0) as usize, (y1 - y0) as usize),
                    (ow as usize, oh as usize),
                    Some(ResampleAlg::NearestNeighbour),
                )
                .map_err(read_err)?;
            let flags = valid.get_or_insert_with(|| vec![true; ow as usize * oh as usize]);
            for (v, &mv) in flags.iter_mut().zip(m.data()) {
                *v &= mv != 0;
            }
        }
        if !any_stored || valid.as_ref().is_some_and(|v| !v.iter().any(|&b| b)) {
            return Ok(WindowContent::Empty);
        }
        Ok(WindowContent::Data { valid })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raster::RasterLimits;

    /// A sparse 3-band 2048×1024 GeoTIFF (nodata 0, 256-px tiles) with a 100×100 block of data
    /// at (1100, 300).
    fn sparse() -> Vec<u8> {
        let name = "/vsimem/samgeo-test-coverage.tif";
        let driver = gdal::DriverManager::get_driver_by_name("GTiff").unwrap();
        let options: gdal::raster::RasterCreationOptions = [
            "TILED=YES",
            "BLOCKXSIZE=256",
            "BLOCKYSIZE=256",
            "SPARSE_OK=TRUE",
            "COMPRESS=DEFLATE",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let ds = driver
            .create_with_band_type_with_options::<u8, _>(name, 2048, 1024, 3, &options)
            .unwrap();
        for i in 1..=3 {
            let mut band = ds.rasterband(i).unwrap();
            band.set_no_data_value(Some(0.0)).unwrap();
            let mut buf = gdal::raster::Buffer::new((100, 100), vec![200u8; 100 * 100]);
            band.write((1100, 300), (100, 100), &mut buf).unwrap();
        }
        drop(ds);
        let bytes = gdal::vsi::get_vsi_mem_file_bytes_owned(name).unwrap();
        let _ = gdal::vsi::unlink_mem_file(name);
        bytes
    }

    #[test]
    fn sparse_and_nodata_windows_are_empty_and_data_is_flagged() {
        let raster = OpenRaster::open(
            sparse(),
            RasterLimits {
                max_pixels: 1 << 30,
            },
        )
        .unwrap();
        let bands = BandSelection::default();
        // Never written: empty without reading a pixel.
        assert_eq!(
            raster
                .window_content(&bands, (0, 0, 512, 512), (512, 512))
                .unwrap(),
            WindowContent::Empty
        );
        // Written block, but the window holds only nodata pixels of it.
        assert_eq!(
            raster
                .window_content(&bands, (1030, 260, 1090, 290), (60, 30))
                .unwrap(),
            WindowContent::Empty
        );
        // The data block: valid exactly where it was written.
        match raster
            .window_content(&bands, (1000, 200, 1300, 500), (300, 300))
            .unwrap()
        {
            WindowContent::Data { valid: Some(v) } => {
                assert_eq!(v.iter().filter(|&&b| b).count(), 100 * 100);
                assert!(v[150 * 300 + 150] && !v[50 * 300 + 50]);
            }
            other => panic!("{other:?}"),
        }
    }
}
