//! Tiled segmentation of rasters larger than `max_pixels` over HTTP, with the demo models:
//! sparse GeoTIFFs (nodata 0, never-written blocks) generated here, small on disk.

mod common;

use common::rasters::{feature_polygons, iou, BLUE, GREEN, RED, UTM_GT, YELLOW};
use common::Server;
use gdal::raster::RasterCreationOptions;
use gdal::spatial_ref::SpatialRef;
use gdal::DriverManager;

const WHITE: [u8; 3] = [245, 245, 245];
const MAGENTA: [u8; 3] = [220, 40, 220];
const CYAN: [u8; 3] = [40, 220, 220];

/// A filled rectangle: columns x0..x1, rows y0..y1.
#[derive(Debug, Clone, Copy)]
struct Block {
    x0: usize,
    y0: usize,
    x1: usize,
    y1: usize,
    rgb: [u8; 3],
}

fn block(x0: usize, y0: usize, x1: usize, y1: usize, rgb: [u8; 3]) -> Block {
    Block {
        x0,
        y0,
        x1,
        y1,
        rgb,
    }
}

/// A `size`×`size` 3-band GeoTIFF, nodata 0, 512-px deflate tiles, only `blocks` written (in
/// order, later over earlier): everything else is sparse.
fn sparse_geotiff(size: usize, blocks: &[Block]) -> Vec<u8> {
    let name = format!("/vsimem/tiled-test-{}-{size}.tif", std::process::id());
    let options: RasterCreationOptions = [
        "TILED=YES",
        "BLOCKXSIZE=512",
        "BLOCKYSIZE=512",
        "SPARSE_OK=TRUE",
        "COMPRESS=DEFLATE",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let driver = DriverManager::get_driver_by_name("GTiff").unwrap();
    let mut ds = driver
        .create_with_band_type_with_options::<u8, _>(&name, size, size, 3, &options)
        .unwrap();
    ds.set_geo_transform(&UTM_GT).unwrap();
    ds.set_spatial_ref(&SpatialRef::from_epsg(32618).unwrap())
        .unwrap();
    for c in 0..3 {
        let mut band = ds.rasterband(c + 1).unwrap();
        band.set_no_data_value(Some(0.0)).unwrap();
    }
    // Paint every block into the union window's buffer per field, then write it once.
    for b in blocks {
        let (w, h) = (b.x1 - b.x0, b.y1 - b.y0);
        for c in 0..3 {
            let mut band = ds.rasterband(c + 1).unwrap();
            let mut buffer = band
                .read_as::<u8>((b.x0 as isize, b.y0 as isize), (w, h), (w, h), None)
                .unwrap();
            for v in buffer.data_mut() {
                *v = b.rgb[c];
            }
            band.write((b.x0 as isize, b.y0 as isize), (w, h), &mut buffer)
                .unwrap();
        }
    }
    drop(ds);
    let bytes = gdal::vsi::get_vsi_mem_file_bytes_owned(&name).unwrap();
    let _ = gdal::vsi::unlink_mem_file(&name);
    bytes
}

/// A block's footprint in map coordinates.
fn footprint(b: &Block) -> geo::MultiPolygon<f64> {
    let g = UTM_GT;
    let map = |x: usize, y: usize| geo::Coord {
        x: g[0] + x as f64 * g[1],
        y: g[3] + y as f64 * g[5],
    };
    let ring = vec![
        map(b.x0, b.y0),
        map(b.x1, b.y0),
        map(b.x1, b.y1),
        map(b.x0, b.y1),
        map(b.x0, b.y0),
    ];
    geo::MultiPolygon(vec![geo::Polygon::new(geo::LineString::new(ring), vec![])])
}

/// Two fields of small objects (each colour once per field, so no tile sees two objects of
/// one colour: the demo model segments by colour) and a red bar longer than three tiles on a
/// strip. Edges lie on multiples of 32 px, 16 px from every point of the generator's grid
/// (points_per_side 16 on 512-px tiles puts points at 16 mod 32), away from the demo model's
/// blended-edge artefact.
fn scene() -> (Vec<Block>, Vec<Block>, Block) {
    // 512-px tiles overlapping by 64: column/row i covers 448·i .. 448·i + 512. Field 1 lies in
    // tile row 1 and columns 1–2, field 2 in tile (7, 2) alone, the strip in row 9: 8 tiles
    // hold data, 188 are skipped.
    let fields = [
        block(576, 544, 992, 864, GREEN),
        block(3232, 992, 3552, 1312, GREEN),
        block(1216, 4128, 3008, 4320, GREEN),
    ];
    let small = vec![
        block(608, 576, 672, 640, RED),
        block(736, 608, 768, 640, BLUE),
        block(832, 576, 896, 608, YELLOW),
        block(640, 736, 704, 800, WHITE),
        block(768, 704, 832, 768, CYAN),
        // On the seam of tile columns 1 (448..960) and 2 (896..1408): cut in both views.
        block(896, 768, 960, 832, MAGENTA),
        block(3264, 1024, 3328, 1088, RED),
        block(3392, 1024, 3424, 1056, BLUE),
        block(3456, 1120, 3520, 1184, YELLOW),
        block(3296, 1184, 3360, 1248, MAGENTA),
        block(3424, 1248, 3456, 1280, CYAN),
    ];
    let long = block(1280, 4192, 2944, 4256, RED);
    let mut all: Vec<Block> = fields.to_vec();
    all.extend(small.iter().copied());
    all.push(long);
    (all, small, long)
}

fn small_limits(config: &mut toml::Table) {
    let server = config["server"].as_table_mut().unwrap();
    server.insert("max_pixels".into(), toml::Value::Integer(4_000_000));
    server.insert("request_timeout_secs".into(), toml::Value::Integer(600));
}

const TILED: [(&str, &str); 3] = [
    ("tile_size", "512"),
    ("tile_overlap", "64"),
    ("points_per_side", "16"),
];

#[test]
fn a_sparse_raster_above_max_pixels_is_segmented_tile_by_tile() {
    let server = Server::start_with(small_limits, &[]);
    let (blocks, small, long) = scene();
    let tiff = sparse_geotiff(6000, &blocks);
    assert!(tiff.len() < 1_000_000, "{} bytes", tiff.len());

    // Looked at whole, 36 Mpx is over max_pixels: 413 as before.
    let (status, detail) = common::detail(server.post_form(
        "/segment/automatic",
        Some(("big.tif", tiff.clone())),
        &[("tiling", "off")],
    ));
    assert_eq!(status, 413, "{detail}");

    let r = server.post_form("/segment/automatic", Some(("big.tif", tiff)), &TILED);
    let status = r.status().as_u16();
    let tiles = r
        .headers()
        .get("x-samgeo-tiles")
        .map(|v| v.to_str().unwrap().to_string());
    let text = r.text().unwrap();
    assert_eq!(status, 200, "{text}");
    let fc =
        geojson::FeatureCollection::try_from(text.parse::<geojson::GeoJson>().unwrap()).unwrap();
    let polys = feature_polygons(&fc);

    // Tiles: 14×14, most of them never written or nodata.
    let tiles = tiles.expect("X-Samgeo-Tiles header");
    let count = |key: &str| -> usize {
        tiles
            .split(',')
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{key} in {tiles}"))
            .parse()
            .unwrap()
    };
    assert_eq!(count("total"), 196, "{tiles}");
    assert_eq!(count("processed") + count("skipped"), 196, "{tiles}");
    assert!(
        (6..=12).contains(&count("processed")),
        "only the tiles over the fields are segmented: {tiles}"
    );

    let best = |b: &Block| {
        let fp = footprint(b);
        polys.iter().map(|p| iou(p, &fp)).fold(0.0, f64::max)
    };
    let scores: Vec<f64> = small.iter().map(best).collect();
    let found = scores.iter().filter(|&&s| s >= 0.7).count();
    assert!(
        found * 10 >= small.len() * 9,
        "small objects found: {found} of {} (IoU {scores:?})",
        small.len()
    );
    // The bar, 1664 px over four tiles, is one feature; no fragment of it is left over.
    let bar = footprint(&long);
    let over_bar: Vec<f64> = polys
        .iter()
        .map(|p| {
            use geo::{Area, BooleanOps};
            p.intersection(&bar).unsigned_area() / p.unsigned_area()
        })
        .collect();
    let on_bar = over_bar.iter().filter(|&&f| f > 0.5).count();
    assert_eq!(on_bar, 1, "features mostly on the bar: {over_bar:?}");
    assert!(best(&long) >= 0.8, "bar IoU {}", best(&long));
    assert!(
        server.log().contains("tiles done"),
        "progress is logged:\n{}",
        server.log()
    );
}

#[test]
fn tiling_fields_are_checked() {
    let server = Server::start();
    let tiff = sparse_geotiff(600, &[block(100, 100, 300, 300, RED)]);
    for (fields, needle) in [
        (vec![("tiling", "sometimes")], "tiling"),
        (vec![("tile_size", "100")], "tile_size"),
        (vec![("tile_overlap", "8")], "tile_overlap"),
        (vec![("resolution", "-1")], "resolution"),
        (vec![("resolution", "1"), ("tiling", "on")], "finer"),
        (vec![("resolution", "20"), ("tiling", "off")], "resolution"),
    ] {
        let (status, detail) = common::detail(server.post_form(
            "/segment/automatic",
            Some(("t.tif", tiff.clone())),
            &fields,
        ));
        assert_eq!(status, 400, "{fields:?}: {detail}");
        assert!(detail.contains(needle), "{fields:?}: {detail}");
    }
    // tiling=on on a small raster: one tile, at native resolution; resolution 20 m halves it.
    let r = server.post_form(
        "/segment/automatic",
        Some(("t.tif", tiff.clone())),
        &[("tiling", "on"), ("points_per_side", "8")],
    );
    assert_eq!(
        r.headers()["x-samgeo-tiles"],
        "total=1,processed=1,skipped=0,resumed=0"
    );
    let r = server.post_form(
        "/segment/text",
        Some(("t.tif", tiff)),
        &[("prompt", "red"), ("resolution", "20")],
    );
    let status = r.status().as_u16();
    let text = r.text().unwrap();
    assert_eq!(status, 200, "{text}");
    let fc =
        geojson::FeatureCollection::try_from(text.parse::<geojson::GeoJson>().unwrap()).unwrap();
    let polys = feature_polygons(&fc);
    assert_eq!(polys.len(), 1, "{text}");
    let red = footprint(&block(100, 100, 300, 300, RED));
    assert!(iou(&polys[0], &red) > 0.85, "{}", iou(&polys[0], &red));
}

/// `/proc/<pid>/status` VmHWM of the server, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM");
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

/// A `size`² sparse raster with one field of objects near its middle, segmented with the
/// default tiling; returns (seconds, peak RSS in bytes, X-Samgeo-Tiles).
/// A raster over `server.max_tiled_pixels` is refused with 413 naming the limit, tiled or not;
/// one within it is segmented tile by tile.
#[test]
fn rasters_over_max_tiled_pixels_are_refused() {
    let server = Server::start_with(
        |c| {
            let server = c["server"].as_table_mut().unwrap();
            server.insert("max_pixels".into(), toml::Value::Integer(100_000));
            server.insert("max_tiled_pixels".into(), toml::Value::Integer(200_000));
        },
        &[],
    );
    let over = sparse_geotiff(600, &[block(100, 100, 300, 300, RED)]);
    for tiling in ["on", "auto", "off"] {
        let (status, detail) = common::detail(server.post_form(
            "/segment/automatic",
            Some(("over.tif", over.clone())),
            &[("tiling", tiling), ("points_per_side", "8")],
        ));
        assert_eq!(status, 413, "tiling={tiling}: {detail}");
        let limit = if tiling == "off" { "100000" } else { "200000" };
        assert!(detail.contains(limit), "tiling={tiling}: {detail}");
    }
    let within = sparse_geotiff(416, &[block(100, 100, 300, 300, RED)]);
    let r = server.post_form(
        "/segment/automatic",
        Some(("within.tif", within)),
        &[
            ("tiling", "on"),
            ("tile_size", "256"),
            ("tile_overlap", "32"),
            ("points_per_side", "8"),
            ("output_format", "geotiff"),
        ],
    );
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "image/tiff");
    let tiles = r.headers()["x-samgeo-tiles"].to_str().unwrap().to_string();
    // A tiled run's GeoTIFF: the whole raster's size and georeferencing, the square labelled.
    let path = common::temp_dir("tiled-geotiff").join("mask.tif");
    std::fs::write(&path, r.bytes().unwrap()).unwrap();
    let ds = gdal::Dataset::open(&path).unwrap();
    assert_eq!(ds.raster_size(), (416, 416));
    assert_eq!(ds.geo_transform().unwrap(), UTM_GT);
    assert_eq!(ds.spatial_ref().unwrap().auth_code().unwrap(), 32618);
    let labels = ds
        .rasterband(1)
        .unwrap()
        .read_as::<u8>((0, 0), (416, 416), (416, 416), None)
        .unwrap();
    let labelled = |x: usize, y: usize| labels.data()[y * 416 + x] != 0;
    assert!(labelled(200, 200), "the square's centre is labelled");
    assert!(
        !labelled(20, 20) && !labelled(400, 400),
        "the background is not"
    );
    let total: usize = tiles
        .strip_prefix("total=")
        .and_then(|t| t.split(',').next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("{tiles}"));
    assert!(total > 1, "tiled: {tiles}");
}

