//! `/device_authorization` and the verification page `/device` of the device authorization
//! grant (RFC 8628).

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::Response,
};
use serde_json::json;

use super::{
    Shared,
    authorize::respond,
    extract::{ClientIp, Parameters, SESSION_COOKIE, cookie},
    pages,
    respond::{no_store_json, page, token_error, unavailable_page},
    token::for_client,
};
use crate::protocol::{device, params::parse_params, session::Session};

/// RFC 8628 §3.1, §3.2: a device asks for a user code.
pub async fn device_authorization(
    State(s): State<Shared>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = for_client(&s, &headers, &body, &ip, async |ctx, client, params| {
        let a = device::start(ctx, client, params.get("scope").map(String::as_str)).await?;
        let uri = format!("{}/device", ctx.view.issuer);
        Ok(json!({
            "device_code": a.device_code,
            "user_code": a.user_code,
            "verification_uri": uri,
            "verification_uri_complete": format!("{uri}?user_code={}", a.user_code),
            "expires_in": a.expires_in,
            "interval": a.interval,
        }))
    })
    .await;
    match result {
        Ok(body) => no_store_json(StatusCode::OK, body),
        Err(e) => token_error(&e),
    }
}

/// RFC 8628 §3.3: the user enters the code (or follows the complete URI), signs in, approves.
pub async fn verify(
    State(s): State<Shared>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Parameters { raw, how }: Parameters,
) -> Response {
    let view = s.view.load_full();
    let params = parse_params(&raw).unwrap_or_default();
    let Some(user_code) = params.get("user_code").filter(|c| !c.is_empty()) else {
        return page(StatusCode::OK, pages::device_entry("", None));
    };
    let ctx = s.context(&view);
    let next = async {
        let session = Session::find(&s.store, cookie(&headers, SESSION_COOKIE).as_deref()).await?;
        device::verify(&ctx, user_code, &ip, session).await
    }
    .await;
    match next {
        Ok(Some(next)) => respond(&view, next, how),
        Ok(None) => page(
            StatusCode::BAD_REQUEST,
            pages::device_entry(
                user_code,
                Some("This code is unknown or has expired. Check the code your device shows."),
            ),
        ),
        Err(e) => unavailable_page(&e),
    }
}
