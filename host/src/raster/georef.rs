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
    if let Some(why) = not_inline(trimmed) {
        return Err(RasterError::Invalid(format!(
            "Invalid point_crs '{trimmed}': {why}; give the CRS itself (e.g. \"EPSG:4326\", WKT or a PROJ string)"
        )));
    }
    let mut srs = SpatialRef::from_definition(trimmed).map_err(|_| {
        RasterError::Invalid(format!(
            "Invalid point_crs '{trimmed}': not a CRS GDAL understands (e.g. \"EPSG:4326\", WKT or a PROJ string)"
        ))
    })?;
    srs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    Ok(srs)
}

/// Why a client's CRS definition is not accepted as text: GDAL's `SetFromUserInput` also opens
/// files (any path, `/vsicurl/` URLs) and fetches `http://` definitions, which would let a request
/// read server files or make the server connect anywhere (and block until it answers).
/// Inline WKT, PROJJSON and PROJ strings, authority codes, OGC CRS URLs and names pass.
fn not_inline(definition: &str) -> Option<&'static str> {
    let lower = definition.to_ascii_lowercase();
    let keyword_len = definition
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(definition.len());
    let is_wkt = keyword_len > 0
        && definition[keyword_len..]
            .trim_start()
            .starts_with(['[', '(']);
    if definition.starts_with('{') || is_wkt {
        return None;
    }
    if lower.contains("+proj") || lower.contains("+init") {
        // PROJ reads `+init=FILE:ID` from any path it is given.
        let init_path = lower
            .split_whitespace()
            .filter_map(|t| t.strip_prefix("+init="))
            .any(|v| v.contains('/') || v.contains('\\'));
        return init_path.then_some("+init must name a PROJ init file, not a path");
    }
    const OGC_URLS: [&str; 5] = [
        "http://opengis.net/def/crs",
        "https://opengis.net/def/crs",
        "http://www.opengis.net/def/crs",
        "https://www.opengis.net/def/crs",
        "www.opengis.net/def/crs",
    ];
    if OGC_URLS.iter().any(|u| lower.starts_with(u)) {
        return None;
    }
    if lower.contains("://") {
        return Some("URLs are not fetched");
    }
    if lower.contains("/vsi")
        || lower.starts_with("dict:")
        || std::path::Path::new(definition).exists()
    {
        return Some("files are not read");
    }
    None
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_crs_is_text_never_a_file_or_url() {
        for refused in [
            "http://127.0.0.1:9/crs.wkt",
            "https://example.com/crs",
            "/vsicurl/http://127.0.0.1:9/x",
            "/vsimem/samgeo/upload-1-1",
            "/etc/hostname",
            "/proc/self/environ",
            "DICT:/etc/hostname,1",
            "+init=/dev/zero:1",
        ] {
            let e = parse_crs(refused).unwrap_err();
            assert!(
                e.to_string().contains("Invalid point_crs"),
                "{refused}: {e}"
            );
        }
        for accepted in [
            "EPSG:4326",
            "urn:ogc:def:crs:EPSG::32618",
            "http://www.opengis.net/def/crs/EPSG/0/4326",
            "+proj=longlat +datum=WGS84 +no_defs",
            "WGS84",
        ] {
            assert!(parse_crs(accepted).is_ok(), "{accepted}");
        }
        let wkt = SpatialRef::from_epsg(32618).unwrap().to_wkt().unwrap();
        assert!(parse_crs(&wkt).is_ok());
        let projjson = SpatialRef::from_epsg(4326).unwrap().to_projjson().unwrap();
        assert!(
            projjson.contains("https://"),
            "PROJJSON names its schema URL"
        );
        assert!(parse_crs(&projjson).is_ok());
    }
}
