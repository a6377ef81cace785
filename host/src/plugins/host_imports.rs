//! The `host` interface plugins import: `log` into tracing, `transform-points` through GDAL/OSR.
//!
//! GDAL objects are not `Send`, so they never live in the store: coordinate transformations are
//! created on the calling thread and kept in a small thread-local cache that [`TransformCache`]
//! empties when the plugin call ends (a plugin call runs on one thread from start to end).

use std::cell::RefCell;
use std::collections::HashMap;

use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};

use super::bindings::v0_1::{host, types};
use super::limits::{truncate, HostState};

/// Longest log line kept from a plugin, in bytes.
const MAX_LOG_LINE: usize = 4096;
/// Most (source, target) pairs cached during one call.
const MAX_CACHED_TRANSFORMS: usize = 16;
/// Longest CRS definition accepted, in bytes.
const MAX_CRS_LEN: usize = 64 * 1024;

thread_local! {
    static TRANSFORMS: RefCell<HashMap<(String, String), CoordTransform>> =
        RefCell::new(HashMap::new());
}

/// Scope of the per-call transformation cache: dropping it empties this thread's cache.
pub(crate) struct TransformCache(());

impl TransformCache {
    /// Starts a call's cache scope.
    pub fn scope() -> TransformCache {
        TransformCache(())
    }
}

impl Drop for TransformCache {
    fn drop(&mut self) {
        TRANSFORMS.with(|t| t.borrow_mut().clear());
    }
}

impl types::Host for HostState {}

impl host::Host for HostState {
    fn log(&mut self, level: host::LogLevel, message: String) {
        log_line(&self.plugin, level, &message);
    }

    fn transform_points(
        &mut self,
        source_crs: String,
        target_crs: String,
        points: Vec<(f64, f64)>,
    ) -> Result<Vec<(f64, f64)>, String> {
        transform_points(&source_crs, &target_crs, points)
    }
}

/// The same `host` interface for `samgeo:plugin@0.2.0` (unchanged since 0.1.0).
mod v0_2 {
    use super::super::bindings::v0_2::{host, types};
    use super::super::limits::HostState;

    impl types::Host for HostState {}

    impl host::Host for HostState {
        fn log(&mut self, level: host::LogLevel, message: String) {
            let level = match level {
                host::LogLevel::Debug => super::host::LogLevel::Debug,
                host::LogLevel::Info => super::host::LogLevel::Info,
                host::LogLevel::Warn => super::host::LogLevel::Warn,
                host::LogLevel::Error => super::host::LogLevel::Error,
            };
            super::log_line(&self.plugin, level, &message);
        }

        fn transform_points(
            &mut self,
            source_crs: String,
            target_crs: String,
            points: Vec<(f64, f64)>,
        ) -> Result<Vec<(f64, f64)>, String> {
            super::transform_points(&source_crs, &target_crs, points)
        }
    }
}

/// Writes a plugin's log line, tagged with its name and truncated to [`MAX_LOG_LINE`].
fn log_line(plugin: &str, level: host::LogLevel, message: &str) {
    let message = truncate(message, MAX_LOG_LINE);
    match level {
        host::LogLevel::Debug => tracing::debug!(target: "samgeo_plugin", plugin, "{message}"),
        host::LogLevel::Info => tracing::info!(target: "samgeo_plugin", plugin, "{message}"),
        host::LogLevel::Warn => tracing::warn!(target: "samgeo_plugin", plugin, "{message}"),
        host::LogLevel::Error => tracing::error!(target: "samgeo_plugin", plugin, "{message}"),
    }
}

/// Transforms `points` from `source` to `target` (traditional GIS axis order), reusing this
/// call's transformation for the pair.
pub(crate) fn transform_points(
    source: &str,
    target: &str,
    points: Vec<(f64, f64)>,
) -> Result<Vec<(f64, f64)>, String> {
    if points.is_empty() {
        return Ok(points);
    }
    let (mut xs, mut ys): (Vec<f64>, Vec<f64>) = points.into_iter().unzip();
    TRANSFORMS.with(|cache| {
        let mut cache = cache.borrow_mut();
        let key = (source.to_string(), target.to_string());
        if !cache.contains_key(&key) {
            let transform = new_transform(source, target)?;
            if cache.len() >= MAX_CACHED_TRANSFORMS {
                cache.clear();
            }
            cache.insert(key.clone(), transform);
        }
        let transform = cache
            .get(&key)
            .ok_or_else(|| "internal error: transformation cache".to_string())?;
        transform
            .transform_coords(&mut xs, &mut ys, &mut [])
            .map_err(|e| format!("transforming points from {source} to {target}: {e}"))
    })?;
    Ok(xs.into_iter().zip(ys).collect())
}

