//! Test harness: a real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager)
//! on loopback, shared by the tests of one test binary, with a fresh namespace per test.
//!
//! The binaries come from `tests/controlplane/build.sh`; without them every test that asks for the
//! control plane fails and names that script. Child processes run in their own process groups and
//! are watched by a reaper that kills them when this process ends, however it ends.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test support: failing loudly is the point

pub mod controlplane;
pub mod operator;
pub mod provider;
pub mod redis;

pub use controlplane::{ControlPlane, TestNamespace, control_plane};
pub use operator::Operator;
pub use provider::Provider;
pub use redis::RedisServer;

/// The tests' TLS (kube clients, reqwest) uses aws-lc-rs, like the binaries. Installed explicitly:
/// with more than one rustls backend compiled in, rustls refuses to pick one. Idempotent.
pub fn install_crypto_provider() {
    // An error only means a provider is installed already.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
