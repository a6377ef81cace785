//! Observability over HTTP: `GET /metrics` parsed by a real Prometheus text-format parser
//! (prometheus_client's, from the venv that `scripts/setup` builds) and moving with traffic,
//! `X-Request-Id` echoed and on the request's log lines, the access log, JSON logs, no ANSI
//! colour codes when stderr is not a terminal, and the `/metrics` API-key switch and port.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use common::rasters::Scene;
use common::{repo_root, Server};

/// One parsed sample: its name (with `_bucket`, `_count`, `_sum`, `_total` suffixes), labels and
/// value.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A parsed exposition: family name → (type, samples).
struct Exposition {
    families: BTreeMap<String, (String, Vec<Sample>)>,
}

impl Exposition {
    /// Parses `text` with prometheus_client's parser; panics when it refuses the text.
    fn parse(text: &str) -> Exposition {
        let python = repo_root().join(".venv/bin/python");
        let mut child = Command::new(&python)
            .arg(repo_root().join("tests/parse_prometheus.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e} (run scripts/setup)", python.display()));
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "the Prometheus parser refused the exposition (or is missing: run scripts/setup):\n{}\n--- exposition ---\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
        let parsed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut families = BTreeMap::new();
        for f in parsed.as_array().unwrap() {
            let samples = f["samples"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| Sample {
                    name: s["name"].as_str().unwrap().to_string(),
                    labels: s["labels"]
                        .as_object()
                        .unwrap()
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                        .collect(),
                    value: s["value"].as_str().unwrap().parse().unwrap(),
                })
                .collect();
            families.insert(
                f["name"].as_str().unwrap().to_string(),
                (f["type"].as_str().unwrap().to_string(), samples),
            );
        }
        Exposition { families }
    }

    /// The type of a family (prometheus_client names counters without `_total`).
    fn kind(&self, family: &str) -> &str {
        &self
            .families
            .get(family)
            .unwrap_or_else(|| panic!("no metric family {family}"))
            .0
    }

    /// The value of the sample `name` with exactly these `labels`, if present.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.families
            .values()
            .flat_map(|(_, s)| s)
            .find(|s| s.name == name && s.labels == want)
            .map(|s| s.value)
    }

    /// Like [`get`](Self::get), 0 when the series does not exist yet.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or(0.0)
    }

    fn samples(&self) -> impl Iterator<Item = &Sample> {
        self.families.values().flat_map(|(_, s)| s)
    }
}

fn scrape(server: &Server) -> Exposition {
    let response = server.get("/metrics");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    Exposition::parse(&response.text().unwrap())
}

fn click(server: &Server, image: &[u8], request_id: Option<&str>) -> reqwest::blocking::Response {
    let form = common::Form::new()
        .part(
            "file",
            common::Part::bytes(image.to_vec()).file_name("scene.tif"),
        )
        .text("point_coords", "[[20, 20]]")
        .text("point_labels", "[1]");
    let mut request = server
        .client
        .post(server.url("/segment/predict"))
        .multipart(form);
    if let Some(id) = request_id {
        request = request.header("x-request-id", id);
    }
    request.send().unwrap()
}

fn header(response: &reqwest::blocking::Response, name: &str) -> String {
    response.headers()[name].to_str().unwrap().to_string()
}

