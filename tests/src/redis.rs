//! A real `redis-server` on a free loopback port.

use std::{process::Child, time::Duration};

use crate::controlplane::{ControlPlane, scratch_dir, spawn_reaped};

/// Stopped (SIGKILL) when dropped; reaped if the test binary dies.
pub struct RedisServer {
    child: Child,
    pub port: u16,
    pub url: String,
}

impl RedisServer {
    /// Panics with what to install when redis-server is missing: tests never skip silently.
    pub fn start() -> RedisServer {
        Self::start_with(&[])
    }

    /// With more redis-server arguments (later ones win), as a chart renders them.
    pub fn start_with(extra: &[String]) -> RedisServer {
        Self::start_on(ControlPlane::free_port(), extra)
    }

    /// Listening on `port` (plain, unless `extra` moves it: `--port 0 --tls-port <port>`).
    pub fn start_on(port: u16, extra: &[String]) -> RedisServer {
        let dir = scratch_dir().join(format!("redis-{port}"));
        std::fs::create_dir_all(&dir).expect("redis dir");
        let mut cmd = std::process::Command::new("redis-server");
        cmd.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(["--appendonly", "no"])
        .args(extra)
        .arg("--dir")
        .arg(&dir);
        let child = spawn_reaped(cmd, &dir.join("redis.log")).unwrap_or_else(|e| {
            panic!("redis-server is required (apt-get install redis-server; tests/run installs it): {e}")
        });
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        RedisServer {
            child,
            port,
            url: format!("redis://127.0.0.1:{port}"),
        }
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
