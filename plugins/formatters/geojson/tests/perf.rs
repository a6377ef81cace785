//! `cargo test --release -p samgeo-geojson -- --ignored --nocapture`: a 4096x4096 scene with
//! 500 masks, timed natively (the wasm build runs the same code).

use samgeo_plugin_sdk::testutil::synthetic_scene;
use samgeo_plugin_sdk::{Formatter, NoHost, Params, Request};

#[test]
#[ignore]
fn perf_4096_500() {
    let req = Request {
        masks: synthetic_scene(4096, 4096, 500, 42),
        params: Params::default(),
        ..Default::default()
    };
    let t = std::time::Instant::now();
    let out = samgeo_geojson::GeoJson::format(req, &NoHost).unwrap();
    eprintln!("geojson: {:?}, {} bytes", t.elapsed(), out.bytes.len());
}

#[test]
#[ignore]
fn perf_phases() {
    use samgeo_plugin_sdk::raster::{paint_smallest, union_bbox, LabelRaster};
    use samgeo_plugin_sdk::vectorize::polygonize;
    let set = synthetic_scene(4096, 4096, 500, 42);
    let t = std::time::Instant::now();
    let r = paint_smallest(&set).unwrap();
    eprintln!("paint: {:?}", t.elapsed());
    let t = std::time::Instant::now();
    let LabelRaster::U16(d) = r else { panic!() };
    let p = polygonize(&d, 4096, &union_bbox(&set));
    let n: usize = p
        .iter()
        .map(|p| p.exterior.len() + p.holes.iter().map(|h| h.len()).sum::<usize>())
        .sum();
    eprintln!(
        "polygonize: {:?}, {} polygons, {n} vertices",
        t.elapsed(),
        p.len()
    );
}

#[test]
#[ignore]
fn perf_4096_500_one_label() {
    // Every mask labelled 255 (what unique=false leads to): many regions of one value.
    let mut set = synthetic_scene(4096, 4096, 500, 42);
    set.masks.remove(0); // drop the background so regions stay separate
    for m in &mut set.masks {
        m.label = 255;
    }
    let req = Request {
        masks: set,
        params: Params::default(),
        ..Default::default()
    };
    let t = std::time::Instant::now();
    let out = samgeo_geojson::GeoJson::format(req, &NoHost).unwrap();
    eprintln!(
        "geojson one label: {:?}, {} bytes",
        t.elapsed(),
        out.bytes.len()
    );
}
