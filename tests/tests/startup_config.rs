//! Start-up refuses a configuration the operator did not mean: a `--config` file that is
//! missing or unreadable, or a CORS origin that is not a valid header value, stops the server
//! with exit code 2 and a message naming it (instead of serving on built-in defaults, or a
//! panic).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `samgeo-api` with `args` in `dir`; its exit code and stderr once it exits (it must
/// within 60 s: a server that starts serving instead fails the test).
fn run_to_exit(dir: &std::path::Path, args: &[&str]) -> (Option<i32>, String) {
    let stderr_path = dir.join("stderr.log");
    let mut child = Command::new(common::server_binary())
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("start samgeo-api");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "samgeo-api {args:?} kept running:\n{}",
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (
        status.code(),
        std::fs::read_to_string(&stderr_path).unwrap_or_default(),
    )
}

#[test]
fn a_named_config_file_must_exist_and_be_readable() {
    let dir = common::temp_dir("startup-config");
    let missing = dir.join("no-such.toml");
    let missing = missing.to_str().unwrap();
    // A free port on loopback, in case the server wrongly starts.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let (code, stderr) = run_to_exit(
        &dir,
        &["--config", missing, "--host", "127.0.0.1", "--port", &port],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains(missing), "names the path: {stderr}");

    // A directory is not a readable file.
    let as_dir = dir.join("conf.d");
    std::fs::create_dir_all(&as_dir).unwrap();
    let as_dir = as_dir.to_str().unwrap();
    let (code, stderr) = run_to_exit(
        &dir,
        &["--config", as_dir, "--host", "127.0.0.1", "--port", &port],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains(as_dir), "names the path: {stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_invalid_cors_origin_is_a_start_up_error() {
    let dir = common::temp_dir("startup-cors");
    let mut config = common::base_config(&dir, 1);
    config["server"].as_table_mut().unwrap().insert(
        "cors_origins".into(),
        toml::Value::Array(vec![
            "https://ok.example".into(),
            "https://bad\norigin".into(),
        ]),
    );
    let path = dir.join("samgeo.toml");
    std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
    let (code, stderr) = run_to_exit(&dir, &["--config", path.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("cors_origins") && stderr.contains("bad\\norigin"),
        "names the origin: {stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
