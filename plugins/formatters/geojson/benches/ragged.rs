//! `cargo bench -p samgeo-geojson --bench ragged`: the GeoJSON formatter on one ragged mask
//! like a random-weight SAM gives (a 1024x1024 blob whose boundary is noise: thousands of
//! islands and holes, ~4 MB of GeoJSON), georeferenced like RGB.byte.tif (non-integer map
//! coordinates). Interleaved A/B in one run: A = the writer as it was before the speed work
//! (kept below and in `before_vectorize.rs`: the old hole assignment, `std::fmt` floats, a
//! copied ring per simplification), B = the plugin's `to_geojson`. Prints per-phase times of B, the medians
//! and the B/A ratio, and checks that both texts parse to the same JSON value.

use std::time::{Duration, Instant};

use samgeo_plugin_sdk::rle::from_bitmap;
use samgeo_plugin_sdk::{Georef, Geotransform, Mask, MaskSet, NoHost, Params, Request};

/// A smooth random field plus per-pixel noise, thresholded: one large region with a ragged
/// edge, islands and holes (what random SAM weights give after upsampling).
pub fn ragged_mask(side: u32, seed: u32, noise: f64) -> MaskSet {
    let mut s = seed;
    let mut rnd = move || {
        s = s.wrapping_mul(1103515245).wrapping_add(12345);
        f64::from((s >> 8) & 0xffff) / 65535.0
    };
    let waves: Vec<(f64, f64, f64)> = (0..6)
        .map(|_| (rnd() * 0.03, rnd() * 0.03, rnd() * std::f64::consts::TAU))
        .collect();
    let mut bits = vec![0u8; (side * side) as usize];
    for y in 0..side {
        for x in 0..side {
            let (xf, yf) = (f64::from(x), f64::from(y));
            let smooth: f64 = waves
                .iter()
                .map(|&(a, b, p)| (a * xf + b * yf + p).sin())
                .sum::<f64>()
                / 6.0;
            let v = smooth + (rnd() - 0.5) * noise;
            bits[(y * side + x) as usize] = u8::from(v > 0.05);
        }
    }
    let (bbox, runs, area) = from_bitmap(0, 0, side, side, &bits).expect("some pixels set");
    MaskSet {
        width: side,
        height: side,
        masks: vec![Mask {
            id: 1,
            label: 1,
            score: 0.91,
            stability: 0.87,
            area,
            bbox,
            runs,
        }],
    }
}

/// RGB.byte.tif's georeferencing.
pub fn rgb_byte_georef() -> Georef {
    Georef {
        geotransform: Some(Geotransform([
            101985.0,
            300.0379266750948,
            0.0,
            2826915.0,
            0.0,
            -300.041782729805,
        ])),
        crs_wkt: None,
        epsg: Some(32618),
    }
}

#[path = "before_vectorize.rs"]
mod before_vectorize;

/// The writer before the speed work (`std::fmt` number formatting, the old vectoriser).
mod before {
    use samgeo_plugin_sdk::geometry::orient;
    use samgeo_plugin_sdk::labels::label_scores;
    use samgeo_plugin_sdk::simplify::simplify_ring;
    use samgeo_plugin_sdk::transform::geojson_crs_name;
    use samgeo_plugin_sdk::Request;
    use std::fmt::Write;

    fn push_f64(out: &mut String, x: f64) {
        if x.fract() == 0.0 && x.abs() < 1e15 {
            let _ = write!(out, "{}", x as i64);
        } else if x.is_finite() {
            let _ = write!(out, "{x}");
        } else {
            out.push_str("null");
        }
    }

