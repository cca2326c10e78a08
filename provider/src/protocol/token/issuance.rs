//! Minting the tokens of a grant: the access token (JWT or opaque), the ID token when `openid`
//! was granted to a user, and a refresh token when `offline_access` was.

use crds::{AccessTokenFormat, GrantType};
use serde_json::{Value, json};

use super::refresh::RefreshGrant;
use crate::{
    config::ClientConfig,
    protocol::{
        Context, OAuthError,
        access_token::AccessClaims,
        claims::{ClaimsTarget, access_token_audience, at_hash, select_claims},
        params::random_token,
    },
    signing::Signer,
    store::Key,
    users::User,
};

/// What a grant issues tokens for.
pub struct Issuance<'a> {
    pub client: &'a ClientConfig,
    /// The user, or `None` for a machine token (its subject is the client).
    pub user: Option<&'a User>,
    pub scopes: &'a [String],
    pub auth_time: Option<u64>,
    pub nonce: Option<&'a str>,
    /// The `claims` request parameter of the authorization.
    pub claims_request: Option<&'a Value>,
    /// The browser session the authorization belongs to (back-channel logout).
    pub sid: Option<&'a str>,
    /// The token family: every token issued is valid while it exists.
    pub family: Option<String>,
}

/// The authentication context class of every sign-in here (OpenID Connect Core §2 `acr`): a
/// password checked by this provider. Advertised in discovery, so a relying party that sends
/// `acr_values` can ask for it and see it granted.
pub const ACR_PASSWORD: &str = "urn:kube-oidc:acr:password";

/// The active signer of `alg`; `temporarily_unavailable` (and an error logged) while that
/// algorithm has no active key.
pub fn signer(view: &crate::config::View, alg: crds::Algorithm) -> Result<&Signer, OAuthError> {
    view.signers.get(&alg).map(|s| s.as_ref()).ok_or_else(|| {
        tracing::error!(alg = alg.as_str(), "no active signing key");
        OAuthError::TemporarilyUnavailable("no signing key is available".into())
    })
}

pub fn signing_failed(e: impl std::fmt::Display) -> OAuthError {
    tracing::error!(error = %e, "signing");
    OAuthError::ServerError("signing failed".into())
}

