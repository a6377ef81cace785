//! Black-box: a reload through POST /plugins/reload or SIGHUP applies the changed `[plugins]`
//! section of the configuration file and names, in the log, every other changed section as
//! needing a restart (issue 11, item 8).

mod common;

use std::time::{Duration, Instant};

use common::Server;
use serde_json::Value;

/// Rewrites the server's config file through `edit`.
fn edit_config(server: &Server, edit: impl FnOnce(&mut toml::Table)) {
    let path = server.work.join("samgeo.toml");
    let mut table: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    edit(&mut table);
    std::fs::write(&path, toml::to_string(&table).unwrap()).unwrap();
}

fn section<'a>(table: &'a mut toml::Table, name: &str) -> &'a mut toml::Table {
    table
        .entry(name)
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .unwrap()
}

/// The `in_chain` flag of the plugin named `name` in GET /plugins.
fn in_chain(server: &Server, name: &str) -> bool {
    let plugins: Value = server.get("/plugins").json().unwrap();
    plugins["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no plugin {name} in {plugins}"))["in_chain"]
        .as_bool()
        .unwrap_or(false)
}

/// Waits until the log has `count` lines containing `needle`.
fn wait_for_log(server: &Server, needle: &str, count: usize) -> String {
    let start = Instant::now();
    loop {
        let log = server.log();
        if log.lines().filter(|l| l.contains(needle)).count() >= count {
            return log;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no {count} × {needle:?} in the log:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn reloads_apply_plugins_and_name_every_other_changed_section() {
    let server = Server::start();
    assert!(in_chain(&server, "size"), "size is in the default chain");

    // [plugins] changes (the chain empties); [jobs], [web] and [tiling] change too.
    edit_config(&server, |t| {
        section(t, "plugins").insert("filters".into(), toml::Value::Array(vec![]));
        section(t, "jobs").insert("max_running".into(), toml::Value::Integer(7));
        section(t, "web").insert("enabled".into(), toml::Value::Boolean(false));
        section(t, "tiling").insert("tile_size".into(), toml::Value::Integer(512));
    });
    let response = server
        .client
        .post(server.url("/plugins/reload"))
        .send()
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        200,
        "{}",
        response.text().unwrap()
    );
    assert!(!in_chain(&server, "size"), "the reload applied [plugins]");
    let log = wait_for_log(&server, "needs a restart", 3);
    let named: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("needs a restart"))
        .collect();
    for name in ["[jobs]", "[web]", "[tiling]"] {
        assert!(
            named.iter().any(|l| l.contains(name)),
            "{name} not named: {named:#?}"
        );
    }
    assert!(
        !named
            .iter()
            .any(|l| l.contains("[server]") || l.contains("[plugins]")),
        "only changed sections are named: {named:#?}"
    );
    // The page still answers: [web] was not applied.
    assert_eq!(server.get("/").status().as_u16(), 200);

    // SIGHUP goes the same way: size joins the chain again, [metrics] is named.
    edit_config(&server, |t| {
        section(t, "plugins").insert(
            "filters".into(),
            toml::Value::Array(vec![toml::Value::String("size.wasm".into())]),
        );
        section(t, "metrics").insert("require_api_key".into(), toml::Value::Boolean(false));
    });
    std::process::Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    let log = wait_for_log(&server, "needs a restart", 7);
    assert!(
        log.lines()
            .any(|l| l.contains("needs a restart") && l.contains("[metrics]")),
        "SIGHUP named [metrics]:\n{log}"
    );
    assert!(in_chain(&server, "size"), "SIGHUP applied [plugins]");
}
