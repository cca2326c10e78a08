//! The refresh token grant with rotation (RFC 6749 §6, RFC 9700 §4.14.2).

use crds::GrantType;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    Issuance,
    single_use::{IssuedTo, SingleUse, redeem},
};
use crate::{
    config::ClientConfig,
    protocol::{Context, OAuthError, params::split_scopes},
    store::Key,
};

pub const REFRESH_TOKEN: SingleUse = SingleUse {
    grant_type: GrantType::RefreshToken,
    param: "refresh_token",
    key: |t| Key::RefreshToken(t),
    used_key: |t| Key::RefreshTokenUsed(t),
    what: "the refresh token",
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

impl IssuedTo for RefreshGrant {
    fn client_id(&self) -> &str {
        &self.client_id
    }
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

pub async fn exchange(
    ctx: &Context<'_>,
    client: &ClientConfig,
    request: Request,
) -> Result<Value, OAuthError> {
    let token = request.refresh_token.as_deref();
    let grant: RefreshGrant = redeem(ctx, client, token, &REFRESH_TOKEN).await?;
    if !ctx.store.family_active(&grant.family).await? {
        return Err(OAuthError::InvalidGrant(
            "the refresh token was revoked".into(),
        ));
    }
    if let Some(token) = token {
        ctx.store
            .put(
                Key::RefreshTokenUsed(token),
                &grant.family,
                client.refresh_token_ttl,
            )
            .await?;
    }
    let scopes = match &request.scope {
        None => grant.scopes.clone(),
        Some(s) => {
            let requested = split_scopes(s);
            if let Some(bad) = requested.iter().find(|r| !grant.scopes.contains(r)) {
                return Err(OAuthError::InvalidScope(format!(
                    "scope {bad} was not granted"
                )));
            }
            requested
        }
    };
    let user = ctx
        .view
        .users
        .by_sub(&grant.sub)
        .ok_or_else(|| OAuthError::InvalidGrant("the user no longer exists".into()))?;
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
