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
pub fn screenshots_dir() -> PathBuf {
    let base = std::env::var_os("KUBE_OIDC_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("kube-oidc-artifacts"));
    let dir = base.join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Renders `html` as a person's browser does and keeps `<name>.png` (and the HTML beside it).
pub fn screenshot(dir: &Path, name: &str, html: &str) -> PathBuf {
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

/// A browser that asks for pages in `lang`.
fn browser(lang: &str) -> reqwest::Client {
    kube_oidc_tests::install_crypto_provider();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::ACCEPT_LANGUAGE,
        reqwest::header::HeaderValue::from_str(lang).unwrap(),
    );
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .default_headers(headers)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// The texts a page set is checked against, in its language.
struct Texts {
    sign_in: &'static str,
    wrong_password: &'static str,
    signed_in_as: &'static str,
    switch: &'static str,
    sign_out: &'static str,
    invalid_request: &'static str,
}

const ENGLISH: Texts = Texts {
    sign_in: "<h1>Sign in</h1>",
    wrong_password: "Wrong username or password.",
    signed_in_as: "Signed in as",
    switch: "Use another account",
    sign_out: "<h1>Sign out?</h1>",
    invalid_request: "This sign-in request is invalid",
};

const GERMAN: Texts = Texts {
    sign_in: "<h1>Anmelden</h1>",
    wrong_password: "Benutzername oder Passwort ist falsch.",
    signed_in_as: "Angemeldet als",
    switch: "Anderes Konto verwenden",
    sign_out: "<h1>Abmelden?</h1>",
    invalid_request: "Diese Anmeldeanfrage ist ungültig",
};

/// Sign-in (and a wrong password), consent naming who is signed in, the account switch back to
/// sign-in, sign-out and an error page, each screenshotted as `<prefix>-N-....png`; the pages'
/// HTML, to look for the brand in.
async fn sign_in_pages(p: &Provider, prefix: &str, lang: &str, texts: &Texts) -> Vec<String> {
    let dir = screenshots_dir();
    let c = browser(lang);
    let (_, challenge) = crate::provider::pkce();
    let authorize = p.url(&format!(
        "/authorize?response_type=code&client_id=demo&redirect_uri=http%3A%2F%2F127.0.0.1%3A8000%2Fcallback&scope=openid%20profile%20email&state=s&code_challenge={challenge}&code_challenge_method=S256"
    ));
    let r = c.get(&authorize).send().await.unwrap();
    assert_eq!(r.headers()["vary"], "Accept-Language");
    let login = r.text().await.unwrap();
    assert!(login.contains(texts.sign_in), "{login}");
    screenshot(&dir, &format!("{prefix}-1-sign-in"), &login);

    let post_login = |html: &str, user: &str, password: &str| {
        c.post(p.url("/login")).form(&[
            ("request", field(html, "request")),
            ("csrf", field(html, "csrf")),
            ("username", user.into()),
            ("password", password.into()),
        ])
    };
    let wrong = post_login(&login, "alice", "not-her-password")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let wrong = wrong.text().await.unwrap();
    assert!(wrong.contains(texts.wrong_password), "{wrong}");
    screenshot(&dir, &format!("{prefix}-2-wrong-password"), &wrong);

    let consent = post_login(&wrong, "alice", "demo-password")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        consent.contains(texts.signed_in_as)
            && consent.contains("Alice Example (alice)")
            && consent.contains(texts.switch),
        "{consent}"
    );
    screenshot(&dir, &format!("{prefix}-3-consent"), &consent);

    // "Not you?": alice's session ends and the sign-in page comes back for someone else.
    let switched = c
        .post(p.url("/consent"))
        .form(&[
            ("request", field(&consent, "request")),
            ("csrf", field(&consent, "csrf")),
            ("decision", "switch".into()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(switched.status(), 200);
    let cleared = switched
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|v| v.to_str().unwrap().starts_with("kube_oidc_session=;"));
    assert!(cleared, "the session cookie is cleared");
    let switched = switched.text().await.unwrap();
    assert!(
        switched.contains(texts.sign_in) && switched.contains("name=\"password\""),
        "{switched}"
    );
    let bob = post_login(&switched, "bob", "demo-password")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(bob.contains("(bob)") && !bob.contains("(alice)"), "{bob}");

    let logout = c.get(p.url("/end_session")).send().await.unwrap();
    assert_eq!(logout.status(), 200);
    let logout = logout.text().await.unwrap();
    assert!(logout.contains(texts.sign_out), "{logout}");
    screenshot(&dir, &format!("{prefix}-4-sign-out"), &logout);

    let error = c
        .get(p.url("/authorize?response_type=code&client_id=nobody&redirect_uri=http%3A%2F%2F127.0.0.1%3A8000%2Fcallback&scope=openid"))
        .send()
        .await
        .unwrap();
    assert_eq!(error.status(), 400);
    let error = error.text().await.unwrap();
    assert!(error.contains(texts.invalid_request), "{error}");
    screenshot(&dir, &format!("{prefix}-5-error"), &error);
    eprintln!("screenshots in {}", dir.display());
    vec![login, consent, logout, error]
}

/// The pages as shipped, in English; and as a platform team brands them (product name, logo,
/// colour, a CSS file), in German for a browser that asks for it.
#[tokio::test]
async fn sign_in_pages_default_and_branded_as_a_person_sees_them() {
    let folder = crds::workspace_root().join("examples/local");
    let mut p = Provider::standalone(&folder, "memory");
    p.wait_ready(Duration::from_secs(20));
    for page in sign_in_pages(&p, "default", "en-GB,en;q=0.9", &ENGLISH).await {
        assert!(page.contains("kube-oidc"), "the default product name");
    }

    let css = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        css.path(),
        "body{background:#f3f6f4}main{background:#fff;padding:1rem 1.5rem;border-radius:8px;box-shadow:0 1px 4px rgba(0,0,0,.15)}",
    )
    .unwrap();
    // A logo as a data: URL: the screenshots are rendered offline.
    let logo = "data:image/svg+xml;base64,PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciIHdpZHRoPSI0MCIgaGVpZ2h0PSI0MCI+PGNpcmNsZSBjeD0iMjAiIGN5PSIyMCIgcj0iMTgiIGZpbGw9IiMwYjZlNGYiLz48L3N2Zz4=";
    let mut branded = Provider::standalone_with(
        &folder,
        "memory",
        &[
            "--brand-name",
            "Example Corp",
            "--brand-color",
            "#0b6e4f",
            "--brand-logo-url",
            logo,
            "--brand-css",
            css.path().to_str().unwrap(),
        ],
    );
    branded.wait_ready(Duration::from_secs(20));
    let csp = http()
        .get(branded.url("/device"))
        .send()
        .await
        .unwrap()
        .headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("img-src 'self' data:"), "{csp}");
    for page in sign_in_pages(&branded, "branded-de", "de-DE,de;q=0.9,en;q=0.5", &GERMAN).await {
        assert!(
            page.contains("Example Corp")
                && page.contains("--brand:#0b6e4f")
                && page.contains("body{background:#f3f6f4}")
                && page.contains(logo)
                && page.contains("lang=\"de\""),
            "{page}"
        );
    }

    // A flag that cannot be served stops the provider with one line naming it.
    let out = Command::new(kube_oidc_tests::operator::workspace_binary(
        "kube-oidc-provider",
    ))
    .arg("--manifests")
    .arg(&folder)
    .args(["--brand-color", "green", "--log-format", "text"])
    .output()
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--brand-color green"), "{stderr}");
}

/// A person in a real browser: Chromium driven through WebDriver (Debian's chromedriver and
/// selenium, tests/rp/browser_flow.py) types a wrong password and the right one, denies
/// consent, allows it, and signs out; the screenshots are `browser-*.png`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_in_chromium_signs_in_denies_allows_and_signs_out() {
    let mut p = Provider::standalone(&crds::workspace_root().join("examples/local"), "memory");
    p.wait_ready(Duration::from_secs(30));
    let python = std::env::var_os("KUBE_OIDC_PYTHON").expect("KUBE_OIDC_PYTHON (tests/run)");
    let dir = screenshots_dir();
    let out = Command::new(python)
        .arg(crds::workspace_root().join("tests/rp/browser_flow.py"))
        .arg(&p.issuer)
        .arg(&dir)
        .output()
        .expect("the browser flow (selenium in tests/rp/requirements.txt)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert!(seen.get("error").is_none(), "{seen}");
    let text = |k: &str| seen[k].as_str().unwrap_or_default().to_string();
    assert!(text("sign_in").contains("Demo app"), "{seen}");
    assert!(
        text("wrong_password").contains(ENGLISH.wrong_password),
        "{seen}"
    );
    assert!(
        text("consent").contains("See your email address")
            && text("consent").contains("Signed in as Alice Example (alice)"),
        "{seen}"
    );
    let denied = text("denied_at");
    assert!(
        denied.starts_with("http://127.0.0.1:8000/callback?")
            && denied.contains("error=access_denied")
            && denied.contains("state=browser-state"),
        "{denied}"
    );
    assert!(text("consent_again").contains("Allow access"), "{seen}");
    let allowed = text("allowed_at");
    assert!(
        allowed.contains("code=") && allowed.contains("state=browser-state"),
        "{allowed}"
    );
    assert!(text("sign_out").contains("Sign out?"), "{seen}");
    assert!(text("signed_out").contains("You are signed out"), "{seen}");
    assert!(
        text("after_sign_out").contains("Password"),
        "signed out: the sign-in page again: {seen}"
    );
    for n in [
        "1-sign-in",
        "2-wrong-password",
        "3-consent",
        "5-sign-out",
        "6-signed-out",
    ] {
        let png = dir.join(format!("browser-{n}.png"));
        assert!(
            std::fs::metadata(&png).is_ok_and(|m| m.len() > 1000),
            "{}",
            png.display()
        );
    }
}
