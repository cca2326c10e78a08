//! Independently written relying parties against the provider in a cluster.

use std::{path::PathBuf, process::Command, time::Duration};

use kube_oidc_tests::{
    ControlPlane, Operator, Provider, RedisServer, control_plane, controlplane::scratch_dir,
    controlplane::spawn_reaped,
};
use serde_json::Value;

use crate::{
    operator::eventually,
    provider::{
        Registered, browser_sign_in, create_signing_key, http, install_demo_users, registered,
    },
};

/// The Python of the relying parties' venv that tests/run sets up.
fn python() -> PathBuf {
    let python = std::env::var_os("KUBE_OIDC_PYTHON").map(PathBuf::from);
    match python {
        Some(p) if p.is_file() => p,
        _ => panic!(
            "KUBE_OIDC_PYTHON does not name the Python of the relying parties' venv; tests/run sets it up from tests/rp/requirements.txt"
        ),
    }
}

/// Flask-pyoidc registers itself at its first login and redirects to the provider at once: the
/// provider knows the client by then, and the sign-in goes through without a pause or a retry.
#[tokio::test]
async fn flask_pyoidc_registers_itself_and_signs_in_without_a_pause() {
    let cp = control_plane();
    let ns = cp.namespace("flask-pyoidc").await;
    let _op = Operator::start(cp, &ns.name, "a", &[]);
    create_signing_key(&ns).await;
    install_demo_users(&ns).await;
    let mut p = Provider::in_cluster(cp, &ns.name, "memory", &["--registration", "open"]);
    p.wait_ready(Duration::from_secs(30));
    flask_pyoidc_signs_in(&p).await;
    ns.delete().await;
}

/// The seed relying party's flow: Flask-pyoidc registers itself (RFC 7591), redirects to the
/// provider, alice signs in, the app redeems the code and reads userinfo. The client ID.
async fn flask_pyoidc_signs_in(p: &Provider) -> String {
    let port = ControlPlane::free_port();
    let app = format!("http://127.0.0.1:{port}");
    let mut cmd = Command::new(python());
    cmd.arg(crds::workspace_root().join("tests/rp/flask_pyoidc_rp.py"))
        .args([p.issuer.as_str(), &port.to_string()]);
    let log = scratch_dir().join(format!("flask-pyoidc-{port}.log"));
    let mut rp = spawn_reaped(cmd, &log).expect("start the Flask-pyoidc app");
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    eventually(
        "the Flask-pyoidc app to start",
        Duration::from_secs(20),
        || async {
            let r = reqwest::get(format!("{app}/healthz")).await.ok()?;
            (r.status() == 200).then_some(())
        },
    )
    .await;

    // The first visit registers the app and redirects to the provider.
    let browser = http();
    let r = browser.get(format!("{app}/")).send().await.unwrap();
    assert_eq!(r.status(), 302, "{}", log_text());
    let authorize = r.headers()["location"].to_str().unwrap().to_string();
    assert!(
        authorize.starts_with(&format!("{}/authorize?", p.issuer)),
        "{authorize}"
    );
    // Straight on, as the browser would: the client is known.
    let callback = browser_sign_in(&browser, &authorize, "alice", "demo-password").await;
    assert!(
        callback.starts_with(&format!("{app}/redirect_uri?")),
        "{callback}"
    );
    // The app redeems the code and sends the browser back where it started.
    let r = browser.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), 302, "{}", log_text());
    let r = browser.get(format!("{app}/")).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", log_text());
    let signed_in: Value = r.json().await.unwrap();
    assert_eq!(signed_in["id_token"]["iss"], p.issuer.as_str());
    assert_eq!(signed_in["userinfo"]["email"], "alice@example.com");
    let client_id = signed_in["id_token"]["aud"]
        .as_array()
        .and_then(|a| a.first())
        .or(Some(&signed_in["id_token"]["aud"]))
        .and_then(Value::as_str)
        .unwrap()
        .to_string();
    assert!(client_id.starts_with("dcr-"), "{signed_in}");

    let _ = rp.kill();
    let _ = rp.wait();
    client_id
}

