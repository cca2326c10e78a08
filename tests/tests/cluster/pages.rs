//! What a person sees: the pages of the device flow (the code entry, sign-in, consent naming
//! the client, the result), each as served, rendered by a real Chromium (Debian's `chromium`,
//! headless) into a screenshot kept under `$KUBE_OIDC_ARTIFACTS/screenshots`.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use kube_oidc_tests::Provider;
use serde_json::Value;

use crate::provider::{field, http};

/// Where screenshots are kept: `$KUBE_OIDC_ARTIFACTS/screenshots` (tests/run sets it under its
/// cache), else the system's temporary directory.
fn screenshots_dir() -> PathBuf {
    let base = std::env::var_os("KUBE_OIDC_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("kube-oidc-artifacts"));
    let dir = base.join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Renders `html` as a person's browser does and keeps `<name>.png` (and the HTML beside it).
fn screenshot(dir: &Path, name: &str, html: &str) -> PathBuf {
    let page = dir.join(format!("{name}.html"));
    std::fs::write(&page, html).unwrap();
    let png = dir.join(format!("{name}.png"));
    let _ = std::fs::remove_file(&png);
    let chromium = std::env::var("KUBE_OIDC_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let out = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=900,760",
        ])
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap_or_else(|e| {
            panic!("{chromium} cannot run ({e}): install Debian's chromium (tests/run does)")
        });
    let bytes = std::fs::read(&png).unwrap_or_else(|_| {
        panic!(
            "no screenshot {}: {}",
            png.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 8_000,
        "{} is not a rendered page ({} bytes)",
        png.display(),
        bytes.len()
    );
    png
}

#[tokio::test]
async fn device_flow_pages_as_a_person_sees_them() {
    let mut p = Provider::standalone(&crds::workspace_root().join("examples/local"), "memory");
    p.wait_ready(Duration::from_secs(20));
    let dir = screenshots_dir();
    let c = http();
    let a: Value = c
        .post(p.url("/device_authorization"))
        .form(&[("client_id", "demo"), ("scope", "openid profile email")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let user_code = a["user_code"].as_str().unwrap();

    let entry = c.get(p.url("/device")).send().await.unwrap();
    assert_eq!(entry.status(), 200);
    let entry = entry.text().await.unwrap();
    assert!(entry.contains("<label for=\"user_code\">"), "{entry}");
    screenshot(&dir, "device-1-enter-code", &entry);

    let wrong = c
        .get(p.url("/device?user_code=WXYZ-WXYZ"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 400);
    screenshot(&dir, "device-2-wrong-code", &wrong.text().await.unwrap());

    let login = c
        .get(p.url(&format!("/device?user_code={user_code}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(login.contains("name=\"password\""), "{login}");
    screenshot(&dir, "device-3-sign-in", &login);

    let consent = c
        .post(p.url("/login"))
        .form(&[
            ("request", field(&login, "request")),
            ("csrf", field(&login, "csrf")),
            ("username", "alice".into()),
            ("password", "demo-password".into()),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        consent.contains("name=\"decision\"") && consent.contains(user_code),
        "{consent}"
    );
    screenshot(&dir, "device-4-consent", &consent);

    let done = c
        .post(p.url("/consent"))
        .form(&[
            ("request", field(&consent, "request")),
            ("csrf", field(&consent, "csrf")),
            ("decision", "approve".into()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    let done = done.text().await.unwrap();
    assert!(done.contains("Device signed in"), "{done}");
    screenshot(&dir, "device-5-done", &done);
    eprintln!("screenshots in {}", dir.display());
}
