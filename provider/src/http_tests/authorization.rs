//! The authorization endpoint and the code grant.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

#[tokio::test]
async fn discovery_and_jwks() {
    let h = harness();
    let d = call(
        &h,
        Request::get("/.well-known/openid-configuration")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(d.status, StatusCode::OK);
    let d = d.json();
    assert_eq!(d["issuer"], ISSUER);
    assert_eq!(d["token_endpoint"], format!("{ISSUER}/token"));
    assert_eq!(
        d["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        d["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );
    assert_eq!(d["request_parameter_supported"], true);
    assert_eq!(d["require_request_uri_registration"], true);
    assert_eq!(d["authorization_response_iss_parameter_supported"], true);
    for endpoint in [
        "introspection_endpoint",
        "revocation_endpoint",
        "end_session_endpoint",
    ] {
        assert!(
            d[endpoint].as_str().unwrap().starts_with(ISSUER),
            "{endpoint}"
        );
    }
    assert_eq!(d["backchannel_logout_supported"], true);
    assert!(
        d.get("registration_endpoint").is_none(),
        "registration is closed"
    );
    assert!(
        d["scopes_supported"]
            .as_array()
            .unwrap()
            .contains(&Value::from("api"))
    );
    let j = call(&h, Request::get("/jwks").body(Body::empty()).unwrap()).await;
    assert_eq!(j.headers[header::CACHE_CONTROL], "public, max-age=3600");
    let keys = j.json()["keys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kid"], h.kid.as_str());
    for private in ["d", "p", "q", "dp", "dq", "qi"] {
        assert!(
            keys[0].get(private).is_none(),
            "private member {private} published"
        );
    }
}

#[tokio::test]
async fn bad_client_or_redirect_uri_gets_a_page_never_a_redirect() {
    let h = harness();
    for uri in [
        "/authorize?response_type=code&client_id=nobody&redirect_uri=https%3A%2F%2Fweb.example%2Fcb",
        "/authorize?response_type=code&client_id=web&redirect_uri=https%3A%2F%2Fevil.example%2Fcb",
        "/authorize?response_type=code&client_id=web&redirect_uri=https%3A%2F%2Fweb.example%2Fcb%2F",
        "/authorize?response_type=code&client_id=web",
        "/authorize?response_type=code&redirect_uri=https%3A%2F%2Fweb.example%2Fcb",
        "/authorize?client_id=web&client_id=spa",
    ] {
        refused_without_redirect(&h, uri).await;
    }
}

#[tokio::test]
async fn authorization_errors_are_redirected_with_state_and_iss() {
    let h = harness();
    let cases = [
        ("&request=eyJ", "invalid_request_object"),
        ("&request_uri=https%3A%2F%2Fx", "invalid_request_uri"),
        (
            "&request=eyJ&request_uri=https%3A%2F%2Fx",
            "invalid_request",
        ),
        ("&prompt=none", "login_required"),
        ("&prompt=none%20login", "invalid_request"),
        ("&prompt=bogus", "invalid_request"),
        ("&max_age=soon", "invalid_request"),
        ("&claims=notjson", "invalid_request"),
        ("&id_token_hint=not.a.token", "invalid_request"),
        ("&response_mode=jwt", "invalid_request"),
    ];
    for (extra, error) in cases {
        let r = call(
            &h,
            Request::get(authorize_uri("web", "https://web.example/cb", extra))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, StatusCode::FOUND, "{extra}: {}", r.body);
        let q = r.query();
        assert_eq!(q["error"], error, "{extra}");
        assert!(!q["error_description"].is_empty());
        assert_eq!(q["state"], "st ate");
        assert_eq!(q["iss"], ISSUER);
        assert!(r.location().as_str().starts_with("https://web.example/cb?"));
    }
    let base = "/authorize?client_id=spa&redirect_uri=https%3A%2F%2Fspa.example%2Fcb&state=s";
    for (extra, error) in [
        ("&response_type=token", "unsupported_response_type"),
        ("", "invalid_request"),
        ("&response_type=code&scope=openid", "invalid_request"), // public client without PKCE
        (
            "&response_type=code&scope=openid&code_challenge=abc&code_challenge_method=plain",
            "invalid_request",
        ),
        (
            "&response_type=code&scope=openid&code_challenge=short&code_challenge_method=S256",
            "invalid_request",
        ),
        (
            "&response_type=code&scope=openid%20admin&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
            "invalid_scope",
        ),
    ] {
        let r = call(
            &h,
            Request::get(format!("{base}{extra}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, StatusCode::FOUND, "{extra}");
        // An implicit response type's error comes back in the fragment, as its answer would.
        let answer = if extra.contains("=token") {
            r.fragment()
        } else {
            r.query()
        };
        assert_eq!(answer["error"], error, "{extra}");
    }
    // Unknown parameters, ui_locales, display, acr_values and login_hint do not fail.
    let r = call(
        &h,
        Request::get(authorize_uri(
            "web",
            "https://web.example/cb",
            "&ui_locales=de&display=popup&acr_values=x&foo=bar&login_hint=alice",
        ))
        .body(Body::empty())
        .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body.contains("value=\"alice\""),
        "login_hint prefills the username"
    );
}

#[tokio::test]
async fn code_flow_with_pkce_issues_complete_tokens() {
    let h = harness();
    let mut b = Browser::default();
    let page = b
        .get(&h, &authorize_uri("web", "https://web.example/cb", ""))
        .await;
    pages_are_escaped_and_locked_down(&page);
    let (session, code) = sign_in_and_consent(&h, &mut b, &page).await;
    let (access, id) = complete_tokens(&h, &code).await;
    userinfo_by_header_and_body(&h, &access, &id).await;
    single_sign_on_and_prompts(&h, &mut b, &session).await;
}

/// The attack: a client deleted and another created with its ID (by whoever may then claim it)
/// would inherit the consents users gave the first. Consent belongs to the client object.
#[tokio::test]
async fn a_new_client_reusing_an_id_starts_without_consent() {
    let h = harness();
    let mut b = Browser::default();
    let uri = authorize_uri("web", "https://web.example/cb", "");
    let page = b.get(&h, &uri).await;
    sign_in_and_consent(&h, &mut b, &page).await;
    let again = b.get(&h, &uri).await;
    assert_eq!(
        again.status,
        StatusCode::FOUND,
        "consent once is remembered"
    );
    assert!(again.query().contains_key("code"));
    // The same client ID, another object.
    let (mut view, _) = crate::test_support::view(None);
    let mut web = (*view.client("web").unwrap()).clone();
    web.uid = "another-object".into();
    view.clients.insert("web".into(), Arc::new(web));
    h.view.store(Arc::new(view));
    let asked = b.get(&h, &uri).await;
    assert_eq!(asked.status, StatusCode::OK, "{}", asked.body);
    assert!(asked.body.contains("name=\"decision\""), "{}", asked.body);
}

/// Over https the provider's cookies carry the `__Host-` prefix, and a session cookie planted
/// without it (from a sibling subdomain, or over http) is not taken for a session.
#[tokio::test]
async fn cookies_are_host_prefixed_and_a_planted_plain_session_is_ignored() {
    let h = harness();
    let mut b = Browser::default();
    let uri = authorize_uri("web", "https://web.example/cb", "");
    let page = b.get(&h, &uri).await;
    let (session, _) = sign_in_and_consent(&h, &mut b, &page).await;
    let mut planted = Browser::default();
    planted
        .cookies
        .insert("kube_oidc_session".into(), session.clone());
    let r = planted.get(&h, &uri).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.body.contains("name=\"password\""),
        "a plain session cookie signed the browser in"
    );
    let set = r.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        set.starts_with("__Host-kube_oidc_req=")
            && set.contains("Path=/;")
            && set.contains("Secure"),
        "{set}"
    );
}

fn pages_are_escaped_and_locked_down(page: &Reply) {
    // Pages escape what they show and carry the security headers.
    assert!(
        !page.body.contains("<script>alert"),
        "unescaped display name"
    );
    assert!(page.body.contains("&lt;script&gt;"));
    assert!(
        page.headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(page.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert!(page.headers.contains_key(header::STRICT_TRANSPORT_SECURITY));
    let binding = page.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        binding.contains("HttpOnly")
            && binding.contains("SameSite=Lax")
            && binding.contains("Secure")
    );
}

/// A wrong password, then the right one and consent: (the session cookie, the code).
async fn sign_in_and_consent(h: &Harness, b: &mut Browser, page: &Reply) -> (String, String) {
    // Wrong password: the form again, with an error.
    let wrong = b
        .post(
            h,
            "/login",
            &[
                ("request", &page.field("request")),
                ("csrf", &page.field("csrf")),
                ("username", "alice"),
                ("password", "nope"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("Wrong username or password"));

    let consent = b
        .post(
            h,
            "/login",
            &[
                ("request", &page.field("request")),
                ("csrf", &page.field("csrf")),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(consent.status, StatusCode::OK);
    assert!(
        consent.body.contains("See your email address"),
        "scope descriptions: {}",
        consent.body
    );
    let session = b
        .cookies
        .get("__Host-kube_oidc_session")
        .cloned()
        .expect("SSO session cookie");
    let done = b
        .post(
            h,
            "/consent",
            &[
                ("request", &consent.field("request")),
                ("csrf", &consent.field("csrf")),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let q = done.query();
    assert_eq!(q["state"], "st ate");
    assert_eq!(q["iss"], ISSUER);
    let code = q["code"].clone();

    (session, code)
}

/// The code's tokens, checked claim by claim: (the access token, the ID token's claims).
async fn complete_tokens(h: &Harness, code: &str) -> (String, Value) {
    let t = token(
        h,
        Some(("web", "web-secret")),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", "https://web.example/cb"),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.body);
    assert_eq!(t.headers[header::CACHE_CONTROL], "no-store");
    let t = t.json();
    assert_eq!(t["token_type"], "Bearer");
    let (header, id) = decode_jwt(t["id_token"].as_str().unwrap());
    assert_eq!(header["kid"], h.kid.as_str());
    assert_eq!(header["alg"], "RS256");
    assert_eq!(id["iss"], ISSUER);
    assert_eq!(id["aud"], "web");
    assert_eq!(id["azp"], "web");
    assert_eq!(id["nonce"], "n-0S6");
    // OpenID Connect Core §5.4: with an access token, scope claims are for userinfo.
    assert!(id.get("email").is_none(), "email belongs to userinfo: {id}");
    assert!(id.get("groups").is_none(), "groups not granted");
    assert_eq!(id["acr"], crate::protocol::token::issuance::ACR_PASSWORD);
    assert!(id["exp"].as_u64().unwrap() > id["iat"].as_u64().unwrap());
    assert!(id["auth_time"].as_u64().is_some());
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(
        id["at_hash"],
        crate::protocol::claims::at_hash(crds::Algorithm::RS256, access)
    );
    let (aheader, aclaims) = decode_jwt(access);
    assert_eq!(aheader["typ"], "at+jwt");
    assert_eq!(aclaims["client_id"], "web");
    assert_eq!(aclaims["sub"], id["sub"]);
    assert!(
        t["refresh_token"].is_string(),
        "offline_access grants a refresh token"
    );

    (access.to_string(), id)
}

async fn userinfo_by_header_and_body(h: &Harness, access: &str, id: &Value) {
    // userinfo, header and body.
    let u = call(
        h,
        Request::get("/userinfo")
            .header(header::AUTHORIZATION, format!("Bearer {access}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(u.status, StatusCode::OK, "{}", u.body);
    assert_eq!(u.json()["sub"], id["sub"]);
    assert_eq!(u.json()["email"], "alice@example.com");
    let u = call(
        h,
        Request::post("/userinfo")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("access_token={access}")))
            .unwrap(),
    )
    .await;
    assert_eq!(u.status, StatusCode::OK);
}

async fn single_sign_on_and_prompts(h: &Harness, b: &mut Browser, session: &str) {
    // SSO: the next request from this browser needs no sign-in and, consent given once, no page.
    assert_eq!(b.cookies["__Host-kube_oidc_session"], session);
    let again = b
        .get(
            h,
            &authorize_uri("web", "https://web.example/cb", "&prompt=none"),
        )
        .await;
    assert_eq!(again.status, StatusCode::FOUND);
    assert!(again.query().contains_key("code"));
    // prompt=login, prompt=select_account and max_age=0 ask again.
    for extra in ["&prompt=login", "&prompt=select_account", "&max_age=0"] {
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let r = b
            .get(h, &authorize_uri("web", "https://web.example/cb", extra))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{extra}");
        assert!(r.body.contains("name=\"password\""), "{extra}");
    }
    // prompt=consent shows the consent page again; prompt=none with consent needed fails.
    let r = b
        .get(
            h,
            &authorize_uri("web", "https://web.example/cb", "&prompt=consent"),
        )
        .await;
    assert!(r.body.contains("name=\"decision\""));
    let r = b
        .get(h, "/authorize?response_type=code&client_id=web&redirect_uri=https%3A%2F%2Fweb.example%2Fcb&scope=openid%20profile&prompt=none")
        .await;
    assert_eq!(r.query()["error"], "consent_required");
}

#[tokio::test]
async fn code_single_use_pkce_and_redirect_uri_are_enforced() {
    let h = harness();
    let redeem = |code: String, verifier: Option<&'static str>, redirect: &'static str| {
        let h = &h;
        async move {
            let mut form = vec![
                ("grant_type", "authorization_code".to_string()),
                ("code", code),
                ("redirect_uri", redirect.to_string()),
            ];
            if let Some(v) = verifier {
                form.push(("code_verifier", v.to_string()));
            }
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            token(h, Some(("web", "web-secret")), &form).await
        }
    };
    let code = code_for(&h, "web", "https://web.example/cb", "").await;
    let wrong = redeem(code, Some("x".repeat(43).leak()), "https://web.example/cb").await;
    assert_eq!(wrong.json()["error"], "invalid_grant");

    let code = code_for(&h, "web", "https://web.example/cb", "").await;
    let missing = redeem(code, None, "https://web.example/cb").await;
    assert_eq!(missing.json()["error"], "invalid_grant");
    assert!(
        missing.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("code_verifier is required")
    );

    let code = code_for(&h, "web", "https://web.example/cb", "").await;
    let other_uri = redeem(code, Some(VERIFIER), "https://web.example/other").await;
    assert_eq!(other_uri.json()["error"], "invalid_grant");

    // A confidential client may skip PKCE; then a verifier is refused.
    let mut b = Browser::default();
    let r = sign_in(&h, &mut b, "/authorize?response_type=code&client_id=web&redirect_uri=https%3A%2F%2Fweb.example%2Fcb&scope=openid%20offline_access", "alice").await;
    let code = r.query()["code"].clone();
    let r = redeem(code, Some(VERIFIER), "https://web.example/cb").await;
    assert_eq!(r.json()["error"], "invalid_grant");

    // Reuse: invalid_grant, and the tokens of the first redemption are revoked.
    let code = code_for(&h, "web", "https://web.example/cb", "").await;
    let first = redeem(code.clone(), Some(VERIFIER), "https://web.example/cb").await;
    assert_eq!(first.status, StatusCode::OK);
    let refresh = first.json()["refresh_token"].as_str().unwrap().to_string();
    let second = redeem(code, Some(VERIFIER), "https://web.example/cb").await;
    assert_eq!(second.status, StatusCode::BAD_REQUEST);
    assert_eq!(second.json()["error"], "invalid_grant");
    let r = token(
        &h,
        Some(("web", "web-secret")),
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(
        r.json()["error"],
        "invalid_grant",
        "refresh token of a reused code still works"
    );

    // A code is bound to its client.
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
    assert_eq!(r.json()["error"], "invalid_grant");
}

/// Fields stored with a pending request have bounded sizes (the store must not fill from
/// anonymous requests); an oversized `state` is not echoed back.
#[tokio::test]
async fn oversized_request_fields_are_refused() {
    let h = harness();
    for (name, len) in [
        ("login_hint", 257),
        ("claims", 4097),
        ("id_token_hint", 8193),
    ] {
        let extra = format!("&{name}={}", "a".repeat(len));
        let r = call(
            &h,
            Request::get(authorize_uri("web", "https://web.example/cb", &extra))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, StatusCode::FOUND, "{name}");
        let q = r.query();
        assert_eq!(q["error"], "invalid_request", "{name}");
        assert!(q["error_description"].contains(name));
        assert_eq!(q["state"], "st ate");
    }
    let big_state = "s".repeat(60 * 1024);
    let r = call(
        &h,
        Request::get(format!(
            "/authorize?response_type=code&client_id=web&redirect_uri=https%3A%2F%2Fweb.example%2Fcb&scope=openid&state={big_state}"
        ))
        .body(Body::empty())
        .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::FOUND);
    let q = r.query();
    assert_eq!(q["error"], "invalid_request");
    assert!(!q.contains_key("state"), "a 60 KB state is not echoed");
    assert!(r.location().as_str().len() < 1024);
}

/// OAuth 2.0 Form Post Response Mode: the code (or the error) reaches the client in a form the
/// browser posts, never in a URL; the page's script runs only by its nonce.
#[tokio::test]
async fn form_post_answers_in_a_posted_form() {
    let h = harness();
    let discovery = call(
        &h,
        Request::get("/.well-known/openid-configuration")
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .json();
    assert_eq!(
        discovery["response_modes_supported"],
        serde_json::json!(["query", "fragment", "form_post"])
    );
    let mut b = Browser::default();
    let uri = authorize_uri("spa", "https://spa.example/cb", "&response_mode=form_post");
    let reply = sign_in(&h, &mut b, &uri, "alice").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(
        reply
            .body
            .contains("<form method=\"post\" action=\"https://spa.example/cb\">"),
        "{}",
        reply.body
    );
    assert!(!reply.field("code").is_empty());
    assert_eq!(reply.field("state"), "st ate");
    assert_eq!(reply.field("iss"), ISSUER);
    let csp = reply.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_string();
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|r| r.split('\'').next())
        .unwrap_or_else(|| panic!("{csp}"));
    assert!(reply.body.contains(&format!("<script nonce=\"{nonce}\">")));
    assert!(csp.contains("frame-ancestors 'none'"));
    // Errors too: prompt=none for a client the user never consented to is posted back.
    let mut other = Browser::default();
    let none = authorize_uri(
        "web",
        "https://web.example/cb",
        "&response_mode=form_post&prompt=none",
    );
    let e = other.get(&h, &none).await;
    assert_eq!(e.status, StatusCode::OK, "{}", e.body);
    assert_eq!(e.field("error"), "login_required");
    assert_eq!(e.field("state"), "st ate");
}

/// With an operations listener, /metrics is served there and not on the public router.
#[tokio::test]
async fn metrics_stay_off_the_public_port_with_an_operations_listener() {
    let limits = crate::http::Limits {
        metrics_here: false,
        ..Default::default()
    };
    let (h, operations) = super::harness_split(crate::store::Store::memory(), None, limits);
    let public = call(&h, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!(public.status, StatusCode::NOT_FOUND);
    let ops = tower::ServiceExt::oneshot(
        operations,
        Request::get("/metrics").body(Body::empty()).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(ops.status(), StatusCode::OK);
    let ready = call(&h, Request::get("/readyz").body(Body::empty()).unwrap()).await;
    assert_ne!(
        ready.status,
        StatusCode::NOT_FOUND,
        "probes stay on the public port"
    );
}

/// Beyond the concurrency limit, requests are answered 503 with Retry-After at once (never an
/// unbounded queue); the ones within it are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_beyond_the_concurrency_limit_are_shed() {
    let limits = crate::http::Limits {
        max_concurrent_requests: 1,
        ..Default::default()
    };
    let (h, _) = super::harness_split(crate::store::Store::memory(), None, limits);
    let h = std::sync::Arc::new(h);
    // Machine tokens (a secret check and an RS256 signature each) overlap enough.
    let calls = (0..32).map(|_| {
        let h = h.clone();
        tokio::spawn(async move {
            token(
                &h,
                Some(("svc:a b", "s&c=r%t+")),
                &[("grant_type", "client_credentials"), ("scope", "api")],
            )
            .await
        })
    });
    let replies: Vec<Reply> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let shed: Vec<&Reply> = replies
        .iter()
        .filter(|r| r.status == StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    assert!(replies.iter().any(|r| r.status == StatusCode::OK));
    assert!(!shed.is_empty(), "nothing was shed");
    assert!(
        shed.iter()
            .all(|r| r.headers.contains_key(header::RETRY_AFTER) && r.body.contains("busy"))
    );
}

/// One address starting sign-ins without end (each a pending interaction in the store) is told
/// to wait once it passes the limit; the store never fills from one place.
#[tokio::test]
async fn one_address_cannot_fill_the_store_with_pending_sign_ins() {
    let h = harness();
    let uri = authorize_uri("web", "https://web.example/cb", "");
    let limit = crate::http::MAX_STARTS_PER_IP;
    for _ in 0..limit {
        let r = call(&h, Request::get(uri.as_str()).body(Body::empty()).unwrap()).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let r = call(&h, Request::get(uri.as_str()).body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert!(r.body.contains("Too many sign-ins"));
}

/// OpenID Connect Core §3.2 and §3.3: the implicit and hybrid response types, for a client that
/// lists them. Tokens come back in the fragment (or a posted form, never the query), the ID
/// token carries `nonce`, `at_hash` and `c_hash`, and scope claims are in it only when no access
/// token is issued (§5.4).
#[tokio::test]
async fn implicit_and_hybrid_answers_carry_hashed_tokens_in_the_fragment() {
    let h = harness();
    let uri = |response_type: &str, extra: &str| {
        format!(
            "/authorize?response_type={}&client_id=hybrid&redirect_uri=https%3A%2F%2Fhybrid.example%2Fcb&scope=openid%20email&state=s1{extra}",
            urlencode(response_type)
        )
    };
    let mut b = Browser::default();
    // Signed in once (consent is skipped for this client); then each type in turn.
    let first = sign_in(&h, &mut b, &uri("id_token", "&nonce=n1"), "alice").await;
    assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", first.body);
    assert!(first.location().query().is_none(), "nothing in the query");
    let f = first.fragment();
    assert_eq!((f["state"].as_str(), f["iss"].as_str()), ("s1", ISSUER));
    assert!(!f.contains_key("code") && !f.contains_key("access_token"));
    let (_, id) = decode_jwt(&f["id_token"]);
    assert_eq!(id["nonce"], "n1");
    assert_eq!(id["aud"], "hybrid");
    assert_eq!(
        id["email"], "alice@example.com",
        "no access token: claims in the ID token"
    );
    assert!(id.get("at_hash").is_none() && id.get("c_hash").is_none());

    let r = b.get(&h, &uri("token id_token", "&nonce=n2")).await;
    let f = r.fragment();
    assert_eq!(f["token_type"], "Bearer");
    assert!(f["expires_in"].parse::<u64>().unwrap() > 0);
    let (_, id) = decode_jwt(&f["id_token"]);
    let alg = crds::Algorithm::RS256;
    assert_eq!(
        id["at_hash"],
        crate::protocol::claims::at_hash(alg, &f["access_token"])
    );
    assert!(
        id.get("email").is_none(),
        "an access token is issued: email is for userinfo"
    );
    let u = call(
        &h,
        Request::get("/userinfo")
            .header(
                header::AUTHORIZATION,
                format!("Bearer {}", f["access_token"]),
            )
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    // This client asked for signed userinfo (OpenID Connect Core §5.3.2).
    assert_eq!(u.headers[header::CONTENT_TYPE], "application/jwt");
    let (header, signed) = decode_jwt(&u.body);
    assert_eq!(header["kid"], h.kid.as_str());
    assert_eq!(
        (signed["iss"].as_str(), signed["aud"].as_str()),
        (Some(ISSUER), Some("hybrid"))
    );
    assert_eq!(signed["email"], "alice@example.com");
    assert_eq!(signed["sub"], id["sub"]);

    let r = b.get(&h, &uri("code id_token token", "&nonce=n3")).await;
    let f = r.fragment();
    let (_, id) = decode_jwt(&f["id_token"]);
    assert_eq!(
        id["c_hash"],
        crate::protocol::claims::at_hash(alg, &f["code"])
    );
    assert_eq!(
        id["at_hash"],
        crate::protocol::claims::at_hash(alg, &f["access_token"])
    );
    // The code is redeemed as in the code flow, and its ID token names the same nonce.
    let t = token(
        &h,
        Some(("hybrid", "hybrid-secret")),
        &[
            ("grant_type", "authorization_code"),
            ("code", &f["code"]),
            ("redirect_uri", "https://hybrid.example/cb"),
        ],
    )
    .await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.body);
    let (_, redeemed) = decode_jwt(t.json()["id_token"].as_str().unwrap());
    assert_eq!(
        (redeemed["nonce"].clone(), redeemed["sub"].clone()),
        (id["nonce"].clone(), id["sub"].clone())
    );

    // form_post carries the same fields in a posted form.
    let r = b
        .get(
            &h,
            &uri("code id_token", "&nonce=n4&response_mode=form_post"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    for field in ["code", "id_token", "state", "iss"] {
        assert!(
            r.body.contains(&format!("name=\"{field}\"")),
            "{field}: {}",
            r.body
        );
    }

    // Refusals, in the fragment: no nonce, the query mode, a type the client does not list,
    // and no openid scope.
    for (u, error) in [
        (uri("id_token", ""), "invalid_request"),
        (
            uri("id_token", "&nonce=n&response_mode=query"),
            "invalid_request",
        ),
        (
            uri("code id_token", "&nonce=n").replace("scope=openid%20email", "scope=email"),
            "invalid_scope",
        ),
    ] {
        let r = b.get(&h, &u).await;
        assert!(r.status.is_redirection(), "{u}");
        assert_eq!(r.fragment()["error"], error, "{u}");
        assert!(!r.fragment().contains_key("id_token"));
    }
    let web = "/authorize?response_type=id_token&client_id=web&redirect_uri=https%3A%2F%2Fweb.example%2Fcb&scope=openid&nonce=n&state=s";
    let r = b.get(&h, web).await;
    assert_eq!(r.fragment()["error"], "unauthorized_client");
}

/// OpenID Connect Core §6: a request object's parameters replace the query's; unsigned ones are
/// read as they are, signed ones only with a key of the client and for this provider.
#[tokio::test]
async fn request_objects_are_read_unsigned_or_verified_against_the_clients_keys() {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
    let h = harness();
    let key = crate::test_support::client_key();
    let signer =
        crate::signing::Signer::from_pem(crds::Algorithm::RS256, &key.jwk.kid, &key.pkcs8_pem)
            .unwrap();
    let stranger = crds::keys::generate(crds::Algorithm::RS256, 2048).unwrap();
    let stranger =
        crate::signing::Signer::from_pem(crds::Algorithm::RS256, &key.jwk.kid, &stranger.pkcs8_pem)
            .unwrap();
    let object = serde_json::json!({
        "iss": "objects", "aud": ISSUER, "client_id": "objects", "response_type": "code",
        "redirect_uri": "https://objects.example/cb", "scope": "openid email",
        "state": "from-object", "nonce": "n", "max_age": 3600,
    });
    let unsigned = format!(
        "{}.{}.",
        B64.encode(r#"{"alg":"none"}"#),
        B64.encode(object.to_string())
    );
    let signed = signer.sign(Some("oauth-authz-req+jwt"), &object).unwrap();
    // The query says otherwise: the object wins.
    let uri = |request: &str| {
        format!(
            "/authorize?client_id=objects&response_type=code&scope=openid&state=from-query&redirect_uri=https%3A%2F%2Fobjects.example%2Fcb&request={request}"
        )
    };
    let mut b = Browser::default();
    for request in [&unsigned, &signed] {
        let first = b.get(&h, &uri(request)).await;
        let answer = if first.status == StatusCode::OK {
            sign_in(&h, &mut b, &uri(request), "alice").await
        } else {
            first
        };
        assert!(answer.status.is_redirection(), "{}", answer.body);
        let q = answer.query();
        assert_eq!(q["state"], "from-object");
        assert!(q.contains_key("code"), "{q:?}");
    }
    let mut elsewhere = object.clone();
    elsewhere["aud"] = serde_json::json!("https://other.example");
    let mut other_client = object.clone();
    other_client["client_id"] = serde_json::json!("web");
    for (request, error) in [
        (
            stranger.sign(None, &object).unwrap(),
            "invalid_request_object",
        ),
        (
            signer.sign(None, &elsewhere).unwrap(),
            "invalid_request_object",
        ),
        (
            signer.sign(None, &other_client).unwrap(),
            "invalid_request_object",
        ),
        ("a.b.c.d.e".to_string(), "invalid_request_object"),
    ] {
        let r = b.get(&h, &uri(&request)).await;
        assert!(r.status.is_redirection(), "{}", r.body);
        let q = r.query();
        assert_eq!(q["error"], error, "{q:?}");
        assert_eq!(
            q["state"], "from-query",
            "an unread object's state is not used"
        );
    }
    // A request_uri the client did not register is never fetched.
    let r = b
        .get(
            &h,
            "/authorize?client_id=objects&response_type=code&scope=openid&state=s&redirect_uri=https%3A%2F%2Fobjects.example%2Fcb&request_uri=https%3A%2F%2F169.254.169.254%2Fx",
        )
        .await;
    assert_eq!(r.query()["error"], "invalid_request_uri");
}

/// OpenID Connect Core §5.5: a claim asked for with the `claims` parameter is released when the
/// standard scope that holds it is one the client may request: that scope joins the request,
/// so the consent page asks for it and the token names it.
#[tokio::test]
async fn a_requested_claim_brings_its_scope_to_the_consent_page() {
    let h = harness();
    let claims = urlencode(r#"{"userinfo":{"name":{"essential":true}}}"#);
    let uri = format!(
        "/authorize?response_type=code&client_id=web&redirect_uri=https%3A%2F%2Fweb.example%2Fcb&scope=openid&state=s&claims={claims}"
    );
    let mut b = Browser::default();
    let consent = open_and_log_in(&h, &mut b, &uri, "alice").await;
    assert!(
        consent
            .body
            .contains("See your name and basic profile information"),
        "{}",
        consent.body
    );
}