/// Registration on a laptop (issue 17): `--manifests` with `--registration open` serves
/// RFC 7591 / 7592 as a cluster does, with the same policy. Registered clients live in the
/// store: kept across a restart and shared by replicas with Redis, gone with the memory store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_registration_signs_in_reads_and_updates_itself() {
    let redis = RedisServer::start();
    let folder = crds::workspace_root().join("examples/local");
    let flags = ["--registration", "open"];
    let mut p = Provider::standalone_with(&folder, &redis.url, &flags);
    p.wait_ready(Duration::from_secs(30));
    let base = p.issuer.clone();
    let c = http();
    let discovery: Value = c
        .get(p.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        discovery["registration_endpoint"],
        format!("{base}/register")
    );

    // The seed relying party registers itself and signs alice in.
    let flask = flask_pyoidc_signs_in(&p).await;

    // The policy of registered clients applies as in a cluster: no machine grants.
    let metadata = serde_json::json!({
        "client_name": "Laptop app",
        "redirect_uris": ["http://127.0.0.1:8000/cb"],
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid email",
    });
    let mut machine = metadata.clone();
    machine["grant_types"] = serde_json::json!(["client_credentials"]);
    let r = c
        .post(p.url("/register"))
        .json(&machine)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "invalid_client_metadata", "{e}");
    assert!(
        e["error_description"]
            .as_str()
            .unwrap()
            .contains("client_credentials"),
        "{e}"
    );

    let r = c
        .post(p.url("/register"))
        .json(&metadata)
        .send()
        .await
        .unwrap();
    let Registered {
        client_id,
        secret,
        rat,
        uri,
    } = registered(r, &base).await;

    // It signs a user in with its credentials.
    let (verifier, challenge) = crate::provider::pkce();
    let authorize = format!(
        "{base}/authorize?response_type=code&client_id={client_id}&redirect_uri=http%3A%2F%2F127.0.0.1%3A8000%2Fcb&scope=openid%20email&code_challenge={challenge}&code_challenge_method=S256"
    );
    let browser = http();
    let location = browser_sign_in(&browser, &authorize, "alice", "demo-password").await;
    let code = crate::provider::query(&location)["code"].clone();
    let t: Value = c
        .post(p.url("/token"))
        .basic_auth(&client_id, Some(&secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:8000/cb"),
            ("code_verifier", &verifier),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = crate::provider::verify(&base, t["id_token"].as_str().unwrap(), &client_id).await;
    assert_eq!(id["aud"], client_id.as_str());

    // RFC 7592: it reads and updates itself through its registration client URI.
    assert_eq!(
        c.get(&uri)
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let read: Value = c
        .get(&uri)
        .bearer_auth(&rat)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read["client_secret"], secret.as_str());
    assert_eq!(read["client_name"], "Laptop app");
    let mut update = metadata.clone();
    update["client_id"] = serde_json::json!(client_id);
    update["client_name"] = serde_json::json!("Laptop app, renamed");
    let r = c
        .put(&uri)
        .bearer_auth(&rat)
        .json(&update)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A browser without a session sees the new name on the sign-in page.
    let html = http()
        .get(&authorize)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Laptop app, renamed"), "{html}");

    // Kept across a restart with Redis, and listed at start.
    drop(p);
    let mut p = Provider::standalone_with(&folder, &redis.url, &flags);
    p.wait_ready(Duration::from_secs(30));
    let log = p.log_text();
    assert!(log.contains(&client_id) && log.contains(&flask), "{log}");
    let again = authorize.replace(&base, &p.issuer);
    assert_eq!(c.get(&again).send().await.unwrap().status(), 200);
    // A replica on the same Redis serves what another registered.
    let mut replica = Provider::standalone_with(&folder, &redis.url, &flags);
    replica.wait_ready(Duration::from_secs(30));
    let r = c
        .post(p.url("/register"))
        .json(&metadata)
        .send()
        .await
        .unwrap();
    let other: Value = r.json().await.unwrap();
    let other_id = other["client_id"].as_str().unwrap();
    let elsewhere = authorize
        .replace(&base, &replica.issuer)
        .replace(&client_id, other_id);
    eventually(
        "the replica to serve the client registered at the other",
        Duration::from_secs(10),
        || async { (c.get(&elsewhere).send().await.ok()?.status() == 200).then_some(()) },
    )
    .await;

    // Deleted: no longer served.
    let uri = uri.replace(&base, &p.issuer);
    assert_eq!(
        c.delete(&uri)
            .bearer_auth(&rat)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(c.get(&again).send().await.unwrap().status(), 400);
    assert_eq!(
        c.get(&uri).bearer_auth(&rat).send().await.unwrap().status(),
        401
    );

    // With the memory store, registrations end with the process.
    let mut m = Provider::standalone_with(&folder, "memory", &flags);
    m.wait_ready(Duration::from_secs(30));
    let r: Value = c
        .post(m.url("/register"))
        .json(&metadata)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = r["client_id"].as_str().unwrap().to_string();
    let at_m = |issuer: &str| authorize.replace(&base, issuer).replace(&client_id, &id);
    assert_eq!(c.get(at_m(&m.issuer)).send().await.unwrap().status(), 200);
    drop(m);
    let mut m = Provider::standalone_with(&folder, "memory", &flags);
    m.wait_ready(Duration::from_secs(30));
    assert_eq!(c.get(at_m(&m.issuer)).send().await.unwrap().status(), 400);

    // Twenty registrations an hour from one address; the twenty-first is refused.
    for i in 1..=21 {
        let r = c
            .post(m.url("/register"))
            .json(&metadata)
            .send()
            .await
            .unwrap();
        if i <= 20 {
            assert_eq!(r.status(), 201, "registration {i}");
        } else {
            assert_eq!(r.status(), 403, "registration {i}");
            let e: Value = r.json().await.unwrap();
            assert_eq!(e["error"], "access_denied", "{e}");
            assert!(
                e["error_description"]
                    .as_str()
                    .unwrap()
                    .contains("too many registrations from this address"),
                "{e}"
            );
        }
    }
}

/// The attack: an access token presented to a relying party as if it were an ID token (RFC 9068
/// §3, RFC 9700 §4.15). authlib's ID-token verification, as its OpenID Connect client runs it,
/// accepts the ID token and refuses the access token of the same response: its audience is the
/// resource, not the client.
#[tokio::test]
async fn an_access_token_never_passes_authlib_as_an_id_token() {
    let mut p = Provider::standalone(&crds::workspace_root().join("examples/local"), "memory");
    p.wait_ready(Duration::from_secs(20));
    let t = crate::provider::code_flow(
        &http(),
        &p.issuer,
        "demo",
        "http://127.0.0.1:8000/callback",
        "openid email",
        "",
        "alice",
    )
    .await;
    let (id_token, access_token) = (
        t["id_token"].as_str().unwrap(),
        t["access_token"].as_str().unwrap(),
    );
    let out = Command::new(python())
        .arg(crds::workspace_root().join("tests/rp/authlib_id_token.py"))
        .args([p.issuer.as_str(), "demo", id_token, access_token])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        out.status.success() && lines.len() == 2,
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(lines[0], "accepted", "the ID token");
    // authlib sets no audience option of its own: a token whose `aud` is not the client needs
    // an `azp` naming it, which access tokens never carry. With `aud` = the client ID (as before)
    // the access token was accepted.
    assert!(
        lines[1].starts_with("refused:") && (lines[1].contains("aud") || lines[1].contains("azp")),
        "the access token passed as an ID token: {}",
        lines[1]
    );
}

/// private_key_jwt (RFC 7523) as authlib does it, over https with a private CA: a client
/// registers with its `jwks_uri`, redeems a code with an assertion signed by its key, validates
/// the ID token as authlib's OpenID Connect client does, reads userinfo, refreshes, rotates its
/// key (the provider fetches the JWK Set again for the unknown `kid`), and is refused with the
/// retired key and for a replayed assertion. No client secret is handed out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authlib_authenticates_with_private_key_jwt_and_rotates_its_key() {
    let flags = [
        "--registration",
        "open",
        "--registration-allow-private-urls",
    ];
    let (p, browser, dir) = https_provider_with("", &flags).await;
    let ca = dir.path().join("tls.crt");
    let mut rp = Command::new(python());
    rp.arg(crds::workspace_root().join("tests/rp/authlib_private_key_jwt.py"))
        .arg(&p.issuer)
        .env("SSL_CERT_FILE", &ca)
        .env("REQUESTS_CA_BUNDLE", &ca);
    let (started, results) = interactive_rp_started(rp, &browser, "authlib private_key_jwt").await;
    assert_eq!(started["secret_returned"], false, "{started}");
    for step in [
        "code_with_a",
        "id_token",
        "userinfo",
        "refresh_with_a",
        "refresh_with_b",
        "introspect",
    ] {
        assert_eq!(results[step], "ok", "{step}: {results}");
    }
    for step in ["refresh_with_retired_a", "introspect_replayed"] {
        let r = results[step].as_str().unwrap();
        assert!(
            r.starts_with("refused") && r.contains("invalid_client"),
            "{step}: {results}"
        );
    }
}

/// client_secret_jwt (RFC 7523 with HMAC) as authlib does it, in a cluster: the operator
/// generates the secret into the client's Secret and seals it in status with the sealing key it
/// makes in the provider's namespace; the provider, which cannot read application Secrets,
/// opens it and checks authlib's HMAC-signed assertions through a code flow with PKCE, ID token,
/// userinfo, refresh, introspection (a replay refused) and client_credentials. After a rotation
/// the new secret and, for the grace period, the previous one both work; a secret the client
/// never had does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authlib_authenticates_with_client_secret_jwt_through_the_operators_sealed_secret() {
    let cp = control_plane();
    let ns = cp.namespace("secret-jwt").await;
    let _op = Operator::start(cp, &ns.name, "a", &[]);
    create_signing_key(&ns).await;
    install_demo_users(&ns).await;
    let mut p = Provider::in_cluster(cp, &ns.name, "memory", &[]);
    p.wait_ready(Duration::from_secs(30));
    let clients = ns.api::<crds::OidcClient>();
    let client: crds::OidcClient = serde_yaml::from_str(
        "apiVersion: kubeoidc.dev/v1alpha1\nkind: OidcClient\nmetadata: {name: hmac}\nspec:\n  clientId: hmac\n  redirectUris: [\"http://127.0.0.1:8000/cb\"]\n  grantTypes: [authorization_code, refresh_token, client_credentials]\n  scopes: [openid, email, offline_access]\n  tokenEndpointAuthMethod: client_secret_jwt\n",
    )
    .unwrap();
    clients
        .create(&kube::api::PostParams::default(), &client)
        .await
        .unwrap();
    let secret_of = async || {
        let s = ns
            .api::<k8s_openapi::api::core::v1::Secret>()
            .get_opt("hmac-oidc")
            .await
            .ok()??;
        crds::secret::secret_data(&s, "client-secret")
    };
    let sealed_status = async || {
        let status = clients.get("hmac").await.ok()?.status?;
        status.sealed_secret.is_some().then_some(status)
    };
    let status = eventually(
        "a sealed secret in status",
        Duration::from_secs(15),
        sealed_status,
    )
    .await;
    let first = secret_of().await.expect("the client's Secret");
    let sealed = status.sealed_secret.unwrap();
    assert!(
        sealed.starts_with("v1.") && !sealed.contains(&first),
        "{sealed}"
    );
    let key_secret = ns
        .api::<k8s_openapi::api::core::v1::Secret>()
        .get(crds::sealed::SEALING_KEY_SECRET)
        .await
        .unwrap();
    let key = crds::sealed::SealingKey::from_secret(&key_secret).expect("a 32-byte sealing key");
    let owner = crds::sealed::client_owner(&ns.name, "hmac");
    assert_eq!(key.open(&owner, &sealed).as_deref(), Some(first.as_str()));

    let script = crds::workspace_root().join("tests/rp/authlib_client_secret_jwt.py");
    let grant = |secret: &str| {
        let out = Command::new(python())
            .arg(&script)
            .args([p.issuer.as_str(), "hmac", secret, "--client-credentials"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{e}: {text} {}", String::from_utf8_lossy(&out.stderr)));
        v["client_credentials"].as_str().unwrap().to_string()
    };
    eventually(
        "the provider to serve the client",
        Duration::from_secs(15),
        || async { (grant(&first) == "ok").then_some(()) },
    )
    .await;

    let mut rp = Command::new(python());
    rp.arg(&script).args([p.issuer.as_str(), "hmac", &first]);
    let (_, results) = interactive_rp_started(rp, &http(), "authlib client_secret_jwt").await;
    for step in ["code", "id_token", "userinfo", "refresh", "introspect"] {
        assert_eq!(results[step], "ok", "{step}: {results}");
    }
    let replayed = results["introspect_replayed"].as_str().unwrap();
    assert!(
        replayed.starts_with("refused") && replayed.contains("invalid_client"),
        "{results}"
    );

    // Rotation: the new secret works, the previous one too for the grace period.
    let mut patch = serde_json::json!({"metadata": {"annotations": {}}});
    patch["metadata"]["annotations"]["kubeoidc.dev/rotate-secret"] = "1".into();
    clients
        .patch(
            "hmac",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(patch),
        )
        .await
        .unwrap();
    let second = eventually("a rotated secret", Duration::from_secs(15), || async {
        secret_of().await.filter(|v| *v != first)
    })
    .await;
    eventually(
        "the provider to take the new secret",
        Duration::from_secs(15),
        || async { (grant(&second) == "ok").then_some(()) },
    )
    .await;
    assert_eq!(
        grant(&first),
        "ok",
        "the previous secret in its grace period"
    );
    let never = grant(&"n".repeat(43));
    assert!(never.contains("invalid_client"), "{never}");
    ns.delete().await;
}

/// The node modules tests/run installs from tests/rp/node/package-lock.json.
fn node_modules() -> PathBuf {
    match std::env::var_os("KUBE_OIDC_NODE_MODULES").map(PathBuf::from) {
        Some(p) if p.join("openid-client").is_dir() => p,
        _ => panic!(
            "KUBE_OIDC_NODE_MODULES does not name the node modules of the relying parties; tests/run installs them from tests/rp/node/package-lock.json"
        ),
    }
}

/// The standalone provider of examples/local over https with a self-signed certificate, and a
/// browser that trusts it. Returns the provider, the browser, and the certificate's folder.
async fn https_provider() -> (Provider, reqwest::Client, tempfile::TempDir) {
    https_provider_with("", &[]).await
}

/// Like [`https_provider`], with more manifests beside examples/local's and more flags.
async fn https_provider_with(
    more: &str,
    flags: &[&str],
) -> (Provider, reqwest::Client, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("manifests");
    std::fs::create_dir(&folder).unwrap();
    for entry in std::fs::read_dir(crds::workspace_root().join("examples/local")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            std::fs::copy(&path, folder.join(path.file_name().unwrap())).unwrap();
        }
    }
    std::fs::write(folder.join("more.yaml"), more).unwrap();
    let (cert_pem, cert_path, key_path) = crate::provider::self_signed_tls(dir.path());
    let p = Provider::standalone_tls_with(&folder, &cert_path, &key_path, flags);
    let browser = crate::provider::browser_trusting(&cert_pem);
    let discovery = format!("{}/.well-known/openid-configuration", p.issuer);
    eventually("the https endpoint", Duration::from_secs(30), || async {
        browser.get(&discovery).send().await.ok()
    })
    .await;
    (p, browser, dir)
}

/// The manifests of a confidential client `name` (secret `<name>-secret-0123456789`, consent
/// skipped) redirecting to `redirect`, with more spec lines.
fn confidential_client(name: &str, redirect: &str, more_spec: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}-oidc, namespace: default}}\nstringData: {{client-secret: {name}-secret-0123456789}}\n---\napiVersion: kubeoidc.dev/v1alpha1\nkind: OidcClient\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  clientId: {name}\n  redirectUris: [{redirect}]\n  consent: skip\n{more_spec}"
    )
}

