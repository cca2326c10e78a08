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
    // The key the provider seals upstream refresh tokens with is there.
    let sealing = ns
        .api::<Secret>()
        .get(crds::sealed::SEALING_KEY_SECRET)
        .await
        .unwrap();
    assert!(crds::sealed::SealingKey::from_secret(&sealing).is_some());

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
fn node_upstream(
    port: u16,
    redirect_uri: &str,
    keys: &std::path::Path,
    rotate: bool,
) -> (Killed, String, Vec<String>) {
    use std::io::{BufRead, BufReader};
    // The script beside the modules tests/run installed (node resolves imports from the
    // script's folder up).
    let modules = match std::env::var_os("KUBE_OIDC_UPSTREAM_MODULES").map(std::path::PathBuf::from)
    {
        Some(p) if p.join("oidc-provider").is_dir() => p,
        _ => panic!(
            "KUBE_OIDC_UPSTREAM_MODULES does not name the node modules of the upstream; tests/run installs them from tests/upstream/package-lock.json"
        ),
    };
    let dir = keys.parent().unwrap().join("upstream");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        crds::workspace_root().join("tests/upstream/upstream_oidc.mjs"),
        dir.join("upstream_oidc.mjs"),
    )
    .unwrap();
    if !dir.join("node_modules").exists() {
        std::os::unix::fs::symlink(&modules, dir.join("node_modules")).unwrap();
    }
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
        .args(rotate.then_some("--rotate"))
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
    let kids = started["kids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    (
        Killed(child),
        started["issuer"].as_str().unwrap().to_string(),
        kids,
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

/// An example's connector (examples/<folder>/connector.yaml) pointed at a test upstream:
/// `placeholder` (its upstream's address) replaced by `url`.
fn example_connector(folder: &str, placeholder: &str, url: &str) -> String {
    let yaml = std::fs::read_to_string(
        crds::workspace_root()
            .join("examples")
            .join(folder)
            .join("connector.yaml"),
    )
    .unwrap();
    assert!(
        yaml.contains(placeholder),
        "examples/{folder}: {placeholder}"
    );
    yaml.replace(placeholder, url)
}

/// The Secrets examples/ldap's connector names, for the test directory.
fn ldap_secrets(ca_pem: &str) -> String {
    use kube_oidc_tests::ldap::READER_PASSWORD;
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: corp-ldap}}\nstringData: {{password: {READER_PASSWORD}}}\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: corp-ldap-ca}}\nstringData:\n  ca.crt: |\n    {}\n",
        ca_pem.trim_end().replace('\n', "\n    ")
    )
}

/// PKCE's verifier and challenge for the tests' authorization requests.
fn pkce() -> (String, String) {
    use base64::Engine;
    let verifier = "v".repeat(50);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()),
    );
    (verifier, challenge)
}

