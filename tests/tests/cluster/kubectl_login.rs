//! Logging in to a cluster with kubectl: a ClusterLogin renders the API server's configuration,
//! a real kube-apiserver started with exactly that file authenticates people through
//! kubelogin (browser and device-code flows), RBAC applies to their groups, and tokens that
//! must not pass are refused.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crds::ClusterLogin;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams};
use kube_oidc_tests::{ControlPlane, Operator, Provider, control_plane};
use serde_json::{Value, json};

use crate::{operator::eventually, provider::code_flow};

/// The password of every user below ("demo-password", as in examples/local).
const PASSWORD: &str = "demo-password";
const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$MxEOWQvRq72CCcDaAkwOJg$9H+XUKV4SmiAcDmyWAfnQZ2xlItMdqlSLJCbvEyF2k4";

/// The platform team's objects: users, the issuer's CA, a key, the kubectl client, another
/// application, and the ClusterLogin.
fn platform_objects(ca_pem: &str, callback_port: u16) -> String {
    let ca = ca_pem.replace('\n', "\n    ");
    format!(
        r#"apiVersion: v1
kind: Secret
metadata: {{name: kube-oidc-users}}
stringData:
  users.yaml: |
    - {{username: alice, passwordHash: "{HASH}", email: alice@example.com, emailVerified: true, groups: [developers]}}
    - {{username: eve, passwordHash: "{HASH}", email: eve@example.com, emailVerified: false, groups: [developers]}}
    - {{username: "system:admin", passwordHash: "{HASH}", email: root@example.com, emailVerified: true, groups: ["system:masters"]}}
---
apiVersion: v1
kind: Secret
metadata: {{name: issuer-ca}}
stringData:
  ca.crt: |
    {ca}
---
apiVersion: kubeoidc.dev/v1alpha1
kind: SigningKey
metadata: {{name: main}}
spec:
  rotation: {{interval: 1h, prepublish: 4s, retain: 30m}}
---
apiVersion: kubeoidc.dev/v1alpha1
kind: OidcClient
metadata: {{name: kubectl}}
spec:
  clientId: kubectl
  displayName: kubectl
  type: public
  redirectUris: [http://127.0.0.1:{callback_port}/callback]
  grantTypes: [authorization_code, refresh_token, urn:ietf:params:oauth:grant-type:device_code]
  scopes: [openid, email, groups, offline_access]
  idTokenClaims: [email, email_verified]
  consent: once
---
apiVersion: kubeoidc.dev/v1alpha1
kind: OidcClient
metadata: {{name: other}}
spec:
  clientId: other-app
  type: public
  redirectUris: [http://127.0.0.1:{callback_port}/other]
  grantTypes: [authorization_code]
  scopes: [openid, email, groups]
---
apiVersion: kubeoidc.dev/v1alpha1
kind: ClusterLogin
metadata: {{name: kubectl-login}}
spec:
  clientName: kubectl
  issuerCA:
    secret: {{name: issuer-ca}}
"#
    )
}

/// A kubeconfig for cluster `b` whose users are the rendered entries, with what only a test
/// adds: the scripted browser, a token cache of its own, and (device) no browser at all.
fn kubeconfig(b: &ControlPlane, files: &Value, dir: &Path) -> PathBuf {
    let script = crds::workspace_root().join("tests/rp/kubelogin_browser.py");
    let user = |file: &str, extra: Vec<String>| {
        let text = files[file]
            .as_str()
            .unwrap_or_else(|| panic!("{file} not rendered"));
        let mut doc: Value = serde_yaml::from_str(text).unwrap();
        let mut u = doc["users"][0].take();
        let args = u["user"]["exec"]["args"].as_array_mut().unwrap();
        args.extend(extra.into_iter().map(Value::String));
        u
    };
    let browser = user(
        "kubeconfig-browser.yaml",
        vec![
            format!("--browser-command={}", script.display()),
            format!("--token-cache-dir={}", dir.join("cache-browser").display()),
        ],
    );
    let device = user(
        "kubeconfig-device.yaml",
        vec![format!(
            "--token-cache-dir={}",
            dir.join("cache-device").display()
        )],
    );
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "b", "cluster": {"server": b.server, "certificate-authority": b.ca_path()}}],
        "users": [browser, device],
        "contexts": [
            {"name": "browser", "context": {"cluster": "b", "user": "oidc", "namespace": "default"}},
            {"name": "device", "context": {"cluster": "b", "user": "oidc-device", "namespace": "default"}},
        ],
        "current-context": "browser",
    });
    let path = dir.join("kubeconfig");
    std::fs::write(&path, serde_yaml::to_string(&config).unwrap()).unwrap();
    path
}

