//! `/token` (RFC 6749 §3.2).

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::Response,
};

use super::{
    AppState, Shared, extract,
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

/// Authenticates the client of a token-family request and runs `call` for it.
pub async fn for_client<T>(
    s: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    call: impl AsyncFnOnce(&Context<'_>, &ClientConfig, &Params) -> Result<T, OAuthError>,
) -> Result<T, OAuthError> {
    let view = s.view.load_full();
    let (params, client) = authenticated(&view, headers, body)?;
    call(&s.context(&view), &client, &params).await
}

pub async fn token(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let result = for_client(&s, &headers, &body, async |ctx, client, params| {
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