impl Issuance<'_> {
    /// The token response.
    pub async fn mint(self, ctx: &Context<'_>) -> Result<Value, OAuthError> {
        let client = self.client;
        let signer = signer(ctx.view, client.alg)?;
        if let Some(f) = &self.family {
            // The family outlives every token issued from it; deleting it revokes them all.
            ctx.store
                .activate_family(f, client.refresh_token_ttl.max(client.access_token_ttl))
                .await?;
        }
        let access_token = self.access_token(ctx, signer).await?;
        let mut response = json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": client.access_token_ttl.as_secs(),
            "scope": self.scopes.join(" "),
        });
        if let Some(id_token) = self.id_token(ctx, signer, Some(&access_token), None)? {
            response["id_token"] = json!(id_token);
        }
        if let Some(refresh) = self.refresh_token(ctx).await? {
            response["refresh_token"] = json!(refresh);
        }
        Ok(response)
    }

    fn subject(&self) -> String {
        self.user
            .map(|u| u.subject())
            .unwrap_or_else(|| self.client.id.clone())
    }

    async fn access_token(&self, ctx: &Context<'_>, signer: &Signer) -> Result<String, OAuthError> {
        let client = self.client;
        let claims = AccessClaims {
            iss: ctx.view.issuer.clone(),
            sub: self.subject(),
            aud: access_token_audience(ctx.view, self.scopes, self.user.is_some()),
            exp: ctx.now + client.access_token_ttl.as_secs(),
            iat: ctx.now,
            jti: random_token(),
            client_id: client.id.clone(),
            scope: self.scopes.join(" "),
            auth_time: self.auth_time,
            fam: self.family.clone(),
            userinfo_claims: self.claims_request.and_then(|c| c.get("userinfo")).cloned(),
        };
        match client.access_token_format {
            AccessTokenFormat::Jwt => signer.sign(Some("at+jwt"), &claims).map_err(signing_failed),
            AccessTokenFormat::Opaque => {
                let token = random_token();
                ctx.store
                    .put(Key::AccessToken(&token), &claims, client.access_token_ttl)
                    .await?;
                Ok(token)
            }
        }
    }

    /// The tokens of an implicit or hybrid authorization response (OpenID Connect Core
    /// §3.2.2.5, §3.3.2.5): an access token (with `token_type` and `expires_in`) when asked
    /// for, and an ID token with the `c_hash` of `code` and the `at_hash` of that access token.
    /// Never a refresh token.
    pub async fn front_channel(
        self,
        ctx: &Context<'_>,
        code: Option<&str>,
        with_access_token: bool,
        with_id_token: bool,
    ) -> Result<Vec<(&'static str, String)>, OAuthError> {
        let client = self.client;
        let signer = signer(ctx.view, client.alg)?;
        let mut out = Vec::new();
        let mut access_token = None;
        if with_access_token {
            if let Some(f) = &self.family {
                ctx.store
                    .activate_family(f, client.access_token_ttl)
                    .await?;
            }
            let token = self.access_token(ctx, signer).await?;
            out.push(("access_token", token.clone()));
            out.push(("token_type", "Bearer".into()));
            out.push(("expires_in", client.access_token_ttl.as_secs().to_string()));
            access_token = Some(token);
        }
        if with_id_token
            && let Some(id_token) = self.id_token(ctx, signer, access_token.as_deref(), code)?
        {
            out.push(("id_token", id_token));
        }
        Ok(out)
    }

    /// OpenID Connect Core §2: for a user who granted `openid`. With the `at_hash` of the access
    /// token issued with it, and the `c_hash` of the code returned with it (hybrid flow).
    fn id_token(
        &self,
        ctx: &Context<'_>,
        signer: &Signer,
        access_token: Option<&str>,
        code: Option<&str>,
    ) -> Result<Option<String>, OAuthError> {
        let Some(user) = self.user else {
            return Ok(None);
        };
        if !self.scopes.iter().any(|sc| sc == "openid") {
            return Ok(None);
        }
        let client = self.client;
        let iat = ctx.now;
        let mut id = select_claims(
            ctx.view,
            user,
            self.scopes,
            self.claims_request,
            ClaimsTarget::IdToken {
                with_access_token: access_token.is_some() || code.is_some(),
                client_claims: &client.id_token_claims,
            },
        );
        id.insert("iss".into(), json!(ctx.view.issuer));
        id.insert("aud".into(), json!(client.id));
        id.insert("azp".into(), json!(client.id));
        id.insert("iat".into(), json!(iat));
        id.insert("exp".into(), json!(iat + client.id_token_ttl.as_secs()));
        if let Some(t) = self.auth_time {
            id.insert("auth_time".into(), json!(t));
        }
        id.insert("acr".into(), json!(ACR_PASSWORD));
        if let Some(n) = self.nonce {
            id.insert("nonce".into(), json!(n));
        }
        if let Some(sid) = self.sid.filter(|s| !s.is_empty()) {
            id.insert("sid".into(), json!(sid));
        }
        if let Some(token) = access_token {
            id.insert("at_hash".into(), json!(at_hash(signer.alg, token)));
        }
        if let Some(code) = code {
            id.insert("c_hash".into(), json!(at_hash(signer.alg, code)));
        }
        signer
            .sign(Some("JWT"), &id)
            .map(Some)
            .map_err(signing_failed)
    }

    /// For a user who granted `offline_access`, to a client allowed refresh tokens.
    async fn refresh_token(&self, ctx: &Context<'_>) -> Result<Option<String>, OAuthError> {
        let client = self.client;
        let (Some(user), Some(family)) = (self.user, &self.family) else {
            return Ok(None);
        };
        if !client.allows(GrantType::RefreshToken)
            || !self.scopes.iter().any(|sc| sc == "offline_access")
        {
            return Ok(None);
        }
        let refresh = random_token();
        let grant = RefreshGrant {
            exp: ctx.now + client.refresh_token_ttl.as_secs(),
            client_id: client.id.clone(),
            sub: user.subject(),
            scopes: self.scopes.to_vec(),
            auth_time: self.auth_time.unwrap_or(ctx.now),
            family: family.clone(),
            claims: self.claims_request.cloned(),
            sid: self.sid.unwrap_or_default().to_string(),
        };
        ctx.store
            .put(
                Key::RefreshToken(&refresh),
                &grant,
                client.refresh_token_ttl,
            )
            .await?;
        Ok(Some(refresh))
    }
}
