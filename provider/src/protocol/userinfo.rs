//! The UserInfo endpoint (OpenID Connect Core §5.3) behind a bearer token (RFC 6750).

use serde_json::{Map, Value, json};

use super::{
    Context, OAuthError, access_token,
    claims::{ClaimsTarget, select_claims},
    params::split_scopes,
};

/// The claims the access token `token` may read.
pub async fn userinfo(ctx: &Context<'_>, token: &str) -> Result<Map<String, Value>, OAuthError> {
    let claims = access_token::validate(ctx, token)
        .await?
        .ok_or_else(|| OAuthError::InvalidToken("the access token is invalid or expired".into()))?;
    let scopes = split_scopes(&claims.scope);
    let user = ctx.view.users.by_sub(&claims.sub);
    let (Some(user), true) = (user, scopes.iter().any(|sc| sc == "openid")) else {
        return Err(OAuthError::InsufficientScope(
            "the token does not carry the openid scope of a user".into(),
        ));
    };
    let request = claims.userinfo_claims.map(|u| json!({ "userinfo": u }));
    Ok(select_claims(
        ctx.view,
        &user,
        &scopes,
        request.as_ref(),
        ClaimsTarget::Userinfo,
    ))
}