#[test]
fn metrics_exist_from_start_and_move_with_traffic() {
    let server = Server::start_with(
        |c| {
            c["server"]
                .as_table_mut()
                .unwrap()
                .insert("max_upload_bytes".into(), toml::Value::Integer(1_000_000));
        },
        &[],
    );
    let before = scrape(&server);
    for (family, kind) in [
        ("samgeo_http_requests", "counter"),
        ("samgeo_request_duration_seconds", "histogram"),
        ("samgeo_stage_duration_seconds", "histogram"),
        ("samgeo_inferences_running", "gauge"),
        ("samgeo_queue_waiting", "gauge"),
        ("samgeo_rejected", "counter"),
        ("samgeo_embedding_cache_requests", "counter"),
        ("samgeo_embedding_cache_bytes", "gauge"),
        ("samgeo_models_loaded", "gauge"),
        ("samgeo_model_load_duration_seconds", "histogram"),
        ("samgeo_plugin_calls", "counter"),
        ("samgeo_plugin_duration_seconds", "histogram"),
        ("samgeo_build_info", "gauge"),
    ] {
        assert_eq!(before.kind(family), kind, "{family}");
    }
    // Series with a closed set of labels exist at zero before any traffic.
    for reason in ["overload", "too_large", "timeout", "auth"] {
        assert_eq!(
            before.get("samgeo_rejected_total", &[("reason", reason)]),
            Some(0.0),
            "{reason}"
        );
    }
    for outcome in ["hit", "miss"] {
        assert_eq!(
            before.get(
                "samgeo_embedding_cache_requests_total",
                &[("outcome", outcome)]
            ),
            Some(0.0)
        );
    }
    for stage in ["prepare", "embedding", "decode", "masks", "plugins"] {
        assert_eq!(
            before.get("samgeo_stage_duration_seconds_count", &[("stage", stage)]),
            Some(0.0),
            "{stage}"
        );
    }
    assert_eq!(
        before.get(
            "samgeo_plugin_calls_total",
            &[("plugin", "geojson"), ("outcome", "ok")]
        ),
        Some(0.0)
    );
    assert_eq!(before.get("samgeo_models_loaded", &[]), Some(0.0));
    assert_eq!(before.get("samgeo_inferences_running", &[]), Some(0.0));
    assert_eq!(before.get("samgeo_queue_waiting", &[]), Some(0.0));
    let version = before
        .samples()
        .find(|s| s.name == "samgeo_build_info")
        .expect("samgeo_build_info");
    assert_eq!(version.value, 1.0);
    assert!(!version.labels["version"].is_empty());

    // Traffic: the same image twice (a miss, then a hit), an unknown route, an oversized upload.
    let image = Scene::red_square().geotiff();
    for _ in 0..2 {
        let r = click(&server, &image, None);
        assert_eq!(r.status(), 200, "{}", r.text().unwrap());
    }
    assert_eq!(server.get("/no/such/route").status(), 404);
    let big = server.post_form(
        "/segment/predict",
        Some(("big.tif", vec![0u8; 1_100_000])),
        &[("point_coords", "[[1, 1]]")],
    );
    assert_eq!(big.status(), 413);

    let after = scrape(&server);
    let predict_ok = [
        ("route", "/segment/predict"),
        ("method", "POST"),
        ("status", "200"),
    ];
    assert_eq!(
        after.value("samgeo_http_requests_total", &predict_ok)
            - before.value("samgeo_http_requests_total", &predict_ok),
        2.0
    );
    assert_eq!(
        after.value(
            "samgeo_http_requests_total",
            &[("route", "unmatched"), ("method", "GET"), ("status", "404")]
        ),
        1.0
    );
    assert_eq!(
        after.value(
            "samgeo_http_requests_total",
            &[
                ("route", "/segment/predict"),
                ("method", "POST"),
                ("status", "413")
            ]
        ),
        1.0
    );
    let hits = [("outcome", "hit")];
    let misses = [("outcome", "miss")];
    assert_eq!(
        after.value("samgeo_embedding_cache_requests_total", &misses),
        1.0
    );
    assert_eq!(
        after.value("samgeo_embedding_cache_requests_total", &hits),
        1.0
    );
    assert_eq!(
        after.value("samgeo_rejected_total", &[("reason", "too_large")]),
        1.0
    );
    assert_eq!(
        after.value("samgeo_rejected_total", &[("reason", "auth")]),
        0.0
    );
    assert!(after.value("samgeo_embedding_cache_bytes", &[]) > 0.0);
    assert_eq!(after.value("samgeo_models_loaded", &[]), 1.0);
    assert_eq!(after.value("samgeo_inferences_running", &[]), 0.0);
    assert_eq!(
        after.value(
            "samgeo_model_load_duration_seconds_count",
            &[("model_version", "sam2")]
        ),
        1.0
    );
    assert_eq!(
        after.value(
            "samgeo_plugin_calls_total",
            &[("plugin", "geojson"), ("outcome", "ok")]
        ),
        2.0
    );
    assert_eq!(
        after.value(
            "samgeo_plugin_duration_seconds_count",
            &[("plugin", "geojson")]
        ),
        2.0
    );

    // Real histograms: cumulative buckets ending in le="+Inf", equal to _count.
    let served = [("route", "/segment/predict"), ("model_version", "sam2")];
    let count = after.value("samgeo_request_duration_seconds_count", &served);
    assert_eq!(count, 2.0);
    let inf = after.get(
        "samgeo_request_duration_seconds_bucket",
        &[
            ("route", "/segment/predict"),
            ("model_version", "sam2"),
            ("le", "+Inf"),
        ],
    );
    assert_eq!(inf, Some(2.0));
    let buckets: Vec<f64> = after
        .samples()
        .filter(|s| {
            s.name == "samgeo_request_duration_seconds_bucket"
                && s.labels.get("route").map(String::as_str) == Some("/segment/predict")
                && s.labels.get("model_version").map(String::as_str) == Some("sam2")
        })
        .map(|s| s.value)
        .collect();
    assert!(buckets.len() > 5, "{buckets:?}");
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
    assert!(after.value("samgeo_request_duration_seconds_sum", &served) > 0.0);
    for stage in ["prepare", "embedding", "decode", "masks", "plugins"] {
        assert_eq!(
            after.value("samgeo_stage_duration_seconds_count", &[("stage", stage)]),
            2.0,
            "{stage}"
        );
    }

    // No user data in labels: routes are templates, never the requested path.
    for s in after.samples() {
        if let Some(route) = s.labels.get("route") {
            assert!(
                route == "unmatched" || !route.contains("no/such"),
                "{route}"
            );
        }
    }
}

