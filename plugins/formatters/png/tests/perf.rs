//! `cargo test --release -p samgeo-png -- --ignored --nocapture`: a 4096x4096 scene with
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
    let out = samgeo_png::Png::format(req, &NoHost).unwrap();
    eprintln!("png: {:?}, {} bytes", t.elapsed(), out.bytes.len());
}
