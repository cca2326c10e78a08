//! The refresh token grant with rotation (RFC 6749 §6, RFC 9700 §4.14.2).

use crds::GrantType;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Issuance;
use crate::{
    config::ClientConfig,
    protocol::{Context, OAuthError, params::split_scopes},
    store::Key,
};

/// What a refresh token stands for, stored until it is redeemed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RefreshGrant {
    #[serde(default)]
    pub exp: u64,
    pub client_id: String,
    pub sub: String,
    pub scopes: Vec<String>,
    pub auth_time: u64,
    pub family: String,
    pub claims: Option<Value>,
    pub sid: String,
}

/// The parameters of a refresh request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
}

/// A refresh token that is stored and whose family is active, without redeeming it.
pub async fn peek(ctx: &Context<'_>, token: &str) -> Result<Option<RefreshGrant>, OAuthError> {
    let Some(grant) = ctx
        .store
        .get::<RefreshGrant>(Key::RefreshToken(token))
        .await?
    else {
        return Ok(None);
    };
    Ok(ctx
        .store
        .family_active(&grant.family)
        .await?
        .then_some(grant))
}

/// What a redeemed refresh token leaves behind: its grant and when it was redeemed, to tell a
/// concurrent second use (within the reuse interval) from theft.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Redeemed {
    at: u64,
    grant: RefreshGrant,
}

/// The scopes a refresh asks for: those granted, or fewer (RFC 6749 §6).
fn narrowed(grant: &RefreshGrant, scope: Option<&str>) -> Result<Vec<String>, OAuthError> {
    let Some(s) = scope else {
        return Ok(grant.scopes.clone());
    };
    let requested = split_scopes(s);
    if let Some(bad) = requested.iter().find(|r| !grant.scopes.contains(r)) {
        return Err(OAuthError::InvalidScope(format!(
            "scope {bad} was not granted"
        )));
    }
    Ok(requested)
}

/// Redeems a refresh token. An invalid request (another client's token, a wider scope) never
/// consumes it. A second use within the reuse interval succeeds in the same family (two
/// refreshes at once); later, it revokes the family (RFC 9700 §4.14.2).
pub async fn exchange(
    ctx: &Context<'_>,
    client: &ClientConfig,
    request: Request,
) -> Result<Value, OAuthError> {
    super::allowed(client, GrantType::RefreshToken)?;
    let token = request
        .refresh_token
        .as_deref()
        .ok_or_else(|| OAuthError::InvalidRequest("refresh_token is required".into()))?;
    let grant = match ctx
        .store
        .get::<RefreshGrant>(Key::RefreshToken(token))
        .await?
    {
        Some(grant) => {
            check(ctx, client, &grant, request.scope.as_deref()).await?;
            // Before the token is used up: an upstream outage leaves it valid.
            ctx.refresh_upstream(&grant.sub).await?;
            let redeemed = Redeemed {
                at: ctx.now,
                grant: grant.clone(),
            };
            // The marker goes first: a concurrent use that loses the take below finds it.
            ctx.store
                .put(
                    Key::RefreshTokenUsed(token),
                    &redeemed,
                    client.refresh_token_ttl,
                )
                .await?;
            match ctx
                .store
                .take::<RefreshGrant>(Key::RefreshToken(token))
                .await?
            {
                Some(_) => grant,
                None => reused(ctx, client, token, request.scope.as_deref()).await?,
            }
        }
        None => reused(ctx, client, token, request.scope.as_deref()).await?,
    };
    issue(ctx, client, grant, request.scope.as_deref()).await
}

/// The refresh request is valid for this grant: its client, its family alive, its scopes.
async fn check(
    ctx: &Context<'_>,
    client: &ClientConfig,
    grant: &RefreshGrant,
    scope: Option<&str>,
) -> Result<(), OAuthError> {
    if grant.client_id != client.id {
        return Err(OAuthError::InvalidGrant(
            "the refresh token was issued to another client".into(),
        ));
    }
    if !ctx.store.family_active(&grant.family).await? {
        return Err(OAuthError::InvalidGrant(
            "the refresh token was revoked".into(),
        ));
    }
    // Refreshing never keeps a sign-in alive past its policy's maximum session length.
    if let Some(max) = client.max_session
        && ctx.now > grant.auth_time.saturating_add(max.as_secs())
    {
        return Err(OAuthError::InvalidGrant(
            "the session reached its maximum length; sign in again".into(),
        ));
    }
    narrowed(grant, scope).map(|_| ())
}

/// A refresh token used again: within the reuse interval, its grant once more; otherwise the
/// family is revoked.
async fn reused(
    ctx: &Context<'_>,
    client: &ClientConfig,
    token: &str,
    scope: Option<&str>,
) -> Result<RefreshGrant, OAuthError> {
    let invalid =
        || OAuthError::InvalidGrant("the refresh token is invalid, expired or already used".into());
    let Some(redeemed) = ctx
        .store
        .get::<Redeemed>(Key::RefreshTokenUsed(token))
        .await?
    else {
        return Err(invalid());
    };
    if ctx.now < redeemed.at + ctx.settings.refresh_reuse_interval
        && redeemed.grant.client_id == client.id
    {
        check(ctx, client, &redeemed.grant, scope).await?;
        return Ok(redeemed.grant);
    }
    ctx.store.revoke_family(&redeemed.grant.family).await?;
    tracing::warn!("a refresh token was used twice; its family is revoked");
    Err(invalid())
}

/// Mints the refreshed tokens, in the grant's family.
async fn issue(
    ctx: &Context<'_>,
    client: &ClientConfig,
    grant: RefreshGrant,
    scope: Option<&str>,
) -> Result<Value, OAuthError> {
    let scopes = narrowed(&grant, scope)?;
    let user = ctx
        .user(&grant.sub)
        .await?
        .ok_or_else(|| OAuthError::InvalidGrant("the user no longer exists".into()))?;
    if !client.admits(&user) {
        return Err(OAuthError::InvalidGrant(
            "the user is no longer allowed to use this client (its allowed groups)".into(),
        ));
    }
    Issuance {
        client,
        user: Some(&user),
        scopes: &scopes,
        auth_time: Some(grant.auth_time),
        nonce: None,
        claims_request: grant.claims.as_ref(),
        sid: Some(&grant.sid),
        family: Some(grant.family),
    }
    .mint(ctx)
    .await
}
