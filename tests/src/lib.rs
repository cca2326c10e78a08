//! Test harness: a real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager)
//! on loopback, shared by the tests of one test binary, with a fresh namespace per test.
//!
//! The binaries come from `tests/controlplane/build.sh`; without them every test that asks for the
//! control plane fails and names that script. Child processes run in their own process groups and
//! are watched by a reaper that kills them when this process ends, however it ends.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test support: failing loudly is the point

pub mod controlplane;
pub mod ldap;
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

/// The kube-oidc objects (OidcClient, OidcScope, SigningKey) in `namespace`: how many there are,
/// and which of them are not Ready for their current generation (as `Kind namespace/name`).
pub async fn readiness(
    client: &kube::Client,
    namespace: &str,
) -> Result<(usize, Vec<String>), kube::Error> {
    let mut all = ready_flags::<crds::OidcClient>(client, namespace, |c| {
        c.status.as_ref().map(|s| &s.conditions)
    })
    .await?;
    all.extend(
        ready_flags::<crds::OidcScope>(client, namespace, |s| {
            s.status.as_ref().map(|s| &s.conditions)
        })
        .await?,
    );
    all.extend(
        ready_flags::<crds::SigningKey>(client, namespace, |k| {
            k.status.as_ref().map(|s| &s.conditions)
        })
        .await?,
    );
    all.extend(
        ready_flags::<crds::ClusterLogin>(client, namespace, |l| {
            l.status.as_ref().map(|s| &s.conditions)
        })
        .await?,
    );
    let objects = all.len();
    let not_ready = all
        .into_iter()
        .filter(|(_, ready)| !ready)
        .map(|(name, _)| name)
        .collect();
    Ok((objects, not_ready))
}

/// Each object of kind `K` in `namespace` as (`Kind namespace/name`, Ready for its generation).
async fn ready_flags<K>(
    client: &kube::Client,
    namespace: &str,
    conditions: impl Fn(&K) -> Option<&Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>>,
) -> Result<Vec<(String, bool)>, kube::Error>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    use kube::ResourceExt;
    let list = kube::Api::<K>::namespaced(client.clone(), namespace)
        .list(&Default::default())
        .await?;
    Ok(list
        .items
        .iter()
        .map(|o| {
            let ready = conditions(o)
                .is_some_and(|c| crds::condition::is_ready_for(c, o.meta().generation));
            (
                format!("{} {namespace}/{}", K::kind(&()), o.name_any()),
                ready,
            )
        })
        .collect())
}