/// A tiled answer: 200 with GeoJSON; its `X-Samgeo-Tiles` header, body and features.
fn tiled_answer(r: reqwest::blocking::Response) -> (String, String, geojson::FeatureCollection) {
    let status = r.status().as_u16();
    let tiles = r
        .headers()
        .get("x-samgeo-tiles")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let text = r.text().unwrap();
    assert_eq!(status, 200, "{text}");
    let fc =
        geojson::FeatureCollection::try_from(text.parse::<geojson::GeoJson>().unwrap()).unwrap();
    (tiles, text, fc)
}

fn segment_sparse(size: usize, fields: &[(&str, &str)]) -> (f64, u64, String) {
    let server = Server::start_with(
        |c| {
            c["server"]
                .as_table_mut()
                .unwrap()
                .insert("request_timeout_secs".into(), toml::Value::Integer(1800));
        },
        &[],
    );
    let (x, y) = (size / 2 / 32 * 32, size / 3 / 32 * 32);
    let tiff = sparse_geotiff(
        size,
        &[
            block(x, y, x + 384, y + 384, GREEN),
            block(x + 64, y + 64, x + 128, y + 128, RED),
            block(x + 192, y + 160, x + 256, y + 224, BLUE),
        ],
    );
    let start = std::time::Instant::now();
    let r = server.post_form("/segment/automatic", Some(("big.tif", tiff)), fields);
    let seconds = start.elapsed().as_secs_f64();
    let (tiles, _, fc) = tiled_answer(r);
    let polys = feature_polygons(&fc);
    let red = footprint(&block(x + 64, y + 64, x + 128, y + 128, RED));
    assert!(
        polys.iter().any(|p| iou(p, &red) >= 0.7),
        "the red object in a {size}² raster"
    );
    (seconds, peak_rss(server.pid()), tiles)
}

