//! Runs `kube-oidc-provider` as a real process.

use std::{
    process::{Child, Command},
    time::{Duration, Instant},
};

use crate::{
    ControlPlane,
    controlplane::{scratch_dir, spawn_reaped},
    operator::{http_get, workspace_binary},
};

/// A running provider; killed when dropped.
pub struct Provider {
    child: Child,
    pub port: u16,
    pub issuer: String,
    pub log: std::path::PathBuf,
    /// In a cluster: the user it authenticates as, of its own (see
    /// [`ControlPlane::api_writes_by`]).
    pub kube_user: Option<String>,
}

impl Provider {
    /// Standalone, from a folder of manifests.
    pub fn standalone(manifests: &std::path::Path, store: &str) -> Provider {
        Self::standalone_with(manifests, store, &[])
    }

    /// Standalone, with more flags.
    pub fn standalone_with(manifests: &std::path::Path, store: &str, extra: &[&str]) -> Provider {
        let mut cmd = Command::new(workspace_binary("kube-oidc-provider"));
        cmd.arg("--manifests")
            .arg(manifests)
            .args(["--store", store])
            .args(extra);
        Self::start(cmd, "standalone", None)
    }

    /// Standalone on a port chosen beforehand (its issuer `http://127.0.0.1:<port>` is written
    /// into the manifests or given to an upstream first).
    pub fn standalone_on(manifests: &std::path::Path, port: u16, extra: &[&str]) -> Provider {
        let mut cmd = Command::new(workspace_binary("kube-oidc-provider"));
        cmd.arg("--manifests")
            .arg(manifests)
            .args(["--store", "memory"])
            .args(extra);
        Self::start_on(cmd, "standalone", port, None)
    }

    /// Standalone over TLS: the issuer is `https://127.0.0.1:<port>`.
    pub fn standalone_tls(
        manifests: &std::path::Path,
        cert: &std::path::Path,
        key: &std::path::Path,
    ) -> Provider {
        Self::standalone_tls_with(manifests, cert, key, &[])
    }

    /// Standalone over TLS, with more flags.
    pub fn standalone_tls_with(
        manifests: &std::path::Path,
        cert: &std::path::Path,
        key: &std::path::Path,
        extra: &[&str],
    ) -> Provider {
        let port = ControlPlane::free_port();
        let mut cmd = Command::new(workspace_binary("kube-oidc-provider"));
        cmd.arg("--manifests")
            .arg(manifests)
            .arg("--tls-cert")
            .arg(cert)
            .arg("--tls-key")
            .arg(key)
            .args(extra);
        Self::start_on(cmd, "tls", port, Some(&format!("https://127.0.0.1:{port}")))
    }

    /// In a cluster: watches `namespace` for keys and scopes, and its clients.
    pub fn in_cluster(cp: &ControlPlane, namespace: &str, store: &str, extra: &[&str]) -> Provider {
        let port = ControlPlane::free_port();
        let user = format!("kube-oidc-provider-{namespace}-{port}");
        let mut cmd = Command::new(workspace_binary("kube-oidc-provider"));
        cmd.env("KUBECONFIG", cp.kubeconfig_for(&user))
            .args(["--namespace", namespace, "--client-namespaces", namespace])
            .args(["--store", store])
            .args(extra);
        let mut p = Self::start_on(cmd, namespace, port, None);
        p.kube_user = Some(user);
        p
    }

    /// Like [`Provider::in_cluster`], over TLS: the issuer is `https://127.0.0.1:<port>`.
    pub fn in_cluster_tls(
        cp: &ControlPlane,
        namespace: &str,
        port: u16,
        cert: &std::path::Path,
        key: &std::path::Path,
    ) -> Provider {
        let user = format!("kube-oidc-provider-{namespace}-{port}");
        let mut cmd = Command::new(workspace_binary("kube-oidc-provider"));
        cmd.env("KUBECONFIG", cp.kubeconfig_for(&user))
            .args(["--namespace", namespace, "--client-namespaces", namespace])
            .args(["--store", "memory"])
            .arg("--tls-cert")
            .arg(cert)
            .arg("--tls-key")
            .arg(key);
        let issuer = format!("https://127.0.0.1:{port}");
        let mut p = Self::start_on(cmd, namespace, port, Some(&issuer));
        p.kube_user = Some(user);
        p
    }

    /// Like [`Provider::in_cluster`], with a given issuer: replicas behind one URL share it.
    pub fn replica(cp: &ControlPlane, namespace: &str, store: &str, issuer: &str) -> Provider {
        let port = ControlPlane::free_port();
        let user = format!("kube-oidc-provider-{namespace}-{port}");
        let mut cmd = Command::new(workspace_binary("kube-oidc-provider"));
        cmd.env("KUBECONFIG", cp.kubeconfig_for(&user))
            .args(["--namespace", namespace, "--client-namespaces", namespace])
            .args(["--store", store]);
        let mut p = Self::start_on(cmd, namespace, port, Some(issuer));
        p.kube_user = Some(user);
        p
    }

    fn start(cmd: Command, name: &str, issuer: Option<&str>) -> Provider {
        Self::start_on(cmd, name, ControlPlane::free_port(), issuer)
    }

    fn start_on(mut cmd: Command, name: &str, port: u16, issuer: Option<&str>) -> Provider {
        let issuer = issuer
            .map(String::from)
            .unwrap_or_else(|| format!("http://127.0.0.1:{port}"));
        cmd.args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--issuer",
            &issuer,
        ])
        .args(["--log-format", "text"])
        .env("RUST_LOG", "info,kube_client=warn,kube_runtime=warn");
        let log = scratch_dir().join(format!("provider-{name}-{port}.log"));
        let child = spawn_reaped(cmd, &log).expect("start provider");
        Provider {
            child,
            port,
            issuer,
            log,
            kube_user: None,
        }
    }

    /// The process ID, for sending it a signal.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until /readyz answers 200 (synced, a key signs, the store answers).
    pub fn wait_ready(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((200, _)) = http_get(self.port, "/readyz") {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("provider exited ({status}): {}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "provider not ready after {timeout:?}: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