/// Runs a relying party that prints `{"authorize": URL}`, signs alice in at that URL with
/// `browser`, gives it the callback URL on stdin, and returns the JSON line it ends with.
async fn interactive_rp(cmd: Command, browser: &reqwest::Client, what: &str) -> Value {
    let (_, got) = interactive_rp_started(cmd, browser, what).await;
    assert!(got.get("error").is_none(), "{what}: {got}");
    got
}

/// Like [`interactive_rp`]: the relying party's first line (what it says when it starts) and its
/// results.
async fn interactive_rp_started(
    mut cmd: Command,
    browser: &reqwest::Client,
    what: &str,
) -> (Value, Value) {
    use std::io::{BufRead, BufReader, Write};
    let mut rp = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what} (tests/run installs it): {e}"));
    let mut out = BufReader::new(rp.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let started: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
        let _ = rp.kill();
        panic!("{what} did not start ({e}): {line}")
    });
    let authorize = started["authorize"].as_str().unwrap();
    let callback = browser_sign_in(browser, authorize, "alice", "demo-password").await;
    writeln!(rp.stdin.take().unwrap(), "{callback}").unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    assert!(rp.wait().unwrap().success(), "{what}: {line}");
    let got: Value = serde_json::from_str(&line).unwrap();
    eprintln!("{what}: {got}");
    (started, got)
}

