//! The authorization code grant (RFC 6749 §4.1.3, RFC 7636 §4.6, OpenID Connect Core §3.1.3).

use std::time::Duration;

use crds::GrantType;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    Issuance,
    single_use::{IssuedTo, SingleUse, redeem},
};
use crate::{
    config::ClientConfig,
    protocol::{Context, OAuthError, params::random_token, pkce::verify_pkce},
    store::{Key, StoreError},
};

/// How long a code may wait for its redemption.
pub const CODE_TTL: Duration = Duration::from_secs(60);
/// How long a redeemed code is remembered, to detect its reuse.
const USED_TTL: Duration = Duration::from_secs(600);

pub const CODE: SingleUse = SingleUse {
    grant_type: GrantType::AuthorizationCode,
    param: "code",
    key: |t| Key::Code(t),
    used_key: |t| Key::CodeUsed(t),
    what: "the code",
};

/// What an authorization code stands for, stored until it is redeemed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CodeGrant {
    pub client_id: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub nonce: Option<String>,
    pub sub: String,
    pub auth_time: u64,
    pub code_challenge: Option<String>,
    pub claims: Option<Value>,
    pub sid: String,
}

impl IssuedTo for CodeGrant {
    fn client_id(&self) -> &str {
        &self.client_id
    }
}

/// Stores a grant and returns its new code.
pub async fn issue_code(ctx: &Context<'_>, grant: &CodeGrant) -> Result<String, StoreError> {
    let code = random_token();
    ctx.store.put(Key::Code(&code), grant, CODE_TTL).await?;
    Ok(code)
}

/// The parameters of an authorization code request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
}

/// RFC 7636 §4.6: a code requested with a challenge is redeemed only with its verifier, and a
/// verifier without a challenge is refused.
fn check_pkce(challenge: Option<&str>, verifier: Option<&str>) -> Result<(), OAuthError> {
    let bad = |d: &str| Err(OAuthError::InvalidGrant(d.into()));
    match (challenge, verifier) {
        (Some(challenge), Some(verifier)) if verify_pkce(verifier, challenge) => Ok(()),
        (Some(_), Some(_)) => bad("code_verifier does not match"),
        (Some(_), None) => bad("code_verifier is required"),
        (None, Some(_)) => bad("code_verifier sent but no code_challenge was"),
        (None, None) => Ok(()),
    }
}

pub async fn exchange(
    ctx: &Context<'_>,
    client: &ClientConfig,
    request: Request,
) -> Result<Value, OAuthError> {
    let code = request.code.as_deref();
    let grant: CodeGrant = redeem(ctx, client, code, &CODE).await?;
    if request.redirect_uri.as_ref() != Some(&grant.redirect_uri) {
        return Err(OAuthError::InvalidGrant(
            "redirect_uri does not match the authorization request".into(),
        ));
    }
    check_pkce(
        grant.code_challenge.as_deref(),
        request.code_verifier.as_deref(),
    )?;
    let user = ctx
        .user(&grant.sub)
        .await?
        .ok_or_else(|| OAuthError::InvalidGrant("the user no longer exists".into()))?;
    let family = random_token();
    if let Some(code) = code {
        ctx.store
            .put(Key::CodeUsed(code), &family, USED_TTL)
            .await?;
    }
    Issuance {
        client,
        user: Some(&user),
        scopes: &grant.scopes,
        auth_time: Some(grant.auth_time),
        nonce: grant.nonce.as_deref(),
        claims_request: grant.claims.as_ref(),
        sid: Some(&grant.sid),
        family: Some(family),
    }
    .mint(ctx)
    .await
}
