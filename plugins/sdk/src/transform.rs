//! Pixel to map coordinates, and naming a raster's CRS.

use crate::model::{Georef, Geotransform};

impl Geotransform {
    /// Map coordinates of pixel-space point (`col`, `row`) (a pixel corner for integer input).
    pub fn apply(&self, col: f64, row: f64) -> (f64, f64) {
        let c = &self.0;
        (
            c[0] + col * c[1] + row * c[2],
            c[3] + col * c[4] + row * c[5],
        )
    }

    /// True when the raster is north-up: no rotation terms and rows going south.
    pub fn is_north_up(&self) -> bool {
        self.0[2] == 0.0 && self.0[4] == 0.0 && self.0[5] < 0.0
    }
}

impl Georef {
    /// Maps a pixel-space point through the geotransform, or returns it unchanged when there
    /// is none (pixel coordinates are then the only coordinates).
    pub fn to_map(&self, col: f64, row: f64) -> (f64, f64) {
        match &self.geotransform {
            Some(gt) => gt.apply(col, row),
            None => (col, row),
        }
    }

    /// The CRS as a string GDAL's SetFromUserInput accepts: `EPSG:<code>` when the code is
    /// known, else the WKT.
    pub fn crs_string(&self) -> Option<String> {
        match (self.epsg, &self.crs_wkt) {
            (Some(code), _) => Some(format!("EPSG:{code}")),
            (None, Some(wkt)) if !wkt.trim().is_empty() => Some(wkt.clone()),
            _ => None,
        }
    }
}

/// The EPSG code of a user CRS string such as `EPSG:4326` or `epsg:32618` (also the
/// `urn:ogc:def:crs:EPSG::<code>` form); `None` for WKT, PROJ strings and others.
pub fn epsg_of(user_crs: &str) -> Option<u32> {
    let s = user_crs.trim();
    let upper = s.to_ascii_uppercase();
    let code = upper
        .strip_prefix("EPSG:")
        .or_else(|| upper.strip_prefix("URN:OGC:DEF:CRS:EPSG::"))?;
    code.trim().parse().ok()
}

/// The value GDAL's GeoJSON driver writes in a FeatureCollection's `crs` member for an EPSG
/// CRS: `urn:ogc:def:crs:EPSG::<code>`, and nothing for EPSG:4326 (GeoJSON's default CRS).
pub fn geojson_crs_name(epsg: Option<u32>) -> Option<String> {
    match epsg {
        Some(4326) | None => None,
        Some(code) => Some(format!("urn:ogc:def:crs:EPSG::{code}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_geotransform_maps_corners() {
        // 30 degrees rotation, 2 m pixels, origin (1000, 5000).
        let (s, c) = (30f64.to_radians().sin(), 30f64.to_radians().cos());
        let gt = Geotransform([1000.0, 2.0 * c, 2.0 * s, 5000.0, 2.0 * s, -2.0 * c]);
        assert!(!gt.is_north_up());
        assert_eq!(gt.apply(0.0, 0.0), (1000.0, 5000.0));
        let (x, y) = gt.apply(10.0, 0.0);
        assert!((x - (1000.0 + 20.0 * c)).abs() < 1e-9 && (y - (5000.0 + 20.0 * s)).abs() < 1e-9);
        let (x, y) = gt.apply(0.0, 10.0);
        assert!((x - (1000.0 + 20.0 * s)).abs() < 1e-9 && (y - (5000.0 - 20.0 * c)).abs() < 1e-9);
        let (x, y) = gt.apply(10.0, 10.0);
        assert!((x - (1000.0 + 20.0 * (c + s))).abs() < 1e-9);
        assert!((y - (5000.0 + 20.0 * (s - c))).abs() < 1e-9);
    }

    #[test]
    fn no_geotransform_means_pixels() {
        let g = Georef::default();
        assert_eq!(g.to_map(3.0, 4.0), (3.0, 4.0));
        assert_eq!(g.crs_string(), None);
        let g = Georef {
            epsg: Some(32618),
            crs_wkt: Some("PROJCS[...]".into()),
            ..Default::default()
        };
        assert_eq!(g.crs_string().as_deref(), Some("EPSG:32618"));
    }

    #[test]
    fn crs_names() {
        assert_eq!(epsg_of("EPSG:4326"), Some(4326));
        assert_eq!(epsg_of(" epsg:32618 "), Some(32618));
        assert_eq!(epsg_of("urn:ogc:def:crs:EPSG::3857"), Some(3857));
        assert_eq!(epsg_of("+proj=longlat"), None);
        assert_eq!(geojson_crs_name(Some(4326)), None);
        assert_eq!(
            geojson_crs_name(Some(32618)).as_deref(),
            Some("urn:ogc:def:crs:EPSG::32618")
        );
    }
}
