//! The attack suite: each test is an attack (RFC 9700 "OAuth 2.0 Security Best Current
//! Practice", RFC 8725 "JWT Best Current Practices", OpenID Connect Core, OWASP) tried against
//! the router as an attacker would, and the answer that defeats it. Removing the protection
//! makes the test fail.
//!
//! Covered by tests elsewhere, by name:
//! - refresh token reuse (RFC 9700 §4.14.2): `tokens::refresh_tokens_rotate_and_reuse_revokes_the_family`;
//! - CSRF on the sign-in form (RFC 6749 §10.12): `sessions::login_is_csrf_protected_and_throttled`;
//! - client secret guessing (RFC 6749 §10.10): `tokens::client_secret_guessing_is_throttled`;
//! - oversized request fields: `authorization::oversized_request_fields_are_refused`;
//! - a cookie planted without the `__Host-` prefix: `authorization::cookies_are_host_prefixed_and_a_planted_plain_session_is_ignored`;
//! - brute force across two replicas sharing Redis: `brute_force_is_counted_across_replicas` below.

use axum::{
    body::Body,
    http::{Request, StatusCode, header},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use serde_json::{Value, json};

use super::{sessions::log_in, *};

/// RFC 9700 §4.1.3 and §2.1: redirect URIs are compared as exact strings. Each variant an
/// attacker tries on the registered `https://web.example/cb` is refused on a page.
#[tokio::test]
async fn rfc9700_4_1_3_redirect_uri_variants_never_redirect() {
    let h = harness();
    for variant in [
        "https://WEB.example/cb",
        "https://web.example/CB",
        "https://web.example/cb/",
        "https://web.example/cb/../evil",
        "https://web.example/cb/%2e%2e/evil",
        "https://web.example/cb?next=https://evil.example",
        "https://web.example/cb#x",
        "https://web.example@evil.example/cb",
        "https://evil.example\\@web.example/cb",
        "https://web.example.evil.example/cb",
        "https://xn--wb-nlc.example/cb", // wеb with a Cyrillic е
        "https://wеb.example/cb",
        "https://web.example:8443/cb",
        "http://web.example/cb",
        "//web.example/cb",
        "https://web.example/cb\u{0000}",
    ] {
        refused_without_redirect(&h, &authorize_uri("web", variant, "")).await;
    }
}

/// RFC 8252 §7.3: a native app's loopback redirect URI takes any port at request time; only the
/// port: host, path and scheme stay exact, and `localhost` is exact (RFC 8252 §8.3).
#[tokio::test]
async fn rfc8252_7_3_loopback_redirects_vary_only_in_port() {
    let h = harness();
    let native = crate::test_support::client(
        "  clientId: native\n  type: public\n  redirectUris: [\"http://127.0.0.1/callback\", \"http://localhost:8000/callback\"]\n  consent: skip\n",
    );
    let mut clients: Vec<crate::config::ClientConfig> = h
        .view
        .load()
        .clients
        .values()
        .map(|c| (**c).clone())
        .collect();
    clients.push(crate::config::ClientConfig::from_resource(&native, vec![]));
    replace_clients(&h, clients);
    let mut b = Browser::default();
    let r = sign_in(
        &h,
        &mut b,
        &authorize_uri("native", "http://127.0.0.1:53682/callback", ""),
        "alice",
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(
        r.headers[header::LOCATION]
            .to_str()
            .unwrap()
            .starts_with("http://127.0.0.1:53682/callback?code="),
        "{:?}",
        r.headers
    );
    for variant in [
        "http://localhost:9000/callback",
        "http://127.0.0.1:53682/callback/",
        "http://127.0.0.2:53682/callback",
        "https://127.0.0.1:53682/callback",
        "http://127.0.0.1:53682/x/../callback",
        "http://attacker@127.0.0.1:53682/callback",
    ] {
        refused_without_redirect(&h, &authorize_uri("native", variant, "")).await;
    }
}

/// Serves `clients` (as a watch would) with everything else of the view kept.
fn replace_clients(h: &Harness, clients: Vec<crate::config::ClientConfig>) {
    let view = h.view.load();
    let mut next = crate::config::View::empty(&view.issuer);
    next.clients = clients
        .into_iter()
        .map(|c| (c.id.clone(), std::sync::Arc::new(c)))
        .collect();
    next.scopes = view.scopes.clone();
    next.signers = view.signers.clone();
    next.verifier = view.verifier.clone();
    next.users = view.users.clone();
    next.discovery = view.discovery.clone();
    next.jwks = view.jwks.clone();
    next.synced = true;
    h.view.store(std::sync::Arc::new(next));
}

/// OpenID Connect RP-Initiated Logout §3 and RFC 9700 §4.1.3: a post_logout_redirect_uri is
/// matched exactly; a variant gets a page, never a redirect.
#[tokio::test]
async fn rp_initiated_logout_redirect_variants_never_redirect() {
    let h = harness();
    for variant in [
        "https://web.example/bye/",
        "https://web.example/BYE",
        "https://web.example@evil.example/bye",
        "https://evil.example/bye",
        "https://web.example/bye?x=https://evil.example",
    ] {
        let uri = format!(
            "/end_session?client_id=web&post_logout_redirect_uri={}",
            urlencode(variant)
        );
        refused_without_redirect(&h, &uri).await;
    }
}

/// RFC 9700 §2.1.1 and §4.8 (PKCE downgrade): no challenge, the `plain` method, a code redeemed
/// without or with another verifier: all refused.
#[tokio::test]
async fn rfc9700_4_8_pkce_downgrade_is_refused() {
    let h = harness();
    let without = "/authorize?response_type=code&client_id=spa&redirect_uri=https%3A%2F%2Fspa.example%2Fcb&scope=openid&state=s";
    let r = call(&h, Request::get(without).body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(r.query()["error"], "invalid_request", "{:?}", r.query());
    let plain = format!("{without}&code_challenge={CHALLENGE}&code_challenge_method=plain");
    let r = call(&h, Request::get(&plain).body(Body::empty()).unwrap()).await;
    assert_eq!(r.query()["error"], "invalid_request", "{:?}", r.query());

    for verifier in [None, Some("a".repeat(43)), Some(format!("{VERIFIER}x"))] {
        let code = code_for(&h, "spa", "https://spa.example/cb", "").await;
        let mut form = vec![
            ("grant_type", "authorization_code".to_string()),
            ("code", code),
            ("redirect_uri", "https://spa.example/cb".into()),
            ("client_id", "spa".into()),
        ];
        if let Some(v) = &verifier {
            form.push(("code_verifier", v.clone()));
        }
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = token(&h, None, &form).await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{verifier:?}: {}",
            r.body
        );
        assert!(
            matches!(
                r.json()["error"].as_str(),
                Some("invalid_grant" | "invalid_request")
            ),
            "{}",
            r.body
        );
    }
}

/// RFC 9700 §4.5 (authorization code injection): a code issued to one client, redeemed by
/// another with its own valid credentials, is refused and burnt.
#[tokio::test]
async fn rfc9700_4_5_code_injection_across_clients_is_refused() {
    let h = harness();
    let code = code_for(&h, "web", "https://web.example/cb", "").await;
    let r = token(
        &h,
        Some(("always", "always-secret")),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://web.example/cb"),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.json()["error"], "invalid_grant");
    // And with the right client now: the code was single use.
    let r = token(
        &h,
        Some(("web", "web-secret")),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://web.example/cb"),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(r.json()["error"], "invalid_grant", "{}", r.body);
}

/// RFC 9700 §4.4 (mix-up) and RFC 9207: every authorization response, success or error, names
/// the issuer, so a client talking to several can tell which answered.
#[tokio::test]
async fn rfc9207_mix_up_every_authorization_response_names_the_issuer() {
    let h = harness();
    let mut b = Browser::default();
    let r = sign_in(
        &h,
        &mut b,
        &authorize_uri("web", "https://web.example/cb", ""),
        "alice",
    )
    .await;
    assert_eq!(r.query()["iss"], ISSUER);
    let r = b
        .get(
            &h,
            &authorize_uri("web", "https://web.example/cb", "&prompt=bogus"),
        )
        .await;
    assert!(r.query().contains_key("error"), "{:?}", r.query());
    assert_eq!(r.query()["iss"], ISSUER);
}

/// A JWT with `header`, the claims of a real one, and `signature`.
fn forged(real: &str, header: Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let claims = real.split('.').nth(1).unwrap();
    let input = format!("{}.{claims}", B64.encode(header.to_string()));
    let signature = B64.encode(sign(input.as_bytes()));
    format!("{input}.{signature}")
}

/// The provider's RSA public key as PEM (SubjectPublicKeyInfo), as an attacker builds it from
/// /jwks.
async fn public_key_pem(h: &Harness) -> String {
    fn der(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 128 {
            out.push(len as u8);
        } else {
            let bytes: Vec<u8> = len
                .to_be_bytes()
                .into_iter()
                .skip_while(|b| *b == 0)
                .collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
        out.extend_from_slice(content);
        out
    }
    fn integer(unsigned: &[u8]) -> Vec<u8> {
        let mut v = unsigned.to_vec();
        if v.first().is_some_and(|b| *b >= 0x80) {
            v.insert(0, 0);
        }
        der(0x02, &v)
    }
    let jwks = call(h, Request::get("/jwks").body(Body::empty()).unwrap())
        .await
        .json();
    let k = &jwks["keys"][0];
    let n = B64.decode(k["n"].as_str().unwrap()).unwrap();
    let e = B64.decode(k["e"].as_str().unwrap()).unwrap();
    let rsa_key = der(0x30, &[integer(&n), integer(&e)].concat());
    let algorithm = der(
        0x30,
        &[
            der(
                0x06,
                &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01],
            ),
            vec![0x05, 0x00],
        ]
        .concat(),
    );
    let bits = der(0x03, &[vec![0u8], rsa_key].concat());
    let spki = der(0x30, &[algorithm, bits].concat());
    let b64 = base64::engine::general_purpose::STANDARD.encode(spki);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        lines.join("\n")
    )
}

fn hmac(secret: &[u8], data: &[u8]) -> Vec<u8> {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    aws_lc_rs::hmac::sign(&key, data).as_ref().to_vec()
}

/// RFC 8725 §2.1 and §3.1 (`alg: none`, HS256 keyed with the public key), §3.10 (`kid`
/// injection, `jku` / `x5u` pointing elsewhere): forged access tokens get 401 invalid_token at
/// /userinfo, and forged ID token hints are not believed at /end_session and /authorize.
#[tokio::test]
async fn rfc8725_forged_jwts_are_refused() {
    let h = harness();
    let t = web_tokens(&h).await;
    let access = t["access_token"].as_str().unwrap();
    let id = t["id_token"].as_str().unwrap();
    let (real_header, _) = decode_jwt(access);
    let kid = real_header["kid"].as_str().unwrap().to_string();
    let pem = public_key_pem(&h).await;
    let forgeries = |real: &str| {
        vec![
            (
                "alg none",
                forged(real, json!({"alg": "none", "typ": "JWT"}), |_| Vec::new()),
            ),
            (
                "alg none with kid",
                forged(real, json!({"alg": "none", "kid": kid}), |_| Vec::new()),
            ),
            (
                "HS256 keyed with the public key",
                forged(real, json!({"alg": "HS256", "kid": kid}), |d| {
                    hmac(pem.as_bytes(), d)
                }),
            ),
            (
                "kid injection",
                forged(
                    real,
                    json!({"alg": "HS256", "kid": "../../../../dev/null"}),
                    |d| hmac(b"", d),
                ),
            ),
            (
                "jku elsewhere",
                forged(
                    real,
                    json!({"alg": "RS256", "kid": "attacker", "jku": "https://evil.example/jwks"}),
                    |_| vec![0u8; 256],
                ),
            ),
            (
                "x5u elsewhere",
                forged(
                    real,
                    json!({"alg": "RS256", "kid": kid, "x5u": "https://evil.example/cert"}),
                    |_| vec![0u8; 256],
                ),
            ),
        ]
    };
    for (attack, token) in forgeries(access) {
        let r = call(
            &h,
            Request::get("/userinfo")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{attack}: {}", r.body);
        assert!(
            r.headers[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .contains("invalid_token"),
            "{attack}"
        );
    }
    for (attack, hint) in forgeries(id) {
        let r = call(
            &h,
            Request::get(format!(
                "/end_session?id_token_hint={hint}&post_logout_redirect_uri=https%3A%2F%2Fweb.example%2Fbye"
            ))
            .body(Body::empty())
            .unwrap(),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{attack}: {}", r.body);
        let r = call(
            &h,
            Request::get(authorize_uri(
                "web",
                "https://web.example/cb",
                &format!("&id_token_hint={hint}"),
            ))
            .body(Body::empty())
            .unwrap(),
        )
        .await;
        assert!(
            r.status == StatusCode::FOUND && r.query().contains_key("error"),
            "{attack}: a forged id_token_hint was accepted: {} {}",
            r.status,
            r.body
        );
    }
    // The real ones pass, so the refusals above are about the forgeries.
    let r = call(
        &h,
        Request::get("/userinfo")
            .header(header::AUTHORIZATION, format!("Bearer {access}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
}

/// RFC 6749 §10.12 (CSRF) on consent and sign-out: a form answered from another browser (no
/// binding cookie) or with a wrong csrf value changes nothing.
#[tokio::test]
async fn rfc6749_10_12_csrf_on_consent_and_sign_out_is_refused() {
    let h = harness();
    let mut victim = Browser::default();
    let page = victim
        .get(&h, &authorize_uri("web", "https://web.example/cb", ""))
        .await;
    let consent = log_in(&h, &mut victim, &page, "alice", PASSWORD).await;
    assert!(
        consent.body.contains("name=\"decision\""),
        "{}",
        consent.body
    );
    let request = consent.field("request");
    // The attacker's page posts the victim's consent form: the victim's cookies ride along
    // but the csrf value is not the page's.
    let forged = victim
        .post(
            &h,
            "/consent",
            &[
                ("request", &request),
                ("csrf", "guessed"),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_ne!(forged.status, StatusCode::SEE_OTHER, "{}", forged.body);
    // From another browser, with the right csrf value: not this browser's request.
    let mut attacker = Browser::default();
    let forged = attacker
        .post(
            &h,
            "/consent",
            &[
                ("request", &request),
                ("csrf", &consent.field("csrf")),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_ne!(forged.status, StatusCode::SEE_OTHER, "{}", forged.body);

    // Sign-out: a confirmation posted without its csrf value signs nobody out.
    let confirm = victim.get(&h, "/end_session").await;
    assert!(
        confirm.body.contains("end_session/confirm"),
        "{}",
        confirm.body
    );
    let forged = victim
        .post(
            &h,
            "/end_session/confirm",
            &[
                ("request", &confirm.field("request")),
                ("decision", "logout"),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::BAD_REQUEST, "{}", forged.body);
    // Still signed in: a prompt=none request gets a code.
    let r = victim
        .get(
            &h,
            &authorize_uri("spa", "https://spa.example/cb", "&prompt=none"),
        )
        .await;
    assert!(r.query().contains_key("code"), "{:?}", r.query());
}

/// RFC 6749 §10.13 and RFC 9700 §4.16 (clickjacking): every page refuses to be framed.
#[tokio::test]
async fn rfc9700_4_16_pages_refuse_to_be_framed() {
    let h = harness();
    let mut b = Browser::default();
    let login = b
        .get(&h, &authorize_uri("web", "https://web.example/cb", ""))
        .await;
    let consent = log_in(&h, &mut b, &login, "alice", PASSWORD).await;
    let device = b.get(&h, "/device").await;
    let logout = b.get(&h, "/end_session").await;
    let error = b.get(&h, "/authorize?client_id=nobody").await;
    for (name, page) in [
        ("login", &login),
        ("consent", &consent),
        ("device", &device),
        ("logout", &logout),
        ("error", &error),
    ] {
        assert_eq!(page.headers[header::X_FRAME_OPTIONS], "DENY", "{name}");
        assert!(
            page.headers[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'"),
            "{name}"
        );
    }
}

/// OWASP user enumeration: an unknown user and a wrong password get the same answer, and take
/// about as long (both pay for a password hash).
#[tokio::test]
async fn user_enumeration_by_message_or_timing_tells_nothing() {
    let h = harness();
    let attempt = |user: &'static str| {
        let h = &h;
        async move {
            let started = std::time::Instant::now();
            let r = sign_in_attempt(h, user, "not-the-password").await;
            let took = started.elapsed();
            let text = r.body.split("<form").next().unwrap_or_default().to_string();
            (r.status, text, took)
        }
    };
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    // Alternating, within the per-user and per-address limits.
    for _ in 0..3 {
        known.push(attempt("bob").await);
        unknown.push(attempt("mallory").await);
    }
    for ((ks, kt, _), (us, ut, _)) in known.iter().zip(&unknown) {
        assert_eq!(ks, us);
        assert_eq!(kt, ut, "the pages differ");
    }
    let median = |v: &Vec<(StatusCode, String, std::time::Duration)>| {
        let mut t: Vec<_> = v.iter().map(|x| x.2).collect();
        t.sort();
        t[1]
    };
    let (k, u) = (median(&known), median(&unknown));
    let ratio = u.as_secs_f64() / k.as_secs_f64();
    // Without a hash for unknown users the ratio is about 0.01.
    assert!(
        (0.3..3.0).contains(&ratio),
        "unknown {u:?} vs wrong password {k:?}"
    );
}

/// XSS (OWASP A03): what a client, a request or an error puts on a page is escaped: the client
/// name, `state` echoed in a form_post answer, an error's description.
#[tokio::test]
async fn xss_through_names_state_and_errors_is_escaped() {
    let h = harness();
    // The `web` client's display name is `<script>alert(1)</script> Web`.
    let page = call(
        &h,
        Request::get(authorize_uri("web", "https://web.example/cb", ""))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert!(!page.body.contains("<script>alert(1)"), "{}", page.body);
    assert!(
        page.body
            .contains("&lt;script&gt;alert(1)&lt;/script&gt; Web")
    );
    let mut b = Browser::default();
    let r = sign_in(
        &h,
        &mut b,
        &authorize_uri("spa", "https://spa.example/cb", "&response_mode=form_post").replace(
            "state=st%20ate",
            "state=%22%3E%3Cscript%3Ealert(2)%3C%2Fscript%3E",
        ),
        "alice",
    )
    .await;
    assert!(!r.body.contains("<script>alert(2)"), "{}", r.body);
    assert!(
        r.body.contains("&quot;&gt;&lt;script&gt;alert(2)"),
        "{}",
        r.body
    );
    let r = call(
        &h,
        Request::get("/authorize?client_id=%3Cimg%20src%3Dx%20onerror%3Dalert(3)%3E")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert!(!r.body.contains("<img"), "{}", r.body);
    assert!(
        r.body.contains("&lt;img src=x onerror=alert(3)&gt;"),
        "{}",
        r.body
    );
}

/// Host header injection: neither `Host` nor `X-Forwarded-Host` changes the issuer, the
/// endpoints in discovery or the `iss` of an answer.
#[tokio::test]
async fn host_and_forwarded_host_never_change_the_issuer() {
    let h = harness();
    let r = call(
        &h,
        Request::get("/.well-known/openid-configuration")
            .header(header::HOST, "evil.example")
            .header("x-forwarded-host", "evil.example")
            .header("x-forwarded-proto", "http")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert!(!r.body.contains("evil.example"), "{}", r.body);
    assert_eq!(r.json()["issuer"], ISSUER);
    let r = call(
        &h,
        Request::get(authorize_uri(
            "spa",
            "https://spa.example/cb",
            "&prompt=none",
        ))
        .header(header::HOST, "evil.example")
        .header("x-forwarded-host", "evil.example")
        .body(Body::empty())
        .unwrap(),
    )
    .await;
    assert_eq!(r.query()["iss"], ISSUER);
}

/// Oversized and deeply nested bodies: a body past the limit is 413 before it is parsed; a
/// JSON document nested ten thousand deep or a form of five thousand fields is an error
/// answer, never a crash.
#[tokio::test]
async fn oversized_and_deeply_nested_bodies_are_refused() {
    let h = harness();
    let big = "a".repeat(70 * 1024);
    for path in ["/token", "/register", "/introspect", "/revoke", "/login"] {
        let r = call(
            &h,
            Request::post(path)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(format!("x={big}")))
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
    }
    let nested = "[".repeat(10_000) + &"]".repeat(10_000);
    let r = call(
        &h,
        Request::post("/register")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(nested))
            .unwrap(),
    )
    .await;
    assert!(r.status.is_client_error(), "{} {}", r.status, r.body);
    let many: Vec<String> = (0..5_000).map(|i| format!("f{i}=v")).collect();
    let r = call(
        &h,
        Request::post("/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(many.join("&")))
            .unwrap(),
    )
    .await;
    assert!(r.status.is_client_error(), "{} {}", r.status, r.body);
    assert!(r.json()["error"].is_string(), "{}", r.body);
    // Still serving.
    let r = call(&h, Request::get("/jwks").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, StatusCode::OK);
}

/// SSRF (RFC 7591 §5, RFC 9700 §4.10 spirit): registration metadata URLs on private, loopback
/// and link-local addresses (cloud metadata) are refused, by literal and by name.
#[tokio::test]
async fn ssrf_through_registration_urls_is_refused() {
    let settings = crate::protocol::registration::Settings {
        policy: crate::protocol::registration::Policy::Open,
        allow_private_urls: false,
        consent: crds::ConsentPolicy::Once,
        quota: 10,
    };
    for (field, url) in [
        (
            "backchannel_logout_uri",
            "https://169.254.169.254/latest/meta-data/",
        ),
        ("backchannel_logout_uri", "https://10.0.0.1/logout"),
        ("backchannel_logout_uri", "https://[::1]/logout"),
        ("backchannel_logout_uri", "https://localhost/logout"),
        ("logo_uri", "https://127.0.0.1/logo.png"),
        ("logo_uri", "https://[fd00::1]/logo.png"),
        ("jwks_uri", "https://192.168.0.1/jwks"),
    ] {
        let metadata = json!({
            "redirect_uris": ["https://app.example/cb"],
            field: url,
        });
        let e = crate::protocol::registration::spec_from_metadata(&settings, &metadata)
            .await
            .err()
            .unwrap_or_else(|| panic!("{field} {url} accepted"));
        assert!(
            matches!(e, crate::protocol::OAuthError::InvalidClientMetadata(_)),
            "{field} {url}: {e:?}"
        );
    }
}

/// One sign-in of `user` with `password` from a new browser.
async fn sign_in_attempt(h: &Harness, user: &str, password: &str) -> Reply {
    let mut browser = Browser::default();
    let page = browser
        .get(h, &authorize_uri("web", "https://web.example/cb", ""))
        .await;
    log_in(h, &mut browser, &page, user, password).await
}

/// Brute force across replicas: two providers sharing one Redis count a user's failed sign-ins
/// together, so spreading guesses over replicas gains nothing; the right password is then
/// refused too, on the same page as a wrong one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brute_force_is_counted_across_replicas() {
    let server = kube_oidc_tests::RedisServer::start();
    let a = harness_with(Store::redis(&server.url, "attack:").await.unwrap());
    let b = harness_with(Store::redis(&server.url, "attack:").await.unwrap());
    let wrong = sign_in_attempt(&a, "bob", "guess-0").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    for i in 1..5 {
        let replica = if i % 2 == 0 { &a } else { &b };
        let r = sign_in_attempt(replica, "bob", &format!("guess-{i}")).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // Five failures over two replicas: the sixth attempt, with the right password, is refused
    // at either, with the wrong password's page.
    for replica in [&a, &b] {
        let r = sign_in_attempt(replica, "bob", PASSWORD).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
        let page = |r: &Reply| r.body.split("<form").next().unwrap_or_default().to_string();
        assert_eq!(page(&r), page(&wrong));
    }
    // Another user is not affected.
    let r = sign_in_attempt(&b, "alice", PASSWORD).await;
    assert_ne!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
}
