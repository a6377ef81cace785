//! What `POST /images` and `GET /images/{image_id}` answer about a raster: size, bands, data
//! type, CRS and bounds (in the raster's CRS and in WGS 84), read from its header.

use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use serde::{Deserialize, Serialize};

use crate::raster::OpenRaster;

/// The description of a stored raster (also its sidecar file on disk).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ImageDescription {
    /// The SHA-256 of the file's bytes, hex: the id to send as `image_id`.
    pub image_id: String,
    pub width: u32,
    pub height: u32,
    pub band_count: usize,
    /// GDAL's name of the first band's data type ("Byte", "UInt16", "Float32", ...).
    pub dtype: String,
    /// "EPSG:<code>" where one matches, else the CRS as WKT; null without a CRS.
    pub crs: Option<String>,
    /// [xmin, ymin, xmax, ymax] in `crs`; null without a geotransform.
    pub bounds: Option<[f64; 4]>,
    /// [west, south, east, north] in degrees (EPSG:4326, longitude first); null when the
    /// raster has no CRS or geotransform.
    pub bounds_wgs84: Option<[f64; 4]>,
}

/// Points taken along each edge of the footprint when it is reprojected (a curved edge's
/// extreme may lie between the corners).
const EDGE_SAMPLES: usize = 21;

/// Describes the open raster `raster`, stored as `image_id`.
pub fn describe(image_id: &str, raster: &OpenRaster) -> ImageDescription {
    let info = raster.info();
    let georef = &info.georef;
    let crs = match (georef.epsg, &georef.crs_wkt) {
        (Some(code), _) => Some(format!("EPSG:{code}")),
        (None, Some(wkt)) => Some(wkt.clone()),
        (None, None) => None,
    };
    let edge = georef
        .geotransform
        .map(|gt| footprint_edge(&gt, info.width as f64, info.height as f64));
    let bounds = edge.as_ref().map(|(xs, ys)| extent(xs, ys));
    let bounds_wgs84 = match (&edge, &georef.crs_wkt) {
        (Some((xs, ys)), Some(wkt)) => to_wgs84(wkt, xs, ys),
        _ => None,
    };
    ImageDescription {
        image_id: image_id.to_string(),
        width: info.width,
        height: info.height,
        band_count: info.band_count,
        dtype: info.data_type.clone(),
        crs,
        bounds,
        bounds_wgs84,
    }
}

/// Map coordinates of points along the edge of the pixel rectangle 0..w × 0..h.
fn footprint_edge(gt: &[f64; 6], w: f64, h: f64) -> (Vec<f64>, Vec<f64>) {
    let mut xs = Vec::with_capacity(4 * EDGE_SAMPLES);
    let mut ys = Vec::with_capacity(4 * EDGE_SAMPLES);
    for i in 0..EDGE_SAMPLES {
        let t = i as f64 / (EDGE_SAMPLES - 1) as f64;
        for (col, row) in [(t * w, 0.0), (t * w, h), (0.0, t * h), (w, t * h)] {
            xs.push(gt[0] + col * gt[1] + row * gt[2]);
            ys.push(gt[3] + col * gt[4] + row * gt[5]);
        }
    }
    (xs, ys)
}

fn extent(xs: &[f64], ys: &[f64]) -> [f64; 4] {
    let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = |v: &[f64]| v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    [min(xs), min(ys), max(xs), max(ys)]
}

/// The extent of the points (in the CRS `wkt`) in longitude/latitude; `None` when GDAL cannot
/// transform them.
fn to_wgs84(wkt: &str, xs: &[f64], ys: &[f64]) -> Option<[f64; 4]> {
    let mut source = SpatialRef::from_wkt(wkt).ok()?;
    source.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let mut target = SpatialRef::from_epsg(4326).ok()?;
    target.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let transform = CoordTransform::new(&source, &target).ok()?;
    let (mut xs, mut ys) = (xs.to_vec(), ys.to_vec());
    transform.transform_coords(&mut xs, &mut ys, &mut []).ok()?;
    let e = extent(&xs, &ys);
    e.iter().all(|v| v.is_finite()).then_some(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footprint_of_a_north_up_raster() {
        let gt = [500_000.0, 10.0, 0.0, 4_000_000.0, 0.0, -10.0];
        let (xs, ys) = footprint_edge(&gt, 100.0, 50.0);
        assert_eq!(
            extent(&xs, &ys),
            [500_000.0, 3_999_500.0, 501_000.0, 4_000_000.0]
        );
        let wkt = SpatialRef::from_epsg(32618).unwrap().to_wkt().unwrap();
        let [w, s, e, n] = to_wgs84(&wkt, &xs, &ys).unwrap();
        // UTM 18N, easting 500 km: the central meridian, 75° W; northing 4000 km ≈ 36.1° N.
        assert!((w + 75.0).abs() < 0.01 && e > w && e < -74.98, "{w} {e}");
        assert!((n - 36.14).abs() < 0.05 && s < n, "{s} {n}");
    }
}
