//! Embeds the vendored map library (OpenLayers, `web/node_modules/ol`, installed by
//! `scripts/setup` with `npm ci`) into the binary. When it is missing (a fresh checkout before
//! `scripts/setup`), the build still succeeds and the page at `GET /` says to run the setup.

use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let web = manifest.join("../web");
    let ol = web.join("node_modules/ol");
    // A directory is scanned recursively for changes: `npm ci` there rebuilds the host.
    println!("cargo:rerun-if-changed={}", web.display());
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));
    let js = ol.join("dist/ol.js");
    let css = ol.join("ol.css");
    let code = match (js.is_file(), css.is_file()) {
        (true, true) => format!(
            "/// OpenLayers' prebuilt bundle and stylesheet, and its version.\n\
             pub const VENDORED: Option<Vendored> = Some(Vendored {{ ol_js: include_bytes!({}), ol_css: include_bytes!({}), version: {:?} }});\n",
            literal(&js),
            literal(&css),
            version(&ol.join("package.json")),
        ),
        _ => "/// OpenLayers was not installed when the server was built.\npub const VENDORED: Option<Vendored> = None;\n".to_string(),
    };
    std::fs::write(out.join("web_vendored.rs"), code).expect("OUT_DIR is writable");
}

/// A path as a Rust string literal.
fn literal(path: &Path) -> String {
    format!("{:?}", path.display().to_string())
}

/// The `version` of an npm package.json, without a JSON parser: the first `"version": "x"`.
fn version(package_json: &Path) -> String {
    let text = std::fs::read_to_string(package_json).unwrap_or_default();
    text.split("\"version\"")
        .nth(1)
        .and_then(|rest| rest.split('"').nth(1))
        .unwrap_or("unknown")
        .to_string()
}
