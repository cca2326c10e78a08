//! `/token` (RFC 6749 §3.2).

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::Response,
};

use super::{
    AppState, Shared, extract,
    extract::ClientIp,
    respond::{no_store_json, token_error},
};

use crate::{
    config::ClientConfig,
    protocol::{
        Context, OAuthError, client_auth,
        params::{Params, parse_params},
        token::{self, TokenRequest},
    },
    store::Key,
};

/// Failed client authentications of one client from one address before its next attempts
/// from there are refused unchecked, for [`CLIENT_THROTTLE_WINDOW`]. Per address, so that an
/// attacker elsewhere cannot lock a client out.
const MAX_CLIENT_FAILURES: u64 = 10;
const CLIENT_THROTTLE_WINDOW: std::time::Duration = std::time::Duration::from_secs(900);

/// Authenticates the client of a token-family request from `peer` and runs `call` for it. A
/// failed client authentication is logged (client ID, method, peer; never the secret), counted
/// in metrics, and throttled per client and address.
pub async fn for_client<T>(
    s: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    peer: &str,
    call: impl AsyncFnOnce(&Context<'_>, &ClientConfig, &Params) -> Result<T, OAuthError>,
) -> Result<T, OAuthError> {
    let view = s.view.load_full();
    let params = parse_params(body).map_err(OAuthError::InvalidRequest)?;
    let basic = extract::basic(headers);
    let attempt = client_auth::Attempt::of(basic, &params);
    let throttle_key = attempt
        .client_id
        .as_deref()
        .map(|client_id| Key::ClientFailures {
            client_id,
            ip: peer,
        });
    if let Some(key) = throttle_key
        && s.store.counter(key).await? >= MAX_CLIENT_FAILURES
    {
        tracing::warn!(
            client_id = attempt.client_id.as_deref().unwrap_or("-"),
            peer,
            "client authentication throttled"
        );
        s.metrics.client_auth_failed(attempt.method);
        return Err(OAuthError::InvalidClient(
            "too many failed authentications from this address; try again later".into(),
        ));
    }
    let ctx = s.context(&view);
    let authenticated = client_auth::authenticate(&ctx, basic, &params).await;
    if let Err(OAuthError::InvalidClient(reason)) = &authenticated {
        tracing::warn!(
            client_id = attempt.client_id.as_deref().unwrap_or("-"),
            method = attempt.method,
            peer,
            reason = %reason,
            "client authentication failed"
        );
        s.metrics.client_auth_failed(attempt.method);
        if let Some(key) = throttle_key {
            s.store.count(key, CLIENT_THROTTLE_WINDOW).await?;
        }
    }
    let client = authenticated?;
    call(&ctx, &client, &params).await
}

pub async fn token(
    State(s): State<Shared>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = for_client(&s, &headers, &body, &ip, async |ctx, client, params| {
        let request = TokenRequest::parse(params)?;
        let grant = request.grant_type();
        let response = token::exchange(ctx, client, request).await?;
        s.metrics.token_issued(grant);
        Ok(response)
    })
    .await;
    match result {
        Ok(json) => no_store_json(StatusCode::OK, json),
        Err(e) => token_error(&e),
    }
}
