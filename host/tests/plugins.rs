//! The plugin host against real components run by wasmtime: the built-in formatters and
//! filters, the sandbox limits (misbehaving test plugins), the compiled-component cache and
//! reloading. Needs the components built (`bash plugins/build.sh`, or `SAMGEO_PLUGIN_DIR`).

mod plugins_support;

use std::time::{Duration, Instant};

use plugins_support::*;
use samgeo_host::masks::{Mask, PluginRequest};
use samgeo_host::plugins::{PluginError, PluginHost, PluginKind};

const BUILTIN_FORMATS: [&str; 5] = ["geojson", "geotiff", "png", "json", "detections"];
const BUILTIN_FILTERS: [&str; 3] = ["size.wasm", "foreground.wasm", "unique.wasm"];

fn builtin_host(tag: &str, filters: &[&str]) -> PluginHost {
    let files: Vec<String> = BUILTIN_FORMATS
        .iter()
        .map(|f| format!("{f}.wasm"))
        .chain(BUILTIN_FILTERS.iter().map(|f| f.to_string()))
        .collect();
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    let dir = plugin_dir(tag, &files);
    let formats: Vec<(&str, String)> = BUILTIN_FORMATS
        .iter()
        .map(|f| (*f, format!("{f}.wasm")))
        .collect();
    let formats: Vec<(&str, &str)> = formats.iter().map(|(n, f)| (*n, f.as_str())).collect();
    let config = config(&dir, &formats, filters);
    PluginHost::new(&config, &temp_dir(&format!("{tag}-cache"))).expect("plugin host")
}

fn param(req: &mut PluginRequest, k: &str, v: &str) {
    req.params.push((k.to_string(), v.to_string()));
}

// ---- built-in formatters -------------------------------------------------------------------

#[test]
fn builtins_are_listed() {
    let host = builtin_host("list", &BUILTIN_FILTERS);
    let mut names = BUILTIN_FORMATS.to_vec();
    names.sort();
    assert_eq!(host.format_names(), names);
    let list = host.list();
    assert_eq!(
        list.iter().filter(|p| p.kind == PluginKind::Filter).count(),
        3
    );
    for p in &list {
        assert_eq!(p.wit_version, "0.2.0");
        assert!(p.version.is_some(), "{p:?}");
        assert_eq!(p.sha256.len(), 64);
        assert!(!p.description.is_empty(), "{p:?}");
    }
    assert!(host.failed().is_empty(), "{:?}", host.failed());
}

#[test]
fn geojson_has_one_feature_per_mask() {
    let host = builtin_host("geojson", &[]);
    let out = host.format("geojson", &small_request()).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.bytes).unwrap();
    assert_eq!(v["type"], "FeatureCollection");
    assert_eq!(v["features"].as_array().unwrap().len(), 3);
    assert!(out.content_type.contains("json"), "{}", out.content_type);

    // output_crs goes through the host's transform-points import.
    let mut req = small_request();
    param(&mut req, "output_crs", "EPSG:4326");
    let out = host.format("geojson", &req).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.bytes).unwrap();
    let first = &v["features"][0]["geometry"]["coordinates"][0][0];
    let (lon, lat) = (first[0].as_f64().unwrap(), first[1].as_f64().unwrap());
    assert!(
        (14.0..16.0).contains(&lon) && (54.0..56.0).contains(&lat),
        "{lon} {lat}"
    );
}

#[test]
fn geotiff_starts_with_a_tiff_header() {
    let host = builtin_host("geotiff", &[]);
    let out = host.format("geotiff", &small_request()).unwrap();
    let head = &out.bytes[..4];
    assert!(
        head == b"II*\0" || head == b"MM\0*" || head == b"II+\0" || head == b"MM\0+",
        "{head:?}"
    );
}

#[test]
fn png_decodes_to_the_image_size() {
    let host = builtin_host("png", &[]);
    let out = host.format("png", &small_request()).unwrap();
    assert_eq!(out.content_type, "image/png");
    let decoder = png::Decoder::new(std::io::Cursor::new(out.bytes));
    let reader = decoder.read_info().unwrap();
    let info = reader.info();
    assert_eq!((info.width, info.height), (64, 48));
}

