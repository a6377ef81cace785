//! Reliability: SIGTERM stops accepting connections, lets the request in flight finish with 200
//! and exits with code 0 within `server.shutdown_grace_secs`; a request longer than the grace
//! period does not keep the process alive past it.

mod common;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::rasters::Scene;
use common::Server;

fn sigterm(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn server(grace_secs: i64) -> Server {
    Server::start_with(
        |c| {
            let s = c["server"].as_table_mut().unwrap();
            s.insert(
                "shutdown_grace_secs".into(),
                toml::Value::Integer(grace_secs),
            );
        },
        &["--preload", "sam:vit_h"],
    )
}

/// Starts an automatic request of `points_per_side` in a thread; returns the thread and when
/// the request was sent.
fn slow_request(
    server: &Server,
    points_per_side: u32,
) -> std::thread::JoinHandle<(Result<u16, String>, Duration)> {
    let client = server.client.clone();
    let url = server.url("/segment/automatic");
    let bytes = Scene::three_objects_1024().geotiff();
    std::thread::spawn(move || {
        let started = Instant::now();
        let form = common::Form::new()
            .part("file", common::Part::bytes(bytes).file_name("big.tif"))
            .text("model_version", "sam")
            .text("points_per_side", points_per_side.to_string());
        let result = client
            .post(url)
            .multipart(form)
            .send()
            .map(|r| r.status().as_u16())
            .map_err(|e| e.to_string());
        (result, started.elapsed())
    })
}

#[test]
fn sigterm_finishes_the_request_in_flight_refuses_new_ones_and_exits_0() {
    const GRACE: u64 = 30;
    let mut server = server(GRACE as i64);
    let address = server.base.trim_start_matches("http://").to_string();
    let started = Instant::now();
    let request = slow_request(&server, 16); // ≈ 8 s of work
    std::thread::sleep(Duration::from_millis(1000));
    let signalled_at = started.elapsed();
    sigterm(server.pid());

    // New connections are refused once the signal is handled.
    std::thread::sleep(Duration::from_millis(300));
    let refused = match TcpStream::connect(&address) {
        Err(e) => {
            eprintln!("new connection after SIGTERM: {e}");
            true
        }
        Ok(_) => {
            // Accepted by a backlog that is never served: the request must still fail.
            let fresh = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(3))
                .build()
                .unwrap();
            let r = fresh.get(format!("http://{address}/health")).send();
            eprintln!("new request after SIGTERM: {r:?}");
            r.is_err()
        }
    };

    let (result, took) = request.join().unwrap();
    eprintln!("in-flight request: {result:?} after {took:?} (SIGTERM at {signalled_at:?})");
    assert!(
        took > signalled_at,
        "the request was not in flight at the signal"
    );
    assert_eq!(result, Ok(200), "the request in flight completes");
    assert!(refused, "a new connection after SIGTERM was served");

    let exit_started = Instant::now();
    let code = server.wait_exit(Duration::from_secs(GRACE));
    eprintln!(
        "exit code {code:?}, {:?} after the request finished",
        exit_started.elapsed()
    );
    assert_eq!(
        code,
        Some(0),
        "the process exits with 0 within the grace period"
    );
}

#[test]
fn a_request_longer_than_the_grace_period_does_not_keep_the_process_alive() {
    const GRACE: u64 = 1;
    let mut server = server(GRACE as i64);
    let request = slow_request(&server, 64); // minutes of work
    std::thread::sleep(Duration::from_millis(1000));
    let signalled = Instant::now();
    sigterm(server.pid());
    let code = server.wait_exit(Duration::from_secs(GRACE + 5));
    let took = signalled.elapsed();
    let (result, _) = request.join().unwrap();
    eprintln!("exit {code:?} {took:?} after SIGTERM; the long request got {result:?}");
    assert!(
        code.is_some(),
        "still running {took:?} after SIGTERM with a {GRACE} s grace period"
    );
    assert!(took < Duration::from_secs(GRACE + 3), "exit took {took:?}");
}
