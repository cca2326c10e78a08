//! Introspection: who may learn about a token.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

#[tokio::test]
async fn introspection_answers_only_the_token_owner_or_its_resource_server() {
    let h = harness();
    let t = web_tokens(&h).await;
    let at = t["access_token"].as_str().unwrap();
    let rt = t["refresh_token"].as_str().unwrap();

    let own = introspect(&h, ("web", "web-secret"), at).await;
    assert_eq!(own["active"], true);
    assert_eq!(own["client_id"], "web");
    assert_eq!(own["username"], "alice");
    assert!(own["exp"].as_u64().is_some() && own["sub"].is_string());
    let refresh = introspect(&h, ("web", "web-secret"), rt).await;
    assert_eq!(refresh["active"], true);
    assert_eq!(refresh["token_type"], "refresh_token");

    // Foreign: another client learns nothing.
    assert_eq!(
        introspect(&h, ("always", "always-secret"), at).await,
        serde_json::json!({"active": false})
    );
    assert_eq!(
        introspect(&h, ("always", "always-secret"), rt).await["active"],
        false
    );
    // A resource server named by a scope audience may introspect tokens meant for it.
    let cc = token(
        &h,
        Some(("svc:a b", "s&c=r%t+")),
        &[("grant_type", "client_credentials"), ("scope", "api")],
    )
    .await;
    let api_token = cc.json()["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        introspect(&h, ("api-server", "api-secret"), &api_token).await["active"],
        true
    );
    assert_eq!(
        introspect(&h, ("api-server", "api-secret"), at).await["active"],
        false
    );
    // Unknown and malformed tokens.
    assert_eq!(
        introspect(&h, ("web", "web-secret"), "nope").await["active"],
        false
    );
    assert_eq!(
        introspect(&h, ("web", "web-secret"), "a.b.c").await["active"],
        false
    );
    // Authentication is required; public clients have none.
    let r = token_like(
        &h,
        "/introspect",
        None,
        &[("token", at), ("client_id", "spa")],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = token_like(&h, "/introspect", None, &[("token", at)]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json()["error"], "invalid_client");
    let r = token_like(&h, "/introspect", Some(("web", "web-secret")), &[]).await;
    assert_eq!(r.json()["error"], "invalid_request");
}
