//! Token introspection (RFC 7662).

use serde_json::{Value, json};

use super::{
    Context, OAuthError,
    access_token::{self, AccessClaims},
    claims::audience_contains,
    token::refresh,
};
use crate::config::ClientConfig;

/// Whether `caller` may learn about a token: it was issued to it, or the caller is a resource
/// server the token is meant for (its client_id is in `aud`, through a scope's audience).
fn may_see(caller: &str, client_id: &str, aud: &Value) -> bool {
    caller == client_id || audience_contains(aud, caller)
}

/// The introspection response about `token` for the authenticated `caller`.
pub async fn introspect(
    ctx: &Context<'_>,
    caller: &ClientConfig,
    token: Option<&str>,
) -> Result<Value, OAuthError> {
    // RFC 7662 §2.1: the endpoint requires authentication; public clients have none.
    if caller.public {
        return Err(OAuthError::InvalidClient(
            "introspection requires client authentication".into(),
        ));
    }
    let token = token.ok_or_else(|| OAuthError::InvalidRequest("token is required".into()))?;
    if let Some(c) = access_token::validate(ctx, token).await?
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
        // A machine token (its subject is its client) never names a user.
        let username = if sub == client_id {
            None
        } else {
            ctx.user(&sub).await?.map(|u| u.username.clone())
        };
        let mut out = json!({
            "active": true, "token_type": "Bearer", "iss": iss, "sub": sub, "aud": aud,
            "exp": exp, "iat": iat, "jti": jti, "client_id": client_id, "scope": scope,
        });
        if let Some(u) = username {
            out["username"] = json!(u);
        }
        return Ok(out);
    }
    if let Some(grant) = refresh::peek(ctx, token).await?
        && grant.client_id == caller.id
    {
        return Ok(json!({
            "active": true, "token_type": "refresh_token", "iss": ctx.view.issuer,
            "sub": grant.sub, "client_id": grant.client_id, "scope": grant.scopes.join(" "),
            "exp": grant.exp,
        }));
    }
    Ok(json!({"active": false}))
}
