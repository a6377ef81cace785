//! Vector output is valid geometry: polygons with holes and touching shapes from the geojson
//! formatter, parsed with the `geojson` crate and checked with `geo`'s validation.

mod common;

use common::rasters::{feature_polygons, Rect, Scene, BLUE, GREEN, RED, UTM_GT};
use common::Server;
use geo::Validation;

#[test]
fn geojson_polygons_are_valid_including_holes() {
    let server = Server::start();
    // A red frame (a square with a green hole), a blue square touching it at a corner.
    let scene = Scene {
        width: 300,
        height: 240,
        background: GREEN,
        rects: vec![
            Rect {
                x0: 40,
                y0: 40,
                x1: 160,
                y1: 160,
                rgb: RED,
            },
            Rect {
                x0: 80,
                y0: 80,
                x1: 120,
                y1: 120,
                rgb: GREEN,
            },
            Rect {
                x0: 160,
                y0: 160,
                x1: 220,
                y1: 220,
                rgb: BLUE,
            },
        ],
        geotransform: Some(UTM_GT),
        epsg: Some(32618),
    };
    for fields in [
        vec![("point_coords", "[[50, 50]]")],
        vec![("points_per_side", "8"), ("foreground", "false")],
    ] {
        let path = if fields.len() == 1 {
            "/segment/predict"
        } else {
            "/segment/automatic"
        };
        let r = server.post_form(path, Some(("s.tif", scene.geotiff())), &fields);
        assert_eq!(r.status().as_u16(), 200);
        let fc = geojson::FeatureCollection::try_from(
            r.text().unwrap().parse::<geojson::GeoJson>().unwrap(),
        )
        .unwrap();
        assert!(!fc.features.is_empty(), "{path}");
        let polys = feature_polygons(&fc);
        for p in &polys {
            assert!(p.is_valid(), "{path}: invalid polygon {p:?}");
        }
        if path == "/segment/predict" {
            // The frame's hole is kept as an interior ring.
            assert!(
                polys
                    .iter()
                    .any(|m| m.0.iter().any(|p| !p.interiors().is_empty())),
                "the frame has a hole"
            );
        }
    }
}