/// `kubectl` as a person on cluster `b`: kubelogin on the PATH, the scripted browser's setup.
fn person_kubectl(b: &ControlPlane, kubeconfig: &Path, ca: &Path, user: &str) -> Command {
    let mut cmd = Command::new(b.bin_path("kubectl"));
    let path = format!(
        "{}:{}",
        b.bin_path("").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    cmd.env("KUBECONFIG", kubeconfig)
        .env("PATH", path)
        .env("KUBE_OIDC_TEST_CA", ca)
        .env("KUBE_OIDC_TEST_USER", user)
        .env("KUBE_OIDC_TEST_PASSWORD", PASSWORD)
        .env(
            "KUBE_OIDC_TEST_BROWSER_LOG",
            kubeconfig.with_file_name("browser.log"),
        );
    cmd
}

fn run(mut cmd: Command) -> (bool, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Who the API server says the bearer of `token` is (201), or its refusal (401).
async fn self_subject_review(b: &ControlPlane, token: &str) -> (u16, Value) {
    let c = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(b.ca_pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let r = c
        .post(format!(
            "{}/apis/authentication.k8s.io/v1/selfsubjectreviews",
            b.server
        ))
        .bearer_auth(token)
        .json(&json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Tokens for `user` from a code flow of the test's own (not kubelogin).
async fn tokens(issuer: &str, ca: &str, client_id: &str, redirect: &str, user: &str) -> Value {
    let c = crate::provider::browser_trusting(ca);
    code_flow(
        &c,
        issuer,
        client_id,
        redirect,
        "openid email groups",
        "",
        user,
    )
    .await
}

/// The device flow as the person does it on another device: the URL kubelogin printed, sign
/// in, allow.
async fn approve_device(url: &str, ca: &str, user: &str) {
    let c = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
        .cookie_store(true)
        .build()
        .unwrap();
    let base = url.split("/device").next().unwrap();
    let login = c.get(url).send().await.unwrap().text().await.unwrap();
    assert!(login.contains("name=\"password\""), "{login}");
    let consent = c
        .post(format!("{base}/login"))
        .form(&[
            ("request", crate::provider::field(&login, "request")),
            ("csrf", crate::provider::field(&login, "csrf")),
            ("username", user.into()),
            ("password", PASSWORD.into()),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        consent.contains("name=\"decision\"") && consent.contains("kubectl"),
        "{consent}"
    );
    let done = c
        .post(format!("{base}/consent"))
        .form(&[
            ("request", crate::provider::field(&consent, "request")),
            ("csrf", crate::provider::field(&consent, "csrf")),
            ("decision", "approve".into()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
}

/// The operator renders; a kube-apiserver started with exactly the rendered file lets alice in
/// through kubelogin (browser and device code), maps her groups to RBAC, refuses what must not
/// pass, and keeps working across a key rotation without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_logs_in_with_the_rendered_configuration_and_kubelogin() {
    let cp = control_plane();
    let ns = cp.namespace("login").await;
    let dir = tempfile::tempdir().unwrap();
    let ca_pem = cp.ca_pem();
    let (cert, key) = cp.server_certificate(&["127.0.0.1", "localhost"]);
    let (cert_path, key_path) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, key).unwrap();
    let port = ControlPlane::free_port();
    let callback_port = ControlPlane::free_port();
    let issuer = format!("https://127.0.0.1:{port}");

    let _op = Operator::start(cp, &ns.name, "a", &["--issuer", &issuer]);
    cp.apply(Some(&ns.name), &platform_objects(&ca_pem, callback_port));
    let _provider = Provider::in_cluster_tls(cp, &ns.name, port, &cert_path, &key_path);

    // Rendered, with a status that says where and how current.
    let logins = ns.api::<ClusterLogin>();
    let login = eventually(
        "the ClusterLogin Ready",
        Duration::from_secs(60),
        || async {
            let l = logins.get("kubectl-login").await.ok()?;
            let s = l.status.clone()?;
            let ready = crds::condition::find(&s.conditions, crds::condition::READY)?;
            (ready.status == "True").then_some(l)
        },
    )
    .await;
    let status = login.status.clone().unwrap();
    assert_eq!(status.config_map.as_deref(), Some("kubectl-login"));
    assert_eq!(status.client_id.as_deref(), Some("kubectl"));
    assert_eq!(
        status.files,
        [
            "authentication-config.yaml",
            "kubeconfig-browser.yaml",
            "kubeconfig-device.yaml"
        ]
    );
    assert!(status.digest.is_some() && status.rendered_at.is_some());
    let cm = ns.api::<ConfigMap>().get("kubectl-login").await.unwrap();
    let files = serde_json::to_value(cm.data.unwrap()).unwrap();
    let auth_config = dir.path().join("authentication-config.yaml");
    std::fs::write(
        &auth_config,
        files["authentication-config.yaml"].as_str().unwrap(),
    )
    .unwrap();

    // Cluster B: its kube-apiserver reads exactly the rendered file.
    let b = ControlPlane::start_empty_with(&[format!(
        "--authentication-config={}",
        auth_config.display()
    )]);
    b.apply(
        None,
        "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: pod-reader}
rules:
  - {apiGroups: [''], resources: [pods], verbs: [get, list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: oidc-developers-read-pods}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: pod-reader}
subjects:
  - {apiGroup: rbac.authorization.k8s.io, kind: Group, name: 'oidc:developers'}
",
    );
    let kubelogin = b.bin_path("kubectl-oidc_login");
    assert!(
        kubelogin.is_file(),
        "{} is missing: build it with tests/controlplane/build.sh (tests/run does)",
        kubelogin.display()
    );
    let kubeconfig = kubeconfig(&b, &files, dir.path());
    let ca_path = cp.ca_path().to_path_buf();

    // Browser flow: kubelogin opens the scripted browser, alice signs in and allows.
    let mut whoami = person_kubectl(&b, &kubeconfig, &ca_path, "alice");
    whoami.args(["auth", "whoami", "-o", "json"]);
    let (ok, out, err) = run(whoami);
    let browser_log = std::fs::read_to_string(dir.path().join("browser.log")).unwrap_or_default();
    assert!(ok, "kubectl auth whoami: {err}\nbrowser: {browser_log}");
    let me: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        me["status"]["userInfo"]["username"],
        "oidc:alice@example.com"
    );
    let groups = me["status"]["userInfo"]["groups"].to_string();
    assert!(groups.contains("oidc:developers"), "{groups}");
    // RBAC: the group may view pods, not read Secrets.
    let mut pods = person_kubectl(&b, &kubeconfig, &ca_path, "alice");
    pods.args(["get", "pods"]);
    let (ok, _, err) = run(pods);
    assert!(ok, "kubectl get pods: {err}");
    let mut secrets = person_kubectl(&b, &kubeconfig, &ca_path, "alice");
    secrets.args(["get", "secrets"]);
    let (ok, _, err) = run(secrets);
    assert!(!ok && err.contains("forbidden"), "{err}");

    // Device flow: kubectl prints the URL; the person approves it elsewhere.
    let mut device = person_kubectl(&b, &kubeconfig, &ca_path, "alice");
    device
        .args(["--context", "device", "auth", "whoami", "-o", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = device.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let url = loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("kubelogin printed no verification URL");
        if let Some(at) = line.find("https://") {
            break line[at..].trim().to_string();
        }
    };
    assert!(url.contains("/device?user_code="), "{url}");
    approve_device(&url, &ca_pem, "alice").await;
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(out.status.success(), "device whoami failed");
    let me: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        me["status"]["userInfo"]["username"],
        "oidc:alice@example.com"
    );

    // What must not pass.
    let kubectl_cb = format!("http://127.0.0.1:{callback_port}/callback");
    let alice = tokens(&issuer, &ca_pem, "kubectl", &kubectl_cb, "alice").await;
    let id_token = alice["id_token"].as_str().unwrap();
    assert_eq!(self_subject_review(&b, id_token).await.0, 201);
    let access = alice["access_token"].as_str().unwrap();
    assert_eq!(
        self_subject_review(&b, access).await.0,
        401,
        "an access token passed as an ID token"
    );
    let other_cb = format!("http://127.0.0.1:{callback_port}/other");
    let other = tokens(&issuer, &ca_pem, "other-app", &other_cb, "alice").await;
    assert_eq!(
        self_subject_review(&b, other["id_token"].as_str().unwrap())
            .await
            .0,
        401,
        "a token for another audience passed"
    );
    let eve = tokens(&issuer, &ca_pem, "kubectl", &kubectl_cb, "eve").await;
    assert_eq!(
        self_subject_review(&b, eve["id_token"].as_str().unwrap())
            .await
            .0,
        401,
        "an unverified email passed"
    );
    let admin = tokens(&issuer, &ca_pem, "kubectl", &kubectl_cb, "system:admin").await;
    assert_eq!(
        self_subject_review(&b, admin["id_token"].as_str().unwrap())
            .await
            .0,
        401,
        "an upstream system: user passed"
    );

    // Each refused for its own reason (the API server logs why; the client only sees 401).
    let log = std::fs::read_to_string(b.log_path("kube-apiserver")).unwrap();
    for reason in [
        // The access token: its audience is the userinfo endpoint, not the client.
        format!("expected audience \\\"kubectl\\\" got [\\\"{issuer}/userinfo\\\"]").as_str(),
        "expected audience \\\"kubectl\\\" got [\\\"other-app\\\"]",
        "email not verified",
        "group names starting with system: are reserved for Kubernetes",
    ] {
        assert!(
            log.contains(reason),
            "the API server did not refuse for: {reason}"
        );
    }

    // Key rotation: new tokens are signed by the new key; the API server follows without a
    // restart.
    let old_kid = jsonwebtoken::decode_header(id_token).unwrap().kid.unwrap();
    let sign_in = || tokens(&issuer, &ca_pem, "kubectl", &kubectl_cb, "alice");
    let rotated = rotate(&ns, "first", &old_kid, sign_in).await;
    let (code, review) = self_subject_review(&b, &rotated).await;
    assert_eq!(code, 201, "after rotation: {review}");
    assert_eq!(
        self_subject_review(&b, id_token).await.0,
        201,
        "the retained key"
    );
    // kube-apiserver also caches a successful authentication of a token for 10 s (its
    // built-in token cache): the checks of the same token below wait that out.
    let cached_until = Instant::now() + Duration::from_secs(11);

    // The caveat the README states: a revoked key stays trusted by the API server until it
    // fetches the JWKS again, which it does when a token carries a kid it does not know.
    let mut revoke = cp.kubectl();
    revoke.args(["annotate", "signingkey", "main", "-n", &ns.name]);
    revoke.arg(format!("kubeoidc.dev/revoke-kid={old_kid}"));
    let (ok, _, err) = run(revoke);
    assert!(ok, "{err}");
    let jwks_client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    eventually(
        "the revoked kid gone from /jwks",
        Duration::from_secs(30),
        || async {
            let jwks: Value = jwks_client
                .get(format!("{issuer}/jwks"))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (!jwks.to_string().contains(&old_kid)).then_some(())
        },
    )
    .await;
    tokio::time::sleep(cached_until.saturating_duration_since(Instant::now())).await;
    assert_eq!(
        self_subject_review(&b, id_token).await.0,
        201,
        "the API server refetched the JWKS on its own: update the README's caveat"
    );
    let cached_until = Instant::now() + Duration::from_secs(11);
    let newer_kid = jsonwebtoken::decode_header(&rotated).unwrap().kid.unwrap();
    let newest = rotate(&ns, "second", &newer_kid, sign_in).await;
    assert_eq!(self_subject_review(&b, &newest).await.0, 201);
    tokio::time::sleep(cached_until.saturating_duration_since(Instant::now())).await;
    assert_eq!(
        self_subject_review(&b, id_token).await.0,
        401,
        "a token of the revoked key passed after the API server saw a new kid"
    );
    // kubectl itself, with a fresh login (the cached token was signed by the old key).
    std::fs::remove_dir_all(dir.path().join("cache-browser")).unwrap();
    let mut again = person_kubectl(&b, &kubeconfig, &ca_path, "alice");
    again.args(["get", "pods"]);
    let (ok, _, err) = run(again);
    assert!(ok, "kubectl after rotation: {err}");
    ns.delete().await;
}

/// Rotates the SigningKey `main` now (published 4 s before it signs) and returns an ID token
/// from `sign_in` signed by a key other than `old_kid`.
async fn rotate<F, Fut>(
    ns: &kube_oidc_tests::TestNamespace,
    value: &str,
    old_kid: &str,
    sign_in: F,
) -> String
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Value>,
{
    ns.api::<crds::SigningKey>()
        .patch(
            "main",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"kubeoidc.dev/rotate": value, "kubeoidc.dev/rotate-prepublish": "4s"}}})),
        )
        .await
        .unwrap();
    eventually(
        "a token signed by the new key",
        Duration::from_secs(30),
        || async {
            let id = sign_in().await["id_token"].as_str()?.to_string();
            let kid = jsonwebtoken::decode_header(&id).ok()?.kid?;
            if kid == old_kid {
                tokio::time::sleep(Duration::from_millis(500)).await;
                return None;
            }
            Some(id)
        },
    )
    .await
}

/// The Ready condition of a ClusterLogin: (status, reason, message).
async fn login_ready(
    ns: &kube_oidc_tests::TestNamespace,
    name: &str,
) -> Option<(String, String, String)> {
    let l = ns.api::<ClusterLogin>().get(name).await.ok()?;
    let s = l.status?;
    if s.observed_generation != l.metadata.generation {
        return None;
    }
    let c = crds::condition::find(&s.conditions, crds::condition::READY)?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

async fn wait_reason(ns: &kube_oidc_tests::TestNamespace, name: &str, reason: &str) -> String {
    eventually(
        &format!("ClusterLogin {name} with reason {reason}"),
        Duration::from_secs(30),
        || async {
            let (_, r, message) = login_ready(ns, name).await?;
            (r == reason).then_some(message)
        },
    )
    .await
}

/// Status says what is missing and how to fix it; the rendered files follow the client and the
/// CA; a broken input keeps the last good files; a ConfigMap of someone else is left alone.
#[tokio::test]
async fn a_cluster_login_names_what_is_missing_and_follows_its_inputs() {
    let cp = control_plane();
    let ns = cp.namespace("clusterlogin").await;
    let _op = Operator::start(cp, &ns.name, "a", &[]);
    let login = "apiVersion: kubeoidc.dev/v1alpha1
kind: ClusterLogin
metadata: {name: people}
spec:
  clientName: kubectl
  issuerCA: {secret: {name: issuer-ca}}
";
    cp.apply(Some(&ns.name), login);
    let message = wait_reason(&ns, "people", "ClientNotFound").await;
    assert!(message.contains("spec.clientName"), "{message}");

    let ca = cp.ca_pem().replace('\n', "\n    ");
    cp.apply(
        Some(&ns.name),
        &format!(
            "apiVersion: v1
kind: Secret
metadata: {{name: issuer-ca}}
stringData:
  ca.crt: |
    {ca}
---
apiVersion: kubeoidc.dev/v1alpha1
kind: OidcClient
metadata: {{name: kubectl}}
spec:
  type: public
  grantTypes: [urn:ietf:params:oauth:grant-type:device_code]
  scopes: [openid, email, groups]
  idTokenClaims: [email, email_verified]
"
        ),
    );
    wait_reason(&ns, "people", "Rendered").await;
    let status = || async {
        ns.api::<ClusterLogin>()
            .get("people")
            .await
            .unwrap()
            .status
            .unwrap()
    };
    let first = status().await;
    assert_eq!(
        first.files,
        ["authentication-config.yaml", "kubeconfig-device.yaml"]
    );

    // The client gains a browser flow: the files follow.
    ns.api::<crds::OidcClient>()
        .patch(
            "kubectl",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {
                "grantTypes": ["authorization_code", "urn:ietf:params:oauth:grant-type:device_code"],
                "redirectUris": ["http://localhost:8000"],
            }})),
        )
        .await
        .unwrap();
    let second = eventually("the browser variant", Duration::from_secs(30), || async {
        let s = status().await;
        (s.files.len() == 3).then_some(s)
    })
    .await;
    assert_ne!(first.digest, second.digest);
    let cm = ns.api::<ConfigMap>().get("people").await.unwrap();
    let browser = &cm.data.as_ref().unwrap()["kubeconfig-browser.yaml"];
    assert!(
        browser.contains("--listen-address=127.0.0.1:8000")
            && browser.contains("--oidc-redirect-url=http://localhost:8000"),
        "{browser}"
    );

    // The CA Secret is pointed at a private key by mistake: refused without echoing it, and
    // the last good files stay.
    cp.apply(
        Some(&ns.name),
        "apiVersion: v1
kind: Secret
metadata: {name: issuer-ca}
stringData:
  ca.crt: |
    -----BEGIN PRIVATE KEY-----
    c2VjcmV0LWtleS1tYXRlcmlhbA==
    -----END PRIVATE KEY-----
",
    );
    let message = wait_reason(&ns, "people", "InvalidCA").await;
    assert!(!message.contains("c2VjcmV0"), "{message}");
    let kept = ns.api::<ConfigMap>().get("people").await.unwrap();
    assert_eq!(
        kept.data, cm.data,
        "a broken input changed the rendered files"
    );
    assert_eq!(status().await.digest, second.digest);

    // A ConfigMap that is someone else's is never overwritten.
    cp.apply(
        Some(&ns.name),
        "apiVersion: v1
kind: ConfigMap
metadata: {name: theirs}
data: {keep: me}
---
apiVersion: kubeoidc.dev/v1alpha1
kind: ClusterLogin
metadata: {name: squatter}
spec:
  clientName: kubectl
  configMapName: theirs
",
    );
    let message = wait_reason(&ns, "squatter", "ConfigMapTaken").await;
    assert!(message.contains("configMapName"), "{message}");
    let theirs = ns.api::<ConfigMap>().get("theirs").await.unwrap();
    assert_eq!(theirs.data.unwrap().len(), 1);
    ns.delete().await;
}
