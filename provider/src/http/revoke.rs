//! `/revoke` (RFC 7009).

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};

use super::{Shared, respond::token_error, token::authenticated};
use crate::protocol::revoke;

pub async fn revoke(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let view = s.view.load_full();
    let ctx = s.context(&view);
    let result = async {
        let (params, caller) = authenticated(&view, &headers, &body)?;
        revoke::revoke(&ctx, &caller, params.get("token").map(String::as_str)).await
    }
    .await;
    match result {
        Ok(()) => (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")]).into_response(),
        Err(e) => token_error(&e),
    }
}