#[test]
fn json_and_detections_have_one_detection_per_mask() {
    let host = builtin_host("json", &[]);
    let out = host.format("json", &small_request()).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.bytes).unwrap();
    assert_eq!(v["num_detections"], 3, "{v}");
    assert_eq!(
        (v["image_width"].as_u64(), v["image_height"].as_u64()),
        (Some(64), Some(48))
    );
    let d = &v["detections"][0];
    for key in ["id", "value", "bbox", "score"] {
        assert!(!d[key].is_null(), "json detection has no {key}: {d}");
    }
    assert_eq!(d["bbox"], serde_json::json!([2, 2, 12, 12]));

    let out = host.format("detections", &small_request()).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.bytes).unwrap();
    assert_eq!(v["type"], "FeatureCollection");
    assert_eq!(v["num_detections"], 3, "{v}");
    assert_eq!(v["features"].as_array().unwrap().len(), 3);
    let props = &v["features"][0]["properties"];
    for key in ["id", "value", "score", "bbox_pixel"] {
        assert!(
            !props[key].is_null(),
            "detections feature has no {key}: {props}"
        );
    }
}

// ---- built-in filters ----------------------------------------------------------------------

fn ids(masks: &[Mask]) -> Vec<u32> {
    masks.iter().map(|m| m.id).collect()
}

#[test]
fn size_filter_drops_by_area() {
    let host = builtin_host("size", &["size.wasm"]);
    let mut req = small_request();
    param(&mut req, "min_size", "50");
    let out = host.apply_filters(req).unwrap();
    assert_eq!(ids(&out.masks), vec![1, 3]);
    let mut req = small_request();
    param(&mut req, "max_size", "200");
    let out = host.apply_filters(req).unwrap();
    assert_eq!(ids(&out.masks), vec![1, 2]);
}

/// Filters named by a request run after the configured chain, on its output: with the chain
/// `size` (min_size 200) and the request's `unique=false` (union of the masks), the union is of
/// the one mask `size` kept (400 px); the other order would give the union of all three (509).
#[test]
fn request_filters_run_after_the_chain() {
    let host = builtin_host("order", &["size.wasm"]);
    let mut req = small_request();
    let areas: Vec<u64> = req.masks.masks.iter().map(|m| m.area).collect();
    assert_eq!(areas, vec![100, 9, 400]);
    param(&mut req, "min_size", "200");
    param(&mut req, "filters", "unique");
    param(&mut req, "unique", "false");
    let out = host.apply_filters(req).unwrap();
    assert_eq!(out.masks.len(), 1, "{:?}", out.masks);
    assert_eq!(out.masks[0].area, 400, "the chain ran first");
    assert_eq!(out.masks[0].label, 255, "then unique=false merged");
}

#[test]
fn foreground_drops_a_full_image_background() {
    let host = builtin_host("foreground", &["foreground.wasm"]);
    let mut req = small_request();
    req.masks.masks.insert(0, rect(9, 0, 0, 64, 48));
    param(&mut req, "foreground", "true");
    let out = host.apply_filters(req).unwrap();
    assert_eq!(ids(&out.masks), vec![1, 2, 3]);
}

#[test]
fn unique_relabels_by_area() {
    let host = builtin_host("unique", &["unique.wasm"]);
    let mut req = small_request();
    param(&mut req, "unique", "true");
    let out = host.apply_filters(req).unwrap();
    // Largest first, labelled count down to 1 (areas: id 3 = 400, id 1 = 100, id 2 = 9).
    assert_eq!(ids(&out.masks), vec![3, 1, 2]);
    let labels: Vec<u32> = out.masks.iter().map(|m| m.label).collect();
    assert_eq!(labels, vec![3, 2, 1]);
}

#[test]
fn the_default_chain_runs_in_order() {
    let host = builtin_host("chain", &BUILTIN_FILTERS);
    let mut req = small_request();
    req.masks.masks.insert(0, rect(9, 0, 0, 64, 48));
    for (k, v) in [
        ("min_size", "50"),
        ("foreground", "true"),
        ("unique", "true"),
    ] {
        param(&mut req, k, v);
    }
    let out = host.apply_filters(req).unwrap();
    assert_eq!(ids(&out.masks), vec![3, 1]);
    let out = host.format(
        "geojson",
        &samgeo_host::masks::PluginRequest {
            masks: out,
            ..small_request()
        },
    );
    assert!(out.is_ok());
}

// ---- limits --------------------------------------------------------------------------------

