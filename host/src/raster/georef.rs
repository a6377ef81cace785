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

/// Parses a CRS given by a client, in traditional GIS axis order (x = easting/longitude). Only
/// the forms [`crs_form`] recognises reach GDAL.
pub fn parse_crs(definition: &str) -> Result<SpatialRef, RasterError> {
    let trimmed = definition.trim();
    if trimmed.is_empty() {
        return Err(RasterError::Invalid("point_crs is empty".into()));
    }
    if crs_form(trimmed).is_none() {
        return Err(RasterError::Invalid(format!(
            "Invalid point_crs '{trimmed}': not an accepted form of CRS; give an authority code (EPSG:4326, ESRI:102100, OGC:CRS84), an OGC URN or URL, WKT, a PROJ string (+proj=..., without +init or file paths) or PROJJSON"
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

/// The forms of CRS definition a client may send as `point_crs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrsForm {
    /// `EPSG:4326`, `ESRI:102100`, `OGC:CRS84`, ... (a known authority, an alphanumeric code).
    AuthorityCode,
    /// `urn:ogc:def:crs:EPSG::4326`.
    OgcUrn,
    /// `http://www.opengis.net/def/crs/EPSG/0/4326` (parsed, never fetched).
    OgcUrl,
    /// `WGS84`, `NAD83`, ... (GDAL's well-known geographic CRS names).
    WellKnownName,
    /// WKT 1 or 2 (`GEOGCS[...]`, `PROJCRS[...]`, ...).
    Wkt,
    /// A PROJ string: `+proj=...` tokens, without `+init` and without paths.
    Proj,
    /// A PROJJSON object.
    ProjJson,
}

/// Authorities whose codes are accepted (GDAL/PROJ look them up in PROJ's database).
const AUTHORITIES: [&str; 7] = ["EPSG", "ESRI", "OGC", "IAU_2015", "IGNF", "NKG", "PROJ"];
/// GDAL's well-known geographic CRS names.
const WELL_KNOWN_NAMES: [&str; 7] = [
    "WGS84", "WGS72", "NAD27", "NAD83", "CRS84", "CRS83", "CRS27",
];
/// WKT 1 and WKT 2 keywords a CRS definition starts with.
const WKT_KEYWORDS: [&str; 22] = [
    "GEOGCS",
    "PROJCS",
    "GEOCCS",
    "VERT_CS",
    "COMPD_CS",
    "LOCAL_CS",
    "FITTED_CS",
    "GEODCRS",
    "GEODETICCRS",
    "GEOGCRS",
    "GEOGRAPHICCRS",
    "PROJCRS",
    "PROJECTEDCRS",
    "VERTCRS",
    "VERTICALCRS",
    "COMPOUNDCRS",
    "ENGCRS",
    "ENGINEERINGCRS",
    "BOUNDCRS",
    "DERIVEDPROJCRS",
    "PARAMETRICCRS",
    "TIMECRS",
];

/// Which accepted form `definition` (trimmed) has, or `None`. An allowlist: GDAL's
/// `SetFromUserInput` also opens files (any path, `/vsi...`), fetches URLs, reads `DICT:` files
/// and PROJ `+init` files, none of which a request may make the server do.
pub fn crs_form(definition: &str) -> Option<CrsForm> {
    let code = |c: &str| {
        !c.is_empty()
            && c.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '.')
    };
    let authority = |a: &str| AUTHORITIES.iter().any(|k| k.eq_ignore_ascii_case(a));
    let lower = definition.to_ascii_lowercase();
    if let Some((auth, c)) = definition.split_once(':') {
        if authority(auth) && code(c) {
            return Some(CrsForm::AuthorityCode);
        }
    }
    if let Some(rest) = lower.strip_prefix("urn:ogc:def:crs:") {
        let parts: Vec<&str> = rest.split(':').collect();
        if let [auth, version, c] = parts[..] {
            if authority(auth) && (version.is_empty() || code(version)) && code(c) {
                return Some(CrsForm::OgcUrn);
            }
        }
        return None;
    }
    for prefix in [
        "http://www.opengis.net/def/crs/",
        "https://www.opengis.net/def/crs/",
    ] {
        if let Some(rest) = lower.strip_prefix(prefix) {
            let parts: Vec<&str> = rest.split('/').collect();
            return match parts[..] {
                [auth, version, c] if authority(auth) && code(version) && code(c) => {
                    Some(CrsForm::OgcUrl)
                }
                _ => None,
            };
        }
    }
    if WELL_KNOWN_NAMES
        .iter()
        .any(|n| n.eq_ignore_ascii_case(definition))
    {
        return Some(CrsForm::WellKnownName);
    }
    let keyword_len = definition
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(definition.len());
    let keyword = &definition[..keyword_len];
    if WKT_KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(keyword))
        && definition[keyword_len..]
            .trim_start()
            .starts_with(['[', '('])
    {
        return Some(CrsForm::Wkt);
    }
    if lower.starts_with("+proj=") {
        let token_ok = |t: &str| {
            let Some(t) = t.strip_prefix('+') else {
                return false;
            };
            let (key, value) = t.split_once('=').unwrap_or((t, ""));
            code(key) && key != "init" && !value.contains(['/', '\\'])
        };
        return lower
            .split_whitespace()
            .all(token_ok)
            .then_some(CrsForm::Proj);
    }
    if definition.starts_with('{') {
        let json: serde_json::Value = serde_json::from_str(definition).ok()?;
        return json
            .get("type")
            .is_some_and(serde_json::Value::is_string)
            .then_some(CrsForm::ProjJson);
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
    fn point_crs_forms_are_an_allowlist() {
        let wkt1 = SpatialRef::from_epsg(32618).unwrap().to_wkt().unwrap();
        let wkt2 = "GEOGCRS[\"WGS 84\",DATUM[\"World Geodetic System 1984\",ELLIPSOID[\"WGS 84\",6378137,298.257223563]],CS[ellipsoidal,2],AXIS[\"latitude\",north],AXIS[\"longitude\",east],UNIT[\"degree\",0.0174532925199433]]";
        let projjson = SpatialRef::from_epsg(4326).unwrap().to_projjson().unwrap();
        assert!(
            projjson.contains("https://"),
            "PROJJSON names its schema URL"
        );
        let accepted: [(&str, CrsForm); 14] = [
            ("EPSG:4326", CrsForm::AuthorityCode),
            ("epsg:32618", CrsForm::AuthorityCode),
            ("ESRI:102100", CrsForm::AuthorityCode),
            ("OGC:CRS84", CrsForm::AuthorityCode),
            ("IGNF:LAMB93", CrsForm::AuthorityCode),
            ("urn:ogc:def:crs:EPSG::32618", CrsForm::OgcUrn),
            ("urn:ogc:def:crs:OGC:1.3:CRS84", CrsForm::OgcUrn),
            (
                "http://www.opengis.net/def/crs/EPSG/0/4326",
                CrsForm::OgcUrl,
            ),
            ("WGS84", CrsForm::WellKnownName),
            ("+proj=longlat +datum=WGS84 +no_defs", CrsForm::Proj),
            (
                "+proj=utm +zone=18 +datum=WGS84 +units=m +type=crs",
                CrsForm::Proj,
            ),
            (&wkt1, CrsForm::Wkt),
            (wkt2, CrsForm::Wkt),
            (&projjson, CrsForm::ProjJson),
        ];
        for (definition, form) in accepted {
            assert_eq!(crs_form(definition), Some(form), "{definition}");
            assert!(parse_crs(definition).is_ok(), "GDAL parses {definition}");
        }
        for refused in [
            // Files, URLs and GDAL's file-reading prefixes.
            "http://127.0.0.1:9/crs.wkt",
            "https://example.com/crs",
            "http://www.opengis.net/def/crs/EPSG/0/4326/../../x",
            "/vsicurl/http://127.0.0.1:9/x",
            "/vsimem/samgeo/upload-1-1",
            "/etc/hostname",
            "/proc/self/environ",
            "samgeo.toml",
            "DICT:/etc/hostname,1",
            "DICT:epsg,4326",
            "file:///etc/hostname",
            // PROJ strings that read files.
            "+init=/dev/zero:1",
            "+init=epsg:4326",
            "+proj=longlat +init=epsg:4326",
            "+proj=longlat +datum=WGS84 +nadgrids=/etc/passwd",
            "+proj=longlat +geoidgrids=..\\..\\secret",
            // Unknown authorities, odd codes, other text.
            "FOO:4326",
            "EPSG:4326,4979",
            "EPSG:",
            "AUTO:42001,-100,45",
            "urn:ogc:def:crs:EPSG::4326:x",
            "GEOGCS",
            "SELECT * FROM crs",
            "{not json",
            "[1, 2]",
        ] {
            assert_eq!(crs_form(refused), None, "{refused}");
            let e = parse_crs(refused).unwrap_err();
            assert!(
                e.to_string().contains("Invalid point_crs"),
                "{refused}: {e}"
            );
        }
    }
}
