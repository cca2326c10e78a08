//! Refresh, client authentication, userinfo, opaque tokens, introspection, revocation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

/// The public client's tokens from a code flow with PKCE.
async fn spa_tokens(h: &Harness) -> Reply {
    let code = code_for(h, "spa", "https://spa.example/cb", "").await;
    token(
        h,
        None,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://spa.example/cb"),
            ("code_verifier", VERIFIER),
            ("client_id", "spa"),
        ],
    )
    .await
}

/// A refresh by the public client, with `extra` parameters.
async fn spa_refresh(h: &Harness, refresh_token: &str, extra: &[(&str, &str)]) -> Reply {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", "spa"),
    ];
    form.extend_from_slice(extra);
    token(h, None, &form).await
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let h = harness();
    let t = spa_tokens(&h).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.body);
    let r1 = t.json()["refresh_token"].as_str().unwrap().to_string();

    // Narrowing is allowed, widening is not.
    let wide = spa_refresh(&h, &r1, &[("scope", "openid profile")]).await;
    assert_eq!(wide.json()["error"], "invalid_scope");
    // (A failed refresh consumed r1 only if it got that far; use a fresh flow.)
    let t = spa_tokens(&h).await;
    let r1 = t.json()["refresh_token"].as_str().unwrap().to_string();
    let n = spa_refresh(&h, &r1, &[("scope", "openid offline_access")]).await;
    assert_eq!(n.status, StatusCode::OK, "{}", n.body);
    assert_eq!(n.json()["scope"], "openid offline_access");
    let r2 = n.json()["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(r1, r2, "rotated");
    assert!(n.json()["id_token"].is_string());

    // Reusing r1 fails and revokes r2 with it.
    let reuse = spa_refresh(&h, &r1, &[]).await;
    assert_eq!(reuse.json()["error"], "invalid_grant");
    let r = spa_refresh(&h, &r2, &[]).await;
    assert_eq!(r.json()["error"], "invalid_grant");

    // Another client cannot use it.
    let t = spa_tokens(&h).await;
    let r3 = t.json()["refresh_token"].as_str().unwrap().to_string();
    let r = token(
        &h,
        Some(("web", "web-secret")),
        &[("grant_type", "refresh_token"), ("refresh_token", &r3)],
    )
    .await;
    assert_eq!(r.json()["error"], "invalid_grant");
}