/// A host with one misbehaving formatter (registered as `bad`) and geojson for the calls that
/// must still work after it.
fn misbehaving_host(tag: &str, file: &str, timeout_ms: u64, memory: u64) -> PluginHost {
    let dir = plugin_dir(tag, &["geojson.wasm", &format!("testing/{file}")]);
    let mut config = config(&dir, &[("geojson", "geojson.wasm"), ("bad", file)], &[]);
    config.call_timeout_ms = timeout_ms;
    config.memory_limit_bytes = memory;
    PluginHost::new(&config, &temp_dir(&format!("{tag}-cache"))).expect("plugin host")
}

fn still_works(host: &PluginHost) {
    let out = host
        .format("geojson", &small_request())
        .expect("a normal call after a fault");
    assert!(!out.bytes.is_empty());
}

#[test]
fn endless_loop_times_out() {
    let host = misbehaving_host("loop", "misbehave-loop.wasm", 500, 256 << 20);
    let started = Instant::now();
    let err = host.format("bad", &small_request()).unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(err, PluginError::Timeout { .. }), "{err}");
    assert_eq!(err.status_code(), 504);
    assert!(err.to_string().contains("misbehave-loop.wasm"), "{err}");
    assert!(
        elapsed >= Duration::from_millis(450) && elapsed < Duration::from_millis(1500),
        "{elapsed:?}"
    );
    still_works(&host);
}

#[test]
fn runaway_allocation_is_out_of_memory() {
    let host = misbehaving_host("alloc", "misbehave-alloc.wasm", 10_000, 64 << 20);
    let err = host.format("bad", &small_request()).unwrap_err();
    assert!(matches!(err, PluginError::OutOfMemory { .. }), "{err}");
    assert_eq!(err.status_code(), 502);
    assert!(
        err.to_string().contains("'bad' (misbehave-alloc.wasm)"),
        "{err}"
    );
    still_works(&host);
}

#[test]
fn panic_is_a_trap_naming_the_plugin() {
    let host = misbehaving_host("panic", "misbehave-panic.wasm", 10_000, 256 << 20);
    let err = host.format("bad", &small_request()).unwrap_err();
    assert!(matches!(err, PluginError::Trap { .. }), "{err}");
    assert_eq!(err.status_code(), 502);
    let text = err.to_string();
    assert!(text.contains("'bad' (misbehave-panic.wasm)"), "{text}");
    println!("{text}");
    still_works(&host);
}

#[test]
fn garbage_output_is_invalid() {
    let host = misbehaving_host("garbage", "misbehave-garbage.wasm", 10_000, 256 << 20);
    let err = host.format("bad", &small_request()).unwrap_err();
    assert!(matches!(err, PluginError::InvalidOutput { .. }), "{err}");
    assert_eq!(err.status_code(), 502);
    println!("{err}");
    still_works(&host);
}

#[test]
fn garbage_filter_output_is_invalid() {
    let dir = plugin_dir(
        "garbage-filter",
        &["geojson.wasm", "testing/misbehave-garbage-filter.wasm"],
    );
    let config = config(
        &dir,
        &[("geojson", "geojson.wasm")],
        &["misbehave-garbage-filter.wasm"],
    );
    let host = PluginHost::new(&config, &temp_dir("garbage-filter-cache")).unwrap();
    let err = host.apply_filters(small_request()).unwrap_err();
    assert!(matches!(err, PluginError::InvalidOutput { .. }), "{err}");
    assert!(
        err.to_string().contains("misbehave-garbage-filter.wasm"),
        "{err}"
    );
    println!("{err}");
    still_works(&host);
}

#[test]
fn plugin_errors_reach_the_client_as_400() {
    let host = builtin_host("reject", &[]);
    let mut req = small_request();
    param(&mut req, "output_crs", "EPSG:999999");
    let err = host.format("geojson", &req).unwrap_err();
    assert!(matches!(err, PluginError::Rejected { .. }), "{err}");
    assert_eq!(err.status_code(), 400);
    let err = host.format("kml", &req).unwrap_err();
    assert!(matches!(err, PluginError::UnknownFormat { .. }), "{err}");
    assert_eq!(err.status_code(), 400);
}

// ---- configuration -------------------------------------------------------------------------