    pub fn to_geojson(req: &Request) -> String {
        let polys = super::before_vectorize::polygonize_labels(&req.masks).unwrap();
        let scores = label_scores(&req.masks);
        let mut points: Vec<(f64, f64)> = Vec::new();
        let mut ring_ends: Vec<usize> = Vec::new();
        for p in &polys {
            for ring in std::iter::once(&p.exterior).chain(&p.holes) {
                points.extend(
                    ring.iter()
                        .map(|&(c, r)| req.georef.to_map(f64::from(c), f64::from(r))),
                );
                ring_ends.push(points.len());
            }
        }
        let mut s = String::with_capacity(64 + points.len() * 24);
        s.push_str("{\"type\":\"FeatureCollection\",");
        if let Some(name) = geojson_crs_name(req.georef.epsg) {
            let _ = write!(
                s,
                "\"crs\":{{\"type\":\"name\",\"properties\":{{\"name\":\"{name}\"}}}},"
            );
        }
        s.push_str("\"features\":[");
        let (mut ring_idx, mut start) = (0, 0);
        for (i, p) in polys.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let _ = write!(
                s,
                "{{\"type\":\"Feature\",\"properties\":{{\"value\":{}",
                p.value
            );
            if let Some(sc) = scores.get(&p.value) {
                let _ = write!(s, ",\"score\":{},\"stability\":{}", sc.score, sc.stability);
            }
            let _ = write!(
                s,
                ",\"area\":{}}},\"geometry\":{{\"type\":\"Polygon\",\"coordinates\":[",
                p.area
            );
            for k in 0..=p.holes.len() {
                let end = ring_ends[ring_idx];
                ring_idx += 1;
                let mut ring = simplify_ring(&points[start..end], 0.0);
                start = end;
                orient(&mut ring, k == 0);
                if k > 0 {
                    s.push(',');
                }
                s.push('[');
                for (j, &pt) in ring.iter().enumerate() {
                    if j > 0 {
                        s.push(',');
                    }
                    s.push('[');
                    push_f64(&mut s, pt.0);
                    s.push(',');
                    push_f64(&mut s, pt.1);
                    s.push(']');
                }
                s.push(']');
            }
            s.push_str("]}}");
        }
        s.push_str("]}");
        s
    }
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default()
}

fn main() {
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let noise: f64 = std::env::var("NOISE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.1);
    eprintln!("load average before: {}", load_average().trim());
    let req = Request {
        masks: ragged_mask(1024, 7, noise),
        georef: rgb_byte_georef(),
        params: Params::default(),
    };

    // The vectoriser alone, before and after.
    let t = Instant::now();
    let old = before_vectorize::polygonize_labels(&req.masks).unwrap();
    eprintln!("vectorise before: {:?}", t.elapsed());
    let t = Instant::now();
    let polys = samgeo_geojson::regions(&req).unwrap();
    let vertices: usize = polys
        .iter()
        .map(|p| p.exterior.len() + p.holes.iter().map(Vec::len).sum::<usize>())
        .sum();
    eprintln!(
        "vectorise: {:?}: {} polygons, {} holes, {vertices} vertices",
        t.elapsed(),
        polys.len(),
        polys.iter().map(|p| p.holes.len()).sum::<usize>()
    );

    assert!(
        old.len() == polys.len()
            && old.iter().zip(&polys).all(|(a, b)| {
                a.value == b.value
                    && a.exterior == b.exterior
                    && a.holes == b.holes
                    && a.area == b.area
            }),
        "the vectorisers disagree"
    );
    eprintln!("same polygons before and after: yes");
    let a = before::to_geojson(&req);
    let b = samgeo_geojson::to_geojson(&req, &NoHost).unwrap();
    let va: serde_json::Value = serde_json::from_str(&a).unwrap();
    let vb: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert!(va == vb, "before and after differ");
    eprintln!(
        "same JSON value: yes ({} bytes before, {} bytes after)",
        a.len(),
        b.len()
    );

    let (mut ta, mut tb) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let t = Instant::now();
        std::hint::black_box(before::to_geojson(&req));
        ta.push(t.elapsed());
        let t = Instant::now();
        std::hint::black_box(samgeo_geojson::to_geojson(&req, &NoHost).unwrap());
        tb.push(t.elapsed());
    }
    let (ma, mb) = (median(&mut ta), median(&mut tb));
    println!(
        "geojson 1024x1024 ragged mask, {runs} interleaved runs: before {ma:?}, after {mb:?}, after/before {:.3}",
        mb.as_secs_f64() / ma.as_secs_f64()
    );
    eprintln!("load average after: {}", load_average().trim());
}