#[test]
fn request_ids_are_echoed_and_on_every_log_line_of_the_request() {
    let server = Server::start();
    let image = Scene::red_square().geotiff();

    let ok = click(&server, &image, Some("obs-predict-1"));
    assert_eq!(ok.status(), 200);
    assert_eq!(header(&ok, "x-request-id"), "obs-predict-1");

    // Errors carry the id too, and keep their {"detail"} body.
    let missing = server
        .client
        .post(server.url("/segment/predict"))
        .header("x-request-id", "obs-missing-file")
        .multipart(common::Form::new().text("point_coords", "[[1, 1]]"))
        .send()
        .unwrap();
    assert_eq!(header(&missing, "x-request-id"), "obs-missing-file");
    let (status, detail) = common::detail(missing);
    assert_eq!(status, 422);
    assert!(detail.contains("file"), "{detail}");

    // A valid model without files: 503, logged at warn level within the request.
    let unconfigured = server
        .client
        .post(server.url("/segment/predict"))
        .header("x-request-id", "obs-unconfigured")
        .multipart(
            common::Form::new()
                .part(
                    "file",
                    common::Part::bytes(image.clone()).file_name("a.tif"),
                )
                .text("point_coords", "[[20, 20]]")
                .text("model_version", "sam")
                .text("model_id", "vit_b"),
        )
        .send()
        .unwrap();
    assert_eq!(unconfigured.status(), 503);
    assert_eq!(header(&unconfigured, "x-request-id"), "obs-unconfigured");

    // No id, or one that is not acceptable: a generated one (a UUID).
    let generated = header(&server.get("/health"), "x-request-id");
    assert_eq!(generated.len(), 36, "{generated}");
    let replaced = server
        .client
        .get(server.url("/models"))
        .header("x-request-id", "has spaces; and <markup>")
        .send()
        .unwrap();
    let replacement = header(&replaced, "x-request-id");
    assert_eq!(replacement.len(), 36, "{replacement}");
    assert_ne!(
        header(&server.get("/health"), "x-request-id"),
        generated,
        "ids are unique"
    );

    let log = server.log();
    // Issue 11 item 11: stderr is a file here, not a terminal: no ANSI colour codes.
    assert!(!log.contains('\u{1b}'), "ANSI escape in the log:\n{log}");
    let access = |id: &str| -> String {
        log.lines()
            .find(|l| l.contains(id) && l.contains("access"))
            .unwrap_or_else(|| panic!("no access line for {id}:\n{log}"))
            .to_string()
    };
    let line = access("obs-predict-1");
    for field in [
        "method=POST",
        "route=/segment/predict",
        "status=200",
        "duration_ms=",
        "bytes_in=",
        "bytes_out=",
        "cache=\"miss\"",
        "model=\"sam2:sam2-hiera-large\"",
    ] {
        assert!(line.contains(field), "{field} not in {line}");
    }
    let bytes_in: u64 = line
        .split("bytes_in=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert!(bytes_in > image.len() as u64, "{line}");
    assert!(access("obs-missing-file").contains("status=422"));
    assert!(access(&generated).contains("route=/health"));
    assert!(access(&replacement).contains("route=/models"));
    // The handler's own warning carries the request's id as well.
    let warning = log
        .lines()
        .find(|l| l.contains("WARN") && l.contains("not served"))
        .unwrap_or_else(|| panic!("no warning line:\n{log}"));
    assert!(warning.contains("obs-unconfigured"), "{warning}");
    // Exactly one access line per request.
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("obs-predict-1") && l.contains("access"))
            .count(),
        1
    );
}

