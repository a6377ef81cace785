//! Interleaved A/B of one formatter component as the server calls it (`PluginHost::format`:
//! the request crossing into the component, the work, the bytes coming back), on one ragged
//! mask like a random-weight SAM gives (1024x1024 blob with a noisy edge, RGB.byte.tif's
//! georeferencing: ~4 MB of GeoJSON):
//!
//!   cargo run --release -p samgeo-host --example formatter_ab -- A_DIR B_DIR [NAME] [RUNS]
//!
//! A_DIR and B_DIR each hold a build of the component (`NAME.wasm`, default geojson), e.g. the
//! one from main and the one from this branch. Prints the load average before and after, the
//! medians and the B/A ratio, and whether both outputs are the same JSON value.

use std::path::PathBuf;
use std::time::Instant;

use samgeo_host::config::PluginsConfig;
use samgeo_host::masks::{Georef, Mask, MaskSet, PluginRequest};
use samgeo_host::plugins::PluginHost;

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// The same field as plugins/formatters/geojson/benches/ragged.rs (noise 0.1: ~4 MB).
fn ragged_mask(side: u32, seed: u32, noise: f64) -> Mask {
    let mut s = seed;
    let mut rnd = move || {
        s = s.wrapping_mul(1103515245).wrapping_add(12345);
        f64::from((s >> 8) & 0xffff) / 65535.0
    };
    let waves: Vec<(f64, f64, f64)> = (0..6)
        .map(|_| (rnd() * 0.03, rnd() * 0.03, rnd() * std::f64::consts::TAU))
        .collect();
    let mut dense = vec![false; (side * side) as usize];
    for y in 0..side {
        for x in 0..side {
            let (xf, yf) = (f64::from(x), f64::from(y));
            let smooth: f64 = waves
                .iter()
                .map(|&(a, b, p)| (a * xf + b * yf + p).sin())
                .sum::<f64>()
                / 6.0;
            dense[(y * side + x) as usize] = smooth + (rnd() - 0.5) * noise > 0.05;
        }
    }
    Mask::from_dense(1, 0.91, 0.87, side, side, &dense).expect("some pixels set")
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (a_dir, b_dir) = match (args.first(), args.get(1)) {
        (Some(a), Some(b)) => (PathBuf::from(a), PathBuf::from(b)),
        _ => {
            eprintln!("usage: formatter_ab A_DIR B_DIR [NAME] [RUNS]");
            std::process::exit(2);
        }
    };
    let name = args.get(2).cloned().unwrap_or_else(|| "geojson".into());
    let runs: usize = args.get(3).and_then(|r| r.parse().ok()).unwrap_or(15);
    println!("load average before: {}", load_average());
    let cache = std::env::temp_dir().join(format!("samgeo-ab-{}", std::process::id()));
    let host = |dir: PathBuf, sub: &str| {
        let config = PluginsConfig {
            directory: dir,
            ..PluginsConfig::default()
        };
        PluginHost::new(&config, &cache.join(sub)).expect("plugin host")
    };
    let (a, b) = (host(a_dir, "a"), host(b_dir, "b"));
    let request = PluginRequest {
        masks: MaskSet {
            width: 1024,
            height: 1024,
            masks: vec![ragged_mask(1024, 7, 0.1)],
        },
        georef: Georef {
            geotransform: Some([
                101985.0,
                300.0379266750948,
                0.0,
                2826915.0,
                0.0,
                -300.041782729805,
            ]),
            crs_wkt: None,
            epsg: Some(32618),
        },
        params: Vec::new(),
    };
    let out_a = a.format(&name, &request).expect("A formats");
    let out_b = b.format(&name, &request).expect("B formats");
    let same = match (
        serde_json::from_slice::<serde_json::Value>(&out_a.bytes),
        serde_json::from_slice::<serde_json::Value>(&out_b.bytes),
    ) {
        (Ok(x), Ok(y)) => (x == y).to_string(),
        _ => "not JSON".into(),
    };
    println!(
        "{name}: A {} bytes, B {} bytes, same JSON value: {same}",
        out_a.bytes.len(),
        out_b.bytes.len()
    );
    let (mut ta, mut tb) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let t = Instant::now();
        std::hint::black_box(a.format(&name, &request).unwrap());
        ta.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        std::hint::black_box(b.format(&name, &request).unwrap());
        tb.push(t.elapsed().as_secs_f64() * 1e3);
    }
    ta.sort_by(f64::total_cmp);
    tb.sort_by(f64::total_cmp);
    let (ma, mb) = (ta[runs / 2], tb[runs / 2]);
    println!(
        "{name} via PluginHost::format, {runs} interleaved runs: A median {ma:.1} ms, B median {mb:.1} ms, B/A {:.3}",
        mb / ma
    );
    println!("load average after: {}", load_average());
    let _ = std::fs::remove_dir_all(&cache);
}
