//! Georeferencing of a raster (geotransform, CRS, EPSG) and prompt coordinates given in a CRS
//! turned into pixel coordinates.

use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use gdal::{Dataset, GeoTransformEx};

use super::RasterError;
use crate::masks::Georef;

/// Reads the geotransform, the CRS as WKT and its EPSG code (where one matches).
pub fn georef_of(dataset: &Dataset) -> Georef {
    let geotransform = dataset.geo_transform().ok().filter(|gt| {
        // GDAL reports the identity-like default for images without georeferencing.
        *gt != [0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    });
    let srs = dataset.spatial_ref().ok();
    let crs_wkt = srs
        .as_ref()
        .and_then(|s| s.to_wkt().ok())
        .filter(|w| !w.is_empty());
    let epsg = srs.and_then(|s| epsg_code(&s));
    Georef {
        geotransform,
        crs_wkt,
        epsg,
    }
}

/// The EPSG code of `srs`: its own authority code, else the one GDAL identifies.
pub fn epsg_code(srs: &SpatialRef) -> Option<u32> {
    let direct = |s: &SpatialRef| {
        (s.auth_name().as_deref() == Some("EPSG"))
            .then(|| s.auth_code().ok())
            .flatten()
            .and_then(|c| u32::try_from(c).ok())
    };
    if let Some(code) = direct(srs) {
        return Some(code);
    }
    let mut copy = SpatialRef::from_wkt(&srs.to_wkt().ok()?).ok()?;
    copy.auto_identify_epsg().ok()?;
    direct(&copy)
}

/// Parses a CRS given by a client (anything `SetFromUserInput` accepts), in traditional GIS
/// axis order (x = easting/longitude).
pub fn parse_crs(definition: &str) -> Result<SpatialRef, RasterError> {
    let trimmed = definition.trim();
    if trimmed.is_empty() {
        return Err(RasterError::Invalid("point_crs is empty".into()));
    }
    let mut srs = SpatialRef::from_definition(trimmed).map_err(|_| {
        RasterError::Invalid(format!(
            "Invalid point_crs '{trimmed}': not a CRS GDAL understands (e.g. \"EPSG:4326\", WKT or a PROJ string)"
        ))
    })?;
    srs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    Ok(srs)
}

/// Turns `points` given in `point_crs` into fractional pixel coordinates (column, row) of the
/// raster `dataset`; with no `point_crs` the points already are pixel coordinates.
pub fn to_pixel_coords(
    dataset: &Dataset,
    georef: &Georef,
    points: &[[f64; 2]],
    point_crs: Option<&str>,
) -> Result<Vec<[f64; 2]>, RasterError> {
    let Some(definition) = point_crs else {
        return Ok(points.to_vec());
    };
    let source = parse_crs(definition)?;
    let (Some(gt), Ok(mut target)) = (georef.geotransform, dataset.spatial_ref()) else {
        return Err(RasterError::Invalid(format!(
            "point_crs '{}' was given, but the image has no georeferencing (no CRS or geotransform): give pixel coordinates instead",
            definition.trim()
        )));
    };
    target.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let transform = CoordTransform::new(&source, &target).map_err(|e| {
        RasterError::Invalid(format!(
            "Cannot transform from point_crs '{}' to the image's CRS: {e}",
            definition.trim()
        ))
    })?;
    let mut xs: Vec<f64> = points.iter().map(|p| p[0]).collect();
    let mut ys: Vec<f64> = points.iter().map(|p| p[1]).collect();
    transform
        .transform_coords(&mut xs, &mut ys, &mut [])
        .map_err(|e| {
            RasterError::Invalid(format!(
                "Cannot transform the prompt coordinates from point_crs '{}': {e}",
                definition.trim()
            ))
        })?;
    let inverse = gt
        .invert()
        .map_err(|_| RasterError::Invalid("The image's geotransform cannot be inverted".into()))?;
    Ok(xs
        .iter()
        .zip(&ys)
        .map(|(&x, &y)| {
            let (col, row) = inverse.apply(x, y);
            [col, row]
        })
        .collect())
}
