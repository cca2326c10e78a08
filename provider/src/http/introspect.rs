//! `/introspect` (RFC 7662).

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
use crate::protocol::{OAuthError, client_auth, introspect, params::parse_params};

pub async fn introspect(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let view = s.view.load_full();
    let ctx = s.context(&view);
    let result = async {
        let params = parse_params(&body).map_err(OAuthError::InvalidRequest)?;
        let caller = client_auth::authenticate(&view, extract::basic(&headers), &params)?;
        introspect::introspect(&ctx, &caller, params.get("token").map(String::as_str)).await
    }
    .await;
    match result {
        Ok(body) => no_store_json(StatusCode::OK, body),
        Err(e) => token_error(&e),
    }
}
