//! Starts the tests' control plane (etcd, kube-apiserver, kube-controller-manager with the CRDs
//! installed) and keeps it until this process ends, however it ends: the reaper removes every
//! process and the working directory even after SIGKILL. Prints `CONTROL_PLANE_DIR=` and
//! `KUBECONFIG=` lines.
//!
//! Used by the test that proves nothing outlives a killed test process, and handy for poking at
//! the control plane by hand: `cargo run -p kube-oidc-tests --bin kube-oidc-test-control-plane`.

use std::io::Write as _;

fn main() {
    let cp = kube_oidc_tests::control_plane();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "CONTROL_PLANE_DIR={}", cp.dir().display());
    let _ = writeln!(out, "KUBECONFIG={}", cp.kubeconfig().display());
    let _ = out.flush();
    drop(out);
    // Held until killed (bounded so that a forgotten one still ends).
    std::thread::sleep(std::time::Duration::from_secs(3600));
}
