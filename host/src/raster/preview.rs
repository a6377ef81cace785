//! `GET /images/{id}/preview.png`: one picture of a whole raster for the web page's map, drawn
//! with the bands and stretch the model sees; warped to web mercator (EPSG:3857) when the
//! raster has a CRS, else in pixel space.

use super::warp::{encode_png, warp_to_web_mercator, Target};
use super::{BandSelection, OpenRaster, RasterError};

/// The picture and where it lies.
#[derive(Debug, Clone)]
pub struct Preview {
    pub png: Vec<u8>,
    /// [xmin, ymin, xmax, ymax]: in EPSG:3857 metres when `georeferenced`, else the raster's
    /// pixel extent `[0, 0, width, height]` (rows growing down).
    pub bounds: [f64; 4],
    pub georeferenced: bool,
}

/// Draws `raster` with at most `max_side` pixels on its longest side (before warping).
pub fn preview(
    raster: &OpenRaster,
    bands: &BandSelection,
    max_side: u32,
) -> Result<Preview, RasterError> {
    let info = raster.info();
    let rgb = raster.read_rgb(bands, max_side)?;
    match (&info.georef.geotransform, &info.georef.crs_wkt) {
        (Some(gt), Some(wkt)) => {
            let sx = info.width as f64 / rgb.width as f64;
            let sy = info.height as f64 / rgb.height as f64;
            let scaled = [gt[0], gt[1] * sx, gt[2] * sy, gt[3], gt[4] * sx, gt[5] * sy];
            let picture = warp_to_web_mercator(&rgb, scaled, wkt, Target::Fit)?;
            Ok(Preview {
                png: picture.png,
                bounds: picture.bounds_3857,
                georeferenced: true,
            })
        }
        _ => Ok(Preview {
            png: encode_png(&rgb.pixels, rgb.width, rgb.height, false)?,
            bounds: [0.0, 0.0, info.width as f64, info.height as f64],
            georeferenced: false,
        }),
    }
}