/// Where a browser goes from `authorize` to sign in through OIDC connector `connector`: straight
/// on (the only way, or the one the request names), or through the sign-in page's button.
async fn towards_upstream(
    browser: &reqwest::Client,
    issuer: &str,
    authorize: &str,
    connector: &str,
) -> String {
    let r = browser.get(authorize).send().await.unwrap();
    if r.status().is_redirection() {
        let to = r.headers()["location"].to_str().unwrap().to_string();
        assert!(
            to.starts_with(&format!("{issuer}/connector/{connector}?")),
            "{to}"
        );
        return to;
    }
    let page = r.text().await.unwrap();
    let r = browser
        .post(format!("{issuer}/login"))
        .form(&[
            ("request", crate::provider::field(&page, "request")),
            ("csrf", crate::provider::field(&page, "csrf")),
            ("connector", connector.to_string()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{page}");
    r.headers()["location"].to_str().unwrap().to_string()
}

/// A browser's sign-in at `authorize` through connector `connector` as `user` of the node
/// upstream: towards the upstream, its pages, our consent page (approved) when shown. Where our
/// provider sends the browser in the end.
async fn sign_in_through(
    browser: &reqwest::Client,
    issuer: &str,
    authorize: &str,
    connector: &str,
    user: &str,
) -> String {
    let to_upstream = towards_upstream(browser, issuer, authorize, connector).await;
    let callback = upstream_sign_in(browser, &to_upstream, user).await;
    let r = browser.get(&callback).send().await.unwrap();
    // Our consent page names them as the upstream does ("... Upstream").
    through_consent(browser, issuer, r, "Upstream").await
}

/// The code of a redirect to `client`, redeemed.
async fn redeem(
    c: &reqwest::Client,
    issuer: &str,
    client: &str,
    back: &str,
    verifier: &str,
) -> serde_json::Value {
    assert!(
        back.starts_with("http://127.0.0.1:8000/callback?code="),
        "{back}"
    );
    let code = reqwest::Url::parse(back)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .to_string();
    c.post(format!("{issuer}/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:8000/callback"),
            ("client_id", client),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The demo client's refresh: the status and the answer.
async fn refresh(c: &reqwest::Client, issuer: &str, token: &str) -> (u16, serde_json::Value) {
    refresh_for(c, issuer, "demo", token).await
}

/// A refresh by public client `client`: the status and the answer.
async fn refresh_for(
    c: &reqwest::Client,
    issuer: &str,
    client: &str,
    token: &str,
) -> (u16, serde_json::Value) {
    let r = c
        .post(format!("{issuer}/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", client),
        ])
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// Our subject for `upstream_sub` of connector `connector`, as provider::protocol::upstream
/// derives it (written out again here: the test checks the documented derivation).
fn scoped_subject(connector: &str, upstream_sub: &str) -> String {
    use base64::Engine;
    let d = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!(
            "kube-oidc:connector:{}:{connector}:{upstream_sub}",
            connector.len()
        )
        .as_bytes(),
    );
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&d.as_ref()[..16])
}

/// Standalone, against node oidc-provider as the upstream:
/// - carol signs in to the demo client through it; our ID token names a subject scoped to the
///   connector, with her mapped claims and the connector's prefixed groups;
/// - `allowedGroups`: a client for corp:finance sends her back with access_denied, without a
///   consent page;
/// - a refresh goes back to the upstream: it works while she exists there, and once she is
///   removed upstream it is `invalid_grant`;
/// - the upstream down: a refresh is `temporarily_unavailable` and the refresh token is not used
///   up; a sign-in shows a page saying so;
/// - the upstream back with a new signing key: a sign-in works (its new key is fetched).
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
    let upstream_port = kube_oidc_tests::ControlPlane::free_port();
    let keys = dir.path().join("upstream-keys.json");
    let redirect = format!("{issuer}/callback/corp");
    let (upstream, upstream_issuer, first_kids) =
        node_upstream(upstream_port, &redirect, &keys, false);
    std::fs::write(
        folder.join("connector.yaml"),
        // With userinfo read too (its claims under the ID token's, about the same sub).
        example_connector(
            "upstream-oidc",
            "https://login.corp.example",
            &upstream_issuer,
        )
        .replace(
            "clientId: kube-oidc\n",
            "clientId: kube-oidc\n    userinfo: true\n",
        ),
    )
    .unwrap();
    assert!(
        std::fs::read_to_string(folder.join("connector.yaml"))
            .unwrap()
            .contains("    userinfo: true\n")
    );
    std::fs::write(
        folder.join("more.yaml"),
        "apiVersion: v1\nkind: Secret\nmetadata: {name: corp-oidc, namespace: kube-oidc}\nstringData: {client-secret: upstream-secret}\n---\napiVersion: kubeoidc.dev/v1alpha1\nkind: OidcClient\nmetadata: {name: restricted, namespace: default}\nspec:\n  clientId: restricted\n  type: public\n  redirectUris: [\"http://127.0.0.1:8000/callback\"]\n  scopes: [openid, email, groups]\n  allowedGroups: [\"corp:finance\"]\n",
    )
    .unwrap();
    let mut p = Provider::standalone_on(&folder, port, &[]);
    p.wait_ready(Duration::from_secs(30));
    let browser = crate::provider::http();
    let (verifier, challenge) = pkce();
    let authorize = format!(
        "{issuer}/authorize?client_id=demo&response_type=code&redirect_uri=http://127.0.0.1:8000/callback&scope=openid%20email%20groups%20offline_access&prompt=consent&state=st&nonce=n&code_challenge={challenge}&code_challenge_method=S256"
    );
    // The only way to sign in: straight to the upstream, the sign-in page skipped.
    let r = browser.get(&authorize).send().await.unwrap();
    assert!(r.status().is_redirection());
    let browser = crate::provider::http();
    let back = sign_in_through(&browser, &issuer, &authorize, "corp", "carol").await;
    let tokens = redeem(&browser, &issuer, "demo", &back, &verifier).await;
    let claims =
        crate::provider::verify(&issuer, tokens["id_token"].as_str().unwrap(), "demo").await;
    assert_eq!(claims["sub"], scoped_subject("corp", "carol").as_str());
    // Her email, as the upstream verified it, at userinfo (OpenID Connect Core §5.4).
    let info: serde_json::Value = browser
        .get(format!("{issuer}/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (info["email"].as_str(), info["email_verified"].as_bool()),
        (Some("carol@corp.example"), Some(true)),
        "{info}"
    );
    assert_eq!(
        claims["groups"],
        serde_json::json!(["corp:dev", "corp:ops"]),
        "{claims}"
    );

    // A device (RFC 8628) signs carol in through the upstream too: the device page goes
    // straight there, and back to our consent page for the device.
    let device = device_authorization(&browser, &issuer, "demo").await;
    let phone = crate::provider::http();
    let r = phone
        .get(format!(
            "{issuer}/device?user_code={}",
            device["user_code"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    let to = r.headers()["location"].to_str().unwrap().to_string();
    let callback = upstream_sign_in(&phone, &to, "carol").await;
    let consent = phone
        .get(&callback)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let done = phone
        .post(format!("{issuer}/consent"))
        .form(&[
            ("request", crate::provider::field(&consent, "request")),
            ("csrf", crate::provider::field(&consent, "csrf")),
            ("decision", "approve".to_string()),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(done.contains("Device signed in"), "{done}");
    let device_tokens = device_token(&browser, &issuer, "demo", &device).await;
    let on_device = crate::provider::verify(
        &issuer,
        device_tokens["id_token"]
            .as_str()
            .unwrap_or_else(|| panic!("{device_tokens}")),
        "demo",
    )
    .await;
    assert_eq!(on_device["sub"], claims["sub"]);

    // allowedGroups: carol (corp:dev, corp:ops) is signed in, but not in corp:finance; the
    // client hears access_denied, and no consent page is shown to her.
    let r = browser
        .get(
            authorize
                .replace("client_id=demo", "client_id=restricted")
                .replace("%20offline_access", ""),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let denied = r.headers()["location"].to_str().unwrap();
    assert!(
        denied.starts_with("http://127.0.0.1:8000/callback?error=access_denied"),
        "{denied}"
    );

    // A refresh asks the upstream again: fine while carol exists there ...
    let (status, refreshed) =
        refresh(&browser, &issuer, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{refreshed}");
    let again =
        crate::provider::verify(&issuer, refreshed["id_token"].as_str().unwrap(), "demo").await;
    assert_eq!(again["groups"], claims["groups"]);
    // ... and once she is removed upstream, her next refresh fails.
    let removed = browser
        .post(format!("{upstream_issuer}/admin/remove/carol"))
        .send()
        .await
        .unwrap();
    assert!(removed.status().is_success());
    let (status, gone) = refresh(
        &browser,
        &issuer,
        refreshed["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(
        (status, gone["error"].as_str()),
        (400, Some("invalid_grant")),
        "{gone}"
    );

    // dave signs in; then the upstream goes down.
    let browser = crate::provider::http();
    let back = sign_in_through(&browser, &issuer, &authorize, "corp", "dave").await;
    let dave = redeem(&browser, &issuer, "demo", &back, &verifier).await;
    let dave_refresh = dave["refresh_token"].as_str().unwrap().to_string();
    // Another browser of dave's is at the upstream, about to come back, when it goes down.
    let other = crate::provider::http();
    let to_upstream = towards_upstream(&other, &issuer, &authorize, "corp").await;
    let callback = upstream_sign_in(&other, &to_upstream, "dave").await;
    drop(upstream);
    let (status, down) = refresh(&browser, &issuer, &dave_refresh).await;
    assert_eq!(
        down["error"].as_str(),
        Some("temporarily_unavailable"),
        "{status} {down}"
    );
    // The code cannot be exchanged upstream: the client hears access_denied, with the reason.
    let r = other.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let denied = r.headers()["location"].to_str().unwrap();
    assert!(
        denied.starts_with("http://127.0.0.1:8000/callback?error=access_denied&error_description=the+identity+provider+Corp"),
        "{denied}"
    );

    // The upstream back, signing with a new key: the refresh token that met the outage was not
    // used up (the upstream, restarted, forgot its own grants: its answer is a refusal, not an
    // outage), and a new sign-in is verified with the new key.
    let (_upstream, _, kids) = node_upstream(upstream_port, &redirect, &keys, true);
    assert_ne!(kids[0], first_kids[0], "the upstream signs with a new key");
    // Keys are fetched again for an unknown kid at most once a second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, after) = refresh(&browser, &issuer, &dave_refresh).await;
    assert_eq!(
        (status, after["error"].as_str()),
        (400, Some("invalid_grant")),
        "{after}"
    );
    assert!(
        after["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("no longer"),
        "the upstream's refusal, not a used-up token: {after}"
    );
    let browser = crate::provider::http();
    let back = sign_in_through(&browser, &issuer, &authorize, "corp", "carol").await;
    let tokens = redeem(&browser, &issuer, "demo", &back, &verifier).await;
    let claims =
        crate::provider::verify(&issuer, tokens["id_token"].as_str().unwrap(), "demo").await;
    assert_eq!(claims["sub"], scoped_subject("corp", "carol").as_str());
}

/// A device's authorization request (RFC 8628) for public client `client`.
async fn device_authorization(
    c: &reqwest::Client,
    issuer: &str,
    client: &str,
) -> serde_json::Value {
    c.post(format!("{issuer}/device_authorization"))
        .form(&[("client_id", client), ("scope", "openid groups")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The device's token request for `device` (what [`device_authorization`] answered).
async fn device_token(
    c: &reqwest::Client,
    issuer: &str,
    client: &str,
    device: &serde_json::Value,
) -> serde_json::Value {
    c.post(format!("{issuer}/token"))
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", device["device_code"].as_str().unwrap()),
            ("client_id", client),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// erin (of the test directory, group dev) signs in to `client` with the password form of
/// `page` through directory connector `connector`: her ID token carries `ldap:dev` and the
/// subject of her `entryUUID` under that connector. Her tokens and ID token claims.
async fn erin_signs_in(
    directory: &kube_oidc_tests::ldap::Directory,
    browser: &reqwest::Client,
    issuer: &str,
    page: &str,
    client: &str,
    connector: &str,
    verifier: &str,
) -> (serde_json::Value, serde_json::Value) {
    let r = password_sign_in(browser, issuer, page, connector, "erin", "erin-password").await;
    let back = through_consent(browser, issuer, r, "").await;
    let tokens = redeem(browser, issuer, client, &back, verifier).await;
    let claims =
        crate::provider::verify(issuer, tokens["id_token"].as_str().unwrap(), client).await;
    assert_eq!(
        claims["groups"],
        serde_json::json!(["ldap:dev"]),
        "{claims}"
    );
    assert_eq!(
        claims["sub"],
        scoped_subject(connector, &directory.entry_uuid("erin")).as_str()
    );
    (tokens, claims)
}

/// A new browser, and the page it gets at `url`.
async fn fresh_page(url: String) -> (reqwest::Client, String) {
    let browser = crate::provider::http();
    let page = browser.get(url).send().await.unwrap().text().await.unwrap();
    (browser, page)
}

/// A sign-in with the password form of `page` (the sign-in page of a pending authorization):
/// the status and the page or redirect that answers.
async fn password_sign_in(
    browser: &reqwest::Client,
    issuer: &str,
    page: &str,
    directory: &str,
    username: &str,
    password: &str,
) -> reqwest::Response {
    browser
        .post(format!("{issuer}/login"))
        .form(&[
            ("request", crate::provider::field(page, "request")),
            ("csrf", crate::provider::field(page, "csrf")),
            ("directory", directory.to_string()),
            ("username", username.to_string()),
            ("password", password.to_string()),
        ])
        .send()
        .await
        .unwrap()
}

/// After a sign-in: our consent page (which must show `shows`) approved when shown; where the
/// browser goes then.
async fn through_consent(
    browser: &reqwest::Client,
    issuer: &str,
    r: reqwest::Response,
    shows: &str,
) -> String {
    let r = if r.status() == 200 {
        let html = r.text().await.unwrap();
        assert!(
            html.contains(shows),
            "our consent page, showing {shows}: {html}"
        );
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
    r.headers()["location"].to_str().unwrap().to_string()
}

/// Standalone, against slapd seeded with erin (dev) and frank (finance), through two
/// connectors to it (LDAPS, and ldap:// with StartTLS, both checked against the test CA) beside
/// the local users:
/// - the sign-in page offers the local accounts and both directories;
/// - a wrong password and an unknown user get the same answer; an empty password is refused;
/// - erin signs in through each: her groups mapped, and two subjects (one per connector);
/// - her refresh asks the directory again: fine while she is there; once she is moved out of
///   `dev`, a client for `ldap:dev` refuses the refresh; once deleted, every refresh fails;
/// - the directory down: a refresh is `temporarily_unavailable`, a sign-in says so on the page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_sign_in_with_an_ldap_directory() {
    use kube_oidc_tests::ldap::{BASE, Directory};
    kube_oidc_tests::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let mut directory = Directory::start(dir.path());
    let folder = dir.path().join("manifests");
    std::fs::create_dir(&folder).unwrap();
    for f in ["clients.yaml", "signing-key.yaml", "users.yaml"] {
        std::fs::copy(
            crds::workspace_root().join("examples/local").join(f),
            folder.join(f),
        )
        .unwrap();
    }
    // examples/ldap's connector, over LDAPS, and a second one to the same directory over
    // StartTLS, reading groups from memberOf.
    let ldaps = example_connector(
        "ldap",
        "ldaps://ldap.corp.example:636",
        &directory.ldaps_url,
    );
    let start_tls = example_connector(
        "ldap",
        "url: ldaps://ldap.corp.example:636",
        &format!("url: {}\n    startTLS: true", directory.ldap_url),
    )
    .replace("name: directory\n", "name: directory-starttls\n")
    // Its groups from the user's memberOf (as with Active Directory).
    .replace("# userAttribute: memberOf", "userAttribute: memberOf")
    .replace(
        "displayName: Corp directory",
        "displayName: Corp directory (StartTLS)",
    );
    // And an OpenID provider that never answers (nothing listens on port 9).
    let partner = example_connector(
        "upstream-oidc",
        "https://login.corp.example",
        "http://127.0.0.1:9",
    )
    .replace("name: corp\n", "name: partner\n")
    .replace("displayName: Corp", "displayName: Partner")
        + "---\napiVersion: v1\nkind: Secret\nmetadata: {name: corp-oidc}\nstringData: {client-secret: s3cret}\n";
    std::fs::write(
        folder.join("connectors.yaml"),
        format!(
            "{ldaps}---\n{start_tls}---\napiVersion: kubeoidc.dev/v1alpha1\nkind: IdentityConnector\nmetadata: {{name: local}}\nspec: {{type: local, displayName: Local accounts}}\n---\n{partner}---\n{}---\napiVersion: kubeoidc.dev/v1alpha1\nkind: OidcClient\nmetadata: {{name: devs, namespace: default}}\nspec:\n  clientId: devs\n  type: public\n  redirectUris: [\"http://127.0.0.1:8000/callback\"]\n  grantTypes: [authorization_code, refresh_token, \"urn:ietf:params:oauth:grant-type:device_code\"]\n  scopes: [openid, groups, offline_access]\n  allowedGroups: [\"ldap:dev\"]\n  allowedConnectors: [directory]\n",
            ldap_secrets(&directory.ca_pem),
        ),
    )
    .unwrap();
    let mut p = Provider::standalone(&folder, "memory");
    p.wait_ready(Duration::from_secs(30));
    let issuer = p.issuer.clone();
    let (verifier, challenge) = pkce();
    let authorize = |client: &str| {
        format!(
            "{issuer}/authorize?client_id={client}&response_type=code&redirect_uri=http://127.0.0.1:8000/callback&scope=openid%20groups%20offline_access&prompt=consent&state=st&code_challenge={challenge}&code_challenge_method=S256"
        )
    };

    let shots = crate::pages::screenshots_dir();
    let (browser, sign_in) = fresh_page(authorize("demo")).await;
    crate::pages::screenshot(&shots, "connectors-1-sign-in", &sign_in);
    assert!(sign_in.contains("Sign in with Partner"), "{sign_in}");
    // The request's connector: an OpenID provider goes straight there, a directory is chosen
    // in the form.
    let r = crate::provider::http()
        .get(format!("{}&connector=partner", authorize("demo")))
        .send()
        .await
        .unwrap();
    let to = r
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string());
    assert!(
        to.as_deref()
            .is_some_and(|l| l.starts_with(&format!("{issuer}/connector/partner?request="))),
        "{to:?}"
    );
    let (_, chosen) = fresh_page(format!(
        "{}&connector=directory-starttls",
        authorize("demo")
    ))
    .await;
    assert!(
        chosen.contains("<option value=\"directory-starttls\" selected>"),
        "{chosen}"
    );
    for offered in [
        "<option value=\"\">Local account</option>",
        "<option value=\"directory\">Corp directory</option>",
        "<option value=\"directory-starttls\">Corp directory (StartTLS)</option>",
    ] {
        assert!(sign_in.contains(offered), "{offered}: {sign_in}");
    }
    // Wrong password, unknown user, empty password: one answer.
    let mut answers = Vec::new();
    for (user, password) in [("erin", "wrong"), ("nobody", "erin-password"), ("erin", "")] {
        let r = password_sign_in(&browser, &issuer, &sign_in, "directory", user, password).await;
        let status = r.status().as_u16();
        let html = r.text().await.unwrap();
        assert!(
            html.contains("Wrong username or password."),
            "{user}: {html}"
        );
        answers.push((status, html.replace(&format!("value=\"{user}\""), "")));
    }
    assert!(
        answers.iter().all(|a| *a == answers[0]),
        "the same page for each"
    );
    assert_eq!(answers[0].0, 401);
    crate::pages::screenshot(&shots, "connectors-2-wrong-password", &answers[0].1);
    // An OpenID provider that cannot be reached: a page that says so, not a 500.
    let r = browser
        .post(format!("{issuer}/login"))
        .form(&[
            ("request", crate::provider::field(&sign_in, "request")),
            ("csrf", crate::provider::field(&sign_in, "csrf")),
            ("connector", "partner".to_string()),
        ])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    let html = r.text().await.unwrap();
    assert!(html.contains("cannot be reached"), "{html}");
    crate::pages::screenshot(&shots, "connectors-3-upstream-unreachable", &html);
    // The local users still sign in (alice, examples/local).
    let local = password_sign_in(&browser, &issuer, &sign_in, "", "alice", "demo-password").await;
    assert!(
        through_consent(&browser, &issuer, local, "")
            .await
            .contains("code=")
    );

    // erin, through each connector.
    let mut subjects = Vec::new();
    let mut erin_tokens = Vec::new();
    for name in ["directory", "directory-starttls"] {
        let (browser, sign_in) = fresh_page(authorize("demo")).await;
        let (tokens, claims) = erin_signs_in(
            &directory, &browser, &issuer, &sign_in, "demo", name, &verifier,
        )
        .await;
        subjects.push(claims["sub"].as_str().unwrap().to_string());
        erin_tokens.push(tokens);
    }
    assert_ne!(subjects[0], subjects[1], "one subject per connector");

    // The devs client: only the LDAPS directory is offered, only ldap:dev may use it.
    let (browser, devs_page) = fresh_page(authorize("devs")).await;
    assert!(
        !devs_page.contains("StartTLS")
            && !devs_page.contains("Local account")
            && !devs_page.contains("Partner"),
        "only the connectors the client allows: {devs_page}"
    );
    crate::pages::screenshot(&shots, "connectors-4-one-directory", &devs_page);
    let r = password_sign_in(
        &browser,
        &issuer,
        &devs_page,
        "directory",
        "erin",
        "erin-password",
    )
    .await;
    let back = through_consent(&browser, &issuer, r, "").await;
    let devs = redeem(&browser, &issuer, "devs", &back, &verifier).await;
    let (status, devs) = refresh_for(
        &browser,
        &issuer,
        "devs",
        devs["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{devs}");
    // frank (finance) is refused by the devs client after signing in, without consent.
    let (browser, devs_page) = fresh_page(authorize("devs")).await;
    let r = password_sign_in(
        &browser,
        &issuer,
        &devs_page,
        "directory",
        "frank",
        "frank-password",
    )
    .await;
    assert_eq!(r.status(), 303);
    let denied = r.headers()["location"].to_str().unwrap();
    assert!(denied.contains("error=access_denied"), "{denied}");
    // ... and on a device: a page says so (no consent page), and the device hears
    // access_denied.
    let device = device_authorization(&browser, &issuer, "devs").await;
    let (phone, sign_in) = fresh_page(format!(
        "{issuer}/device?user_code={}",
        device["user_code"].as_str().unwrap()
    ))
    .await;
    let r = password_sign_in(
        &phone,
        &issuer,
        &sign_in,
        "directory",
        "frank",
        "frank-password",
    )
    .await;
    assert_eq!(r.status(), 403);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("You are not allowed to use this application."),
        "{html}"
    );
    let polled = device_token(&browser, &issuer, "devs", &device).await;
    assert_eq!(polled["error"], "access_denied", "{polled}");

    // erin moved out of dev: the devs client's refresh fails; the demo client's still works,
    // without the group.
    directory.modify(
        "ldapmodify",
        &format!("dn: cn=dev,ou=groups,{BASE}\nchangetype: modify\ndelete: member\nmember: uid=erin,ou=people,{BASE}\n-\nadd: member\nmember: uid=frank,ou=people,{BASE}\n"),
    );
    let (status, out) = refresh_for(
        &browser,
        &issuer,
        "devs",
        devs["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(
        (status, out["error"].as_str()),
        (400, Some("invalid_grant")),
        "{out}"
    );
    let (status, demo) = refresh(
        &crate::provider::http(),
        &issuer,
        erin_tokens[0]["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{demo}");
    let claims = crate::provider::verify(&issuer, demo["id_token"].as_str().unwrap(), "demo").await;
    assert!(
        claims
            .get("groups")
            .is_none_or(|g| g == &serde_json::json!([])),
        "{claims}"
    );

    // The directory down: refreshes are temporarily_unavailable (the token is not used up), and
    // the sign-in page says the directory cannot be reached.
    directory.stop();
    let (status, down) = refresh(
        &crate::provider::http(),
        &issuer,
        demo["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(
        down["error"].as_str(),
        Some("temporarily_unavailable"),
        "{status} {down}"
    );
    let (browser, sign_in) = fresh_page(authorize("demo")).await;
    let r = password_sign_in(
        &browser,
        &issuer,
        &sign_in,
        "directory",
        "erin",
        "erin-password",
    )
    .await;
    assert_eq!(r.status(), 503);
    let html = r.text().await.unwrap();
    assert!(html.contains("The directory cannot be reached."), "{html}");
    crate::pages::screenshot(&shots, "connectors-5-directory-unreachable", &html);

    // Back up, erin deleted: her refresh (the same token) is refused now.
    directory.restart();
    directory.modify("ldapdelete", &format!("uid=erin,ou=people,{BASE}\n"));
    let (status, gone) = refresh(
        &crate::provider::http(),
        &issuer,
        demo["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(
        (status, gone["error"].as_str()),
        (400, Some("invalid_grant")),
        "{gone}"
    );
}

/// In a cluster (real control plane, operator and provider): an LDAP connector applied while
/// the provider runs becomes Ready after the operator's test bind, and the provider serves it
/// without a restart (the sign-in page's password form goes to the directory, erin signs in,
/// her groups are in the ID token, and the provider writes nothing to the API). A wrong bind DN
/// ends in a condition that names what to check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_cluster_an_ldap_connector_is_checked_and_served_without_a_restart() {
    use crds::{OidcClient, SigningKey};
    use kube_oidc_tests::ldap::{BASE, Directory};
    kube_oidc_tests::install_crypto_provider();
    let cp = control_plane();
    let ns = cp.namespace("ldap").await;
    let _op = Operator::start(cp, &ns.name, "a", &[]);
    let dir = tempfile::tempdir().unwrap();
    let directory = Directory::start(dir.path());
    let key: SigningKey = serde_yaml::from_str(
        "apiVersion: kubeoidc.dev/v1alpha1\nkind: SigningKey\nmetadata: {name: main}\nspec: {}\n",
    )
    .unwrap();
    ns.api::<SigningKey>()
        .create(&PostParams::default(), &key)
        .await
        .unwrap();
    let client: OidcClient = serde_yaml::from_str(
        "apiVersion: kubeoidc.dev/v1alpha1\nkind: OidcClient\nmetadata: {name: app}\nspec:\n  clientId: app\n  type: public\n  redirectUris: [\"http://127.0.0.1:8000/callback\"]\n  scopes: [openid, groups]\n  consent: skip\n",
    )
    .unwrap();
    ns.api::<OidcClient>()
        .create(&PostParams::default(), &client)
        .await
        .unwrap();
    let mut p = Provider::in_cluster(cp, &ns.name, "memory", &[]);
    p.wait_ready(Duration::from_secs(30));
    let issuer = p.issuer.clone();
    let (verifier, challenge) = pkce();
    let authorize = format!(
        "{issuer}/authorize?client_id=app&response_type=code&redirect_uri=http://127.0.0.1:8000/callback&scope=openid%20groups&state=st&code_challenge={challenge}&code_challenge_method=S256"
    );
    let sign_in_page = || async {
        let browser = crate::provider::http();
        let page = browser
            .get(&authorize)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        (browser, page)
    };
    eventually("the client served", Duration::from_secs(20), || async {
        sign_in_page()
            .await
            .1
            .contains("name=\"password\"")
            .then_some(())
    })
    .await;

    cp.apply(Some(&ns.name), &ldap_secrets(&directory.ca_pem));
    let connectors = ns.api::<IdentityConnector>();
    cp.apply(
        Some(&ns.name),
        &example_connector(
            "ldap",
            "ldaps://ldap.corp.example:636",
            &directory.ldaps_url,
        ),
    );
    let ok = ready(&connectors, "directory", "True").await;
    assert!(ok.message.contains("bound to"), "{ok:?}");

    // The provider follows without a restart: the password form now checks with the directory.
    let (browser, page) = eventually(
        "the directory on the sign-in page",
        Duration::from_secs(20),
        || async {
            let (b, page) = sign_in_page().await;
            page.contains("name=\"directory\" value=\"directory\"")
                .then_some((b, page))
        },
    )
    .await;
    assert!(page.contains("Corp directory"), "{page}");
    erin_signs_in(
        &directory,
        &browser,
        &issuer,
        &page,
        "app",
        "directory",
        &verifier,
    )
    .await;
    let writes = cp.api_writes_by(p.kube_user.as_deref().unwrap());
    assert!(
        writes.is_empty(),
        "the provider wrote to the API: {writes:?}"
    );

    // A wrong bind DN: the condition says what to check.
    connectors
        .patch(
            "directory",
            &PatchParams::default(),
            &Patch::Merge(
                serde_json::json!({"spec": {"ldap": {"bindDN": format!("cn=nobody,{BASE}")}}}),
            ),
        )
        .await
        .unwrap();
    let broken = eventually("BindFailed", Duration::from_secs(20), || async {
        let c = connectors.get("directory").await.ok()?;
        let status = c.status?;
        (status.observed_generation == c.metadata.generation).then_some(())?;
        crds::condition::find(&status.conditions, crds::condition::READY)
            .filter(|r| r.status == "False")
            .cloned()
    })
    .await;
    assert_eq!(broken.reason, "BindFailed", "{broken:?}");
    assert!(broken.message.contains("bindDN"), "{broken:?}");
    // Plain LDAP is refused at admission.
    let e = connectors
        .patch(
            "directory",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"ldap": {"url": directory.ldap_url}}})),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("startTLS: true"), "{e}");
    ns.delete().await;
}
