//! `/revoke` (RFC 7009).

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};

use super::{Shared, extract::ClientIp, respond::token_error, token::for_client};
use crate::protocol::revoke;

pub async fn revoke(
    State(s): State<Shared>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = for_client(&s, &headers, &body, &ip, async |ctx, caller, params| {
        revoke::revoke(ctx, caller, params.get("token").map(String::as_str)).await
    })
    .await;
    match result {
        Ok(()) => (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")]).into_response(),
        Err(e) => token_error(&e),
    }
}
