//! IdentityConnectors in a cluster: the operator says whether each can be used, and what to fix.

use std::time::Duration;

use crds::connector::IdentityConnector;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams, PostParams};
use kube_oidc_tests::{Operator, Provider, control_plane};

use crate::operator::eventually;

async fn ready(
    api: &kube::Api<IdentityConnector>,
    name: &str,
    status: &str,
) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    eventually(
        &format!("IdentityConnector {name} Ready={status}"),
        Duration::from_secs(20),
        || async {
            let c = api.get_opt(name).await.ok()??;
            crds::condition::find(&c.status?.conditions, crds::condition::READY)
                .filter(|r| r.status == status)
                .cloned()
        },
    )
    .await
}

/// An OIDC connector whose client secret is missing says so and names the command that fixes
/// it; with the Secret it becomes Ready once the upstream (another kube-oidc, standalone) answers
/// discovery; a wrong issuer and an unreachable one end in conditions that say what to change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oidc_connector_becomes_ready_or_says_what_to_fix() {
    let cp = control_plane();
    let ns = cp.namespace("connectors").await;
    let _op = Operator::start(cp, &ns.name, "a", &[]);
    let mut upstream =
        Provider::standalone(&crds::workspace_root().join("examples/local"), "memory");
    upstream.wait_ready(Duration::from_secs(30));
    let connectors = ns.api::<IdentityConnector>();
    let connector: IdentityConnector = serde_yaml::from_str(&format!(
        "apiVersion: kubeoidc.dev/v1alpha1\nkind: IdentityConnector\nmetadata: {{name: corp}}\nspec:\n  type: oidc\n  displayName: Corporate sign-in\n  oidc:\n    issuer: {}\n    clientId: kube-oidc\n    clientSecretRef: {{name: corp-oidc, key: client-secret}}\n",
        upstream.issuer
    ))
    .unwrap();
    connectors
        .create(&PostParams::default(), &connector)
        .await
        .unwrap();
    let missing = ready(&connectors, "corp", "False").await;
    assert_eq!(missing.reason, "SecretMissing", "{missing:?}");
    assert!(
        missing
            .message
            .contains("kubectl create secret generic corp-oidc --from-literal=client-secret="),
        "{missing:?}"
    );

    let secret: Secret = serde_yaml::from_str(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: corp-oidc}\nstringData: {client-secret: s3cret}\n",
    )
    .unwrap();
    ns.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let ok = ready(&connectors, "corp", "True").await;
    assert!(ok.message.contains(&upstream.issuer), "{ok:?}");

    for (issuer, reason, says) in [
        (
            format!("{}/other", upstream.issuer),
            "DiscoveryFailed",
            "cannot be read",
        ),
        (
            "http://127.0.0.1:9".to_string(),
            "DiscoveryFailed",
            "cannot be read",
        ),
    ] {
        connectors
            .patch(
                "corp",
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"spec": {"oidc": {"issuer": issuer}}})),
            )
            .await
            .unwrap();
        let c = eventually(
            "the condition for the new issuer",
            Duration::from_secs(20),
            || async {
                let c = connectors.get("corp").await.ok()?;
                let status = c.status?;
                (status.observed_generation == c.metadata.generation).then_some(())?;
                crds::condition::find(&status.conditions, crds::condition::READY)
                    .filter(|r| r.status == "False")
                    .cloned()
            },
        )
        .await;
        assert_eq!(c.reason, reason, "{c:?}");
        assert!(
            c.message.contains(says) && c.message.contains("spec.oidc.issuer"),
            "{c:?}"
        );
    }
    // Settings of another type are refused at admission.
    let bad: IdentityConnector = serde_yaml::from_str(
        "apiVersion: kubeoidc.dev/v1alpha1\nkind: IdentityConnector\nmetadata: {name: bad}\nspec:\n  type: ldap\n  displayName: Directory\n",
    )
    .unwrap();
    let e = connectors
        .create(&PostParams::default(), &bad)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("spec.ldap for type ldap"), "{e}");
    ns.delete().await;
}
