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
use std::sync::Arc;

use crate::{
    config::{ClientConfig, View},
    protocol::{
        Context, OAuthError, client_auth,
        params::{Params, parse_params},
        token::{self, TokenRequest},
    },
};

/// The parameters of a request to the token endpoint family, and the client it authenticates
/// as (RFC 6749 §2.3).
pub fn authenticated(
    view: &View,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Params, Arc<ClientConfig>), OAuthError> {
    let params = parse_params(body).map_err(OAuthError::InvalidRequest)?;
    let client = client_auth::authenticate(view, extract::basic(headers), &params)?;
    Ok((params, client))
}

/// Authenticates the client of a token-family request from `peer` and runs `call` for it. A
/// failed client authentication is logged (client ID, method, peer; never the secret) and
/// counted.
pub async fn for_client<T>(
    s: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    peer: &str,
    call: impl AsyncFnOnce(&Context<'_>, &ClientConfig, &Params) -> Result<T, OAuthError>,
) -> Result<T, OAuthError> {
    let view = s.view.load_full();
    let (params, client) = authenticated(&view, headers, body).inspect_err(|e| {
        if let OAuthError::InvalidClient(reason) = e {
            let params = parse_params(body).unwrap_or_default();
            let attempt = client_auth::Attempt::of(extract::basic(headers), &params);
            tracing::warn!(
                client_id = attempt.client_id.as_deref().unwrap_or("-"),
                method = attempt.method,
                peer,
                reason = %reason,
                "client authentication failed"
            );
            s.metrics.client_auth_failed(attempt.method);
        }
    })?;
    call(&s.context(&view), &client, &params).await
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
