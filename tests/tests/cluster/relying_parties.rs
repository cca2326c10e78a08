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
