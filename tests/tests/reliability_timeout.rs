//! Reliability: a request past `server.request_timeout_secs` gets 504 naming the limit, soon
//! after the limit; its work stops within the decoder batch it was in, and only then is its
//! inference slot released (so abandoned work never runs beside the next request): with one
//! slot, a quick predict soon after succeeds, and the server's CPU goes quiet instead of
//! finishing the abandoned work. (That the slot is held until the work stops is proved
//! deterministically by `cache::limiter`'s unit tests.)

mod common;

use std::time::{Duration, Instant};

use common::rasters::Scene;
use common::{detail, Server};

/// CPU time (user + system) of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name in parentheses; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn past_the_time_limit_is_504_and_the_slot_is_released() {
    let server = Server::start_with(
        |c| {
            let s = c["server"].as_table_mut().unwrap();
            s.insert("request_timeout_secs".into(), toml::Value::Integer(1));
            s.insert("max_concurrent_inferences".into(), toml::Value::Integer(1));
            s.insert("max_queued_requests".into(), toml::Value::Integer(0));
        },
        &[
            "--preload",
            "sam:vit_h",
            "--preload",
            "sam2:sam2-hiera-large",
        ],
    );
    let bytes = Scene::three_objects_1024().geotiff();

    // 64×64 = 4096 prompts through the decoder, 16 at a time: minutes of work.
    let started = Instant::now();
    let r = server.post_form(
        "/segment/automatic",
        Some(("big.tif", bytes.clone())),
        &[
            ("model_version", "sam"),
            ("points_per_side", "64"),
            ("points_per_batch", "16"),
        ],
    );
    let took = started.elapsed();
    let (status, d) = detail(r);
    eprintln!("slow automatic: {status} after {took:?}: {d}");
    assert_eq!(status, 504, "{d}");
    assert!(
        d.contains("limit of 1 s"),
        "the detail names the limit: {d}"
    );
    assert!(
        took < Duration::from_secs(3),
        "504 came {took:?} after a 1 s limit"
    );

    // The only slot comes free once the abandoned work has stopped, within one decoder batch
    // (no queue: while it is held, 503 at once).
    let started = Instant::now();
    let (status, busy) = loop {
        let r = server.post_form(
            "/segment/predict",
            Some(("small.tif", Scene::red_square().geotiff())),
            &[("point_coords", "[[200, 150]]")],
        );
        let status = r.status().as_u16();
        if status != 503 || started.elapsed() > Duration::from_secs(20) {
            break (status, r.text().unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let quick = started.elapsed();
    eprintln!("quick predict after the 504: {status} {quick:?} later");
    assert_eq!(status, 200, "{busy}");

    // The abandoned generation stops within the decoder batch it was in: the server goes
    // quiet (a 500 ms window under 15% of a core) within a few seconds, where without the
    // per-batch deadline check it keeps a core busy for the whole generation (minutes).
    let ticks_per_sec = 100.0; // Linux USER_HZ
    let window = Duration::from_millis(500);
    let watching = Instant::now();
    let quiet_after = loop {
        let before = cpu_ticks(server.pid());
        std::thread::sleep(window);
        let busy = (cpu_ticks(server.pid()) - before) as f64 / ticks_per_sec / window.as_secs_f64();
        if busy < 0.15 {
            break watching.elapsed();
        }
        assert!(
            watching.elapsed() < Duration::from_secs(20),
            "the timed-out work kept running: {:.0}% CPU 20 s after the 504",
            busy * 100.0
        );
    };
    eprintln!("server quiet {quiet_after:?} after the quick predict");

    assert_eq!(server.get("/health").status().as_u16(), 200);
}

/// A client that starts an upload and stalls gets 408 with a detail once the time limit has
/// passed, instead of holding its connection (and the part of the body it sent) forever.
#[test]
fn a_stalled_upload_is_cut_off_at_the_time_limit() {
    use std::io::{Read, Write};
    let server = Server::start_with(
        |c| {
            let s = c["server"].as_table_mut().unwrap();
            s.insert("request_timeout_secs".into(), toml::Value::Integer(2));
        },
        &[],
    );
    let address = server.base.trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    let head = "POST /segment/predict HTTP/1.1\r\nHost: localhost\r\n\
                Content-Type: multipart/form-data; boundary=B\r\nContent-Length: 100000\r\n\r\n\
                --B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.tif\"\r\n\r\nII*\0";
    stream.write_all(head.as_bytes()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
                    break;
                }
            }
            Err(e) => panic!(
                "no answer {:?} after the upload stalled: {e}",
                started.elapsed()
            ),
        }
    }
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&answer).to_string();
    eprintln!("stalled upload answered after {took:?}:\n{text}");
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        text.contains("\"detail\"") && text.contains("2 s"),
        "{text}"
    );
    assert!(took < Duration::from_secs(5), "answered after {took:?}");
    assert_eq!(server.get("/health").status().as_u16(), 200);
}