#[test]
fn referenced_files_must_load_with_the_right_kind() {
    let dir = plugin_dir("refs", &["geojson.wasm"]);
    let err = PluginHost::new(
        &config(&dir, &[("geojson", "geojson.wasm")], &["size.wasm"]),
        &temp_dir("refs-cache"),
    )
    .err()
    .expect("a missing filter must fail");
    assert!(format!("{err:#}").contains("size.wasm"), "{err:#}");

    let err = PluginHost::new(
        &config(&dir, &[("geojson", "geojson.wasm")], &["geojson.wasm"]),
        &temp_dir("refs-cache"),
    )
    .err()
    .expect("a formatter in the filter chain must fail");
    assert!(format!("{err:#}").contains("geojson.wasm"), "{err:#}");

    // An unreferenced broken file is skipped and listed.
    std::fs::write(dir.join("broken.wasm"), b"not wasm").unwrap();
    let host = PluginHost::new(
        &config(&dir, &[("geojson", "geojson.wasm")], &[]),
        &temp_dir("refs-cache"),
    )
    .unwrap();
    assert_eq!(host.failed().len(), 1);
    assert_eq!(host.failed()[0].file, "broken.wasm");
}

#[test]
fn configured_options_are_defaults_that_requests_override() {
    let dir = plugin_dir("options", &["geojson.wasm"]);
    let mut config = config(&dir, &[("geojson", "geojson.wasm")], &[]);
    config.options.insert(
        "geojson".into(),
        [("output_crs".to_string(), "EPSG:4326".to_string())].into(),
    );
    let host = PluginHost::new(&config, &temp_dir("options-cache")).unwrap();
    let lon_of = |req: &PluginRequest| {
        let out = host.format("geojson", req).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.bytes).unwrap();
        v["features"][0]["geometry"]["coordinates"][0][0][0]
            .as_f64()
            .unwrap()
    };
    assert!(lon_of(&small_request()) < 180.0);
    let mut req = small_request();
    param(&mut req, "output_crs", "EPSG:32633");
    assert!(lon_of(&req) > 400_000.0);
}

// ---- compiled-component cache --------------------------------------------------------------

