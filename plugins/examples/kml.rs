//! Formatter plugin `kml`: the masks as KML, one Placemark per mask, in WGS84 lon/lat.
//!
//! The `src/lib.rs` of the crate `scripts/new-plugin kml --kind formatter` creates, as the
//! authoring guide (plugins/README.md) shows it; tests/tests/plugins_authoring.rs builds it
//! out of tree and serves it.

use std::fmt::Write;

use samgeo_plugin_sdk::vectorize::{polygonize_mask, Corner};
use samgeo_plugin_sdk::{Formatter, Host, Output, ParamType, PluginInfo, Request};

/// The name clients ask for with `output_format=kml`.
pub const NAME: &str = "kml";

/// The plugin.
pub struct Plugin;

impl Formatter for Plugin {
    fn info() -> PluginInfo {
        PluginInfo::new(
            NAME,
            "KML: one Placemark per mask, WGS84 longitude/latitude",
        )
        .param(
            "name",
            ParamType::String,
            Some("mask"),
            "Placemark names: NAME 1, NAME 2, ... (by mask id)",
        )
    }

    fn format(req: Request, host: &dyn Host) -> Result<Output, String> {
        let crs = req
            .georef
            .crs_string()
            .ok_or("kml needs a georeferenced image (it has no CRS)")?;
        let name = req.params.get("name").unwrap_or("mask");

        // 1. Each mask's regions as rings of pixel corners (exterior first, then holes), and
        //    every vertex in map coordinates, in order.
        let mut shapes: Vec<(u32, f32, Vec<Vec<Vec<Corner>>>)> = Vec::new();
        let mut points: Vec<(f64, f64)> = Vec::new();
        for mask in &req.masks.masks {
            let mut polygons = Vec::new();
            for p in polygonize_mask(mask)? {
                let rings: Vec<Vec<Corner>> = std::iter::once(p.exterior).chain(p.holes).collect();
                for &(col, row) in rings.iter().flatten() {
                    points.push(req.georef.to_map(f64::from(col), f64::from(row)));
                }
                polygons.push(rings);
            }
            shapes.push((mask.id, mask.score, polygons));
        }

        // 2. One host call reprojects every vertex to WGS84 (longitude, latitude).
        let lonlat = host.transform_points(&crs, "EPSG:4326", &points)?;
        let mut next = lonlat.iter();

        // 3. The document: a Placemark per mask, a Polygon per region.
        let mut kml = String::from(concat!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
            "<kml xmlns=\"http://www.opengis.net/kml/2.2\"><Document>\n"
        ));
        for (id, score, polygons) in &shapes {
            let _ = write!(
                kml,
                "<Placemark><name>{} {id}</name><ExtendedData>\
                 <Data name=\"score\"><value>{score}</value></Data></ExtendedData><MultiGeometry>",
                escape(name)
            );
            for rings in polygons {
                kml.push_str("<Polygon>");
                for (i, ring) in rings.iter().enumerate() {
                    let side = if i == 0 { "outer" } else { "inner" };
                    let _ = write!(kml, "<{side}BoundaryIs><LinearRing><coordinates>");
                    for _ in ring {
                        let (lon, lat) = next.next().ok_or("transform-points lost points")?;
                        let _ = write!(kml, "{lon:.7},{lat:.7} ");
                    }
                    let _ = write!(kml, "</coordinates></LinearRing></{side}BoundaryIs>");
                }
                kml.push_str("</Polygon>");
            }
            kml.push_str("</MultiGeometry></Placemark>\n");
        }
        kml.push_str("</Document></kml>\n");
        Ok(Output {
            content_type: "application/vnd.google-earth.kml+xml".to_string(),
            file_name: format!("{NAME}.kml"),
            bytes: kml.into_bytes(),
        })
    }
}

/// Text made safe inside an XML element.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

samgeo_plugin_sdk::export_formatter!(Plugin);
