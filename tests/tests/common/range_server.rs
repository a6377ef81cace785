//! A tiny HTTP/1.1 file server on loopback that answers byte ranges (`Range: bytes=a-b`, 206),
//! as object stores and web servers hosting COGs do, and counts what it sent; for tests of
//! rasters read in place through GDAL's `/vsicurl/`. (Python's http.server ignores Range.)
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Counters of what the server sent.
#[derive(Debug, Default)]
pub struct Served {
    /// Body bytes sent, all requests together.
    pub bytes: AtomicU64,
    /// Answers with status 206.
    pub partial: AtomicU64,
    /// Answers with status 200 and a whole file.
    pub whole: AtomicU64,
}

/// A running range server; its threads end with the test process.
pub struct RangeServer {
    pub port: u16,
    pub served: Arc<Served>,
}

impl RangeServer {
    /// Serves the files of `root` at `http://127.0.0.1:<port>/<name>`.
    pub fn start(root: PathBuf) -> RangeServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let served = Arc::new(Served::default());
        let counters = served.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (root, counters) = (root.clone(), counters.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &root, &counters);
                });
            }
        });
        RangeServer { port, served }
    }

    /// The base URL, e.g. `http://127.0.0.1:4000/`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

/// Answers the requests of one keep-alive connection.
fn serve(stream: TcpStream, root: &std::path::Path, served: &Served) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
        let mut range = None;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("range") {
                    range = parse_range(value.trim());
                }
            }
        }
        let name = target.trim_start_matches('/');
        let path = root.join(name);
        let file = (!name.is_empty() && !name.contains("..") && path.is_file())
            .then(|| std::fs::File::open(&path).ok())
            .flatten();
        let Some(mut file) = file else {
            out.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")?;
            continue;
        };
        let size = file.metadata()?.len();
        let (status, start, end) = match range {
            Some((a, b)) if a < size => (
                "206 Partial Content",
                a,
                b.unwrap_or(size - 1).min(size - 1),
            ),
            Some(_) => {
                out.write_all(
                    format!("HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{size}\r\nContent-Length: 0\r\n\r\n")
                        .as_bytes(),
                )?;
                continue;
            }
            None => ("200 OK", 0, size.saturating_sub(1)),
        };
        let length = if size == 0 { 0 } else { end - start + 1 };
        let mut head = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {length}\r\nAccept-Ranges: bytes\r\nContent-Type: image/tiff\r\nLast-Modified: Wed, 02 Dec 2026 12:00:00 GMT\r\n"
        );
        if status.starts_with("206") {
            head.push_str(&format!("Content-Range: bytes {start}-{end}/{size}\r\n"));
        }
        head.push_str("\r\n");
        out.write_all(head.as_bytes())?;
        if method == "HEAD" {
            continue;
        }
        file.seek(SeekFrom::Start(start))?;
        let mut body = vec![0u8; length as usize];
        file.read_exact(&mut body)?;
        out.write_all(&body)?;
        served.bytes.fetch_add(length, Ordering::SeqCst);
        if status.starts_with("206") {
            served.partial.fetch_add(1, Ordering::SeqCst);
        } else {
            served.whole.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// `bytes=a-b` or `bytes=a-` (one range; enough for GDAL).
fn parse_range(value: &str) -> Option<(u64, Option<u64>)> {
    let spec = value.strip_prefix("bytes=")?;
    let (a, b) = spec.split(',').next()?.split_once('-')?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()))
}
