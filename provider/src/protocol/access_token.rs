//! Access tokens issued here (RFC 9068 JWTs, or opaque tokens in the store) and how a protected
//! resource of this provider validates one.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Context;
use crate::store::{Key, StoreError};

/// Claims of an access token (RFC 9068), also stored for opaque tokens.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: Value,
    pub exp: u64,
    pub iat: u64,
    pub jti: String,
    pub client_id: String,
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<u64>,
    /// The refresh token family the token came from: revoking the family revokes the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fam: Option<String>,
    /// Claims requested for userinfo through the `claims` parameter.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "userinfo_claims"
    )]
    pub userinfo_claims: Option<Value>,
}

/// Whether a token is a JWT (three dot-separated parts) rather than an opaque one.
pub fn is_jwt(token: &str) -> bool {
    token.matches('.').count() == 2
}

/// Validates an access token issued here: a JWT (signature, issuer, expiry, `typ`) or an
/// opaque token in the store; either way not revoked.
pub async fn validate(ctx: &Context<'_>, token: &str) -> Result<Option<AccessClaims>, StoreError> {
    let view = ctx.view;
    let claims = if is_jwt(token) {
        let Some((claims, typ)) = view
            .verifier
            .verify::<AccessClaims>(token, &view.issuer, false)
        else {
            return Ok(None);
        };
        if !typ.is_some_and(|t| t.eq_ignore_ascii_case("at+jwt")) {
            return Ok(None);
        }
        // A revoked JWT looks valid until it expires: the deny list says otherwise.
        if ctx.store.jti_revoked(&claims.jti).await? {
            return Ok(None);
        }
        claims
    } else {
        let Some(claims) = ctx
            .store
            .get::<AccessClaims>(Key::AccessToken(token))
            .await?
            .filter(|c| c.exp > ctx.now)
        else {
            return Ok(None);
        };
        claims
    };
    // Revoking a refresh token family revokes the access tokens issued from it.
    if let Some(family) = &claims.fam
        && !ctx.store.family_active(family).await?
    {
        return Ok(None);
    }
    Ok(Some(claims))
}
