//! `GET /images/{id}/tiles/{z}/{x}/{y}.png`: web-mercator XYZ map tiles (256×256 PNG,
//! transparent outside the raster) for rasters too large for one picture. Each tile reads only
//! the raster window under it (through overviews when the file has them), with the bands and
//! stretch the model sees, and warps it to the tile with GDAL.

use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use gdal::GeoTransformEx;

use super::warp::{encode_png, warp_to_web_mercator, Target};
use super::{BandSelection, OpenRaster, RasterError};

/// Side of a tile, in pixels.
pub const TILE_SIZE: u32 = 256;

/// Deepest zoom served (about 0.15 mm per pixel at the equator).
pub const MAX_ZOOM: u32 = 30;

/// Half the width of the web-mercator square, in metres.
const ORIGIN: f64 = 20_037_508.342_789_244;

/// Longest side of the window read for one tile: twice the tile, so that warping has detail.
const READ_SIDE: u32 = 2 * TILE_SIZE;

/// The bounds [xmin, ymin, xmax, ymax] in EPSG:3857 of tile `z/x/y` (y = 0 at the north).
pub fn tile_bounds(z: u32, x: u32, y: u32) -> Result<[f64; 4], RasterError> {
    if z > MAX_ZOOM {
        return Err(RasterError::Invalid(format!(
            "zoom {z} is beyond the deepest served ({MAX_ZOOM})"
        )));
    }
    let n = 1u64 << z;
    if x as u64 >= n || y as u64 >= n {
        return Err(RasterError::Invalid(format!(
            "tile {z}/{x}/{y} does not exist: x and y must be below {n} at zoom {z}"
        )));
    }
    let size = 2.0 * ORIGIN / n as f64;
    let xmin = -ORIGIN + x as f64 * size;
    let ymax = ORIGIN - y as f64 * size;
    Ok([xmin, ymax - size, xmin + size, ymax])
}

/// A fully transparent tile.
pub fn empty_tile() -> Vec<u8> {
    let side = TILE_SIZE as usize;
    encode_png(&vec![0; side * side * 4], TILE_SIZE, TILE_SIZE, true).unwrap_or_default()
}

/// Draws tile `z/x/y` of `raster`. A raster without a CRS has no place on the map: 400.
pub fn tile(
    raster: &OpenRaster,
    bands: &BandSelection,
    z: u32,
    x: u32,
    y: u32,
) -> Result<Vec<u8>, RasterError> {
    let bounds = tile_bounds(z, x, y)?;
    let info = raster.info();
    let (Some(gt), Some(wkt)) = (info.georef.geotransform, info.georef.crs_wkt.as_deref()) else {
        return Err(RasterError::Invalid(
            "the image has no CRS or geotransform, so it has no map tiles: use preview.png (pixel space)".into(),
        ));
    };
    let Some((x0, y0, x1, y1)) = source_window(&bounds, &gt, wkt, info.width, info.height) else {
        return Ok(empty_tile());
    };
    let rgb = raster.read_rgb_window(bands, (x0, y0, x1, y1), READ_SIDE)?;
    let (ox, oy) = gt.apply(x0 as f64, y0 as f64);
    let sx = (x1 - x0) as f64 / rgb.width as f64;
    let sy = (y1 - y0) as f64 / rgb.height as f64;
    let window_gt = [ox, gt[1] * sx, gt[2] * sy, oy, gt[4] * sx, gt[5] * sy];
    let picture = warp_to_web_mercator(
        &rgb,
        window_gt,
        wkt,
        Target::Extent {
            bounds,
            size: TILE_SIZE,
        },
    )?;
    Ok(picture.png)
}

