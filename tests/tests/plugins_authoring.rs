//! The plugin author's path, black-box: `scripts/new-plugin` makes a formatter and a filter in a
//! temporary directory outside the repository (depending on the SDK by path), the formatter's
//! `src/lib.rs` becomes the guide's KML formatter (plugins/examples/kml.rs, which
//! plugins/README.md shows verbatim), cargo builds them, and they are dropped into a running
//! server next to a WIT 0.1.0 component; then the KML itself, declared parameters,
//! per-request filters, reloading `[plugins]` from the config file and option precedence, all
//! over HTTP.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::rasters::Scene;
use common::{detail, Server};
use serde_json::Value;

/// Runs `scripts/new-plugin NAME --kind KIND --dir DIR/NAME`, replaces the template's
/// `src/lib.rs` with `source` when given, and builds the crate for wasm32-wasip2; returns the
/// component.
fn new_plugin(dir: &Path, name: &str, kind: &str, source: Option<&Path>) -> PathBuf {
    let root = common::repo_root();
    let crate_dir = dir.join(name);
    let status = Command::new(root.join("scripts/new-plugin"))
        .args([name, "--kind", kind, "--dir"])
        .arg(&crate_dir)
        .status()
        .expect("scripts/new-plugin runs");
    assert!(status.success(), "scripts/new-plugin {name} failed");
    if let Some(source) = source {
        std::fs::copy(source, crate_dir.join("src/lib.rs")).unwrap();
    }
    // One target directory for both crates, kept between runs (the SDK compiles once).
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("plugins-new");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--quiet", "--target", "wasm32-wasip2"])
        .arg("--manifest-path")
        .arg(crate_dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building {name} failed");
    target.join(format!(
        "wasm32-wasip2/release/samgeo_{}.wasm",
        name.replace('-', "_")
    ))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        if entry.path().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

fn plugin<'a>(listed: &'a Value, name: &str) -> &'a Value {
    listed["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{name} not listed: {listed}"))
}

/// The guide's KML formatter: the file the test builds.
fn kml_source() -> PathBuf {
    common::repo_root().join("plugins/examples/kml.rs")
}

/// The code block of plugins/README.md between the `kml-formatter` markers is exactly
/// plugins/examples/kml.rs, so the guide shows the code that is built and served below.
#[test]
fn the_guide_shows_the_kml_formatter_that_is_built() {
    let guide = std::fs::read_to_string(common::repo_root().join("plugins/README.md")).unwrap();
    let begin = "<!-- kml-formatter: begin -->\n```rust\n";
    let end = "```\n<!-- kml-formatter: end -->";
    let from = guide
        .find(begin)
        .expect("begin marker in plugins/README.md")
        + begin.len();
    let to = from
        + guide[from..]
            .find(end)
            .expect("end marker in plugins/README.md");
    let code = std::fs::read_to_string(kml_source()).unwrap();
    assert!(
        guide[from..to] == code,
        "plugins/README.md's KML block differs from plugins/examples/kml.rs"
    );
}

