//! Runs `kube-oidc-operator` as a real process against the test control plane.

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::PathBuf,
    process::{Child, Command},
    time::Duration,
};

use crate::ControlPlane;

/// A binary of this workspace, built by `cargo build --workspace --bins` (tests/run does).
pub fn workspace_binary(name: &str) -> PathBuf {
    // target/<profile>/deps/<test binary> -> target/<profile>/<name>
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binary in target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing; build it with `cargo build -p {name}` (tests/run does this before the tests)",
        path.display()
    );
    path
}

/// A running operator process; killed with SIGKILL when dropped.
pub struct Operator {
    child: Child,
    pub identity: String,
    pub metrics_port: u16,
    log: String,
}

impl Operator {
    /// Starts an operator whose own namespace and only client namespace is `namespace`.
    pub fn start(cp: &ControlPlane, namespace: &str, identity: &str, extra: &[&str]) -> Operator {
        Self::start_for(cp, namespace, namespace, identity, extra)
    }

    /// Like [`Operator::start`], accepting clients in `client_namespaces` (comma-separated).
    pub fn start_for(
        cp: &ControlPlane,
        namespace: &str,
        client_namespaces: &str,
        identity: &str,
        extra: &[&str],
    ) -> Operator {
        let metrics_port = ControlPlane::free_port();
        let mut cmd = Command::new(workspace_binary("kube-oidc-operator"));
        cmd.env("KUBECONFIG", cp.kubeconfig())
            .env("RUST_LOG", "info,kube_client=warn,kube_runtime=warn")
            .args([
                "--namespace",
                namespace,
                "--client-namespaces",
                client_namespaces,
            ])
            .args(["--identity", identity, "--log-format", "text"])
            .args(["--lease-duration", "3s"])
            .arg(format!("--metrics-listen=127.0.0.1:{metrics_port}"))
            .args(extra);
        if !extra.contains(&"--issuer") {
            cmd.args(["--issuer", "https://issuer.test"]);
        }
        let log = format!("operator-{namespace}-{identity}");
        let child = cp.spawn_logged(&log, cmd).expect("start operator");
        Operator {
            child,
            identity: identity.into(),
            metrics_port,
            log,
        }
    }

    /// SIGKILL: no cleanup runs in the operator.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait (up to 20 s) for a clean exit; an error says how it ended, with the end
    /// of its log.
    pub fn terminate(&mut self, cp: &ControlPlane) -> Result<Duration, String> {
        let started = std::time::Instant::now();
        let kill = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .output();
        let kill = match kill {
            Ok(o) => format!("kill: {} {}", o.status, String::from_utf8_lossy(&o.stderr)),
            Err(e) => format!("kill: {e}"),
        };
        let outcome = loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                if status.success() {
                    return Ok(started.elapsed());
                }
                break format!("exited with {status}");
            }
            if started.elapsed() > Duration::from_secs(20) {
                // Signal state, to tell a lost signal from a stuck process.
                let pid = self.child.id();
                let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
                    .unwrap_or_default()
                    .lines()
                    .filter(|l| {
                        l.starts_with("Sig") || l.starts_with("ShdPnd") || l.starts_with("State")
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                self.kill();
                break format!("still running 20 s after SIGTERM ({kill}; {status})");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let log = self.log(cp);
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        Err(format!("{outcome}; end of its log:\n{}", tail.join("\n")))
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The operator's log so far.
    pub fn log(&self, cp: &ControlPlane) -> String {
        std::fs::read_to_string(cp.log_path(&self.log)).unwrap_or_default()
    }

    /// GET a path of the metrics endpoint: (status code, body).
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.metrics_port, path)
    }

    /// The value of a counter summed over its label sets.
    pub fn counter(&self, name: &str) -> f64 {
        let Some((_, body)) = self.get("/metrics") else {
            return 0.0;
        };
        body.lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A minimal HTTP/1.0 GET against 127.0.0.1.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let code = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())?;
    Some((code, body))
}
