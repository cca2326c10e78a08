//! Sign-in, the store going away, and logout.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

/// Posts the sign-in form of `page` from browser `b`.
pub(super) async fn log_in(
    h: &Harness,
    b: &mut Browser,
    page: &Reply,
    user: &str,
    password: &str,
) -> Reply {
    b.post(
        h,
        "/login",
        &[
            ("request", &page.field("request")),
            ("csrf", &page.field("csrf")),
            ("username", user),
            ("password", password),
        ],
    )
    .await
}

#[tokio::test]
async fn login_is_csrf_protected_and_throttled() {
    let h = harness();
    let mut b = Browser::default();
    let page = b
        .get(&h, &authorize_uri("web", "https://web.example/cb", ""))
        .await;
    // Wrong CSRF token.
    let r = b
        .post(
            &h,
            "/login",
            &[
                ("request", &page.field("request")),
                ("csrf", "forged"),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Another browser (no binding cookie) cannot complete this browser's request.
    let mut other = Browser::default();
    let r = log_in(&h, &mut other, &page, "alice", PASSWORD).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(!other.cookies.contains_key("__Host-kube_oidc_session"));
    // Five failures for a user, then even the right password is refused for a while.
    for _ in 0..5 {
        let r = log_in(&h, &mut b, &page, "bob", "guess").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = log_in(&h, &mut b, &page, "bob", PASSWORD).await;
    // Refused with the same page as a wrong password: a locked account is not revealed.
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains("Wrong username or password"));
    assert!(
        !b.cookies.contains_key("__Host-kube_oidc_session"),
        "signed in while locked"
    );
    // Unknown users fail the same way as wrong passwords.
    let r = log_in(&h, &mut b, &page, "mallory", PASSWORD).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains("Wrong username or password"));
}

#[tokio::test]
async fn a_dead_redis_gets_a_protocol_error() {
    let mut redis = kube_oidc_tests::RedisServer::start();
    let store = Store::redis(&redis.url, crate::store::DEFAULT_PREFIX)
        .await
        .unwrap();
    let h = harness_with(store);
    redis.stop();
    let r = token(
        &h,
        Some(("web", "web-secret")),
        &[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("redirect_uri", "https://web.example/cb"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json()["error"], "temporarily_unavailable");
    let r = call(
        &h,
        Request::get(authorize_uri("web", "https://web.example/cb", ""))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.body.contains("Temporarily unavailable"));
    let r = call(&h, Request::get("/readyz").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn rp_initiated_logout_and_back_channel_logout() {
    let (received, port) = backchannel_receiver().await;
    let h = harness_full(
        Store::memory(),
        Some(&format!("http://127.0.0.1:{port}/backchannel")),
    );

    let mut b = Browser::default();
    let done = sign_in(
        &h,
        &mut b,
        &authorize_uri("web", "https://web.example/cb", ""),
        "alice",
    )
    .await;
    let code = done.query()["code"].clone();
    let t = token(
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
    let id_token = t.json()["id_token"].as_str().unwrap().to_string();
    let (_, id) = decode_jwt(&id_token);

    // An unregistered post-logout URI: a page, never a redirect.
    let r = b.get(&h, &format!("/end_session?id_token_hint={id_token}&post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.headers.get(header::LOCATION).is_none());

    // Tied to the session by the hint: ends at once and redirects with state.
    let old_cookie = b.cookies["__Host-kube_oidc_session"].clone();
    let r = b.get(&h, &format!("/end_session?id_token_hint={id_token}&post_logout_redirect_uri=https%3A%2F%2Fweb.example%2Fbye&state=bye1")).await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.body);
    assert_eq!(r.location().as_str(), "https://web.example/bye?state=bye1");
    assert!(
        r.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    // The session ended on the server, not just in this browser's cookie jar.
    b.cookies
        .insert("__Host-kube_oidc_session".into(), old_cookie);
    let again = b
        .get(
            &h,
            &authorize_uri("web", "https://web.example/cb", "&prompt=none"),
        )
        .await;
    assert_eq!(
        again.query()["error"],
        "login_required",
        "the session ended"
    );

    let token = logout_token(&received).await;
    logout_token_verifies(&h, &token, &id).await;

    logout_confirmed_by_the_user(&h).await;
}

type Received = Arc<std::sync::Mutex<Vec<String>>>;

/// A relying party's back-channel endpoint, on loopback: (the tokens it received, its port).
async fn backchannel_receiver() -> (Received, u16) {
    let received: Received = Arc::default();
    let sink = received.clone();
    let rp = axum::Router::new().route(
        "/backchannel",
        axum::routing::post(move |body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                let form: HashMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap();
                sink.lock().unwrap().push(form["logout_token"].clone());
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, rp).await });
    (received, port)
}

/// The first logout token the relying party received, waiting up to 5 s.
async fn logout_token(received: &Received) -> String {
    let mut waited = 0;
    loop {
        if let Some(t) = received.lock().unwrap().first().cloned() {
            break t;
        }
        assert!(waited < 100, "no back-channel logout within 5 s");
        waited += 1;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The logout token reached the relying party: verify it as the RP would.
async fn logout_token_verifies(h: &Harness, token: &str, id: &Value) {
    let (header, claims) = decode_jwt(token);
    assert_eq!(header["typ"], "logout+jwt");
    assert_eq!(header["kid"], h.kid.as_str());
    let jwks = call(h, Request::get("/jwks").body(Body::empty()).unwrap())
        .await
        .json();
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwks["keys"][0].clone()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&["web"]);
    validation.set_issuer(&[ISSUER]);
    let verified = jsonwebtoken::decode::<Value>(
        token,
        &jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap(),
        &validation,
    )
    .unwrap()
    .claims;
    assert_eq!(verified, claims);
    assert!(claims["iat"].as_u64().is_some() && claims["jti"].is_string());
    assert_eq!(claims["sub"], id["sub"]);
    assert_eq!(claims["sid"], id["sid"]);
    assert!(claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    assert!(claims.get("nonce").is_none());
}

/// Not tied to the session (no hint): the user confirms.
async fn logout_confirmed_by_the_user(h: &Harness) {
    let mut b = Browser::default();
    sign_in(
        h,
        &mut b,
        &authorize_uri("web", "https://web.example/cb", ""),
        "alice",
    )
    .await;
    let confirm = b
        .get(
            h,
            "/end_session?client_id=web&post_logout_redirect_uri=https%3A%2F%2Fweb.example%2Fbye",
        )
        .await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.body.contains("Sign out?"));
    let forged = b
        .post(
            h,
            "/end_session/confirm",
            &[
                ("request", &confirm.field("request")),
                ("csrf", "x"),
                ("decision", "logout"),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::BAD_REQUEST);
    let out = b
        .post(
            h,
            "/end_session/confirm",
            &[
                ("request", &confirm.field("request")),
                ("csrf", &confirm.field("csrf")),
                ("decision", "logout"),
            ],
        )
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location().as_str(), "https://web.example/bye");
    let again = b
        .get(
            h,
            &authorize_uri("web", "https://web.example/cb", "&prompt=none"),
        )
        .await;
    assert_eq!(again.query()["error"], "login_required");
}
