//! nginx in front of test replicas, running the repository's own `deploy/nginx.conf`: the test
//! rewrites only what must differ on a test machine (the listen port, the replica addresses,
//! and the log and temp paths, into a temporary directory so that it runs without root), and
//! fails when the file no longer has the lines it rewrites.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running nginx on a free loopback port; stopped (SIGTERM, then SIGKILL) on drop.
pub struct Nginx {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
}

impl Nginx {
    /// Starts nginx with `deploy/nginx.conf` proxying to the replicas on `replica_ports`, or
    /// `None` (after [`super::skip`]) when nginx is not installed.
    pub fn start(test: &str, replica_ports: &[u16]) -> Option<Nginx> {
        let Some(binary) = super::cluster::nginx_binary() else {
            super::skip(test, "nginx is not installed (scripts/setup installs it)");
            return None;
        };
        let dir = super::temp_dir("nginx");
        let port = super::free_port();
        let source = super::repo_root().join("deploy/nginx.conf");
        let text = std::fs::read_to_string(&source)
            .unwrap_or_else(|e| panic!("{}: {e}", source.display()));
        let config = dir.join("nginx.conf");
        std::fs::write(&config, render(&text, port, replica_ports, &dir)).unwrap();
        let out = std::fs::File::create(dir.join("nginx.out")).unwrap();
        let child = Command::new(binary)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&config)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-g")
            .arg(format!(
                "daemon off; pid {}; error_log {} info;",
                dir.join("nginx.pid").display(),
                dir.join("error.log").display()
            ))
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .expect("start nginx");
        let mut nginx = Nginx {
            child: Some(child),
            port,
            dir,
        };
        nginx.wait_listening();
        Some(nginx)
    }

    fn wait_listening(&mut self) {
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("nginx exited with {status}:\n{}", self.log());
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "nginx did not listen on {} within 20 s:\n{}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Its output, error log and access log so far.
    pub fn log(&self) -> String {
        ["nginx.out", "error.log", "samgeo-access.log"]
            .iter()
            .map(|name| {
                let text = std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
                format!("--- {name} ---\n{text}")
            })
            .collect()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGTERM lets the master stop its workers; SIGKILL would orphan them.
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let started = Instant::now();
            while child.try_wait().ok().flatten().is_none()
                && started.elapsed() < Duration::from_secs(5)
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("{}", self.log());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `deploy/nginx.conf` for this machine: `listen` on 127.0.0.1:`port`, each upstream's
/// `server 127.0.0.1:...` lines replaced by one line per replica (same parameters), and the
/// log and temp paths under `dir`. Panics when a line it rewrites is missing.
fn render(text: &str, port: u16, replica_ports: &[u16], dir: &Path) -> String {
    let dir = dir.display().to_string();
    let mut out = String::new();
    let (mut listens, mut upstreams, mut in_upstream_done) = (0, 0, false);
    for line in text.lines() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        if trimmed.starts_with("upstream ") {
            in_upstream_done = false;
        }
        if let Some(rest) = trimmed.strip_prefix("listen ") {
            assert!(rest.ends_with(';'), "unexpected listen line: {line}");
            listens += 1;
            out.push_str(&format!("{indent}listen 127.0.0.1:{port};\n"));
        } else if let Some(rest) = trimmed.strip_prefix("server 127.0.0.1:") {
            if !in_upstream_done {
                let params = rest.split_once(' ').map_or(";", |(_, p)| p);
                let params = if params == ";" {
                    ";".to_string()
                } else {
                    format!(" {params}")
                };
                for p in replica_ports {
                    out.push_str(&format!("{indent}server 127.0.0.1:{p}{params}\n"));
                }
                upstreams += 1;
                in_upstream_done = true;
            }
        } else {
            let line = line
                .replace("/var/lib/nginx/samgeo/", &format!("{dir}/"))
                .replace("/var/log/nginx/", &format!("{dir}/"));
            out.push_str(&line);
            out.push('\n');
        }
    }
    assert_eq!(listens, 1, "deploy/nginx.conf: expected one listen line");
    assert!(
        upstreams >= 1,
        "deploy/nginx.conf: no upstream with server 127.0.0.1:... lines"
    );
    assert!(
        !out.contains("/var/"),
        "deploy/nginx.conf: a path this test does not rewrite:\n{out}"
    );
    out
}