/// Every line of the log as JSON; panics on a line that is not.
fn json_lines(log: &str) -> Vec<serde_json::Value> {
    log.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: not JSON: {l}")))
        .collect()
}

#[test]
fn json_logs_parse_and_carry_the_request_id() {
    let server = Server::start_with(|_| {}, &["--log-format", "json"]);
    let image = Scene::red_square().geotiff();
    let r = click(&server, &image, Some("obs-json-1"));
    assert_eq!(r.status(), 200);
    let r = click(&server, &image, Some("obs-json-2"));
    assert_eq!(r.status(), 200);
    let lines = json_lines(&server.log());
    assert!(lines.iter().any(|l| l["message"] == "samgeo-api listening"));
    let access = |id: &str| {
        lines
            .iter()
            .find(|l| l["message"] == "access" && l["span"]["request_id"] == id)
            .unwrap_or_else(|| panic!("no access line for {id} in {lines:#?}"))
            .clone()
    };
    let first = access("obs-json-1");
    assert_eq!(first["level"], "INFO");
    assert_eq!(first["route"], "/segment/predict");
    assert_eq!(first["method"], "POST");
    assert_eq!(first["status"], 200);
    assert_eq!(first["cache"], "miss");
    assert_eq!(first["model"], "sam2:sam2-hiera-large");
    assert!(first["duration_ms"].as_f64().unwrap() > 0.0);
    assert!(first["bytes_out"].as_u64().unwrap() > 0);
    assert_eq!(access("obs-json-2")["cache"], "hit");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn metrics_need_the_api_key_unless_configured_otherwise() {
    let with_key = |c: &mut toml::Table| {
        c["server"]
            .as_table_mut()
            .unwrap()
            .insert("api_key".into(), toml::Value::String("s3cret".into()));
    };
    // Default: /metrics needs the key like every route but /health.
    let server = Server::start_with(with_key, &[]);
    assert_eq!(server.get("/metrics").status(), 401);
    let scraped = server
        .client
        .get(server.url("/metrics"))
        .bearer_auth("s3cret")
        .send()
        .unwrap();
    assert_eq!(scraped.status(), 200);
    let exposition = Exposition::parse(&scraped.text().unwrap());
    assert_eq!(
        exposition.value("samgeo_rejected_total", &[("reason", "auth")]),
        1.0
    );
    drop(server);

    // Open metrics on a port of their own (JSON logs from the config key, while at it).
    let metrics_port = free_port();
    let server = Server::start_with(
        |c| {
            with_key(c);
            c["server"]
                .as_table_mut()
                .unwrap()
                .insert("log_format".into(), toml::Value::String("json".into()));
            let mut metrics = toml::Table::new();
            metrics.insert("require_api_key".into(), toml::Value::Boolean(false));
            metrics.insert("port".into(), toml::Value::Integer(metrics_port.into()));
            c.insert("metrics".into(), toml::Value::Table(metrics));
        },
        &[],
    );
    assert_eq!(server.get("/models").status(), 401);
    assert_eq!(
        server.get("/metrics").status(),
        404,
        "/metrics moved to metrics.port"
    );
    let scraped = server
        .client
        .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .send()
        .unwrap();
    assert_eq!(scraped.status(), 200);
    assert!(scraped.headers().contains_key("x-request-id"));
    let exposition = Exposition::parse(&scraped.text().unwrap());
    assert_eq!(
        exposition.value("samgeo_rejected_total", &[("reason", "auth")]),
        1.0
    );
    assert_eq!(
        exposition.value(
            "samgeo_http_requests_total",
            &[("route", "unmatched"), ("method", "GET"), ("status", "404")]
        ),
        1.0
    );
    json_lines(&server.log());
}

#[test]
fn the_grafana_dashboard_queries_metrics_the_server_exports() {
    let path = repo_root().join("deploy/grafana/samgeo.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    assert!(
        variables
            .iter()
            .any(|v| v["type"] == "datasource" && v["query"] == "prometheus"),
        "no Prometheus data source variable"
    );
    let server = Server::start();
    let exposition = scrape(&server);
    let exported: std::collections::BTreeSet<&str> =
        exposition.samples().map(|s| s.name.as_str()).collect();
    let mut queried = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{panel}");
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let names = expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|t| t.starts_with("samgeo_"));
            for name in names {
                assert!(
                    exported.contains(name),
                    "{name} (panel {}) is not exported",
                    panel["title"]
                );
                queried += 1;
            }
        }
    }
    assert!(queried >= 15, "{queried}");
}
