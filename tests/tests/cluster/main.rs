//! Tests against the real control plane: CRDs, admission (defaults and CEL rules), printer
//! columns, `kubectl explain`, and owner-reference garbage collection.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use crds::{OidcClient, OidcScope, SigningKey};
use k8s_openapi::{
    api::core::v1::ConfigMap,
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    apimachinery::pkg::apis::meta::v1::OwnerReference,
};
use kube::{
    Api, Resource, ResourceExt,
    api::{ApiResource, DeleteParams, DynamicObject, ObjectMeta, PostParams},
    core::GroupVersionKind,
};
use kube_oidc_tests::{control_plane, controlplane::crd_established};

mod chart;
mod connectors;
mod examples;
mod fresh;
mod kubectl_login;
mod operator;
mod pages;
mod policy;
mod provider;
mod readme;
mod relying_parties;

fn examples_dir() -> std::path::PathBuf {
    crds::workspace_root().join("examples")
}

fn dynamic_api(ns: &kube_oidc_tests::TestNamespace, kind: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk(crds::GROUP, crds::VERSION, kind);
    let plural = match kind {
        "OidcClient" => "oidcclients",
        "OidcScope" => "oidcscopes",
        "SigningKey" => "signingkeys",
        other => panic!("unknown kind {other}"),
    };
    Api::namespaced_with(
        ns.client.clone(),
        &ns.name,
        &ApiResource::from_gvk_with_plural(&gvk, plural),
    )
}

fn object(yaml: &str) -> DynamicObject {
    serde_yaml::from_str(yaml).expect("test manifest is YAML")
}

#[tokio::test]
async fn crds_install_and_are_established() {
    let cp = control_plane();
    let client = cp.client().await;
    let api = Api::<CustomResourceDefinition>::all(client);
    for name in [
        "oidcclients.kubeoidc.dev",
        "oidcscopes.kubeoidc.dev",
        "signingkeys.kubeoidc.dev",
    ] {
        let crd = api.get(name).await.expect(name);
        assert!(crd_established(&crd), "{name} is not Established");
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1alpha1");
        assert!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "{name} has no status subresource"
        );
    }
}

#[tokio::test]
async fn examples_are_accepted_with_defaults() {
    let ns = control_plane().namespace("examples").await;
    let dir = examples_dir().join("basic");
    let mut applied = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let obj = object(&std::fs::read_to_string(&path).unwrap());
        let kind = obj.types.as_ref().unwrap().kind.clone();
        dynamic_api(&ns, &kind)
            .create(&PostParams::default(), &obj)
            .await
            .unwrap_or_else(|e| panic!("{} rejected: {e}", path.display()));
        applied += 1;
    }
    assert_eq!(applied, 4, "examples/basic should hold four manifests");

    // Defaults filled in by the API server's structural schema.
    let webapp = ns.api::<OidcClient>().get("webapp").await.unwrap();
    let spec = serde_json::to_value(&webapp.spec).unwrap();
    assert_eq!(spec["type"], "confidential");
    assert_eq!(
        spec["grantTypes"],
        serde_json::json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(spec["responseTypes"], serde_json::json!(["code"]));
    assert_eq!(spec["consent"], "once");
    assert_eq!(spec["accessTokenFormat"], "jwt");
    assert_eq!(spec["signingAlgorithm"], "RS256");
    assert_eq!(
        std::time::Duration::from(webapp.spec.access_token_ttl),
        Duration::from_secs(3600)
    );
    assert_eq!(
        std::time::Duration::from(webapp.spec.refresh_token_ttl),
        Duration::from_secs(720 * 3600)
    );
    assert_eq!(webapp.client_id(), format!("{}.webapp", ns.name));
    assert_eq!(webapp.secret_name(), "webapp-oidc");

    let cli = ns.api::<OidcClient>().get("cli").await.unwrap();
    assert!(
        cli.spec.require_pkce(),
        "public clients always require PKCE"
    );
    assert_eq!(
        cli.spec.token_endpoint_auth_method(),
        crds::TokenEndpointAuthMethod::None
    );

    let key = ns.api::<SigningKey>().get("default").await.unwrap();
    assert_eq!(key.spec.rsa_bits(), Some(2048));
    assert_eq!(
        std::time::Duration::from(key.spec.rotation.interval),
        Duration::from_secs(720 * 3600)
    );
    assert_eq!(
        std::time::Duration::from(key.spec.rotation.prepublish),
        Duration::from_secs(24 * 3600)
    );
    assert_eq!(
        std::time::Duration::from(key.spec.rotation.retain),
        Duration::from_secs(48 * 3600)
    );

    let scope = ns.api::<OidcScope>().get("orders-read").await.unwrap();
    assert_eq!(scope.scope(), "orders:read");

    // The shared semantic validation agrees with the API server on these objects.
    for client in [&webapp, &cli] {
        assert_eq!(crds::validation::validate_client(client), Vec::new());
    }
    assert_eq!(
        crds::validation::validate_signing_key(&key.spec),
        Vec::new()
    );
    assert_eq!(crds::validation::validate_scope(&scope), Vec::new());
    ns.delete().await;
}

