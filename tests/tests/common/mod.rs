//! Test support: a real `samgeo-api` process on a free loopback port with a temporary config,
//! multipart requests, and synthetic GeoTIFFs.
#![allow(dead_code)]

pub mod cluster;
pub mod nginx;
pub mod range_server;
pub mod rasters;

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub use reqwest::blocking::multipart::{Form, Part};
use reqwest::blocking::{Client, Response};

/// The repository root. Read at run time first (cargo sets CARGO_MANIFEST_DIR for tests): a
/// test binary reused from a build cache shared by several checkouts must not point at another.
pub fn repo_root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf()
}

/// The server binary: `SAMGEO_BIN`, else the debug build in the target directory.
pub fn server_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("SAMGEO_BIN") {
        return PathBuf::from(bin);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    let bin = target.join("debug").join("samgeo-api");
    assert!(
        bin.is_file(),
        "{} not found: build it first (cargo build -p samgeo-host), or set SAMGEO_BIN",
        bin.display()
    );
    bin
}

/// Where the built plugin components are.
pub fn plugin_dir() -> PathBuf {
    std::env::var_os("SAMGEO_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/plugins/dist"))
}

/// The real rasters, when `SAMGEO_REAL_DATA` is set.
pub fn real_data() -> Option<PathBuf> {
    let dir = std::env::var_os("SAMGEO_REAL_DATA").map(PathBuf::from);
    if dir.is_none() {
        skip("real-raster cases", "SAMGEO_REAL_DATA is not set");
    }
    dir
}

/// Skips what the caller was about to test because `reason`: a notice, and a line in
/// `SAMGEO_SKIP_LOG` (counted by `scripts/test`); under CI (`CI=true`) a panic, since what is
/// missing is something `scripts/setup` provides.
pub fn skip(test: &str, reason: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: {reason} (under CI a missing prerequisite is a failure)");
    }
    eprintln!("SKIPPED {test}: {reason}");
    if let Some(path) = std::env::var_os("SAMGEO_SKIP_LOG") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{test}: {reason}");
        }
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

static NEXT_DIR: AtomicU32 = AtomicU32::new(0);

/// A fresh, empty temporary directory (removed by [`Server`] on drop).
pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "samgeo-test-{}-{}-{tag}",
        std::process::id(),
        NEXT_DIR.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The configuration the tests start from: demo models, built-in plugins, a private cache dir.
pub fn base_config(work: &Path, port: u16) -> toml::Table {
    let root = repo_root();
    let p = |rel: &str| root.join(rel).to_string_lossy().to_string();
    let ort =
        std::env::var("ORT_DYLIB_PATH").unwrap_or_else(|_| p(".ort/libonnxruntime.so.1.31.1"));
    let text = format!(
        r#"
[server]
host = "127.0.0.1"
port = {port}
cache_dir = "{cache}"
request_timeout_secs = 60

[runtime]
onnxruntime_library = "{ort}"
execution_providers = ["cpu"]
intra_threads = 1

[models.sam.vit_h]
encoder = "{sam_enc}"
decoder = "{sam_dec}"
demo = true

[models.sam2."sam2-hiera-large"]
encoder = "{sam2_enc}"
decoder = "{sam2_dec}"
demo = true

[models.sam3."facebook/sam3"]
encoder = "{sam3_enc}"
decoder = "{sam3_dec}"
language_encoder = "{sam3_lang}"
tokenizer_vocab = "{vocab}"
demo = true

[plugins]
directory = "{plugins}"
"#,
        cache = work.join("cache").display(),
        sam_enc = p("models/demo/sam_encoder.onnx"),
        sam_dec = p("models/demo/sam_decoder.onnx"),
        sam2_enc = p("models/demo/sam2_encoder.onnx"),
        sam2_dec = p("models/demo/sam2_decoder.onnx"),
        sam3_enc = p("models/demo/sam3_image_encoder.onnx"),
        sam3_dec = p("models/demo/sam3_decoder.onnx"),
        sam3_lang = p("models/demo/sam3_language_encoder.onnx"),
        vocab = p("models/vocab/bpe_simple_vocab_16e6.txt.gz"),
        plugins = plugin_dir().display(),
    );
    text.parse().unwrap()
}

/// A running server; killed and its directory removed on drop.
pub struct Server {
    child: Option<Child>,
    pub base: String,
    pub work: PathBuf,
    pub client: Client,
    args: Vec<String>,
}

impl Server {
    /// Starts a server on the base config.
    pub fn start() -> Server {
        Server::start_with(|_| {}, &[])
    }

    /// Starts a server after `edit` changed the config, with extra command-line `args`.
    pub fn start_with(edit: impl FnOnce(&mut toml::Table), args: &[&str]) -> Server {
        let work = temp_dir("server");
        let port = free_port();
        let mut config = base_config(&work, port);
        edit(&mut config);
        let config_path = work.join("samgeo.toml");
        std::fs::write(&config_path, toml::to_string(&config).unwrap()).unwrap();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let child = spawn_server(&work, &args);
        let mut server = Server {
            child: Some(child),
            base: format!("http://127.0.0.1:{port}"),
            work,
            client: Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .unwrap(),
            args,
        };
        server.wait_ready();
        server
    }

    /// Kills the process with SIGKILL (no shutdown at all) and starts it again on the same
    /// port, configuration and cache directory; the log goes on in the same file.
    pub fn kill_and_restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.child = Some(spawn_server(&self.work, &self.args));
        self.wait_ready();
    }

    /// Kills the process with SIGKILL and leaves it dead (its directory stays until drop).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn wait_ready(&mut self) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "samgeo-api exited with {status} before serving:\n{}",
                    self.log()
                );
            }
            if let Ok(r) = self.client.get(self.url("/health")).send() {
                if r.status().is_success() {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "samgeo-api did not answer /health within 60 s:\n{}",
            self.log()
        );
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(self.work.join("server.log")) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().unwrap()
    }

    pub fn delete(&self, path: &str) -> Response {
        self.client.delete(self.url(path)).send().unwrap()
    }

    /// POSTs a multipart form with `file` (when given) and text fields.
    pub fn post_form(
        &self,
        path: &str,
        file: Option<(&str, Vec<u8>)>,
        fields: &[(&str, &str)],
    ) -> Response {
        let mut form = Form::new();
        if let Some((name, bytes)) = file {
            form = form.part("file", Part::bytes(bytes).file_name(name.to_string()));
        }
        for (k, v) in fields {
            form = form.text(k.to_string(), v.to_string());
        }
        self.client
            .post(self.url(path))
            .multipart(form)
            .send()
            .unwrap()
    }

    /// The process id (for signals).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Waits for the process to exit by itself; returns its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- server log ---\n{}", self.log());
        }
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

/// Starts `samgeo-api` with `work/samgeo.toml`, appending to `work/server.log`.
fn spawn_server(work: &Path, args: &[String]) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(work.join("server.log"))
        .unwrap();
    Command::new(server_binary())
        .arg("--config")
        .arg(work.join("samgeo.toml"))
        .args(args)
        .current_dir(work)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .expect("start samgeo-api")
}

/// `{"detail": ...}` of an error response.
pub fn detail(response: Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().unwrap_or(serde_json::Value::Null);
    (
        status,
        body["detail"]
            .as_str()
            .unwrap_or_else(|| panic!("no string detail in {body}"))
            .to_string(),
    )
}
