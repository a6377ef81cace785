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

    // Meanwhile another request is refused (once the slow one has been admitted).
    let started = Instant::now();
    let refused = loop {
        let r = predict();
        if r.status().as_u16() == 503 {
            break r;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never refused while {MAX_UPLOAD} of {BUDGET} bytes were reserved: {} {}",
            r.status(),
            r.text().unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
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