#[tokio::test]
async fn client_authentication_and_client_credentials() {
    let h = harness();
    // Basic with form-urlencoded id and secret (RFC 6749 §2.3.1).
    let ok = token(
        &h,
        Some(("svc:a b", "s&c=r%t+")),
        &[("grant_type", "client_credentials"), ("scope", "api")],
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    let (_, claims) = decode_jwt(ok.json()["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], "svc:a b");
    // For the resource the scope names, never the client itself.
    assert_eq!(claims["aud"], "api-server");
    assert_eq!(claims["scope"], "api");
    assert!(ok.json().get("refresh_token").is_none() && ok.json().get("id_token").is_none());
    // A client registered for client_secret_post, with it.
    let post = token(
        &h,
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "poster"),
            ("client_secret", "poster-secret"),
        ],
    )
    .await;
    assert_eq!(post.status, StatusCode::OK, "{}", post.body);
}

/// The attack: a client's secret used with another method than the one it is registered with
/// (a leaked secret replayed where the client never sends it), and a private_key_jwt client
/// let in with a secret. Each refused, logged and counted.
#[tokio::test]
async fn client_authentication_only_with_the_registered_method() {
    let h = harness();
    let basic_as_post = token(
        &h,
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "svc:a b"),
            ("client_secret", "s&c=r%t+"),
            ("scope", "api"),
        ],
    )
    .await;
    let post_as_basic = token(
        &h,
        Some(("poster", "poster-secret")),
        &[("grant_type", "client_credentials")],
    )
    .await;
    let jwt_with_secret = token(
        &h,
        Some(("asserter", "asserter-secret")),
        &[("grant_type", "client_credentials")],
    )
    .await;
    for (r, method) in [
        (&basic_as_post, "client_secret_basic"),
        (&post_as_basic, "client_secret_post"),
        (&jwt_with_secret, "private_key_jwt"),
    ] {
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
        assert_eq!(r.json()["error"], "invalid_client");
        assert!(
            r.json()["error_description"]
                .as_str()
                .unwrap()
                .contains(method),
            "{}",
            r.body
        );
    }
    let metrics = call(&h, Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .body;
    assert!(
        metrics.contains("kube_oidc_provider_client_authentication_failures_total{method=\"client_secret_post\"} 1")
            && metrics.contains("kube_oidc_provider_client_authentication_failures_total{method=\"client_secret_basic\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn token_requests_that_fail_get_rfc6749_errors() {
    let h = harness();
    for (auth, form) in [
        (
            Some(("svc:a b", "wrong")),
            vec![("grant_type", "client_credentials")],
        ),
        (
            None,
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "svc:a b"),
            ],
        ),
        (
            None,
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "nobody"),
                ("client_secret", "x"),
            ],
        ),
        (None, vec![("grant_type", "client_credentials")]),
    ] {
        let r = token(&h, auth, &form).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{form:?}");
        assert_eq!(r.json()["error"], "invalid_client");
        assert!(
            r.headers[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .starts_with("Basic")
        );
    }
    let r = token(
        &h,
        Some(("svc:a b", "s&c=r%t+")),
        &[("grant_type", "client_credentials"), ("scope", "openid")],
    )
    .await;
    assert_eq!(r.json()["error"], "invalid_scope");
    let r = token(
        &h,
        None,
        &[("grant_type", "client_credentials"), ("client_id", "spa")],
    )
    .await;
    assert_eq!(r.json()["error"], "unauthorized_client");
    let r = token(
        &h,
        Some(("web", "web-secret")),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(r.json()["error"], "unauthorized_client");
    let r = token(
        &h,
        Some(("web", "web-secret")),
        &[("grant_type", "password")],
    )
    .await;
    assert_eq!(r.json()["error"], "unsupported_grant_type");
}

#[tokio::test]
async fn malformed_token_requests_are_invalid() {
    let h = harness();
    let r = token(&h, Some(("web", "web-secret")), &[]).await;
    assert_eq!(r.json()["error"], "invalid_request");
    let r = token(
        &h,
        Some(("web", "web-secret")),
        &[
            ("grant_type", "client_credentials"),
            ("client_secret", "web-secret"),
        ],
    )
    .await;
    assert_eq!(
        r.json()["error"],
        "invalid_request",
        "two authentication methods"
    );
    let r = call(
        &h,
        Request::post("/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from("grant_type=a&grant_type=b&client_id=spa"))
            .unwrap(),
    )
    .await;
    assert_eq!(r.json()["error"], "invalid_request");
    // Body size limit.
    let big = "x".repeat(100 * 1024);
    let r = call(&h, Request::post("/token").body(Body::from(big)).unwrap()).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn userinfo_errors_follow_rfc6750() {
    let h = harness();
    let r = call(&h, Request::get("/userinfo").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.headers[header::WWW_AUTHENTICATE],
        "Bearer realm=\"kube-oidc\""
    );
    let r = call(
        &h,
        Request::get("/userinfo")
            .header(header::AUTHORIZATION, "Bearer garbage")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        r.headers[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
    let cc = token(
        &h,
        Some(("svc:a b", "s&c=r%t+")),
        &[("grant_type", "client_credentials")],
    )
    .await;
    let at = cc.json()["access_token"].as_str().unwrap().to_string();
    let r = call(
        &h,
        Request::get("/userinfo")
            .header(header::AUTHORIZATION, format!("Bearer {at}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        r.headers[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );
    let r = call(
        &h,
        Request::post("/userinfo")
            .header(header::AUTHORIZATION, format!("Bearer {at}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("access_token={at}")))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"], "invalid_request");
}

#[tokio::test]
async fn opaque_tokens_consent_always_deny_and_claims_only_with_consent() {
    let h = harness();
    let mut b = Browser::default();
    // consent: always asks every time; deny sends access_denied.
    let uri = "/authorize?response_type=code&client_id=always&redirect_uri=https%3A%2F%2Falways.example%2Fcb&scope=openid&state=x&claims=%7B%22userinfo%22%3A%7B%22email%22%3Anull%7D%2C%22id_token%22%3A%7B%22email%22%3Anull%2C%22groups%22%3Anull%7D%7D";
    let consent = open_and_log_in(&h, &mut b, uri, "alice").await;
    let denied = b
        .post(
            &h,
            "/consent",
            &[
                ("request", &consent.field("request")),
                ("csrf", &consent.field("csrf")),
                ("decision", "deny"),
            ],
        )
        .await;
    assert_eq!(denied.query()["error"], "access_denied");
    assert_eq!(denied.query()["state"], "x");
    let consent = b.get(&h, uri).await;
    assert!(consent.body.contains("name=\"decision\""), "asked again");
    // The claims parameter asks for email: its scope, which this client may request, is on the
    // consent page; groups is released by no scope the client may request.
    assert!(
        consent.body.contains("See your email address"),
        "{}",
        consent.body
    );
    assert!(!consent.body.contains("groups"), "{}", consent.body);
    let ok = b
        .post(
            &h,
            "/consent",
            &[
                ("request", &consent.field("request")),
                ("csrf", &consent.field("csrf")),
                ("decision", "approve"),
            ],
        )
        .await;
    let code = ok.query()["code"].clone();
    let t = token(
        &h,
        Some(("always", "always-secret")),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://always.example/cb"),
        ],
    )
    .await;
    let at = t.json()["access_token"].as_str().unwrap().to_string();
    assert_eq!(at.matches('.').count(), 0, "opaque");
    let u = call(
        &h,
        Request::get("/userinfo")
            .header(header::AUTHORIZATION, format!("Bearer {at}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(u.status, StatusCode::OK, "{}", u.body);
    // `scope=openid` and the claims parameter asking for email and groups: email, consented
    // to, is released where asked for; nothing else is, at userinfo or in the ID token.
    assert_eq!(t.json()["scope"], "openid email");
    assert_eq!(u.json()["email"], "alice@example.com", "{}", u.body);
    assert!(u.json().get("name").is_none(), "profile was not granted");
    let (_, id) = decode_jwt(t.json()["id_token"].as_str().unwrap());
    assert_eq!(id["email"], "alice@example.com");
    assert!(
        id.get("groups").is_none() && id.get("email_verified").is_none(),
        "the ID token carries claims no one asked for there: {id}"
    );
}

#[tokio::test]
async fn revocation_of_access_and_refresh_tokens() {
    let h = harness();
    // A JWT access token: denied by jti until it expires.
    let t = web_tokens(&h).await;
    let at = t["access_token"].as_str().unwrap();
    let r = token_like(
        &h,
        "/revoke",
        Some(("always", "always-secret")),
        &[("token", at)],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "foreign tokens get 200");
    assert_eq!(
        introspect(&h, ("web", "web-secret"), at).await["active"],
        true,
        "a foreign client revoked it"
    );
    let r = token_like(
        &h,
        "/revoke",
        Some(("web", "web-secret")),
        &[("token", at), ("token_type_hint", "access_token")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        introspect(&h, ("web", "web-secret"), at).await["active"],
        false
    );
    let u = call(
        &h,
        Request::get("/userinfo")
            .header(header::AUTHORIZATION, format!("Bearer {at}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(u.status, StatusCode::UNAUTHORIZED);
    // The refresh token of that grant still works.
    let rt = t["refresh_token"].as_str().unwrap();
    assert_eq!(
        introspect(&h, ("web", "web-secret"), rt).await["active"],
        true
    );
}

/// Revoking a refresh token revokes its family and the access tokens issued from it.
#[tokio::test]
async fn revoking_a_refresh_token_revokes_its_family() {
    let h = harness();
    let t = web_tokens(&h).await;
    let (at, rt) = (
        t["access_token"].as_str().unwrap(),
        t["refresh_token"].as_str().unwrap(),
    );
    let r = token_like(&h, "/revoke", Some(("web", "web-secret")), &[("token", rt)]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        introspect(&h, ("web", "web-secret"), rt).await["active"],
        false
    );
    assert_eq!(
        introspect(&h, ("web", "web-secret"), at).await["active"],
        false
    );
    let r = token(
        &h,
        Some(("web", "web-secret")),
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
    )
    .await;
    assert_eq!(r.json()["error"], "invalid_grant");
}

#[tokio::test]
async fn revocation_of_unknown_and_opaque_tokens() {
    let h = harness();
    // Unknown tokens: 200. Public clients identify with client_id.
    let r = token_like(
        &h,
        "/revoke",
        Some(("web", "web-secret")),
        &[("token", "never-issued")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = token_like(&h, "/revoke", None, &[("token", "x"), ("client_id", "spa")]).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = token_like(&h, "/revoke", Some(("web", "wrong")), &[("token", "x")]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Opaque access tokens are deleted.
    let mut b = Browser::default();
    let r = sign_in(&h, &mut b, "/authorize?response_type=code&client_id=always&redirect_uri=https%3A%2F%2Falways.example%2Fcb&scope=openid", "alice").await;
    let code = r.query()["code"].clone();
    let t = token(
        &h,
        Some(("always", "always-secret")),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://always.example/cb"),
        ],
    )
    .await;
    let opaque = t.json()["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        introspect(&h, ("always", "always-secret"), &opaque).await["active"],
        true
    );
    token_like(
        &h,
        "/revoke",
        Some(("always", "always-secret")),
        &[("token", &opaque)],
    )
    .await;
    assert_eq!(
        introspect(&h, ("always", "always-secret"), &opaque).await["active"],
        false
    );
}

/// Guessing a client's secret at the token endpoint: after ten failures from one address, even
/// the right secret is refused from there for a while; other clients are not affected.
#[tokio::test]
async fn client_secret_guessing_is_throttled() {
    let h = harness();
    for i in 0..10 {
        let r = token(
            &h,
            Some(("svc:a b", &format!("guess-{i}"))),
            &[("grant_type", "client_credentials")],
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let right = token(
        &h,
        Some(("svc:a b", "s&c=r%t+")),
        &[("grant_type", "client_credentials"), ("scope", "api")],
    )
    .await;
    assert_eq!(right.status, StatusCode::UNAUTHORIZED, "{}", right.body);
    assert!(
        right.body.contains("too many failed authentications"),
        "{}",
        right.body
    );
    let other = token(
        &h,
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "poster"),
            ("client_secret", "poster-secret"),
        ],
    )
    .await;
    assert_eq!(other.status, StatusCode::OK, "{}", other.body);
}
