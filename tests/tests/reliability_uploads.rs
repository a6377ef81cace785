//! Reliability: the bytes of uploads received or held at once are bounded by
//! `server.max_buffered_upload_bytes`. While one client slowly sends a large body, another
//! whose body would pass the bound gets 503 with Retry-After (it is not buffered); once the
//! first is gone, the same request succeeds.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::rasters::Scene;
use common::Server;

const MAX_UPLOAD: i64 = 1024 * 1024;
/// Room for the stalled upload and 4 KiB more: less than the second request's body.
const BUDGET: i64 = MAX_UPLOAD + 4096;

#[test]
fn uploads_past_the_buffer_budget_get_503_with_retry_after() {
    let server = Server::start_with(
        |c| {
            let s = c["server"].as_table_mut().unwrap();
            s.insert("max_upload_bytes".into(), toml::Value::Integer(MAX_UPLOAD));
            s.insert(
                "max_buffered_upload_bytes".into(),
                toml::Value::Integer(BUDGET),
            );
        },
        &[],
    );
    let image = Scene::red_square().geotiff();
    assert!(
        image.len() > 4096,
        "the second body must not fit the room left"
    );
    let predict = || {
        server.post_form(
            "/segment/predict",
            Some(("s.tif", image.clone())),
            &[("point_coords", "[[200, 150]]")],
        )
    };
    // Nothing else in flight: it fits.
    assert_eq!(predict().status().as_u16(), 200);

    // A client declares the largest body allowed and sends only its start.
    let address = server.base.trim_start_matches("http://").to_string();
    let mut slow = std::net::TcpStream::connect(&address).unwrap();
    let head = format!(
        "POST /segment/predict HTTP/1.1\r\nHost: localhost\r\n\
         Content-Type: multipart/form-data; boundary=B\r\nContent-Length: {MAX_UPLOAD}\r\n\r\n\
         --B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.tif\"\r\n\r\nII*\0"
    );
    slow.write_all(head.as_bytes()).unwrap();
    slow.flush().unwrap();
    // Its reservation is in force before anything else is sent (otherwise a request sent now
    // could be admitted first, and the slow one refused instead).
    let started = Instant::now();
    loop {
        let held = upload_bytes_held(&server);
        if held == MAX_UPLOAD as f64 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the slow upload was never admitted: samgeo_upload_bytes_held = {held}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // Meanwhile another request is refused.
    let refused = predict();
    assert_eq!(refused.status().as_u16(), 503);
    let retry_after = refused
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let (_, detail) = common::detail(refused);
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert!(
        detail.contains("busy") && detail.contains("max_buffered_upload_bytes"),
        "{detail}"
    );
    assert_eq!(server.get("/health").status().as_u16(), 200);

    // The slow client goes away: its reservation is given back, and the request succeeds.
    drop(slow);
    let started = Instant::now();
    loop {
        let r = predict();
        let status = r.status().as_u16();
        if status == 200 {
            break;
        }
        assert!(
            status == 503 && started.elapsed() < Duration::from_secs(20),
            "{status} {}",
            r.text().unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `samgeo_upload_bytes_held` from `/metrics`.
fn upload_bytes_held(server: &Server) -> f64 {
    let text = server.get("/metrics").text().unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("samgeo_upload_bytes_held "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no samgeo_upload_bytes_held in /metrics:\n{text}"))
}
