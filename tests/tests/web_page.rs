//! The web page's HTTP side against a spawned `samgeo-api`: `/` and its assets (public, typed,
//! cacheable), `/ui/config.json`, `[web] enabled = false`, and the stored image's preview and map
//! tiles. What the page does in a browser is tested by `tests/browser/run.mjs`.

mod common;

use common::rasters::Scene;
use common::{detail, Server};

fn with_key(key: &str) -> impl FnOnce(&mut toml::Table) + '_ {
    move |config| {
        config["server"]
            .as_table_mut()
            .unwrap()
            .insert("api_key".into(), key.into());
    }
}

#[test]
fn the_page_and_its_assets_are_public_typed_and_revalidated() {
    let server = Server::start_with(with_key("k"), &[]);
    let page = server.get("/");
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    let html = page.text().unwrap();
    // Built with the map library (scripts/setup installs it before any build).
    assert!(html.contains("ui/ol.js"), "{html}");
    for (path, kind) in [
        ("/ui/ol.js", "text/javascript"),
        ("/ui/app.js", "text/javascript"),
        ("/ui/ol.css", "text/css"),
        ("/ui/app.css", "text/css"),
    ] {
        let r = server.get(path);
        assert_eq!(r.status(), 200, "{path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind),
            "{path}"
        );
        assert_eq!(r.headers()["cache-control"], "no-cache");
        let etag = r.headers()["etag"].clone();
        let again = server
            .client
            .get(server.url(path))
            .header("If-None-Match", etag)
            .send()
            .unwrap();
        assert_eq!(again.status(), 304, "{path}");
    }
    let config: serde_json::Value = server.get("/ui/config.json").json().unwrap();
    assert_eq!(config["basemap_url"], serde_json::Value::Null);
    assert!(config["map_library"].as_str().unwrap().starts_with("ol "));
    // The API itself still needs the key.
    assert_eq!(server.get("/models").status(), 401);
}

#[test]
fn the_basemap_is_passed_to_the_page_and_allowed_by_its_policy() {
    let server = Server::start_with(
        |config| {
            let mut web = toml::Table::new();
            web.insert(
                "basemap_url".into(),
                "https://tiles.example/{z}/{x}/{y}.png".into(),
            );
            config.insert("web".into(), web.into());
        },
        &[],
    );
    let config: serde_json::Value = server.get("/ui/config.json").json().unwrap();
    assert_eq!(
        config["basemap_url"],
        "https://tiles.example/{z}/{x}/{y}.png"
    );
    let page = server.get("/");
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("img-src 'self' data: blob: https://tiles.example;"),
        "{csp}"
    );
}

#[test]
fn the_page_can_be_switched_off() {
    let server = Server::start_with(
        |config| {
            let mut web = toml::Table::new();
            web.insert("enabled".into(), false.into());
            config.insert("web".into(), web.into());
        },
        &[],
    );
    assert_eq!(server.get("/").status(), 404);
    assert_eq!(server.get("/ui/app.js").status(), 404);
    assert_eq!(server.get("/health").status(), 200);
}

#[test]
fn a_stored_image_has_a_preview_and_map_tiles() {
    let server = Server::start();
    let stored: serde_json::Value = server
        .post_form(
            "/images",
            Some(("square.tif", Scene::red_square().geotiff())),
            &[],
        )
        .json()
        .unwrap();
    let id = stored["image_id"].as_str().unwrap().to_string();
    let preview = server.get(&format!("/images/{id}/preview.png"));
    assert_eq!(preview.status(), 200);
    assert_eq!(preview.headers()["content-type"], "image/png");
    assert_eq!(preview.headers()["x-samgeo-bounds-crs"], "EPSG:3857");
    let bounds: Vec<f64> = preview.headers()["x-samgeo-bounds"]
        .to_str()
        .unwrap()
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(bounds.len(), 4);
    assert!(bounds[0] < bounds[2] && bounds[1] < bounds[3], "{bounds:?}");
    let png = preview.bytes().unwrap();
    assert_eq!(&png[1..4], b"PNG");

    // The tile under the image's WGS84 centre at zoom 12 is a 256×256 PNG.
    let [w, s, e, n] = [0, 1, 2, 3].map(|i| stored["bounds_wgs84"][i].as_f64().unwrap());
    let (lon, lat) = ((w + e) / 2.0, (s + n) / 2.0);
    let z = 12u32;
    let scale = (1u64 << z) as f64;
    let x = ((lon + 180.0) / 360.0 * scale) as u32;
    let lat_r = lat.to_radians();
    let y = ((1.0 - (lat_r.tan() + 1.0 / lat_r.cos()).ln() / std::f64::consts::PI) / 2.0 * scale)
        as u32;
    let tile = server.get(&format!("/images/{id}/tiles/{z}/{x}/{y}.png"));
    assert_eq!(tile.status(), 200);
    let bytes = tile.bytes().unwrap();
    // PNG signature, then IHDR: width and height as big-endian u32 at bytes 16 and 20.
    assert_eq!(&bytes[1..4], b"PNG");
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    assert_eq!((be(16), be(20)), (256, 256));

    // Bad requests answer with a detail.
    let (status, text) = detail(server.get(&format!("/images/{id}/tiles/40/0/0.png")));
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("zoom"), "{text}");
    let (status, text) = detail(server.get(&format!("/images/{id}/tiles/1/a/0.png")));
    assert_eq!(status, 400, "{text}");
    let unknown = "0".repeat(64);
    let (status, _) = detail(server.get(&format!("/images/{unknown}/preview.png")));
    assert_eq!(status, 404);
}
