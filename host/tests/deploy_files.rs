//! The deployment files under `deploy/` stay in step with the server: the configurations they
//! carry (the container image's, the Kubernetes ConfigMap's) load with the real config loader
//! (an unknown or misspelt key fails it), and nginx's body size and timeouts match the
//! server's upload limit and request time limit. (nginx itself runs `deploy/nginx.conf` in the
//! black-box test `tests/tests/cluster_routing.rs`.)

use std::path::{Path, PathBuf};

use samgeo_host::config::Config;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("samgeo-deploy-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Loads `text` as a config file in a fresh directory (with an empty `models/` for includes).
fn load(text: &str, tag: &str) -> Config {
    let dir = temp_dir(tag);
    std::fs::create_dir_all(dir.join("models")).unwrap();
    let path = dir.join("samgeo.toml");
    std::fs::write(&path, text).unwrap();
    let config =
        Config::load_file(&path, Vec::new()).unwrap_or_else(|e| panic!("{tag}: {e:#}\n{text}"));
    let _ = std::fs::remove_dir_all(&dir);
    config
}

/// The `samgeo.toml: |` block of the ConfigMap in deploy/k8s/samgeo.yaml.
fn configmap_toml() -> String {
    let yaml = read("deploy/k8s/samgeo.yaml");
    let mut lines = yaml.lines().skip_while(|l| l.trim() != "samgeo.toml: |");
    assert!(
        lines.next().is_some(),
        "no samgeo.toml block in the ConfigMap"
    );
    let block: Vec<&str> = lines
        .take_while(|l| l.is_empty() || l.starts_with("    "))
        .map(|l| l.get(4..).unwrap_or(""))
        .collect();
    block.join("\n")
}

/// The value of the nginx directive `name` (first occurrence), without the `;`.
fn nginx_value(conf: &str, name: &str) -> String {
    conf.lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("deploy/nginx.conf has no {name}"))
        .trim_end_matches(';')
        .trim()
        .to_string()
}

/// `512m` → bytes; `310s` → seconds.
fn size_bytes(value: &str) -> u64 {
    let (n, unit) = value.split_at(value.len() - 1);
    let n: u64 = n.parse().unwrap();
    match unit {
        "k" => n << 10,
        "m" => n << 20,
        "g" => n << 30,
        _ => value.parse().unwrap(),
    }
}

fn seconds(value: &str) -> u64 {
    value.trim_end_matches('s').parse().unwrap()
}

#[test]
fn the_container_and_kubernetes_configurations_load() {
    let container = load(&read("deploy/samgeo.container.toml"), "container");
    assert_eq!(container.server.port, 8000);
    assert!(read("Dockerfile").contains("EXPOSE 8000"));
    assert!(container.cluster.redis_url.is_none());

    let k8s = load(&configmap_toml(), "configmap");
    assert_eq!(k8s.server.port, 8000);
    assert_eq!(
        k8s.cluster.redis_url.as_deref(),
        Some("redis://redis:6379/0")
    );
    assert_eq!(k8s.shared_root(), Path::new("/shared"));
    let deployment = read("deploy/k8s/samgeo.yaml");
    assert!(deployment.contains("mountPath: /shared"));
    assert!(deployment.contains("accessModes: [ReadWriteMany]"));
}

#[test]
fn nginx_limits_match_the_server() {
    let conf = read("deploy/nginx.conf");
    assert!(conf.contains("hash $samgeo_affinity consistent;"));
    let k8s = load(&configmap_toml(), "nginx-k8s");
    for server in [&Config::default().server, &k8s.server] {
        assert_eq!(
            size_bytes(&nginx_value(&conf, "client_max_body_size")),
            server.max_upload_bytes,
            "client_max_body_size = server.max_upload_bytes"
        );
        let images = &conf[conf
            .find("location = /images")
            .expect("a location for /images")..];
        assert_eq!(
            size_bytes(&nginx_value(images, "client_max_body_size")),
            Config::default().inputs.max_image_bytes,
            "client_max_body_size in location = /images = inputs.max_image_bytes"
        );
        // nginx waits a little longer than the replica, which answers 504 itself at its limit.
        for timeout in ["proxy_read_timeout", "proxy_send_timeout"] {
            let secs = seconds(&nginx_value(&conf, timeout));
            assert!(
                secs > server.request_timeout_secs && secs <= server.request_timeout_secs + 60,
                "{timeout} {secs} s vs request_timeout_secs {}",
                server.request_timeout_secs
            );
        }
    }
}
