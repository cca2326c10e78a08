//! The UserInfo endpoint (OpenID Connect Core §5.3) behind a bearer token (RFC 6750).

use serde_json::{Map, Value, json};

use super::{
    Context, OAuthError, access_token,
    claims::{ClaimsTarget, select_claims},
    params::split_scopes,
    token::issuance,
};

/// What userinfo answers: the claims as JSON, or signed for a client that asked for that.
#[derive(Debug)]
pub enum Answer {
    Json(Map<String, Value>),
    Jwt(String),
}

/// The claims the access token `token` may read, signed (with `iss` and `aud`) when its client
/// registered a userinfo signing algorithm (OpenID Connect Core §5.3.2).
pub async fn answer(ctx: &Context<'_>, token: &str) -> Result<Answer, OAuthError> {
    let (mut claims, client_id) = userinfo(ctx, token).await?;
    let Some(alg) = ctx.view.client(&client_id).and_then(|c| c.userinfo_alg) else {
        return Ok(Answer::Json(claims));
    };
    let signer = issuance::signer(ctx.view, alg)?;
    claims.insert("iss".into(), json!(ctx.view.issuer));
    claims.insert("aud".into(), json!(client_id));
    claims.insert("iat".into(), json!(ctx.now));
    signer
        .sign(None, &claims)
        .map(Answer::Jwt)
        .map_err(issuance::signing_failed)
}

/// The claims the access token `token` may read, and the client it was issued to.
pub async fn userinfo(
    ctx: &Context<'_>,
    token: &str,
) -> Result<(Map<String, Value>, String), OAuthError> {
    let claims = access_token::validate(ctx, token)
        .await?
        .ok_or_else(|| OAuthError::InvalidToken("the access token is invalid or expired".into()))?;
    let scopes = split_scopes(&claims.scope);
    let user = ctx.user(&claims.sub).await?;
    let (Some(user), true) = (user, scopes.iter().any(|sc| sc == "openid")) else {
        return Err(OAuthError::InsufficientScope(
            "the token does not carry the openid scope of a user".into(),
        ));
    };
    let request = claims.userinfo_claims.map(|u| json!({ "userinfo": u }));
    Ok((
        select_claims(
            ctx.view,
            &user,
            &scopes,
            request.as_ref(),
            ClaimsTarget::Userinfo,
        ),
        claims.client_id,
    ))
}