/// openid-client (node, OpenID certified) against the provider over https with a private CA:
/// discovery, a code flow with PKCE, state and nonce (it validates the ID token), userinfo,
/// a refresh, and RP-initiated logout with the ID token as hint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_client_signs_in_over_https_reads_userinfo_refreshes_and_signs_out() {
    let (p, browser, dir) = https_provider().await;
    // The script next to the installed modules, as node resolves them.
    std::os::unix::fs::symlink(node_modules(), dir.path().join("node_modules")).unwrap();
    let script = dir.path().join("openid_client_rp.mjs");
    std::fs::copy(
        crds::workspace_root().join("tests/rp/node/openid_client_rp.mjs"),
        &script,
    )
    .unwrap();
    let mut cmd = Command::new("node");
    cmd.arg(&script)
        .args([p.issuer.as_str(), "demo", "http://127.0.0.1:8000/callback"])
        .env("NODE_EXTRA_CA_CERTS", dir.path().join("tls.crt"));
    let got = interactive_rp(cmd, &browser, "openid-client").await;
    assert!(!got["sub"].as_str().unwrap().is_empty());
    // OpenID Connect Core §5.4: with an access token, email comes from userinfo.
    assert_eq!(got["id_token_email"], Value::Null, "{got}");
    assert_eq!(got["acr"], "urn:kube-oidc:acr:password", "{got}");
    assert_eq!(got["userinfo_email"], "alice@example.com", "{got}");
    assert_eq!(got["refreshed_sub"], got["sub"], "{got}");
    assert_eq!(got["refresh_rotated"], true, "{got}");
    // Its end-session URL signs the browser out.
    let end_session = got["end_session"].as_str().unwrap();
    assert!(
        end_session.starts_with(&format!("{}/end_session?", p.issuer)),
        "{end_session}"
    );
    let r = browser.get(end_session).send().await.unwrap();
    assert_eq!(r.status(), 200, "the confirmation or signed-out page");
}