fn new_transform(source: &str, target: &str) -> Result<CoordTransform, String> {
    let src = spatial_ref(source)?;
    let dst = spatial_ref(target)?;
    CoordTransform::new(&src, &dst)
        .map_err(|e| format!("no transformation from {source} to {target}: {e}"))
}

/// Parses a CRS definition with GDAL's SetFromUserInput, with traditional GIS axis order.
fn spatial_ref(definition: &str) -> Result<SpatialRef, String> {
    check_crs_definition(definition)?;
    let mut srs = SpatialRef::from_definition(definition)
        .map_err(|e| format!("invalid CRS '{}': {e}", truncate(definition, 200)))?;
    srs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    Ok(srs)
}

/// Only forms that GDAL resolves without opening a file or a URL: SetFromUserInput also accepts
/// file names and http(s) URLs, and plugins get neither filesystem nor network.
fn check_crs_definition(def: &str) -> Result<(), String> {
    let d = def.trim();
    let shown = truncate(d, 200);
    if d.is_empty() {
        return Err("empty CRS definition".into());
    }
    if d.len() > MAX_CRS_LEN {
        return Err(format!("CRS definition longer than {MAX_CRS_LEN} bytes"));
    }
    if d.contains('\0') {
        return Err("CRS definition contains a NUL byte".into());
    }
    // PROJJSON, PROJ strings.
    if d.starts_with('{') || d.starts_with("+proj=") {
        return Ok(());
    }
    // WKT: KEYWORD[ ... ].
    if let Some(open) = d.find('[') {
        let keyword = &d[..open];
        if !keyword.is_empty()
            && keyword
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Ok(());
        }
    }
    // AUTHORITY:CODE (EPSG:4326, OGC:CRS84, ESRI:54009) and OGC URNs.
    let lower = d.to_ascii_lowercase();
    let authority_code = d.split_once(':').is_some_and(|(auth, code)| {
        !auth.is_empty()
            && auth.chars().all(|c| c.is_ascii_alphanumeric())
            && !code.is_empty()
            && code
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
    });
    let urn = lower.starts_with("urn:ogc:def:crs")
        && d.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '_' | '-'));
    if authority_code || urn {
        return Ok(());
    }
    // Well-known names.
    if ["WGS84", "WGS72", "NAD27", "NAD83", "CRS84"].contains(&d.to_ascii_uppercase().as_str()) {
        return Ok(());
    }
    Err(format!(
        "unsupported CRS definition '{shown}': use AUTHORITY:CODE (e.g. EPSG:4326), WKT, PROJJSON or a +proj string"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crs_definitions_that_reach_files_or_urls_are_refused() {
        for ok in [
            "EPSG:4326",
            "OGC:CRS84",
            "urn:ogc:def:crs:EPSG::3857",
            "+proj=longlat +datum=WGS84",
            "GEOGCS[\"WGS 84\",DATUM[\"WGS_1984\"]]",
            "WGS84",
        ] {
            assert!(check_crs_definition(ok).is_ok(), "{ok}");
        }
        for bad in [
            "/etc/passwd",
            "http://example.com/crs.wkt",
            "https://epsg.io/4326.wkt",
            "some_file.prj",
            "",
        ] {
            assert!(check_crs_definition(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn transforms_in_traditional_gis_order() {
        let _scope = TransformCache::scope();
        // lon 12, lat 55 → UTM 33N (central meridian 15°E): easting ~ 308k, northing ~ 6.1M.
        let out = transform_points("EPSG:4326", "EPSG:32633", vec![(12.0, 55.0)]).unwrap();
        let (e, n) = out[0];
        assert!((300_000.0..320_000.0).contains(&e), "{e}");
        assert!((6_000_000.0..6_200_000.0).contains(&n), "{n}");
        let back = transform_points("EPSG:32633", "EPSG:4326", out).unwrap();
        assert!((back[0].0 - 12.0).abs() < 1e-6 && (back[0].1 - 55.0).abs() < 1e-6);
        assert!(transform_points("EPSG:4326", "EPSG:999999", vec![(0.0, 0.0)]).is_err());
    }
}
