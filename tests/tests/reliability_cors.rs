//! Reliability: CORS allows no origin unless configured, and then only the configured ones
//! (errors included, so a browser client can read the detail), never with credentials.

mod common;

use common::rasters::Scene;
use common::{Form, Part, Server};

const ACAO: &str = "access-control-allow-origin";

fn get_health(server: &Server, origin: &str) -> reqwest::blocking::Response {
    server
        .client
        .get(server.url("/health"))
        .header("origin", origin)
        .send()
        .unwrap()
}

fn preflight(server: &Server, origin: &str) -> reqwest::blocking::Response {
    server
        .client
        .request(reqwest::Method::OPTIONS, server.url("/segment/predict"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .unwrap()
}

#[test]
fn no_cors_headers_by_default() {
    let server = Server::start();
    for origin in ["http://evil.example", "null", "http://127.0.0.1"] {
        let r = get_health(&server, origin);
        assert_eq!(r.status().as_u16(), 200);
        assert!(
            r.headers().get(ACAO).is_none(),
            "{origin}: {:?}",
            r.headers()
        );
        let r = preflight(&server, origin);
        assert!(
            r.headers().get(ACAO).is_none(),
            "preflight {origin}: {:?}",
            r.headers()
        );
        assert!(r.headers().get("access-control-allow-methods").is_none());
    }
}

#[test]
fn only_the_configured_origin_is_allowed() {
    let server = Server::start_with(
        |c| {
            let s = c["server"].as_table_mut().unwrap();
            s.insert(
                "cors_origins".into(),
                toml::Value::Array(vec!["http://gis.example".into()]),
            );
        },
        &[],
    );
    let r = get_health(&server, "http://gis.example");
    assert_eq!(
        r.headers().get(ACAO).map(|v| v.to_str().unwrap()),
        Some("http://gis.example")
    );
    assert!(r
        .headers()
        .get("access-control-allow-credentials")
        .is_none());
    let r = preflight(&server, "http://gis.example");
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(
        r.headers().get(ACAO).map(|v| v.to_str().unwrap()),
        Some("http://gis.example")
    );
    let methods = r.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(methods.contains("POST"), "{methods}");

    // An error answer carries the header too, so the browser client can read its detail.
    let form = Form::new()
        .part(
            "file",
            Part::bytes(Scene::red_square().geotiff()).file_name("s.tif"),
        )
        .text("point_coords", "[[5000, 1]]");
    let r = server
        .client
        .post(server.url("/segment/predict"))
        .header("origin", "http://gis.example")
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(
        r.headers().get(ACAO).map(|v| v.to_str().unwrap()),
        Some("http://gis.example")
    );

    for origin in [
        "http://evil.example",
        "http://gis.example.evil.example",
        "https://gis.example",
        "null",
    ] {
        let r = get_health(&server, origin);
        assert!(
            r.headers().get(ACAO).is_none(),
            "{origin}: {:?}",
            r.headers()
        );
        let r = preflight(&server, origin);
        assert!(
            r.headers().get(ACAO).is_none(),
            "preflight {origin}: {:?}",
            r.headers()
        );
    }
}

/// `cors_origins = ["*"]` starts (tower-http's origin list would panic on it) and allows any
/// origin with `*`, never with credentials.
#[test]
fn a_wildcard_allows_any_origin_without_credentials() {
    let server = Server::start_with(
        |c| {
            let s = c["server"].as_table_mut().unwrap();
            s.insert("cors_origins".into(), toml::Value::Array(vec!["*".into()]));
        },
        &[],
    );
    for origin in ["http://gis.example", "https://other.example:8443", "null"] {
        let r = get_health(&server, origin);
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(
            r.headers().get(ACAO).map(|v| v.to_str().unwrap()),
            Some("*"),
            "{origin}"
        );
        assert!(r
            .headers()
            .get("access-control-allow-credentials")
            .is_none());
        let r = preflight(&server, origin);
        assert!(r.status().is_success(), "{}", r.status());
        assert_eq!(
            r.headers().get(ACAO).map(|v| v.to_str().unwrap()),
            Some("*")
        );
    }
}
