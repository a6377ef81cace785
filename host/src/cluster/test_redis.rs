//! Unit-test support: a throwaway `redis-server` on a free loopback port (no persistence),
//! killed on drop. Without `redis-server` (scripts/setup installs it) the test skips.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::Redis;
use crate::config::ClusterConfig;

/// A running `redis-server` for one test.
pub struct TestRedis {
    child: Child,
    port: u16,
}

impl TestRedis {
    /// Starts one, or `None` (after a skip notice naming `test`) when it is not installed.
    pub fn start(test: &str) -> Option<TestRedis> {
        let Some(binary) = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
        else {
            crate::test_skip::skip(test, "redis-server is not installed (scripts/setup)");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let child = Command::new(binary)
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .stdin(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let server = TestRedis { child, port };
        let started = Instant::now();
        while server.try_query(&["PING"]).is_none() {
            assert!(started.elapsed() < Duration::from_secs(10), "redis-server");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(server)
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// A cluster handle of node `node`, with a call time limit of `timeout_ms`.
    pub fn handle(&self, node: &str, timeout_ms: u64) -> Redis {
        let config = ClusterConfig {
            redis_url: Some(self.url()),
            node_id: Some(node.to_string()),
            redis_timeout_ms: timeout_ms,
            redis_retry_secs: 1,
            ..ClusterConfig::default()
        };
        Redis::from_config(&config).unwrap().unwrap()
    }

    /// One command on a fresh connection; panics when it fails.
    pub fn query(&self, args: &[&str]) -> redis::Value {
        self.try_query(args).expect("redis command")
    }

    fn try_query(&self, args: &[&str]) -> Option<redis::Value> {
        let client = redis::Client::open(self.url()).ok()?;
        let mut conn = client
            .get_connection_with_timeout(Duration::from_secs(2))
            .ok()?;
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query(&mut conn).ok()
    }

    /// Kills it (SIGKILL): clients then get connection refused.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        self.stop();
    }
}
