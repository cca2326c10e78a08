//! `/introspect` (RFC 7662).

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::Response,
};

use super::{
    Shared,
    extract::ClientIp,
    respond::{no_store_json, token_error},
    token::for_client,
};
use crate::protocol::introspect;

pub async fn introspect(
    State(s): State<Shared>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = for_client(&s, &headers, &body, &ip, async |ctx, caller, params| {
        introspect::introspect(ctx, caller, params.get("token").map(String::as_str)).await
    })
    .await;
    match result {
        Ok(body) => no_store_json(StatusCode::OK, body),
        Err(e) => token_error(&e),
    }
}
