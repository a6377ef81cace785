//! Vectorises noisy label rasters (pinches, holes, diagonal contacts everywhere) and has GDAL
//! judge the polygons: `ST_IsValid` on every feature, and the areas adding up to the pixel
//! count. Skipped, with a note, where `ogrinfo` is not installed.

use std::process::Command;

use samgeo_plugin_sdk::rle::from_bitmap;
use samgeo_plugin_sdk::{Georef, Geotransform, Mask, MaskSet, NoHost, Params, Request};

/// One mask per value 1..=3 of a pseudo-random `w` x `h` raster.
fn noise(w: u32, h: u32, seed: u32) -> (MaskSet, [u64; 3]) {
    let mut s = seed;
    let grid: Vec<u8> = (0..w * h)
        .map(|_| {
            s = s.wrapping_mul(1103515245).wrapping_add(12345);
            // Mostly 1, so its regions are large, full of holes and corner contacts.
            match (s >> 16) % 12 {
                0..=2 => 0,
                3..=9 => 1,
                10 => 2,
                _ => 3,
            }
        })
        .collect();
    let mut counts = [0u64; 3];
    let masks = (1..=3u8)
        .filter_map(|v| {
            let bits: Vec<u8> = grid.iter().map(|&g| u8::from(g == v)).collect();
            counts[v as usize - 1] = bits.iter().map(|&b| u64::from(b)).sum();
            from_bitmap(0, 0, w, h, &bits).map(|(bbox, runs, area)| Mask {
                id: u32::from(v),
                label: u32::from(v),
                score: 0.9,
                stability: 0.9,
                area,
                bbox,
                runs,
            })
        })
        .collect();
    (
        MaskSet {
            width: w,
            height: h,
            masks,
        },
        counts,
    )
}

fn ogr_sql(path: &std::path::Path, sql: &str) -> String {
    let out = Command::new("ogrinfo")
        .args(["-q", "-dialect", "sqlite", "-sql", sql])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A test that cannot run because `tool` is missing: a notice and a line in `SAMGEO_SKIP_LOG`
/// (counted by `scripts/test`), or, under CI (`CI=true`), a failure, since `scripts/setup`
/// installs it.
fn skip_without(tool: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{tool} not found (under CI a failure: scripts/setup installs gdal-bin)");
    }
    eprintln!("SKIPPED: {tool} not found");
    if let Some(path) = std::env::var_os("SAMGEO_SKIP_LOG") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{tool} not found");
        }
    }
}

#[test]
fn gdal_finds_every_polygon_valid() {
    if Command::new("ogrinfo").arg("--version").output().is_err() {
        skip_without("ogrinfo");
        return;
    }
    let dir = std::env::temp_dir().join(format!("geojson-ogr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for seed in [1u32, 2, 3] {
        let (set, counts) = noise(48, 40, seed);
        let req = Request {
            masks: set,
            georef: Georef {
                geotransform: Some(Geotransform([1000.0, 2.0, 0.0, 5000.0, 0.0, -2.0])),
                crs_wkt: None,
                epsg: Some(32633),
            },
            params: Params::default(),
        };
        let text = samgeo_geojson::to_geojson(&req, &NoHost).unwrap();
        let path = dir.join(format!("noise{seed}.geojson"));
        std::fs::write(&path, text).unwrap();
        let layer = format!("noise{seed}");
        let invalid = ogr_sql(
            &path,
            &format!(
                "SELECT ST_IsValidReason(geometry) AS why FROM {layer} WHERE NOT ST_IsValid(geometry)"
            ),
        );
        assert!(!invalid.contains("why"), "seed {seed}: {invalid}");
        let holes = ogr_sql(
            &path,
            &format!("SELECT SUM(ST_NumInteriorRing(geometry)) AS holes FROM {layer}"),
        );
        let n: u64 = holes
            .split("holes (Integer) = ")
            .nth(1)
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0);
        assert!(n > 10, "the test should exercise holes: {holes}");
        for (i, count) in counts.iter().enumerate() {
            let sums = ogr_sql(
                &path,
                &format!(
                    "SELECT SUM(ST_Area(geometry)) AS a, SUM(area) AS px FROM {layer} WHERE value = {}",
                    i + 1
                ),
            );
            // 2 m pixels: 4 m² each.
            assert!(
                sums.contains(&format!("a (Real) = {}", count * 4)),
                "{sums}"
            );
            assert!(
                sums.contains(&format!("px (Integer) = {count}"))
                    || sums.contains(&format!("px (Integer64) = {count}")),
                "{sums}"
            );
        }
    }
}