/// Each manifest must be refused at admission with a message that says what to fix.
#[tokio::test]
async fn invalid_manifests_are_rejected_with_actionable_messages() {
    let ns = control_plane().namespace("invalid").await;
    let client_base =
        "apiVersion: kubeoidc.dev/v1alpha1\nkind: OidcClient\nmetadata:\n  name: bad\nspec:\n";
    let key_base =
        "apiVersion: kubeoidc.dev/v1alpha1\nkind: SigningKey\nmetadata:\n  name: bad\nspec:\n";
    let scope_base =
        "apiVersion: kubeoidc.dev/v1alpha1\nkind: OidcScope\nmetadata:\n  name: bad\nspec:\n";
    let cases: &[(&str, String, &[&str])] = &[
        (
            "redirect URI with a fragment",
            format!("{client_base}  redirectUris: [\"https://app.example.com/cb#frag\"]\n"),
            &[
                "https://app.example.com/cb#frag",
                "must not contain a fragment",
            ],
        ),
        (
            "relative redirect URI",
            format!("{client_base}  redirectUris: [\"/callback\"]\n"),
            &["\"/callback\"", "must be an absolute URL"],
        ),
        (
            "plain http to a non-loopback host",
            format!("{client_base}  redirectUris: [\"http://app.example.com/cb\"]\n"),
            &["http://app.example.com/cb", "must use https", "loopback"],
        ),
        (
            "public client with a secret-based auth method",
            format!(
                "{client_base}  type: public\n  tokenEndpointAuthMethod: client_secret_basic\n  redirectUris: [\"http://127.0.0.1/cb\"]\n"
            ),
            &[
                "public client cannot keep a secret",
                "tokenEndpointAuthMethod to none",
            ],
        ),
        (
            "confidential client that does not authenticate",
            format!(
                "{client_base}  tokenEndpointAuthMethod: none\n  redirectUris: [\"https://a.example.com/cb\"]\n"
            ),
            &["confidential client must authenticate"],
        ),
        (
            "public client with PKCE switched off",
            format!(
                "{client_base}  type: public\n  requirePkce: false\n  redirectUris: [\"http://127.0.0.1/cb\"]\n"
            ),
            &["public clients always use PKCE"],
        ),
        (
            "public client with client_credentials",
            format!("{client_base}  type: public\n  grantTypes: [client_credentials]\n"),
            &["client_credentials grant needs a client that can authenticate"],
        ),
        (
            "code flow without redirect URIs",
            format!("{client_base}  displayName: nothing else\n"),
            &["authorization_code grant needs at least one entry in redirectUris"],
        ),
        (
            "unknown grant type",
            format!(
                "{client_base}  grantTypes: [password]\n  redirectUris: [\"https://a.example.com/cb\"]\n"
            ),
            &[
                "spec.grantTypes[0]",
                "Unsupported value: \"password\"",
                "authorization_code",
            ],
        ),
        (
            "unknown response type",
            format!(
                "{client_base}  responseTypes: [token]\n  redirectUris: [\"https://a.example.com/cb\"]\n"
            ),
            &["spec.responseTypes[0]", "Unsupported value: \"token\""],
        ),
        (
            "default scope that is not allowed",
            format!(
                "{client_base}  redirectUris: [\"https://a.example.com/cb\"]\n  scopes: [openid]\n  defaultScopes: [openid, email]\n"
            ),
            &["defaultScopes: \"email\" must also be listed in scopes"],
        ),
        (
            "scope with a space",
            format!(
                "{client_base}  redirectUris: [\"https://a.example.com/cb\"]\n  scopes: [\"openid\", \"read all\"]\n"
            ),
            &["\"read all\" is not a scope name"],
        ),
        (
            "client id with a slash",
            format!(
                "{client_base}  clientId: team/app\n  redirectUris: [\"https://a.example.com/cb\"]\n"
            ),
            &["clientId may contain only letters, digits"],
        ),
        (
            "token lifetime that is not a duration",
            format!(
                "{client_base}  redirectUris: [\"https://a.example.com/cb\"]\n  accessTokenTtl: one hour\n"
            ),
            &["accessTokenTtl must be a positive duration", "one hour"],
        ),
        (
            "zero token lifetime",
            format!(
                "{client_base}  redirectUris: [\"https://a.example.com/cb\"]\n  idTokenTtl: 0s\n"
            ),
            &["idTokenTtl must be a positive duration"],
        ),
        (
            "refresh tokens without the code grant",
            format!("{client_base}  grantTypes: [client_credentials, refresh_token]\n"),
            &["refresh tokens are issued only with the authorization_code grant"],
        ),
        (
            "keySize on an EC key",
            format!("{key_base}  algorithm: ES256\n  keySize: 2048\n"),
            &["keySize applies only to RSA algorithms"],
        ),
        (
            "RSA key too small",
            format!("{key_base}  keySize: 1024\n"),
            &["keySize must be 2048, 3072 or 4096"],
        ),
        (
            "unknown algorithm",
            format!("{key_base}  algorithm: HS256\n"),
            &["spec.algorithm", "Unsupported value: \"HS256\""],
        ),
        (
            "prepublish not shorter than interval",
            format!("{key_base}  rotation: {{interval: 1h, prepublish: 2h, retain: 30m}}\n"),
            &["prepublish must be shorter than interval"],
        ),
        (
            "retain not shorter than interval",
            format!("{key_base}  rotation: {{interval: 1h, prepublish: 10m, retain: 1h}}\n"),
            &["retain must be shorter than interval"],
        ),
        (
            "negative rotation interval",
            format!("{key_base}  rotation: {{interval: -1h}}\n"),
            &["interval must be a positive duration"],
        ),
        (
            "scope name with a space",
            format!("{scope_base}  name: \"read orders\"\n  description: x\n"),
            &["name must be one word of printable ASCII"],
        ),
    ];
    assert!(cases.len() >= 10);
    let mut failures = Vec::new();
    for (what, yaml, expected) in cases {
        let obj = object(yaml);
        let kind = obj.types.as_ref().unwrap().kind.clone();
        match dynamic_api(&ns, &kind)
            .create(&PostParams::default(), &obj)
            .await
        {
            Ok(_) => failures.push(format!("{what}: accepted")),
            Err(kube::Error::Api(status)) => {
                if status.code != 422 {
                    failures.push(format!("{what}: HTTP {} ({})", status.code, status.message));
                }
                for needle in *expected {
                    if !status.message.contains(needle) {
                        failures.push(format!(
                            "{what}: message lacks {needle:?}: {}",
                            status.message
                        ));
                    }
                }
            }
            Err(e) => failures.push(format!("{what}: {e}")),
        }
        // `kube-oidc-provider check` (GitOps pipelines) refuses the same manifest in the same
        // words; only the API server's own schema errors (an unknown enum value) are worded
        // by each in its own way.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bad.yaml"), yaml).unwrap();
        let out = std::process::Command::new(kube_oidc_tests::operator::workspace_binary(
            "kube-oidc-provider",
        ))
        .arg("check")
        .arg(dir.path())
        .output()
        .unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        if out.status.success() {
            failures.push(format!("{what}: check accepted it"));
        }
        for needle in expected.iter().filter(|n| {
            !n.starts_with("Unsupported value")
                && !n.starts_with("spec.")
                && **n != "authorization_code"
        }) {
            if !said.contains(needle) {
                failures.push(format!("{what}: check's message lacks {needle:?}: {said}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    ns.delete().await;
}

#[tokio::test]
async fn owned_objects_are_garbage_collected_with_their_client() {
    let ns = control_plane().namespace("gc").await;
    let clients = ns.api::<OidcClient>();
    let client: OidcClient = serde_yaml::from_str(
        "apiVersion: kubeoidc.dev/v1alpha1\nkind: OidcClient\nmetadata:\n  name: owner\nspec:\n  redirectUris: [\"https://a.example.com/cb\"]\n",
    )
    .unwrap();
    let client = clients
        .create(&PostParams::default(), &client)
        .await
        .unwrap();
    let owner = OwnerReference {
        api_version: OidcClient::api_version(&()).into(),
        kind: OidcClient::kind(&()).into(),
        name: client.name_any(),
        uid: client.uid().unwrap(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    let cms = ns.api::<ConfigMap>();
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some("owned".into()),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        ..Default::default()
    };
    cms.create(&PostParams::default(), &cm).await.unwrap();
    clients
        .delete("owner", &DeleteParams::default())
        .await
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if cms.get_opt("owned").await.unwrap().is_none() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ConfigMap owned by a deleted OidcClient still exists after 60 s; see {}",
            control_plane()
                .log_path("kube-controller-manager")
                .display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ns.delete().await;
}

#[tokio::test]
async fn kubectl_explains_fields_and_prints_columns() {
    let cp = control_plane();
    let ns = cp.namespace("kubectl").await;
    let out = cp
        .kubectl()
        .args(["explain", "oidcclient.spec.redirectUris"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "kubectl explain failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("Redirect URIs the authorization endpoint may send"),
        "{text}"
    );

    let manifest = examples_dir().join("basic/webapp-client.yaml");
    let out = cp
        .kubectl()
        .args(["apply", "-n", &ns.name, "-f"])
        .arg(&manifest)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl apply: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cp
        .kubectl()
        .args(["get", "oidcclients", "-n", &ns.name])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let header: Vec<&str> = text
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "READY", "CLIENT-ID", "TYPE", "AGE"],
        "{text}"
    );
    assert!(
        text.contains("webapp") && text.contains("confidential"),
        "{text}"
    );

    let key = examples_dir().join("basic/signing-key.yaml");
    let out = cp
        .kubectl()
        .args(["apply", "-n", &ns.name, "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl apply: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cp
        .kubectl()
        .args(["get", "oidcsk", "-n", &ns.name])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "short name oidcsk: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let header: Vec<&str> = text
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "READY",
            "ALGORITHM",
            "ACTIVE-KID",
            "NEXT-ROTATION",
            "AGE"
        ],
        "{text}"
    );
    assert!(text.contains("RS256"), "{text}");
    ns.delete().await;
}

fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(needle) {
                found.push(cmdline);
            }
        }
    }
    found
}

/// A test process killed with SIGKILL leaves no etcd, kube-apiserver or kube-controller-manager
/// behind, and its working directory is removed.
#[test]
fn killed_test_process_leaves_nothing_behind() {
    use std::io::BufRead;
    // The same harness as every test, in a process of its own that can be killed.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kube-oidc-test-control-plane"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let dir = stdout
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("CONTROL_PLANE_DIR=").map(String::from))
        .expect("child started no control plane");
    let running = processes_mentioning(&dir);
    for component in ["/etcd ", "/kube-apiserver ", "/kube-controller-manager "] {
        assert!(
            running.iter().any(|p| p.contains(component)),
            "{component} not running: {running:?}"
        );
    }
    child.kill().unwrap(); // SIGKILL: no destructor, no panic hook runs
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !processes_mentioning(&dir).is_empty() || std::path::Path::new(&dir).exists() {
        assert!(
            Instant::now() < deadline,
            "left behind after 15 s: {:?} (dir exists: {})",
            processes_mentioning(&dir),
            std::path::Path::new(&dir).exists()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
