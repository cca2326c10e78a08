//! What a new user installs, on control planes of their own that have no kube-oidc CRDs yet:
//! the committed CRD YAML as kubectl (a YAML 1.1 reader) reads it, `kubectl apply -f crds/yaml/`
//! all the way to a token, and an operator whose status writes keep failing.

use std::{
    collections::BTreeSet,
    io::Write,
    process::Stdio,
    time::{Duration, Instant},
};

use crds::{OidcClient, SigningKey};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ListParams, PostParams};
use kube_oidc_tests::{ControlPlane, Operator, Provider};
use serde_json::Value;

use crate::{
    operator::eventually,
    provider::{client_credentials, jwks, verify},
};

/// Runs kubectl with `stdin`; returns (success, stdout, stderr).
fn kubectl(cp: &ControlPlane, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut cmd = cp.kubectl();
    cmd.args(args)
        .current_dir(crds::workspace_root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run kubectl");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every property path of a JSON schema (`spec.rotation.interval`, `status.keys[].kid`, ...).
fn property_paths(schema: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    if let Some(props) = schema["properties"].as_object() {
        for (name, sub) in props {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            out.insert(path.clone());
            property_paths(sub, &path, out);
        }
    }
    if schema["items"].is_object() {
        property_paths(&schema["items"], &format!("{prefix}[]"), out);
    }
    if schema["additionalProperties"].is_object() {
        property_paths(
            &schema["additionalProperties"],
            &format!("{prefix}{{}}"),
            out,
        );
    }
}

/// Property paths per CRD name, of every version's schema.
fn schemas(crds: &[Value]) -> Vec<(String, BTreeSet<String>)> {
    let mut out: Vec<(String, BTreeSet<String>)> = crds
        .iter()
        .map(|crd| {
            let mut paths = BTreeSet::new();
            for v in crd["spec"]["versions"].as_array().unwrap() {
                property_paths(&v["schema"]["openAPIV3Schema"], "", &mut paths);
            }
            (crd["metadata"]["name"].as_str().unwrap().to_string(), paths)
        })
        .collect();
    out.sort();
    out
}

/// The CRDs in `manifests` as the API server would store them (`kubectl apply --dry-run=server`).
fn served(cp: &ControlPlane, file_args: &[&str], stdin: Option<&str>) -> Vec<Value> {
    let mut args = vec!["apply", "--dry-run=server", "-o", "json"];
    args.extend(file_args);
    let (ok, out, err) = kubectl(cp, &args, stdin);
    assert!(ok, "kubectl apply --dry-run=server {file_args:?}: {err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    match v["kind"].as_str() {
        Some("List") => v["items"].as_array().unwrap().clone(),
        _ => vec![v],
    }
}

/// The SigningKey CRD as serde_yaml (YAML 1.2) wrote it before: the JWK members `n` and `y`
/// bare, which YAML 1.1 reads as booleans.
fn signing_key_crd_with_bare_n_and_y() -> String {
    let yaml =
        std::fs::read_to_string(crds::workspace_root().join("crds/yaml/signingkeys.yaml")).unwrap();
    assert!(yaml.contains("\"n\":") && yaml.contains("\"y\":"), "{yaml}");
    yaml.replace("\"n\":", "n:").replace("\"y\":", "y:")
}

#[tokio::test]
async fn committed_crd_yaml_reads_as_the_rust_types_in_kubectl_and_issues_a_token() {
    let cp = ControlPlane::start_empty();
    let expected = schemas(
        &crds::crds()
            .iter()
            .map(|c| serde_json::to_value(c).unwrap())
            .collect::<Vec<_>>(),
    );
    assert_eq!(expected.len(), 6);
    for dir in ["crds/yaml/", "charts/kube-oidc/crds/"] {
        let read = schemas(&served(&cp, &["-f", dir], None));
        for ((name, want), (got_name, got)) in expected.iter().zip(&read) {
            assert_eq!(name, got_name);
            assert_eq!(
                want.symmetric_difference(got).collect::<Vec<_>>(),
                Vec::<&String>::new(),
                "{dir}: {name} reads differently in kubectl than the Rust types"
            );
        }
    }
    // The comparison catches the bug it is for: bare `n:` and `y:` are read as booleans.
    let broken = schemas(&served(
        &cp,
        &["-f", "-"],
        Some(&signing_key_crd_with_bare_n_and_y()),
    ));
    let (_, paths) = &broken[0];
    assert!(
        paths.contains("status.keys[].publicJwk.false")
            && !paths.contains("status.keys[].publicJwk.n"),
        "{paths:?}"
    );

    // Installed as the README's `kubectl apply` would, all the way to a token.
    let (ok, out, err) = kubectl(&cp, &["apply", "-f", "crds/yaml/"], None);
    assert!(ok, "kubectl apply -f crds/yaml/: {out}{err}");
    for crd in crds::crds() {
        established(&cp, crd.metadata.name.as_deref().unwrap()).await;
    }
    let ns = cp.namespace("fresh").await;
    let _operator = Operator::start(&cp, &ns.name, "fresh", &[]);
    let mut provider = Provider::in_cluster(&cp, &ns.name, "memory", &[]);
    let (ok, out, err) = kubectl(
        &cp,
        &[
            "apply",
            "-n",
            &ns.name,
            "-f",
            "examples/basic/signing-key.yaml",
        ],
        None,
    );
    assert!(ok, "{out}{err}");
    let client: OidcClient = serde_yaml::from_str(
        &std::fs::read_to_string(crds::workspace_root().join("examples/service/client.yaml"))
            .unwrap(),
    )
    .unwrap();
    ns.api::<OidcClient>()
        .create(&PostParams::default(), &client)
        .await
        .unwrap();
    provider.wait_ready(Duration::from_secs(60));
    let token = token_of(&provider.issuer, &ns.api::<Secret>(), "billing-sync-oidc").await;
    assert!(
        jwks(&provider.issuer)
            .await
            .iter()
            .all(|k| k["kty"] != "RSA" || k["n"].as_str().is_some_and(|n| n.len() > 300)),
        "an RSA key without its modulus is published"
    );
    // A machine token for no resource scope is for the provider itself: its audience is the
    // issuer, never the client.
    let claims = verify(&provider.issuer, &token, &provider.issuer).await;
    assert_eq!(claims["sub"], format!("{}.billing-sync", ns.name));
}

/// A client_credentials access token for the client whose credentials are in Secret `secret`.
pub(crate) async fn token_of(issuer: &str, secrets: &kube::Api<Secret>, secret: &str) -> String {
    let data = eventually("the client's Secret", Duration::from_secs(30), || async {
        secrets.get_opt(secret).await.ok()??.data
    })
    .await;
    let value = |k: &str| String::from_utf8(data[k].0.clone()).unwrap();
    let (id, secret) = (value("client-id"), value("client-secret"));
    let token: Value = eventually("a token", Duration::from_secs(30), || async {
        let r = client_credentials(issuer, &id, &secret).await;
        if r.status() == 200 {
            r.json().await.ok()
        } else {
            None
        }
    })
    .await;
    token["access_token"].as_str().unwrap().to_string()
}

/// The SigningKey status write fails on every reconcile (the CRD is the one kubectl read from the
/// YAML 1.2 output: no `n` in its schema), for a minute: the operator backs off and never creates
/// more than one key Secret that waits for its status entry.
#[tokio::test]
async fn a_failing_status_write_never_multiplies_key_secrets() {
    let cp = ControlPlane::start_empty();
    let (ok, out, err) = kubectl(
        &cp,
        &["apply", "-f", "-"],
        Some(&signing_key_crd_with_bare_n_and_y()),
    );
    assert!(ok, "{out}{err}");
    established(&cp, "signingkeys.kubeoidc.dev").await;
    let ns = cp.namespace("failing-status").await;
    let operator = Operator::start(&cp, &ns.name, "failing", &[]);
    let key: SigningKey = serde_yaml::from_str(
        "apiVersion: kubeoidc.dev/v1alpha1\nkind: SigningKey\nmetadata: {name: default}\nspec: {}\n",
    )
    .unwrap();
    ns.api::<SigningKey>()
        .create(&PostParams::default(), &key)
        .await
        .unwrap();

    let secrets = ns.api::<Secret>();
    let selector = ListParams::default().labels(&format!("{}=default", crds::SIGNING_KEY_LABEL));
    let started = Instant::now();
    let mut seen = BTreeSet::new();
    let mut most = 0;
    while started.elapsed() < Duration::from_secs(60) {
        let names: Vec<String> = secrets
            .list(&selector)
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|s| s.metadata.name)
            .collect();
        most = most.max(names.len());
        seen.extend(names);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Every Secret creation of the minute, from the API server's audit log (the operator runs
    // with the admin's credentials; the test itself creates no Secret there).
    let creates: Vec<String> = cp
        .api_writes_by("kube-oidc-test-admin")
        .into_iter()
        .filter(|w| w.starts_with(&format!("create secrets {}/", ns.name)))
        .collect();
    eprintln!(
        "over 60 s: at most {most} key Secret(s) at once, {} seen, creations: {creates:?}",
        seen.len()
    );
    assert!(
        creates.len() <= 2 && seen.len() <= 2 && most <= 2,
        "key Secrets multiplied: {creates:?}, seen {seen:?}"
    );
    assert!(
        !seen.is_empty(),
        "the operator never generated a key: {}",
        operator.log(&cp)
    );
    let log = operator.log(&cp);
    let failures = log.matches("reconcile failed").count();
    assert!(
        log.contains("write status") && failures <= 12,
        "expected a few failed status writes, backing off ({failures}): {log}"
    );
}

/// Waits until the CRD `name` is Established. (`kubectl wait --for=condition=Established`
/// fails, rather than waits, while a new CRD's conditions are still null.)
pub(crate) async fn established(cp: &ControlPlane, name: &str) {
    let crds = kube::Api::<
        k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    >::all(cp.client().await);
    eventually(
        &format!("CRD {name} established"),
        Duration::from_secs(30),
        || async {
            let crd = crds.get(name).await.ok()?;
            kube_oidc_tests::controlplane::crd_established(&crd).then_some(())
        },
    )
    .await;
}
