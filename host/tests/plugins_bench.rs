//! Timings of the plugin host (ignored by default; numbers are printed, not asserted):
//!
//! ```text
//! cargo test --release -p samgeo-host --test plugins_bench -- --ignored --nocapture
//! ```

mod plugins_support;

use std::time::{Duration, Instant};

use plugins_support::*;
use samgeo_host::masks::{MaskSet, PluginRequest};
use samgeo_host::plugins::PluginHost;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time_calls(
    host: &PluginHost,
    name: &str,
    req: &PluginRequest,
    runs: usize,
) -> (Duration, usize) {
    let mut times = Vec::with_capacity(runs);
    let mut size = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let out = host.format(name, req).unwrap_or_else(|e| panic!("{e}"));
        times.push(t.elapsed());
        size = out.bytes.len();
    }
    (median(times), size)
}

#[test]
#[ignore]
fn bench_compile_cache_and_calls() {
    let dist = dist_dir();
    // Compile vs cached load, through PluginHost::new (engine + compile/load + one info()).
    let dir = plugin_dir("bench-compile", &["geojson.wasm"]);
    let config = config(&dir, &[("geojson", "geojson.wasm")], &[]);
    let cache = temp_dir("bench-compile-cache");
    let t = Instant::now();
    let host = PluginHost::new(&config, &cache).unwrap();
    let compile = t.elapsed();
    assert_eq!(host.cache_stats().compiled, 1);
    let t = Instant::now();
    let host = PluginHost::new(&config, &cache).unwrap();
    let cached = t.elapsed();
    assert_eq!(host.cache_stats().loaded_from_cache, 1);
    println!(
        "geojson.wasm ({} KiB): start with compile {compile:?}, start from .cwasm cache {cached:?}",
        std::fs::metadata(dir.join("geojson.wasm")).unwrap().len() / 1024
    );

    // Per call: 4096×4096, 500 blobs of ~50×50.
    let mut files = vec!["geojson.wasm", "template.wasm"];
    let have_geotiff = dist.join("geotiff.wasm").is_file();
    if have_geotiff {
        files.push("geotiff.wasm");
    } else {
        println!("geotiff.wasm not built: skipped");
    }
    let dir = plugin_dir("bench-calls", &files);
    let mut formats = vec![("geojson", "geojson.wasm"), ("template", "template.wasm")];
    if have_geotiff {
        formats.push(("geotiff", "geotiff.wasm"));
    }
    let host =
        PluginHost::new(&config_for(&dir, &formats), &temp_dir("bench-calls-cache")).unwrap();
    let masks = random_blobs(4096, 4096, 500, 42);
    let runs: usize = masks.masks.iter().map(|m| m.runs.len()).sum();
    println!(
        "scene: 4096x4096, {} masks, {runs} runs in all",
        masks.masks.len()
    );
    let req = PluginRequest {
        masks,
        ..small_request()
    };
    let empty = PluginRequest {
        masks: MaskSet {
            width: 4096,
            height: 4096,
            masks: vec![],
        },
        ..small_request()
    };
    let (t, _) = time_calls(&host, "template", &empty, 50);
    println!("template, no masks (instantiate + call): {t:?}");
    let (t, _) = time_calls(&host, "template", &req, 20);
    println!("template, 500 masks (instantiate + pass the masks in): {t:?}");
    let (t, n) = time_calls(&host, "geojson", &req, 5);
    println!("geojson, 500 masks: {t:?} ({n} bytes)");
    let mut reproject = req.clone();
    reproject
        .params
        .push(("output_crs".to_string(), "EPSG:4326".to_string()));
    let (t, n) = time_calls(&host, "geojson", &reproject, 5);
    println!("geojson, 500 masks, output_crs=EPSG:4326: {t:?} ({n} bytes)");
    if have_geotiff {
        let (t, n) = time_calls(&host, "geotiff", &req, 5);
        println!("geotiff, 500 masks: {t:?} ({n} bytes)");
    }
}

fn config_for(
    dir: &std::path::Path,
    formats: &[(&str, &str)],
) -> samgeo_host::config::PluginsConfig {
    config(dir, formats, &[])
}
