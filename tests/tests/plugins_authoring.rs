//! The plugin author's path, black-box: `scripts/new-plugin` makes a formatter and a filter in a
//! temporary directory outside the repository (depending on the SDK by path), cargo builds
//! them, and they are dropped into a running server next to a WIT 0.1.0 component; then
//! declared parameters, per-request filters, reloading `[plugins]` from the config file and
//! option precedence, all over HTTP.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::rasters::Scene;
use common::{detail, Server};
use serde_json::Value;

/// Runs `scripts/new-plugin NAME --kind KIND --dir DIR/NAME` and builds the crate for
/// wasm32-wasip2; returns the component.
fn new_plugin(dir: &Path, name: &str, kind: &str) -> PathBuf {
    let root = common::repo_root();
    let crate_dir = dir.join(name);
    let status = Command::new(root.join("scripts/new-plugin"))
        .args([name, "--kind", kind, "--dir"])
        .arg(&crate_dir)
        .status()
        .expect("scripts/new-plugin runs");
    assert!(status.success(), "scripts/new-plugin {name} failed");
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

#[test]
fn new_plugin_crates_built_out_of_tree_serve_from_a_running_server() {
    let started = Instant::now();
    let outside = common::temp_dir("authoring");
    let kml = new_plugin(&outside, "kml", "formatter");
    let compact = new_plugin(&outside, "compact", "filter");

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
    let body = r.text().unwrap();
    eprintln!(
        "scripts/new-plugin to a served response: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let count: usize = body.trim().parse().unwrap_or_else(|_| panic!("{body}"));
    assert!(count >= 1, "{body}");

    // GET /plugins: versions, declared parameters, chain membership.
    let listed: Value = server.get("/plugins").json().unwrap();
    let k = plugin(&listed, "kml");
    assert_eq!(k["wit_version"], "0.2.0", "{k}");
    assert_eq!(k["version"], "0.1.0", "{k}");
    assert_eq!(k["params"][0]["name"], "suffix", "{k}");
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
        body.trim(),
        "0.1.0 and 0.2.0 agree"
    );

    // Per-request filters, after the chain, with declared parameters checked.
    let r = ask(&[("filters", "compact"), ("min_score", "2")]);
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.text().unwrap(), "0\n", "compact dropped every mask");
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
    assert_eq!(ask(&[]).text().unwrap(), "0\n", "the chained filter ran");
    // An empty form field does not override the operator's option; a value does.
    assert_eq!(ask(&[("min_score", "")]).text().unwrap(), "0\n");
    assert_eq!(
        ask(&[("min_score", "0")]).text().unwrap().trim(),
        body.trim()
    );

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
    assert_eq!(
        ask(&[]).text().unwrap(),
        "0\n",
        "the previous settings stay"
    );

    let _ = std::fs::remove_dir_all(plugin_dir);
    let _ = std::fs::remove_dir_all(outside);
}
