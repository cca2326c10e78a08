//! `/revoke` (RFC 7009).

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};

use super::{Shared, extract, respond::token_error};
use crate::protocol::{OAuthError, client_auth, params::parse_params, revoke};

pub async fn revoke(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let view = s.view.load_full();
    let ctx = s.context(&view);
    let result = async {
        let params = parse_params(&body).map_err(OAuthError::InvalidRequest)?;
        let caller = client_auth::authenticate(&view, extract::basic(&headers), &params)?;
        revoke::revoke(&ctx, &caller, params.get("token").map(String::as_str)).await
    }
    .await;
    match result {
        Ok(()) => (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")]).into_response(),
        Err(e) => token_error(&e),
    }
}
