//! Independently written relying parties against the provider in a cluster.

use std::{path::PathBuf, process::Command, time::Duration};

use kube_oidc_tests::{
    ControlPlane, Operator, Provider, control_plane, controlplane::scratch_dir,
    controlplane::spawn_reaped,
};
use serde_json::Value;

use crate::{
    operator::eventually,
    provider::{browser_sign_in, create_signing_key, http, install_demo_users},
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
    ns.delete().await;
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
