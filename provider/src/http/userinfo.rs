//! `/userinfo` (GET and POST) behind a bearer token.

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, header},
    response::{IntoResponse, Response},
};
use serde_json::Value;

use super::{Shared, extract, respond::bearer_error};
use crate::protocol::{OAuthError, params::parse_params, userinfo};

/// The access token, from the header or (POST only) a form body: RFC 6750 §2.1, §2.2. `Ok(None)`
/// when none was sent.
fn access_token(
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Option<String>, OAuthError> {
    let header_token = extract::bearer(headers);
    let form_token = if method == Method::POST
        && headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
    {
        parse_params(body)
            .map_err(OAuthError::InvalidRequest)?
            .get("access_token")
            .cloned()
    } else {
        None
    };
    match (header_token, form_token) {
        (Some(_), Some(_)) => Err(OAuthError::InvalidRequest("send the token once".into())),
        (Some(t), None) | (None, Some(t)) => Ok(Some(t)),
        (None, None) => Ok(None),
    }
}

pub async fn userinfo(
    State(s): State<Shared>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let token = match access_token(&method, &headers, &body) {
        Ok(Some(t)) => t,
        Ok(None) => return bearer_error(None),
        Err(e) => return bearer_error(Some(&e)),
    };
    let view = s.view.load_full();
    match userinfo::answer(&s.context(&view), &token).await {
        Ok(userinfo::Answer::Json(claims)) => (
            [(header::CACHE_CONTROL, "no-store")],
            axum::Json(Value::Object(claims)),
        )
            .into_response(),
        Ok(userinfo::Answer::Jwt(jwt)) => (
            [
                (header::CACHE_CONTROL, "no-store"),
                (header::CONTENT_TYPE, "application/jwt"),
            ],
            jwt,
        )
            .into_response(),
        Err(e) => bearer_error(Some(&e)),
    }
}
