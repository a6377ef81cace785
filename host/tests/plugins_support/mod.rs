//! Shared helpers of the plugin tests: where the built components are, throwaway directories,
//! configurations and mask sets.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use samgeo_host::config::PluginsConfig;
use samgeo_host::masks::{BBox, Georef, Mask, MaskSet, PluginRequest};

/// The directory holding the built components: `SAMGEO_PLUGIN_DIR`, else
/// `<workspace>/target/plugins/dist`. Panics with build instructions when it is missing.
pub fn dist_dir() -> PathBuf {
    let dir = std::env::var_os("SAMGEO_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target/plugins/dist")
        });
    assert!(
        dir.is_dir(),
        "plugin components not found in {}: build them with `bash plugins/build.sh` (see \
         plugins/README.md), or point SAMGEO_PLUGIN_DIR at a directory holding geojson.wasm, \
         ..., and testing/misbehave-*.wasm",
        dir.display()
    );
    dir
}

/// The path of a built component (`name` relative to the dist directory, e.g.
/// `"geojson.wasm"` or `"testing/misbehave-loop.wasm"`); panics with build instructions when
/// it is missing.
pub fn component(name: &str) -> PathBuf {
    let path = dist_dir().join(name);
    assert!(
        path.is_file(),
        "plugin component {} is missing: build the plugins with `bash plugins/build.sh` (see \
         plugins/README.md) or set SAMGEO_PLUGIN_DIR",
        path.display()
    );
    path
}

/// A fresh, empty directory under the system temp dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "samgeo-plugins-{tag}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A plugin directory holding copies of `components` (paths relative to the dist directory;
/// each is copied under its file name).
pub fn plugin_dir(tag: &str, components: &[&str]) -> PathBuf {
    let dir = temp_dir(tag);
    for c in components {
        let src = component(c);
        let name = src.file_name().unwrap();
        std::fs::copy(&src, dir.join(name)).unwrap();
    }
    dir
}

/// A configuration over `directory` with the given formats (name → file) and filter chain.
pub fn config(directory: &Path, formats: &[(&str, &str)], filters: &[&str]) -> PluginsConfig {
    PluginsConfig {
        directory: directory.to_path_buf(),
        formats: formats
            .iter()
            .map(|(n, f)| (n.to_string(), f.to_string()))
            .collect(),
        filters: filters.iter().map(|f| f.to_string()).collect(),
        options: BTreeMap::new(),
        memory_limit_bytes: 256 * 1024 * 1024,
        call_timeout_ms: 10_000,
        allow_request_filters: true,
    }
}

/// A filled rectangle as a mask.
pub fn rect(id: u32, x: u32, y: u32, width: u32, height: u32) -> Mask {
    Mask {
        id,
        label: id,
        score: 0.9,
        stability: 0.95,
        area: u64::from(width) * u64::from(height),
        bbox: BBox {
            x,
            y,
            width,
            height,
        },
        runs: vec![0, width * height],
    }
}

/// A 64×48 image with three disjoint rectangles (areas 100, 9 and 400), georeferenced in
/// UTM 33N with 10 m pixels.
pub fn small_request() -> PluginRequest {
    PluginRequest {
        masks: MaskSet {
            width: 64,
            height: 48,
            masks: vec![
                rect(1, 2, 2, 10, 10),
                rect(2, 20, 2, 3, 3),
                rect(3, 30, 20, 20, 20),
            ],
        },
        georef: Georef {
            geotransform: Some([500_000.0, 10.0, 0.0, 6_100_000.0, 0.0, -10.0]),
            crs_wkt: None,
            epsg: Some(32633),
        },
        params: Vec::new(),
    }
}

/// A pseudo-random generator (xorshift), so tests need no `rand`.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: u32) -> u32 {
        (self.next() % u64::from(n)) as u32
    }
}

/// `count` random blobs (discs of radius 20 to 30 with a bumpy edge, ~50×50) over a
/// `width`×`height` image.
pub fn random_blobs(width: u32, height: u32, count: u32, seed: u64) -> MaskSet {
    let mut rng = XorShift(seed.max(1));
    let mut masks = Vec::with_capacity(count as usize);
    for id in 1..=count {
        let r = 20 + rng.below(11);
        let size = 2 * r + 1;
        let x0 = rng.below(width - size);
        let y0 = rng.below(height - size);
        let bump = rng.below(6) as f64;
        let mut dense = vec![false; (size * size) as usize];
        for y in 0..size {
            for x in 0..size {
                let dx = x as f64 - r as f64;
                let dy = y as f64 - r as f64;
                let angle = dy.atan2(dx);
                let edge = r as f64 - bump * (1.0 + (5.0 * angle).sin()) / 2.0;
                dense[(y * size + x) as usize] = (dx * dx + dy * dy).sqrt() <= edge;
            }
        }
        let Some(mut m) = Mask::from_dense(id, 0.8, 0.9, size, size, &dense) else {
            continue;
        };
        m.bbox.x += x0;
        m.bbox.y += y0;
        masks.push(m);
    }
    MaskSet {
        width,
        height,
        masks,
    }
}