/// go-oidc with x/oauth2 (what Go services use) over https with a private CA: a code flow with
/// PKCE, the ID token verified (signature, iss, aud, expiry, nonce, at_hash), userinfo, and a
/// refresh through the token source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_oidc_signs_in_over_https_verifies_reads_userinfo_and_refreshes() {
    let (p, browser, dir) = https_provider().await;
    let binary = match std::env::var_os("KUBE_OIDC_GO_RP").map(PathBuf::from) {
        Some(b) if b.is_file() => b,
        _ => panic!(
            "KUBE_OIDC_GO_RP does not name the go-oidc relying party tests/run builds from tests/rp/go"
        ),
    };
    let mut cmd = Command::new(binary);
    cmd.args([p.issuer.as_str(), "demo", "http://127.0.0.1:8000/callback"])
        .env("SSL_CERT_FILE", dir.path().join("tls.crt"));
    let got = interactive_rp(cmd, &browser, "go-oidc").await;
    assert_eq!(got["userinfo_sub"], got["sub"], "{got}");
    assert_eq!(got["userinfo_email"], "alice@example.com", "{got}");
    assert_eq!(got["userinfo_email_verified"], true, "{got}");
    assert_eq!(got["refreshed"], true, "{got}");
    assert_eq!(got["refresh_rotated"], true, "{got}");
}

