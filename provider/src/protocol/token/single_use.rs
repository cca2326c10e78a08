//! Grants redeemed once: authorization codes and refresh tokens (RFC 6749 §4.1.2, §10.4;
//! RFC 9700 §4.14.2).

use crds::GrantType;
use serde::de::DeserializeOwned;

use crate::{
    config::ClientConfig,
    protocol::{Context, OAuthError},
    store::Key,
};

/// A kind of single-use grant.
pub struct SingleUse {
    pub grant_type: GrantType,
    /// The form parameter that carries it.
    pub param: &'static str,
    /// Its key in the store, and that of the marker a redeemed one leaves behind.
    pub key: for<'a> fn(&'a str) -> Key<'a>,
    pub used_key: for<'a> fn(&'a str) -> Key<'a>,
    /// How error descriptions name it.
    pub what: &'static str,
}

/// What a stored single-use grant knows about whom it was issued to.
pub trait IssuedTo {
    fn client_id(&self) -> &str;
}

/// Redeems a single-use grant: the client may use the grant type, the grant is taken from the
/// store at most once, and it was issued to this client. A second use revokes the family the
/// first use produced and fails with invalid_grant.
pub async fn redeem<G: DeserializeOwned + IssuedTo>(
    ctx: &Context<'_>,
    client: &ClientConfig,
    token: Option<&str>,
    single: &SingleUse,
) -> Result<G, OAuthError> {
    super::allowed(client, single.grant_type)?;
    let token =
        token.ok_or_else(|| OAuthError::InvalidRequest(format!("{} is required", single.param)))?;
    let Some(grant) = ctx.store.take::<G>((single.key)(token)).await? else {
        if let Some(family) = ctx.store.get::<String>((single.used_key)(token)).await? {
            ctx.store.revoke_family(&family).await?;
            tracing::warn!(
                grant = single.grant_type.as_str(),
                "a single-use grant was used twice; its family is revoked"
            );
        }
        return Err(OAuthError::InvalidGrant(format!(
            "{} is invalid, expired or already used",
            single.what
        )));
    };
    if grant.client_id() != client.id {
        return Err(OAuthError::InvalidGrant(format!(
            "{} was issued to another client",
            single.what
        )));
    }
    Ok(grant)
}