/// The raster's pixel window (columns x0..x1, rows y0..y1) under the EPSG:3857 `bounds`,
/// widened by a pixel for resampling, or None when they do not meet.
fn source_window(
    bounds: &[f64; 4],
    gt: &[f64; 6],
    wkt: &str,
    width: u32,
    height: u32,
) -> Option<(u32, u32, u32, u32)> {
    let mut web = SpatialRef::from_epsg(3857).ok()?;
    web.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let mut src = SpatialRef::from_wkt(wkt).ok()?;
    src.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let to_src = CoordTransform::new(&web, &src).ok()?;
    let [a, b, c, d] = to_src.transform_bounds(bounds, 21).ok()?;
    let inverse = gt.invert().ok()?;
    let corners = [(a, b), (a, d), (c, b), (c, d)].map(|(gx, gy)| inverse.apply(gx, gy));
    let min_col = corners.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let max_col = corners
        .iter()
        .map(|p| p.0)
        .fold(f64::NEG_INFINITY, f64::max);
    let min_row = corners.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let max_row = corners
        .iter()
        .map(|p| p.1)
        .fold(f64::NEG_INFINITY, f64::max);
    if !(min_col.is_finite() && max_col.is_finite() && min_row.is_finite() && max_row.is_finite()) {
        return None;
    }
    let x0 = (min_col.floor() - 1.0).clamp(0.0, width as f64) as u32;
    let x1 = (max_col.ceil() + 1.0).clamp(0.0, width as f64) as u32;
    let y0 = (min_row.floor() - 1.0).clamp(0.0, height as f64) as u32;
    let y1 = (max_row.ceil() + 1.0).clamp(0.0, height as f64) as u32;
    (x1 > x0 && y1 > y0).then_some((x0, y0, x1, y1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_bounds_cover_the_world_at_zoom_zero_and_split_in_four() {
        let world = tile_bounds(0, 0, 0).unwrap();
        assert!((world[0] + ORIGIN).abs() < 1e-6 && (world[3] - ORIGIN).abs() < 1e-6);
        let nw = tile_bounds(1, 0, 0).unwrap();
        assert_eq!(nw, [-ORIGIN, 0.0, 0.0, ORIGIN]);
        let se = tile_bounds(1, 1, 1).unwrap();
        assert_eq!(se, [0.0, -ORIGIN, ORIGIN, 0.0]);
        assert!(tile_bounds(1, 2, 0).is_err());
        assert!(tile_bounds(31, 0, 0).is_err());
    }
}

#[cfg(test)]
mod rendering_tests {
    use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};

    use super::super::preview::preview;
    use super::super::{BandSelection, OpenRaster, RasterLimits};
    use super::*;

    /// 256×256 px of 10 m in UTM 32N, dark ground, a red square at columns/rows 96..160.
    fn square_tif() -> OpenRaster {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("/vsimem/samgeo-test-web-square-{n}.tif");
        let driver = gdal::DriverManager::get_driver_by_name("GTiff").unwrap();
        let mut ds = driver
            .create_with_band_type::<u8, _>(&name, 256, 256, 3)
            .unwrap();
        ds.set_geo_transform(&[500_000.0, 10.0, 0.0, 5_000_000.0, 0.0, -10.0])
            .unwrap();
        ds.set_spatial_ref(&SpatialRef::from_epsg(32632).unwrap())
            .unwrap();
        for (band, (ground, square)) in [(30u8, 220u8), (35, 30), (60, 30)].into_iter().enumerate()
        {
            let mut px = vec![ground; 256 * 256];
            for r in 96..160 {
                for c in 96..160 {
                    px[r * 256 + c] = square;
                }
            }
            let mut buffer = gdal::raster::Buffer::new((256, 256), px);
            ds.rasterband(band + 1)
                .unwrap()
                .write((0, 0), (256, 256), &mut buffer)
                .unwrap();
        }
        drop(ds);
        let bytes = gdal::vsi::get_vsi_mem_file_bytes_owned(&name).unwrap();
        OpenRaster::open(
            bytes,
            RasterLimits {
                max_pixels: 1 << 30,
            },
        )
        .unwrap()
    }

    /// The square's centre in EPSG:3857.
    fn centre_3857() -> (f64, f64) {
        let mut utm = SpatialRef::from_epsg(32632).unwrap();
        utm.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
        let mut web = SpatialRef::from_epsg(3857).unwrap();
        web.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
        let t = CoordTransform::new(&utm, &web).unwrap();
        let (mut x, mut y, mut z) = ([501_280.0], [4_998_720.0], [0.0]);
        t.transform_coords(&mut x, &mut y, &mut z).unwrap();
        (x[0], y[0])
    }

    fn decode(png_bytes: &[u8]) -> (u32, u32, Vec<u8>) {
        let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgba);
        (info.width, info.height, buf)
    }

    /// RGBA of the picture at EPSG:3857 point `p`.
    fn at(picture: &(u32, u32, Vec<u8>), bounds: [f64; 4], p: (f64, f64)) -> [u8; 4] {
        let (w, h, px) = picture;
        let col = ((p.0 - bounds[0]) / (bounds[2] - bounds[0]) * *w as f64) as usize;
        let row = ((bounds[3] - p.1) / (bounds[3] - bounds[1]) * *h as f64) as usize;
        let i = (row * *w as usize + col) * 4;
        [px[i], px[i + 1], px[i + 2], px[i + 3]]
    }

    #[test]
    fn preview_lies_in_web_mercator_with_the_square_at_its_place() {
        let raster = square_tif();
        let p = preview(&raster, &BandSelection::default(), 1024).unwrap();
        assert!(p.georeferenced);
        let picture = decode(&p.png);
        let c = centre_3857();
        assert!(p.bounds[0] < c.0 && c.0 < p.bounds[2] && p.bounds[1] < c.1 && c.1 < p.bounds[3]);
        assert_eq!(at(&picture, p.bounds, c), [220, 30, 30, 255]);
        // A ground pixel well inside the raster.
        let ground = (c.0 - 800.0, c.1 + 800.0);
        assert_eq!(at(&picture, p.bounds, ground), [30, 35, 60, 255]);
    }

    #[test]
    fn a_tile_shows_the_square_and_is_transparent_beyond_the_raster() {
        let raster = square_tif();
        let c = centre_3857();
        // Zoom 12 tiles are ~9.8 km of web mercator; the 2.56 km raster at 45° N spans ~3.6 km
        // of it: it covers part of the tile holding it.
        let z = 12u32;
        let size = 2.0 * ORIGIN / (1u64 << z) as f64;
        let x = ((c.0 + ORIGIN) / size) as u32;
        let y = ((ORIGIN - c.1) / size) as u32;
        let bounds = tile_bounds(z, x, y).unwrap();
        let picture = decode(&tile(&raster, &BandSelection::default(), z, x, y).unwrap());
        assert_eq!((picture.0, picture.1), (TILE_SIZE, TILE_SIZE));
        assert_eq!(at(&picture, bounds, c), [220, 30, 30, 255]);
        let transparent = picture.2.chunks(4).filter(|p| p[3] == 0).count();
        assert!(transparent > 0, "the raster does not cover its whole tile");
        // A tile far away is empty; a raster without a CRS has no tiles.
        let far = decode(&tile(&raster, &BandSelection::default(), z, 0, 0).unwrap());
        assert!(far.2.chunks(4).all(|p| p[3] == 0));
    }
}