#[test]
fn second_start_loads_compiled_components_from_disk() {
    let dir = plugin_dir("cache", &["geojson.wasm", "testing/misbehave-panic.wasm"]);
    let cache = temp_dir("cache-dir");
    let config = config(&dir, &[("geojson", "geojson.wasm")], &[]);
    let first = PluginHost::new(&config, &cache).unwrap();
    assert_eq!(first.cache_stats().compiled, 2);
    assert_eq!(first.cache_stats().loaded_from_cache, 0);
    let cwasm: Vec<_> = std::fs::read_dir(cache.join("plugins"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    assert_eq!(cwasm.len(), 2, "{cwasm:?}");
    assert!(cwasm.iter().all(|n| n.ends_with(".cwasm")), "{cwasm:?}");

    let second = PluginHost::new(&config, &cache).unwrap();
    assert_eq!(second.cache_stats().compiled, 0);
    assert_eq!(second.cache_stats().loaded_from_cache, 2);
    still_works(&second);

    // A damaged artifact is recompiled, not trusted.
    for name in &cwasm {
        std::fs::write(cache.join("plugins").join(name), b"garbage").unwrap();
    }
    let third = PluginHost::new(&config, &cache).unwrap();
    assert_eq!(third.cache_stats().compiled, 2);
    still_works(&third);
}

// ---- reload --------------------------------------------------------------------------------

#[test]
fn reload_adds_changes_and_keeps_the_old_set_on_error() {
    let dir = plugin_dir("reload", &["geojson.wasm"]);
    let config = config(&dir, &[("geojson", "geojson.wasm")], &[]);
    let host = PluginHost::new(&config, &temp_dir("reload-cache")).unwrap();
    assert_eq!(host.format_names(), vec!["geojson"]);

    // Nothing changed.
    let report = host.reload().unwrap();
    assert_eq!(report.unchanged, vec!["geojson"]);
    assert!(report.added.is_empty() && report.removed.is_empty());

    // A new formatter registers under the name it reports.
    std::fs::copy(component("template.wasm"), dir.join("template.wasm")).unwrap();
    let report = host.reload().unwrap();
    assert_eq!(report.added.len(), 1, "{report:?}");
    let template = report.added[0].clone();
    assert!(host.format_names().contains(&template));
    host.format(&template, &small_request()).unwrap();

    // A referenced file that breaks: the reload fails and the old set stays.
    std::fs::write(dir.join("geojson.wasm"), b"\0asm broken").unwrap();
    let err = host.reload().unwrap_err();
    assert!(format!("{err:#}").contains("geojson.wasm"), "{err:#}");
    still_works(&host);
    assert!(host.format_names().contains(&template));

    // Removing the new one.
    std::fs::copy(component("geojson.wasm"), dir.join("geojson.wasm")).unwrap();
    std::fs::remove_file(dir.join("template.wasm")).unwrap();
    let report = host.reload().unwrap();
    assert_eq!(report.removed, vec![template]);
    assert_eq!(report.unchanged, vec!["geojson"]);
}

#[test]
fn calls_in_flight_finish_on_the_old_generation() {
    let dir = plugin_dir("inflight", &["geojson.wasm", "testing/misbehave-loop.wasm"]);
    let mut config = config(&dir, &[("geojson", "geojson.wasm")], &[]);
    config.call_timeout_ms = 1500;
    let host = PluginHost::new(&config, &temp_dir("inflight-cache")).unwrap();
    // misbehave-loop registers under the name it reports.
    let slow = host
        .format_names()
        .into_iter()
        .find(|n| n != "geojson")
        .expect("misbehave-loop registered");
    let h = host.clone();
    let name = slow.clone();
    let call = std::thread::spawn(move || h.format(&name, &small_request()));
    std::thread::sleep(Duration::from_millis(200));
    std::fs::remove_file(dir.join("misbehave-loop.wasm")).unwrap();
    let started = Instant::now();
    let report = host.reload().unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "reload waited for the call"
    );
    assert_eq!(report.removed, vec![slow.clone()]);
    assert!(!host.format_names().contains(&slow));
    // The running call finishes on the instance it started with.
    let err = call.join().unwrap().unwrap_err();
    assert!(matches!(err, PluginError::Timeout { .. }), "{err}");
    still_works(&host);
}

/// A reload re-reads `[plugins]` from the configuration file: a new filter chain, new options
/// and a new format map take effect together (issue 11, item 8: reloads used to keep the
/// start-up settings).
#[test]
fn reload_applies_the_changed_plugins_section() {
    let dir = plugin_dir("reload-config", &["geojson.wasm", "json.wasm", "size.wasm"]);
    let cfg = config(&dir, &[("geojson", "geojson.wasm")], &[]);
    let file = temp_dir("reload-config-file").join("samgeo.toml");
    std::fs::write(&file, "").unwrap();
    let host =
        PluginHost::with_config_file(&cfg, &temp_dir("reload-config-cache"), Some(file.clone()))
            .unwrap();
    let toml = |extra: &str| {
        format!(
            "[plugins]\ndirectory = {dir:?}\nformats = {{ geojson = \"geojson.wasm\", table = \"json.wasm\" }}\nfilters = [\"size.wasm\"]\n{extra}",
            dir = dir.display().to_string()
        )
    };
    // Masks of 100, 9 and 400 pixels; no chain yet.
    assert_eq!(host.apply_filters(small_request()).unwrap().masks.len(), 3);
    std::fs::write(&file, toml("[plugins.options.size]\nmin_size = \"50\"\n")).unwrap();
    let report = host.reload().unwrap();
    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!(host.config().filters, vec!["size.wasm".to_string()]);
    let kept = host.apply_filters(small_request()).unwrap();
    assert_eq!(
        ids(&kept.masks),
        vec![1, 3],
        "the size filter ran with min_size=50"
    );
    assert!(host.format_names().contains(&"table".to_string()));
    // Options alone change too.
    std::fs::write(&file, toml("[plugins.options.size]\nmin_size = \"200\"\n")).unwrap();
    host.reload().unwrap();
    assert_eq!(
        ids(&host.apply_filters(small_request()).unwrap().masks),
        vec![3]
    );
    // A configuration that does not load changes nothing.
    std::fs::write(&file, "[plugins]\nfilters = [\"nope.wasm\"]\nbogus = 1\n").unwrap();
    let err = host.reload().unwrap_err();
    assert!(err.reason.contains("bogus"), "{err}");
    assert_eq!(
        ids(&host.apply_filters(small_request()).unwrap().masks),
        vec![3]
    );
}

// ---- memory at the size limit ----------------------------------------------------------------

/// The largest image the default configuration accepts (`server.max_pixels`) with 300 masks
/// (labels above 255, so 16-bit rasters): every formatter must stay inside the default plugin
/// memory limit (issue 11, item 9). A whole 16-bit label raster of that size alone is larger
/// than the limit, so this passes only when the raster formatters paint and encode strip by
/// strip, json and detections measure strip by strip, and geojson vectorises label by label.
#[test]
fn formatters_fit_the_memory_limit_at_max_pixels() {
    use samgeo_host::config::{Config, PluginsConfig};
    use samgeo_host::masks::MaskSet;

    let max_pixels = Config::default().server.max_pixels;
    let side = (max_pixels as f64).sqrt() as u32;
    assert_eq!(u64::from(side) * u64::from(side), max_pixels);
    let limit = PluginsConfig::default().memory_limit_bytes;
    assert!(
        max_pixels * 2 >= limit,
        "the test would not exercise the limit"
    );

    let formats = ["geotiff", "png", "geojson", "json", "detections"];
    let wasm: Vec<String> = formats.iter().map(|f| format!("{f}.wasm")).collect();
    let wasm: Vec<&str> = wasm.iter().map(String::as_str).collect();
    let dir = plugin_dir("max-pixels", &wasm);
    let pairs: Vec<(&str, &str)> = formats.iter().copied().zip(wasm.iter().copied()).collect();
    let mut config = config(&dir, &pairs, &[]);
    config.memory_limit_bytes = limit;
    // Only memory is under test; a loaded CI machine must not turn this into a timeout.
    config.call_timeout_ms = 600_000;
    let host = PluginHost::new(&config, &temp_dir("max-pixels-cache")).unwrap();

    // Mask 1 covers the whole image; masks 2..=300 are tiles of a 20 x 15 grid painted over it
    // (the last tile stays mask 1's).
    let (tw, th) = (side / 20, side / 15);
    let mut masks = vec![rect(1, 0, 0, side, side)];
    for k in 0..299u32 {
        masks.push(rect(k + 2, (k % 20) * tw, (k / 20) * th, tw, th));
    }
    let expected = |x: u32, y: u32| -> u16 {
        let (i, j) = (x / tw, y / th);
        if i >= 20 || j >= 15 || j * 20 + i >= 299 {
            1
        } else {
            (j * 20 + i + 2) as u16
        }
    };
    let mut req = small_request();
    req.masks = MaskSet {
        width: side,
        height: side,
        masks,
    };
    let probes = [
        (0, 0),
        (tw + 5, th * 3 + 7),
        (side - 1, side - 1),
        (tw * 19 + 1, th * 14 + 1),
        (side / 2, side / 2),
    ];

    // Mask 1 shows where no tile is: the right and bottom margins and the last grid cell.
    let area_1 = u64::from(side) * u64::from(side) - 299 * u64::from(tw) * u64::from(th);
    let timed = |format: &str| {
        let t = std::time::Instant::now();
        let out = host
            .format(format, &req)
            .unwrap_or_else(|e| panic!("{format}: {e}"));
        eprintln!("{format} at max_pixels: {:.1} s", t.elapsed().as_secs_f64());
        out
    };

    let v: serde_json::Value = serde_json::from_slice(&timed("geojson").bytes).unwrap();
    let features = v["features"].as_array().unwrap();
    assert_eq!(features.len(), 300, "one region per label");
    let props = |label: u64| {
        features
            .iter()
            .find(|f| f["properties"]["value"] == label)
            .map(|f| &f["properties"])
            .unwrap_or_else(|| panic!("label {label} missing"))
    };
    assert_eq!(props(1)["area"], area_1);
    assert_eq!(props(2)["area"], u64::from(tw) * u64::from(th));
    assert_eq!(props(300)["area"], u64::from(tw) * u64::from(th));

    let v: serde_json::Value = serde_json::from_slice(&timed("json").bytes).unwrap();
    assert_eq!(v["num_detections"], 300);
    let d = v["detections"].as_array().unwrap();
    assert_eq!(d[0]["value"], 1);
    assert_eq!(d[0]["bbox"], serde_json::json!([0, 0, side, side]));
    assert_eq!(d[1]["value"], 2);
    assert_eq!(d[1]["bbox"], serde_json::json!([0, 0, tw, th]));

    let v: serde_json::Value = serde_json::from_slice(&timed("detections").bytes).unwrap();
    assert_eq!(v["num_detections"], 300);
    let f = &v["features"].as_array().unwrap()[299]["properties"];
    assert_eq!(f["value"], 300);
    let (x, y) = (18 * tw, 14 * th);
    assert_eq!(f["bbox_pixel"], serde_json::json!([x, y, x + tw, y + th]));

    let out = timed("png");
    let mut reader = png::Decoder::new(std::io::Cursor::new(out.bytes))
        .read_info()
        .unwrap();
    assert_eq!((reader.info().width, reader.info().height), (side, side));
    assert_eq!(reader.info().bit_depth, png::BitDepth::Sixteen);
    let mut y = 0u32;
    while let Some(row) = reader.next_row().unwrap() {
        for &(px, py) in &probes {
            if py == y {
                let d = row.data();
                let v = u16::from_be_bytes([d[2 * px as usize], d[2 * px as usize + 1]]);
                assert_eq!(v, expected(px, py), "png pixel ({px}, {py})");
            }
        }
        y += 1;
    }
    assert_eq!(y, side);

    let out = timed("geotiff");
    let path = temp_dir("max-pixels-out").join("mask.tif");
    std::fs::write(&path, &out.bytes).unwrap();
    let ds = gdal::Dataset::open(&path).unwrap();
    assert_eq!(ds.raster_size(), (side as usize, side as usize));
    let band = ds.rasterband(1).unwrap();
    assert_eq!(band.band_type(), gdal::raster::GdalDataType::UInt16);
    for &(px, py) in &probes {
        let buf = band
            .read_as::<u16>((px as isize, py as isize), (1, 1), (1, 1), None)
            .unwrap();
        assert_eq!(
            buf.data()[0],
            expected(px, py),
            "geotiff pixel ({px}, {py})"
        );
    }
}

/// A component built against a `samgeo:plugin` version this server does not have (here
/// json.wasm with every `samgeo:plugin…@0.2.0` name rewritten to `@0.9.0`) is skipped, and
/// the reason lists the versions the server supports (issue 14).
#[test]
fn an_unsupported_wit_version_names_the_supported_ones() {
    let mut bytes = std::fs::read(component("json.wasm")).unwrap();
    let (pkg, old) = (b"samgeo:plugin", b"@0.2.0");
    let mut patched = 0;
    let mut i = 0;
    while i + pkg.len() <= bytes.len() {
        if &bytes[i..i + pkg.len()] == pkg {
            let end = (i + 64).min(bytes.len());
            if let Some(k) = bytes[i..end].windows(old.len()).position(|w| w == old) {
                bytes[i + k..i + k + old.len()].copy_from_slice(b"@0.9.0");
                patched += 1;
            }
        }
        i += 1;
    }
    assert!(patched > 0, "json.wasm names no samgeo:plugin@0.2.0 item");
    let dir = temp_dir("wit-version");
    std::fs::write(dir.join("future.wasm"), &bytes).unwrap();
    let host = PluginHost::new(&config(&dir, &[], &[]), &temp_dir("wit-version-cache")).unwrap();
    assert_eq!(host.failed().len(), 1, "{:?}", host.failed());
    let error = &host.failed()[0].error;
    eprintln!("{error}");
    assert!(
        error.contains("0.1.0") && error.contains("0.2.0"),
        "the reason must list the supported versions: {error}"
    );
}

/// A component built from an edited copy of the WIT (testing/misbuilt-wit: `mask.area` is
/// `u32` where samgeo:plugin@0.2.0 has `u64`) carries the real package name, so it binds; it
/// is refused at load time all the same, and the reason names the function and the path of
/// the field (issue 14).
#[test]
fn a_wit_type_mismatch_is_refused_at_load_naming_the_field() {
    let dir = plugin_dir("misbuilt", &["testing/misbuilt-wit.wasm", "json.wasm"]);
    let host = PluginHost::new(
        &config(&dir, &[("json", "json.wasm")], &[]),
        &temp_dir("misbuilt-cache"),
    )
    .unwrap();
    assert_eq!(host.failed().len(), 1, "{:?}", host.failed());
    let failure = &host.failed()[0];
    assert_eq!(failure.file, "misbuilt-wit.wasm");
    let error = &failure.error;
    eprintln!("{error}");
    assert!(
        error.contains(
            "samgeo:plugin/formatter@0.2.0#format: parameter req.masks.masks[].area: expected u64, found u32"
        ),
        "the reason must name the function and the field path: {error}"
    );
    assert!(
        error.contains("0.1.0, 0.2.0") || error.contains("0.2.0, 0.1.0"),
        "{error}"
    );
    assert!(!host.format_names().contains(&"misbuilt-wit".to_string()));
    // The rest of the directory still serves.
    host.format("json", &small_request()).unwrap();
}

/// A component whose copied WIT renamed a record field (testing/misbuilt-field: `mask.pixels`
/// for `mask.area`) is refused at load time too, the reason naming the function, the path to
/// the record and both names.
#[test]
fn a_renamed_wit_field_is_refused_at_load_naming_it() {
    let dir = plugin_dir(
        "misbuilt-field",
        &["testing/misbuilt-field.wasm", "json.wasm"],
    );
    let host = PluginHost::new(
        &config(&dir, &[("json", "json.wasm")], &[]),
        &temp_dir("misbuilt-field-cache"),
    )
    .unwrap();
    assert_eq!(host.failed().len(), 1, "{:?}", host.failed());
    let failure = &host.failed()[0];
    assert_eq!(failure.file, "misbuilt-field.wasm");
    let error = &failure.error;
    eprintln!("{error}");
    assert!(
        error.contains("samgeo:plugin/formatter@0.2.0#format: parameter req.masks.masks[]"),
        "the reason must name the function and the path: {error}"
    );
    assert!(
        error.contains("expected record field named area, found pixels"),
        "the reason must name both fields: {error}"
    );
    assert!(!host.format_names().contains(&"misbuilt-field".to_string()));
    host.format("json", &small_request()).unwrap();
}

/// A tiled run's result may be far above `server.max_pixels`: a 20000 x 20000 mask set with a
/// few small masks (one label above 255, so UInt16: the whole raster would be 800 MB) formats
/// to GeoTIFF inside the default plugin memory limit, because the raster is painted and
/// deflated one strip at a time; GDAL reads back its size, CRS, geotransform and painted
/// values. The png formatter refuses it with a 400 naming geotiff (issue 15, item 3).
#[test]
fn a_20000_square_result_is_a_geotiff_within_the_memory_limit_and_not_a_png() {
    use samgeo_host::config::PluginsConfig;
    use samgeo_host::masks::MaskSet;

    let side = 20_000u32;
    let limit = PluginsConfig::default().memory_limit_bytes;
    assert!(u64::from(side) * u64::from(side) * 2 > limit);
    let dir = plugin_dir("20k", &["geotiff.wasm", "png.wasm"]);
    let mut config = config(
        &dir,
        &[("geotiff", "geotiff.wasm"), ("png", "png.wasm")],
        &[],
    );
    config.memory_limit_bytes = limit;
    // Only memory is under test; a loaded CI machine must not turn this into a timeout.
    config.call_timeout_ms = 600_000;
    let host = PluginHost::new(&config, &temp_dir("20k-cache")).unwrap();
    let mut req = small_request();
    req.masks = MaskSet {
        width: side,
        height: side,
        masks: vec![
            rect(1, 10, 20, 30, 40),
            rect(2, 19_950, 0, 50, 60),
            rect(300, 5_000, 19_990, 200, 10),
            rect(4, 12_345, 9_876, 3, 3),
        ],
    };
    req.georef.geotransform = Some([500_000.0, 0.5, 0.0, 6_100_000.0, 0.0, -0.5]);

    let out = host.format("geotiff", &req).unwrap();
    let path = temp_dir("20k-out").join("mask.tif");
    std::fs::write(&path, &out.bytes).unwrap();
    let ds = gdal::Dataset::open(&path).unwrap();
    assert_eq!(ds.raster_size(), (side as usize, side as usize));
    assert_eq!(
        ds.geo_transform().unwrap(),
        [500_000.0, 0.5, 0.0, 6_100_000.0, 0.0, -0.5]
    );
    assert_eq!(ds.spatial_ref().unwrap().auth_code().unwrap(), 32633);
    let band = ds.rasterband(1).unwrap();
    assert_eq!(band.band_type(), gdal::raster::GdalDataType::UInt16);
    assert_eq!(band.no_data_value(), Some(0.0));
    for (x, y, want) in [
        (10, 20, 1u16),
        (39, 59, 1),
        (40, 59, 0),
        (19_999, 0, 2),
        (19_950, 59, 2),
        (5_000, 19_999, 300),
        (5_199, 19_990, 300),
        (12_346, 9_877, 4),
        (12_349, 9_877, 0),
        (10_000, 10_000, 0),
    ] {
        let buf = band
            .read_as::<u16>((x as isize, y as isize), (1, 1), (1, 1), None)
            .unwrap();
        assert_eq!(buf.data()[0], want, "pixel ({x}, {y})");
    }
    let _ = std::fs::remove_file(&path);

    let err = host.format("png", &req).unwrap_err();
    assert_eq!(err.status_code(), 400, "{err}");
    assert!(err.to_string().contains("geotiff"), "{err}");
}
