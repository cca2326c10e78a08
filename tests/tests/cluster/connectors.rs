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

/// A child process killed when dropped (also when a test panics).
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The node oidc-provider the upstream tests use (tests/upstream), started on a free port with
/// one client for kube-oidc. Returns the process and its issuer.
fn node_upstream(redirect_uri: &str, keys: &std::path::Path) -> (Killed, String) {
    use std::io::{BufRead, BufReader};
    let port = kube_oidc_tests::ControlPlane::free_port();
    let dir = crds::workspace_root().join("tests/upstream");
    let mut child = std::process::Command::new("node")
        .current_dir(&dir)
        .arg("upstream_oidc.mjs")
        .args([
            &port.to_string(),
            "kube-oidc",
            "upstream-secret",
            redirect_uri,
        ])
        .arg(keys)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("node (tests/upstream: npm ci)");
    let mut line = String::new();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    out.read_line(&mut line).unwrap();
    // Read on, so that the upstream never writes to a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let started: serde_json::Value = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("the upstream did not start ({e}): {line}"));
    (
        Killed(child),
        started["issuer"].as_str().unwrap().to_string(),
    )
}

/// Through the upstream's development sign-in pages as a browser would: the sign-in form with
/// `login`, until the upstream redirects back to kube-oidc.
async fn upstream_sign_in(c: &reqwest::Client, start: &str, user: &str) -> String {
    let mut location = start.to_string();
    for _ in 0..10 {
        if location.contains("/callback/") {
            return location;
        }
        let r = c.get(&location).send().await.unwrap();
        let r = if r.status() == 200 {
            let base = reqwest::Url::parse(&location).unwrap();
            let html = r.text().await.unwrap();
            let action = html
                .split("action=\"")
                .nth(1)
                .and_then(|s| s.split('"').next())
                .unwrap_or_else(|| panic!("no form: {html}"));
            let form: Vec<(&str, &str)> = if html.contains("name=\"login\"") {
                vec![("prompt", "login"), ("login", user), ("password", "any")]
            } else {
                vec![("prompt", "consent")]
            };
            c.post(base.join(action).unwrap())
                .form(&form)
                .send()
                .await
                .unwrap()
        } else {
            r
        };
        let next = r.headers()["location"].to_str().unwrap();
        location = reqwest::Url::parse(&location)
            .unwrap()
            .join(next)
            .unwrap()
            .to_string();
    }
    panic!("the upstream never sent the browser back: {location}")
}

/// Standalone: carol signs in to the demo client through an upstream OpenID provider (node
/// oidc-provider). Our ID token names a subject scoped to the connector, with her mapped claims
/// and the connector's prefixed groups; a second connector would give her another subject.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_sign_in_through_an_upstream_oidc_provider() {
    kube_oidc_tests::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("manifests");
    std::fs::create_dir(&folder).unwrap();
    for f in ["clients.yaml", "signing-key.yaml", "users.yaml"] {
        std::fs::copy(
            crds::workspace_root().join("examples/local").join(f),
            folder.join(f),
        )
        .unwrap();
    }
    let port = kube_oidc_tests::ControlPlane::free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let (_upstream, upstream_issuer) = node_upstream(
        &format!("{issuer}/callback/corp"),
        &dir.path().join("upstream-keys.json"),
    );
    std::fs::write(
        folder.join("connector.yaml"),
        format!(
            "apiVersion: kubeoidc.dev/v1alpha1\nkind: IdentityConnector\nmetadata: {{name: corp, namespace: kube-oidc}}\nspec:\n  type: oidc\n  displayName: Corp\n  groupPrefix: \"corp:\"\n  oidc:\n    issuer: {upstream_issuer}\n    clientId: kube-oidc\n    clientSecretRef: {{name: corp-oidc, key: client-secret}}\n    scopes: [openid, email, profile, groups]\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: corp-oidc, namespace: kube-oidc}}\nstringData: {{client-secret: upstream-secret}}\n---\napiVersion: kubeoidc.dev/v1alpha1\nkind: OidcClient\nmetadata: {{name: restricted, namespace: default}}\nspec:\n  clientId: restricted\n  type: public\n  redirectUris: [\"http://127.0.0.1:8000/callback\"]\n  scopes: [openid, email, groups]\n  allowedGroups: [\"corp:finance\"]\n"
        ),
    )
    .unwrap();
    let mut p = Provider::standalone_on(&folder, port, &[]);
    p.wait_ready(Duration::from_secs(30));
    let browser = crate::provider::http();
    let verifier = "v".repeat(50);
    let challenge = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            verifier.as_bytes(),
        ))
    };
    let authorize = format!(
        "{issuer}/authorize?client_id=demo&response_type=code&redirect_uri=http://127.0.0.1:8000/callback&scope=openid%20email%20groups&state=st&nonce=n&code_challenge={challenge}&code_challenge_method=S256"
    );
    let page = browser
        .get(&authorize)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Sign in with Corp"), "{page}");
    assert!(
        !page.contains("name=\"password\""),
        "no local connector: no password form: {page}"
    );
    let r = browser
        .post(format!("{issuer}/login"))
        .form(&[
            ("request", crate::provider::field(&page, "request")),
            ("csrf", crate::provider::field(&page, "csrf")),
            ("connector", "corp".to_string()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let to_upstream = r.headers()["location"].to_str().unwrap().to_string();
    assert!(to_upstream.starts_with(&upstream_issuer), "{to_upstream}");
    let callback = upstream_sign_in(&browser, &to_upstream, "carol").await;
    let r = browser.get(&callback).send().await.unwrap();
    let r = if r.status() == 200 {
        // Our consent page, for carol.
        let html = r.text().await.unwrap();
        assert!(html.contains("Carol Upstream"), "{html}");
        browser
            .post(format!("{issuer}/consent"))
            .form(&[
                ("request", crate::provider::field(&html, "request")),
                ("csrf", crate::provider::field(&html, "csrf")),
                ("decision", "approve".to_string()),
            ])
            .send()
            .await
            .unwrap()
    } else {
        r
    };
    assert_eq!(r.status(), 303);
    let back = r.headers()["location"].to_str().unwrap().to_string();
    assert!(
        back.starts_with("http://127.0.0.1:8000/callback?code="),
        "{back}"
    );
    let code = reqwest::Url::parse(&back)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .to_string();
    let tokens: serde_json::Value = browser
        .post(format!("{issuer}/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:8000/callback"),
            ("client_id", "demo"),
            ("code_verifier", &verifier),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let claims =
        crate::provider::verify(&issuer, tokens["id_token"].as_str().unwrap(), "demo").await;
    // The subject is scoped to the connector (provider::protocol::upstream::subject).
    let scoped = {
        use base64::Engine;
        let d = aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            b"kube-oidc:connector:4:corp:carol",
        );
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&d.as_ref()[..16])
    };
    assert_eq!(claims["sub"], scoped.as_str());
    assert_eq!(
        claims["groups"],
        serde_json::json!(["corp:dev", "corp:ops"]),
        "{claims}"
    );

    // allowedGroups: carol (corp:dev, corp:ops) is signed in, but not in corp:finance; the
    // client hears access_denied, and no consent page is shown to her.
    let r = browser
        .get(authorize.replace("client_id=demo", "client_id=restricted"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let denied = r.headers()["location"].to_str().unwrap();
    assert!(
        denied.starts_with("http://127.0.0.1:8000/callback?error=access_denied"),
        "{denied}"
    );
}
