//! `/token` (RFC 6749 §3.2).

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::Response,
};

use super::{
    Shared, extract,
    respond::{no_store_json, token_error},
};
use std::sync::Arc;

use crate::{
    config::{ClientConfig, View},
    protocol::{
        OAuthError, client_auth,
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

pub async fn token(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let view = s.view.load_full();
    let ctx = s.context(&view);
    let result = async {
        let (params, client) = authenticated(&view, &headers, &body)?;
        let request = TokenRequest::parse(&params)?;
        let grant = request.grant_type();
        let response = token::exchange(&ctx, &client, request).await?;
        s.metrics.token_issued(grant);
        Ok::<_, OAuthError>(response)
    }
    .await;
    match result {
        Ok(json) => no_store_json(StatusCode::OK, json),
        Err(e) => token_error(&e),
    }
}