/// Checks a KML document from the guide's formatter over the red-square scene (UTM 18N, near
/// 75° W 36° N): well-formed XML, every coordinate a WGS84 longitude/latitude there; returns
/// the number of Placemarks.
fn check_kml(body: &str) -> usize {
    let doc = roxmltree::Document::parse(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(doc.root_element().tag_name().name(), "kml");
    let mut vertices = 0;
    for node in doc.descendants().filter(|n| n.has_tag_name("coordinates")) {
        for pair in node.text().unwrap_or("").split_whitespace() {
            let (lon, lat) = pair.split_once(',').unwrap();
            let (lon, lat): (f64, f64) = (lon.parse().unwrap(), lat.parse().unwrap());
            assert!((-76.0..-74.0).contains(&lon), "longitude {lon}");
            assert!((35.0..37.0).contains(&lat), "latitude {lat}");
            vertices += 1;
        }
    }
    let placemarks = doc
        .descendants()
        .filter(|n| n.has_tag_name("Placemark"))
        .count();
    assert!(placemarks == 0 || vertices >= 4 * placemarks, "{body}");
    placemarks
}

#[test]
fn new_plugin_crates_built_out_of_tree_serve_from_a_running_server() {
    let started = Instant::now();
    let outside = common::temp_dir("authoring");
    let kml = new_plugin(&outside, "kml", "formatter", Some(&kml_source()));
    let compact = new_plugin(&outside, "compact", "filter", None);

    let plugin_dir = common::temp_dir("authoring-plugins");
    copy_dir(&common::plugin_dir(), &plugin_dir);
    let dir_value = plugin_dir.to_string_lossy().to_string();
    let server = Server::start_with(
        |c| {
            c["plugins"]
                .as_table_mut()
                .unwrap()
                .insert("directory".into(), dir_value.into());
        },
        &[],
    );
    std::fs::copy(&kml, plugin_dir.join("kml.wasm")).unwrap();
    std::fs::copy(&compact, plugin_dir.join("compact.wasm")).unwrap();
    // A component built against samgeo:plugin@0.1.0, next to the 0.2.0 ones.
    std::fs::copy(
        common::plugin_dir().join("testing/v0-1-count.wasm"),
        plugin_dir.join("v0-1-count.wasm"),
    )
    .unwrap();
    let reload = || {
        server
            .client
            .post(server.url("/plugins/reload"))
            .send()
            .unwrap()
    };
    let r = reload();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().unwrap());

    let scene = Scene::red_square();
    let ask = |fields: &[(&str, &str)]| {
        let mut all = vec![("point_coords", "[[200, 150]]"), ("output_format", "kml")];
        all.extend_from_slice(fields);
        server.post_form(
            "/segment/predict",
            Some(("scene.tif", scene.geotiff())),
            &all,
        )
    };
    let r = ask(&[]);
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/vnd.google-earth.kml+xml"));
    let body = r.text().unwrap();
    eprintln!(
        "scripts/new-plugin to a served response: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // One Placemark per mask (X-Samgeo-Masks would say the same), the red square among them.
    let count = check_kml(&body);
    assert!(count >= 1, "{body}");
    assert!(body.contains("<name>mask 1</name>"), "{body}");
    let named = ask(&[("name", "field & <square>")]).text().unwrap();
    assert_eq!(check_kml(&named), count);
    assert!(
        named.contains("<name>field &amp; &lt;square&gt; 1</name>"),
        "{named}"
    );
    let masks_header = ask(&[]).headers()["x-samgeo-masks"]
        .to_str()
        .unwrap()
        .parse::<usize>()
        .unwrap();
    assert_eq!(count, masks_header, "one Placemark per mask");

    // GET /plugins: versions, declared parameters, chain membership.
    let listed: Value = server.get("/plugins").json().unwrap();
    let k = plugin(&listed, "kml");
    assert_eq!(k["wit_version"], "0.2.0", "{k}");
    assert_eq!(k["version"], "0.1.0", "{k}");
    assert_eq!(k["params"][0]["name"], "name", "{k}");
    assert_eq!(k["params"][0]["type"], "string", "{k}");
    let c = plugin(&listed, "compact");
    assert_eq!(c["kind"], "filter");
    assert_eq!(c["in_chain"], false, "{c}");
    assert_eq!(c["params"][0]["name"], "min_score", "{c}");
    assert_eq!(c["params"][0]["type"], "number", "{c}");
    assert_eq!(plugin(&listed, "size")["in_chain"], true);
    let old = plugin(&listed, "count-v0-1");
    assert_eq!(old["wit_version"], "0.1.0", "{old}");
    let r = server.post_form(
        "/segment/predict",
        Some(("scene.tif", scene.geotiff())),
        &[
            ("point_coords", "[[200, 150]]"),
            ("output_format", "count-v0-1"),
        ],
    );
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.text().unwrap().trim(),
        count.to_string(),
        "0.1.0 and 0.2.0 agree"
    );

    // Per-request filters, after the chain, with declared parameters checked.
    let r = ask(&[("filters", "compact"), ("min_score", "2")]);
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        check_kml(&r.text().unwrap()),
        0,
        "compact dropped every mask"
    );
    let (status, d) = detail(ask(&[("filters", "compact"), ("min_score", "abc")]));
    assert_eq!(status, 400, "{d}");
    assert!(d.contains("'compact'") && d.contains("'min_score'"), "{d}");
    let (status, d) = detail(ask(&[("filters", "nope")]));
    assert_eq!(status, 400, "{d}");
    assert!(d.contains("'nope'") && d.contains("compact"), "{d}");

    // Chaining the filter with an option, by editing [plugins] and reloading.
    let config_path = server.work.join("samgeo.toml");
    let mut config: toml::Table = std::fs::read_to_string(&config_path)
        .unwrap()
        .parse()
        .unwrap();
    let plugins = config["plugins"].as_table_mut().unwrap();
    plugins.insert(
        "filters".into(),
        toml::Value::Array(vec!["size.wasm".into(), "compact.wasm".into()]),
    );
    let mut options = toml::Table::new();
    let mut compact_options = toml::Table::new();
    compact_options.insert("min_score".into(), "2".into());
    options.insert("compact".into(), toml::Value::Table(compact_options));
    plugins.insert("options".into(), toml::Value::Table(options));
    std::fs::write(&config_path, toml::to_string(&config).unwrap()).unwrap();
    let r = reload();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().unwrap());
    let listed: Value = server.get("/plugins").json().unwrap();
    assert_eq!(plugin(&listed, "compact")["in_chain"], true);
    let placemarks = |fields: &[(&str, &str)]| check_kml(&ask(fields).text().unwrap());
    assert_eq!(placemarks(&[]), 0, "the chained filter ran");
    // An empty form field does not override the operator's option; a value does.
    assert_eq!(placemarks(&[("min_score", "")]), 0);
    assert_eq!(placemarks(&[("min_score", "0")]), count);

    // Per-request filters switched off.
    config["plugins"]
        .as_table_mut()
        .unwrap()
        .insert("allow_request_filters".into(), false.into());
    std::fs::write(&config_path, toml::to_string(&config).unwrap()).unwrap();
    assert_eq!(reload().status().as_u16(), 200);
    let (status, d) = detail(ask(&[("filters", "compact")]));
    assert_eq!(status, 400, "{d}");
    assert!(d.contains("allow_request_filters"), "{d}");

    // A configuration whose option has the wrong type is refused; nothing changes.
    config["plugins"]["options"]["compact"]
        .as_table_mut()
        .unwrap()
        .insert("min_score".into(), "lots".into());
    std::fs::write(&config_path, toml::to_string(&config).unwrap()).unwrap();
    let (status, d) = detail(reload());
    assert_eq!(status, 400, "{d}");
    assert!(d.contains("plugins.options.compact.min_score"), "{d}");
    assert_eq!(placemarks(&[]), 0, "the previous settings stay");

    let _ = std::fs::remove_dir_all(plugin_dir);
    let _ = std::fs::remove_dir_all(outside);
}
