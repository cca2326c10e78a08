//! Token introspection (RFC 7662) and revocation (RFC 7009).

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use super::{
    AccessClaims, REFRESH_TOKEN, RefreshGrant, Shared, TokenError, access_claims,
    authenticate_client, now, token_error,
};
use crate::{oidc, store::token_key};

fn no_store(status: StatusCode, body: Value) -> Response {
    (
        status,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        axum::Json(body),
    )
        .into_response()
}

/// Whether `caller` may learn about a token: it was issued to it, or the caller is a resource
/// server the token is meant for (its client_id is in `aud`, through a scope's audience).
fn may_see(caller: &str, client_id: &str, aud: &Value) -> bool {
    caller == client_id
        || match aud {
            Value::String(a) => a == caller,
            Value::Array(list) => list.iter().any(|a| a.as_str() == Some(caller)),
            _ => false,
        }
}

pub async fn introspect(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let view = s.view.load_full();
    let result: Result<Value, TokenError> = async {
        let params = oidc::parse_params(&body).map_err(|m| token_error("invalid_request", m))?;
        let caller = authenticate_client(&view, &headers, &params)?;
        // RFC 7662 §2.1: the endpoint requires authentication; public clients have none.
        if caller.public {
            return Err(token_error(
                "invalid_client",
                "introspection requires client authentication",
            ));
        }
        let token = params
            .get("token")
            .ok_or_else(|| token_error("invalid_request", "token is required"))?;
        if let Some(c) = access_claims(&s, &view, token).await?
            && may_see(&caller.id, &c.client_id, &c.aud)
        {
            let AccessClaims {
                iss,
                sub,
                aud,
                exp,
                iat,
                jti,
                client_id,
                scope,
                ..
            } = c;
            let username = view.users.by_sub(&sub).map(|u| u.username.clone());
            let mut out = json!({
                "active": true, "token_type": "Bearer", "iss": iss, "sub": sub, "aud": aud,
                "exp": exp, "iat": iat, "jti": jti, "client_id": client_id, "scope": scope,
            });
            if let Some(u) = username {
                out["username"] = json!(u);
            }
            return Ok(out);
        }
        if let Some(grant) = s
            .store
            .get(&token_key(REFRESH_TOKEN.kind, token))
            .await?
            .and_then(|v| serde_json::from_str::<RefreshGrant>(&v).ok())
            && grant.client_id == caller.id
            && s.store
                .get(&format!("family:{}", grant.family))
                .await?
                .is_some()
        {
            return Ok(json!({
                "active": true, "token_type": "refresh_token", "iss": view.issuer,
                "sub": grant.sub, "client_id": grant.client_id, "scope": grant.scopes.join(" "),
                "exp": grant.exp,
            }));
        }
        Ok(json!({"active": false}))
    }
    .await;
    match result {
        Ok(body) => no_store(StatusCode::OK, body),
        Err(e) => e.into_response(),
    }
}

pub async fn revoke(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let view = s.view.load_full();
    let result: Result<(), TokenError> = async {
        let params = oidc::parse_params(&body).map_err(|m| token_error("invalid_request", m))?;
        let caller = authenticate_client(&view, &headers, &params)?;
        let token = params
            .get("token")
            .ok_or_else(|| token_error("invalid_request", "token is required"))?;
        // A refresh token: the whole family goes, and with it the access tokens issued from it.
        if let Some(grant) = s
            .store
            .get(&token_key(REFRESH_TOKEN.kind, token))
            .await?
            .and_then(|v| serde_json::from_str::<RefreshGrant>(&v).ok())
        {
            if grant.client_id == caller.id {
                s.store.delete(&format!("family:{}", grant.family)).await?;
                s.store
                    .delete(&token_key(REFRESH_TOKEN.kind, token))
                    .await?;
            }
            return Ok(());
        }
        if let Some(c) = access_claims(&s, &view, token).await?
            && c.client_id == caller.id
        {
            if token.matches('.').count() == 2 {
                // JWTs cannot be recalled: deny their jti until they expire.
                let left = c.exp.saturating_sub(now()).max(1);
                s.store
                    .put(
                        &format!("revoked:{}", c.jti),
                        "1",
                        std::time::Duration::from_secs(left),
                    )
                    .await?;
            } else {
                s.store.delete(&token_key("at", token)).await?;
            }
        }
        // RFC 7009 §2.2: unknown and foreign tokens get 200 as well.
        Ok(())
    }
    .await;
    match result {
        Ok(()) => (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")]).into_response(),
        Err(e) => e.into_response(),
    }
}