#[test]
fn memory_is_bounded_by_the_tile_on_a_50000_px_raster() {
    let (seconds, rss, tiles) = segment_sparse(50_000, &[("points_per_side", "16")]);
    eprintln!(
        "50000²: {seconds:.1} s, peak RSS {} MiB, {tiles}",
        rss >> 20
    );
    assert!(tiles.starts_with("total=3136,"), "{tiles}");
    assert!(
        rss <= 2_684_354_560,
        "peak RSS {} MiB over 2.5 GiB ({tiles})",
        rss >> 20
    );
}

/// Time and peak RSS for 10k², 20k² and 50k² sparse rasters (run with `--ignored
/// --nocapture`; the numbers depend on the machine and its load).
#[test]
#[ignore]
fn measure_sparse_rasters() {
    for size in [10_000, 20_000, 50_000] {
        let (seconds, rss, tiles) = segment_sparse(size, &[]);
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        println!(
            "{size}²: {seconds:.1} s, peak RSS {} MiB, tiles {tiles}, load average {}",
            rss >> 20,
            load.trim()
        );
    }
}

/// Time and peak RSS for a raster with data everywhere (`size`², default 8192, from
/// `SAMGEO_DENSE_SIZE`; a 256-px grid of squares on a green field): every tile is segmented,
/// unlike the sparse rasters above. Side by side in one run: GDAL's block cache at GDAL's own
/// default (5 % of the machine's memory) and at this server's bound (`caches.gdal_cache_bytes`).
/// Run with `--ignored --nocapture`.
#[test]
#[ignore]
fn measure_dense_raster() {
    let size: usize = std::env::var("SAMGEO_DENSE_SIZE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8192);
    let mut blocks = vec![block(0, 0, size, size, GREEN)];
    for y in (0..size.saturating_sub(192)).step_by(256) {
        for x in (0..size.saturating_sub(192)).step_by(256) {
            let colour = if (x / 256 + y / 256) % 2 == 0 {
                RED
            } else {
                BLUE
            };
            blocks.push(block(x + 64, y + 64, x + 192, y + 192, colour));
        }
    }
    let tiff = sparse_geotiff(size, &blocks);
    let mem_total_kib: i64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    let gdal_default = mem_total_kib * 1024 / 20;
    let bound = 256 * 1024 * 1024;
    let client = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(3600))
        .build()
        .unwrap();
    for (label, cache) in [("GDAL default", gdal_default), ("bounded", bound)] {
        let server = Server::start_with(
            |c| {
                c["server"]
                    .as_table_mut()
                    .unwrap()
                    .insert("request_timeout_secs".into(), toml::Value::Integer(3600));
                let mut caches = toml::Table::new();
                caches.insert("gdal_cache_bytes".into(), cache.into());
                c.insert("caches".into(), caches.into());
            },
            &[],
        );
        let load_before = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        let form = common::Form::new()
            .part(
                "file",
                common::Part::bytes(tiff.clone()).file_name("dense.tif"),
            )
            .text("points_per_side", "8")
            .text("tiling", "on");
        let start = std::time::Instant::now();
        let r = client
            .post(server.url("/segment/automatic"))
            .multipart(form)
            .send()
            .unwrap();
        let seconds = start.elapsed().as_secs_f64();
        let (tiles, text, fc) = tiled_answer(r);
        let load_after = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        println!(
            "dense {size}², GDAL cache {label} ({} MiB): {seconds:.1} s, peak RSS {} MiB, {} features, {} bytes of GeoJSON, tiles {tiles}, load {} → {}",
            cache >> 20,
            peak_rss(server.pid()) >> 20,
            fc.features.len(),
            text.len(),
            load_before.trim(),
            load_after.trim()
        );
    }
}
