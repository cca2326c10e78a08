//! The device authorization grant (RFC 8628): a device gets a code, a browser approves, the
//! device polls.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::{sessions::log_in, *};

async fn device_authorization(h: &Harness, scope: &str) -> Value {
    let r = token_like(
        h,
        "/device_authorization",
        None,
        &[("client_id", "cli"), ("scope", scope)],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
    r.json()
}

async fn poll(h: &Harness, client: &str, device_code: &str) -> Reply {
    token(
        h,
        None,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", device_code),
            ("client_id", client),
        ],
    )
    .await
}

/// The browser side: enter the code, sign in, answer.
async fn approve_in_browser(h: &Harness, user_code: &str, decision: &str) -> Reply {
    let mut b = Browser::default();
    let entry = b.get(h, "/device").await;
    assert_eq!(entry.status, StatusCode::OK);
    assert!(entry.body.contains("name=\"user_code\""));
    // As people type it: lower case, no dash.
    let typed = user_code.replace('-', "").to_lowercase();
    let login = b.get(h, &format!("/device?user_code={typed}")).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    assert!(login.body.contains("name=\"password\"") && login.body.contains("Command line"));
    let consent = log_in(h, &mut b, &login, "alice", PASSWORD).await;
    assert!(
        consent.body.contains("name=\"decision\"")
            && consent.body.contains("A device is signing in")
            && consent.body.contains(user_code),
        "the device consent page names the code: {}",
        consent.body
    );
    b.post(
        h,
        "/consent",
        &[
            ("request", &consent.field("request")),
            ("csrf", &consent.field("csrf")),
            ("decision", decision),
        ],
    )
    .await
}

#[tokio::test]
async fn a_device_polls_while_the_user_approves_in_a_browser() {
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
        discovery["device_authorization_endpoint"],
        format!("{ISSUER}/device_authorization")
    );
    let a = device_authorization(&h, "openid offline_access").await;
    let user_code = a["user_code"].as_str().unwrap();
    assert!(
        user_code.len() == 9 && user_code.as_bytes()[4] == b'-',
        "{user_code}"
    );
    assert_eq!(a["verification_uri"], format!("{ISSUER}/device"));
    assert_eq!(
        a["verification_uri_complete"],
        format!("{ISSUER}/device?user_code={user_code}")
    );
    assert_eq!(
        (a["expires_in"].as_u64(), a["interval"].as_u64()),
        (Some(600), Some(5))
    );
    let device_code = a["device_code"].as_str().unwrap();

    let r = poll(&h, "cli", device_code).await;
    assert_eq!(r.json()["error"], "authorization_pending");
    let r = poll(&h, "cli", device_code).await;
    assert_eq!(r.json()["error"], "slow_down", "polled again at once");
    let r = poll(&h, "web", device_code).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "web must authenticate");

    let done = approve_in_browser(&h, user_code, "approve").await;
    assert_eq!(done.status, StatusCode::OK);
    assert!(done.body.contains("Device signed in"));
    let t = poll(&h, "cli", device_code).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.body);
    let t = t.json();
    let (_, id) = decode_jwt(t["id_token"].as_str().unwrap());
    assert_eq!(id["aud"], "cli");
    assert!(t["refresh_token"].is_string());
    let again = poll(&h, "cli", device_code).await;
    assert_eq!(
        again.json()["error"],
        "invalid_grant",
        "a device code is used once"
    );
}

#[tokio::test]
async fn a_denied_device_gets_access_denied_and_wrong_codes_a_page() {
    let h = harness();
    let a = device_authorization(&h, "openid").await;
    let done = approve_in_browser(&h, a["user_code"].as_str().unwrap(), "deny").await;
    assert!(done.body.contains("Access denied"));
    let r = poll(&h, "cli", a["device_code"].as_str().unwrap()).await;
    assert_eq!(r.json()["error"], "access_denied");
    // The code was answered: entering it again shows the form with an error, never a sign-in.
    let mut b = Browser::default();
    let r = b
        .get(
            &h,
            &format!("/device?user_code={}", a["user_code"].as_str().unwrap()),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("unknown or has expired") && !r.body.contains("name=\"password\""));
    // Clients that may not use the grant, and scopes they may not have.
    let r = token_like(&h, "/device_authorization", None, &[("client_id", "spa")]).await;
    assert_eq!(r.json()["error"], "unauthorized_client");
    let r = token_like(
        &h,
        "/device_authorization",
        None,
        &[("client_id", "cli"), ("scope", "openid api")],
    )
    .await;
    assert_eq!(r.json()["error"], "invalid_scope");
}
