//! Token revocation (RFC 7009).

use std::time::Duration;

use super::{
    Context, OAuthError,
    access_token::{self, is_jwt},
    token::refresh::RefreshGrant,
};
use crate::{config::ClientConfig, store::Key};

/// Revokes `token` if it was issued to `caller`. Unknown and foreign tokens are not an error
/// (RFC 7009 §2.2).
pub async fn revoke(
    ctx: &Context<'_>,
    caller: &ClientConfig,
    token: Option<&str>,
) -> Result<(), OAuthError> {
    let token = token.ok_or_else(|| OAuthError::InvalidRequest("token is required".into()))?;
    // A refresh token: the whole family goes, and with it the access tokens issued from it.
    if let Some(grant) = ctx
        .store
        .get::<RefreshGrant>(Key::RefreshToken(token))
        .await?
    {
        if grant.client_id == caller.id {
            ctx.store.revoke_family(&grant.family).await?;
            ctx.store.delete(Key::RefreshToken(token)).await?;
        }
        return Ok(());
    }
    if let Some(c) = access_token::validate(ctx, token).await?
        && c.client_id == caller.id
    {
        if is_jwt(token) {
            // JWTs cannot be recalled: deny their jti until they expire.
            let left = c.exp.saturating_sub(ctx.now).max(1);
            ctx.store
                .revoke_jti(&c.jti, Duration::from_secs(left))
                .await?;
        } else {
            ctx.store.delete(Key::AccessToken(token)).await?;
        }
    }
    Ok(())
}