/// Apache's mod_auth_openidc (Debian's package) in front of a page, as a confidential client
/// with PKCE: the protected page redirects to sign-in, the callback opens a session, the
/// module's info hook shows the verified claims and userinfo and refreshes the access token, and
/// its logout ends at the provider's end-session endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apache_mod_auth_openidc_protects_a_page_refreshes_and_signs_out() {
    let port = ControlPlane::free_port();
    let app = format!("http://127.0.0.1:{port}");
    let (p, browser, dir) = https_provider_with(
        &confidential_client(
            "apache",
            &format!("{app}/protected/redirect_uri"),
            &format!(
                "  postLogoutRedirectUris: [{app}/]\n  scopes: [openid, email, offline_access]\n"
            ),
        ),
        &[],
    )
    .await;
    let modules = std::path::Path::new("/usr/lib/apache2/modules");
    assert!(
        modules.join("mod_auth_openidc.so").is_file(),
        "mod_auth_openidc is missing: tests/run installs libapache2-mod-auth-openidc"
    );
    let root = dir.path().join("apache");
    std::fs::create_dir_all(root.join("htdocs/protected")).unwrap();
    std::fs::write(root.join("htdocs/protected/index.html"), "protected page\n").unwrap();
    let conf = format!(
        r#"ServerRoot {root}
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile {root}/httpd.pid
ErrorLog {root}/error.log
LogLevel warn auth_openidc:info
DocumentRoot {root}/htdocs
User nobody
Group nogroup
LoadModule mpm_event_module {m}/mod_mpm_event.so
LoadModule authz_core_module {m}/mod_authz_core.so
LoadModule authz_user_module {m}/mod_authz_user.so
LoadModule authn_core_module {m}/mod_authn_core.so
LoadModule auth_openidc_module {m}/mod_auth_openidc.so
OIDCProviderMetadataURL {issuer}/.well-known/openid-configuration
OIDCCABundlePath {ca}
OIDCClientID apache
OIDCClientSecret apache-secret-0123456789
OIDCRedirectURI {app}/protected/redirect_uri
OIDCCryptoPassphrase a-passphrase-for-the-test-0123456789
OIDCScope "openid email offline_access"
OIDCPKCEMethod S256
OIDCStateInputHeaders none
OIDCInfoHook iat id_token userinfo refresh_token access_token session
OIDCDefaultLoggedOutURL {app}/
<Location /protected>
  AuthType openid-connect
  Require valid-user
</Location>
<Location /protected/redirect_uri>
  AuthType openid-connect
  Require valid-user
</Location>
"#,
        root = root.display(),
        m = modules.display(),
        issuer = p.issuer,
        ca = dir.path().join("tls.crt").display(),
    );
    std::fs::write(root.join("httpd.conf"), conf).unwrap();
    // Apache drops to nobody: its files must be readable.
    for d in [dir.path(), root.as_path()] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut cmd = Command::new("/usr/sbin/apache2");
    cmd.args([
        "-f",
        &root.join("httpd.conf").display().to_string(),
        "-DFOREGROUND",
    ]);
    let _apache = ProcessGroup(
        spawn_reaped(cmd, &root.join("apache.log")).expect("start apache2 (apache2-bin)"),
    );
    eventually("apache", Duration::from_secs(20), || async {
        http().get(format!("{app}/")).send().await.ok()
    })
    .await;
    let log = || std::fs::read_to_string(root.join("error.log")).unwrap_or_default();
    // One browser (one cookie jar) for the app and the provider.
    let start = get(&browser, format!("{app}/protected/index.html")).await;
    assert_eq!(start.status(), 302, "{}", log());
    let authorize = start.headers()["location"].to_str().unwrap().to_string();
    assert!(
        authorize.starts_with(&format!("{}/authorize?", p.issuer)),
        "{authorize}"
    );
    assert!(
        authorize.contains("code_challenge_method=S256"),
        "{authorize}"
    );
    let callback = browser_sign_in(&browser, &authorize, "alice", "demo-password").await;
    assert!(
        callback.starts_with(&format!("{app}/protected/redirect_uri?")),
        "{callback}"
    );
    assert_eq!(get(&browser, callback).await.status(), 302, "{}", log());
    let page = get(&browser, format!("{app}/protected/index.html")).await;
    assert_eq!(page.status(), 200, "{}", log());
    assert_eq!(page.text().await.unwrap(), "protected page\n");
    let info: Value = get(&browser, format!("{app}/protected/redirect_uri?info=json"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info["userinfo"]["email"], "alice@example.com", "{info}");
    assert_eq!(info["id_token"]["aud"], "apache", "{info}");
    assert!(info["id_token"].get("email").is_none(), "§5.4: {info}");
    assert!(info["refresh_token"].is_string(), "{info}");
    // The module refreshes the access token when asked to (its info hook's refresh interval).
    let again: Value = get(
        &browser,
        format!("{app}/protected/redirect_uri?info=json&access_token_refresh_interval=0"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_ne!(again["access_token"], info["access_token"], "not refreshed");
    // Its logout: the session ends and the browser goes to the provider's end-session.
    let r = get(
        &browser,
        format!(
            "{app}/protected/redirect_uri?logout={}",
            urlencode(&format!("{app}/"))
        ),
    )
    .await;
    let to = r.headers()["location"].to_str().unwrap().to_string();
    assert!(
        to.starts_with(&format!("{}/end_session?", p.issuer)),
        "{to}"
    );
    assert!(to.contains("id_token_hint="), "{to}");
    let page = get(&browser, format!("{app}/protected/index.html")).await;
    assert_eq!(page.status(), 302, "signed out of the app");
}

/// One GET from `browser` (its cookies, no redirects followed).
async fn get(browser: &reqwest::Client, url: String) -> reqwest::Response {
    browser.get(url).send().await.unwrap()
}

/// A process group (Apache and its workers) ended when the test ends, also by a panic.
struct ProcessGroup(std::process::Child);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.0.wait();
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A test app: answers every request with the request's headers as JSON (what the proxy in
/// front of it passed on). Returns its port; it serves until the test process ends.
fn echo_app() -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(100).flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = serde_json::Map::new();
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                if let Some((k, v)) = line.trim_end().split_once(": ") {
                    headers.insert(k.to_ascii_lowercase(), Value::String(v.to_string()));
                }
                line.clear();
            }
            let body = Value::Object(headers).to_string();
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

/// oauth2-proxy (built from its Go module) in front of a test app, as a confidential client
/// with PKCE over https: the app is reached only after sign-in and gets the user's email and
/// access token; the session refreshes with the refresh token; sign-out ends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth2_proxy_signs_people_in_before_the_app_and_refreshes() {
    let port = ControlPlane::free_port();
    let proxy = format!("http://127.0.0.1:{port}");
    let (p, browser, dir) = https_provider_with(
        &confidential_client(
            "proxy",
            &format!("{proxy}/oauth2/callback"),
            "  scopes: [openid, email, profile, offline_access]\n",
        ),
        &[],
    )
    .await;
    let binary = match std::env::var_os("KUBE_OIDC_OAUTH2_PROXY").map(PathBuf::from) {
        Some(b) if b.is_file() => b,
        _ => panic!("KUBE_OIDC_OAUTH2_PROXY does not name oauth2-proxy; tests/run builds it"),
    };
    let app = echo_app();
    let mut cmd = Command::new(binary);
    cmd.args([
        "--provider=oidc",
        &format!("--oidc-issuer-url={}", p.issuer),
        &format!(
            "--provider-ca-file={}",
            dir.path().join("tls.crt").display()
        ),
        "--client-id=proxy",
        "--client-secret=proxy-secret-0123456789",
        "--code-challenge-method=S256",
        "--scope=openid email profile offline_access",
        &format!("--redirect-url={proxy}/oauth2/callback"),
        &format!("--http-address=127.0.0.1:{port}"),
        &format!("--upstream=http://127.0.0.1:{app}/"),
        "--cookie-secret=0123456789abcdef0123456789abcdef",
        "--cookie-secure=false",
        "--cookie-refresh=1s",
        "--email-domain=*",
        "--pass-access-token",
        "--skip-provider-button",
    ]);
    let log = dir.path().join("oauth2-proxy.log");
    let _proxy = ProcessGroup(spawn_reaped(cmd, &log).expect("start oauth2-proxy"));
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    eventually("oauth2-proxy", Duration::from_secs(30), || async {
        http()
            .get(format!("{proxy}/ping"))
            .send()
            .await
            .ok()
            .filter(|r| r.status() == 200)
    })
    .await;
    // Not signed in: to the provider (the app is not reached).
    let r = get(&browser, format!("{proxy}/app")).await;
    assert_eq!(r.status(), 302, "{}", log_text());
    let authorize = r.headers()["location"].to_str().unwrap().to_string();
    assert!(
        authorize.starts_with(&format!("{}/authorize?", p.issuer))
            && authorize.contains("code_challenge_method=S256"),
        "{authorize}"
    );
    let callback = browser_sign_in(&browser, &authorize, "alice", "demo-password").await;
    let r = get(&browser, callback).await;
    assert_eq!(r.status(), 302, "{}", log_text());
    let seen: Value = get(&browser, format!("{proxy}/app"))
        .await
        .json()
        .await
        .unwrap();
    eprintln!(
        "oauth2-proxy passed: x-forwarded-email {}, x-forwarded-user {}",
        seen["x-forwarded-email"], seen["x-forwarded-user"]
    );
    // The email is not in the ID token (OpenID Connect Core §5.4): oauth2-proxy reads userinfo.
    assert_eq!(seen["x-forwarded-email"], "alice@example.com", "{seen}");
    let token = seen["x-forwarded-access-token"]
        .as_str()
        .unwrap()
        .to_string();
    // Past --cookie-refresh (its session age counts whole seconds), the proxy refreshes the
    // session with the refresh token.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let refreshed: Value = get(&browser, format!("{proxy}/app"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(refreshed["x-forwarded-email"], "alice@example.com");
    assert_ne!(
        refreshed["x-forwarded-access-token"].as_str(),
        Some(token.as_str()),
        "not refreshed: {}",
        log_text()
    );
    // Signed out of the proxy: to the provider again.
    let r = get(&browser, format!("{proxy}/oauth2/sign_out")).await;
    assert_eq!(r.status(), 302);
    let r = get(&browser, format!("{proxy}/app")).await;
    assert_eq!(r.status(), 302, "signed out");
}
