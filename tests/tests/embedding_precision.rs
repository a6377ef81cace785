//! Black-box: `[caches] embedding_precision = "f16"` keeps embeddings in half the bytes, and a
//! hit on an fp16 embedding gives the mask the f32 embedding gave, within a pixel at an edge.

mod common;

use common::rasters::{feature_polygons, iou, Scene};
use common::Server;

/// The value of the unlabelled sample `name` in the server's /metrics.
fn metric(server: &Server, name: &str) -> f64 {
    let text = server.get("/metrics").text().unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
        .trim()
        .parse()
        .unwrap()
}

/// The `embedding` stage of a Server-Timing header, in ms.
fn embedding_ms(timing: &str) -> f64 {
    timing
        .split(", ")
        .find_map(|s| s.strip_prefix("embedding;dur="))
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("no embedding stage in {timing}"))
}

/// Two predicts on one image (a miss, then a hit) on a server keeping embeddings at
/// `precision`: the two answers' polygons, the cache header of each, the hit's embedding stage
/// (ms), and the bytes the cache holds.
fn miss_then_hit(precision: &str) -> (Vec<geo::MultiPolygon<f64>>, Vec<String>, f64, f64) {
    let server = Server::start_with(
        |c| {
            let mut caches = toml::Table::new();
            caches.insert("embedding_precision".into(), precision.into());
            c.insert("caches".into(), caches.into());
        },
        &[],
    );
    let scene = Scene::three_objects_1024();
    let tiff = scene.geotiff();
    let r = &scene.rects[0];
    let point = format!("[[{}, {}]]", (r.x0 + r.x1) / 2, (r.y0 + r.y1) / 2);
    let mut polygons = Vec::new();
    let mut caches = Vec::new();
    let mut hit_ms = 0.0;
    for _ in 0..2 {
        let response = server.post_form(
            "/segment/predict",
            Some(("scene.tif", tiff.clone())),
            &[("model_version", "sam2"), ("point_coords", point.as_str())],
        );
        let status = response.status().as_u16();
        let cache = response.headers()["x-samgeo-cache"]
            .to_str()
            .unwrap()
            .to_string();
        let timing = response.headers()["server-timing"]
            .to_str()
            .unwrap()
            .to_string();
        let text = response.text().unwrap();
        assert_eq!(status, 200, "{text}");
        let fc = geojson::FeatureCollection::try_from(text.parse::<geojson::GeoJson>().unwrap())
            .unwrap();
        polygons.push(geo::MultiPolygon(
            feature_polygons(&fc)
                .into_iter()
                .flat_map(|m| m.0)
                .collect(),
        ));
        if cache == "hit" {
            hit_ms = embedding_ms(&timing);
        }
        caches.push(cache);
    }
    let bytes = metric(&server, "samgeo_embedding_cache_bytes");
    (polygons, caches, hit_ms, bytes)
}

#[test]
fn f16_embeddings_take_half_the_bytes_and_give_the_same_mask() {
    let (full, full_caches, full_ms, full_bytes) = miss_then_hit("f32");
    let (half, half_caches, half_ms, half_bytes) = miss_then_hit("f16");
    assert_eq!(full_caches, ["miss", "hit"]);
    assert_eq!(half_caches, ["miss", "hit"]);
    let ratio = half_bytes / full_bytes;
    assert!(
        (0.49..=0.51).contains(&ratio),
        "cache bytes f16 {half_bytes} vs f32 {full_bytes}"
    );
    // The miss is computed in f32 either way; the hit on f16 values gives (nearly) its mask.
    assert!(!full[0].0.is_empty(), "a mask");
    assert!(iou(&full[0], &full[1]) > 0.9999, "f32 hits are exact");
    assert!(iou(&full[0], &half[0]) > 0.9999, "the misses are the same");
    let parity = iou(&half[0], &half[1]);
    assert!(parity >= 0.99, "f16 hit vs f32 miss: IoU {parity}");
    eprintln!(
        "demo SAM2 embedding: {full_bytes} B held as f32, {half_bytes} B as f16; embedding stage of a hit {full_ms:.2} ms (f32) vs {half_ms:.2} ms (f16, widened); mask IoU {parity:.5}"
    );
}
