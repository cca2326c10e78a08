//! The client credentials grant (RFC 6749 §4.4): machine tokens, never a user's.

use crds::GrantType;
use serde_json::Value;

use super::Issuance;
use crate::{
    config::ClientConfig,
    protocol::{Context, OAuthError, params::split_scopes},
};

/// Scopes that only make sense for a user.
const USER_SCOPES: [&str; 2] = ["openid", "offline_access"];

/// The parameters of a client credentials request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub scope: Option<String>,
}

pub async fn exchange(
    ctx: &Context<'_>,
    client: &ClientConfig,
    request: Request,
) -> Result<Value, OAuthError> {
    if client.public {
        return Err(OAuthError::UnauthorizedClient(
            "a public client cannot use client_credentials".into(),
        ));
    }
    super::allowed(client, GrantType::ClientCredentials)?;
    // A machine token's subject is the client ID: it must never be a user's subject (a client
    // named like a user would otherwise act as that user at resource servers).
    if ctx.view.users.by_sub(&client.id).is_some() {
        tracing::warn!(client = %client.id, "client ID equals a user's subject; machine tokens refused");
        return Err(OAuthError::UnauthorizedClient(
            "this client's ID is a user's subject; it cannot get machine tokens".into(),
        ));
    }
    let scopes: Vec<String> = match &request.scope {
        Some(sc) => split_scopes(sc),
        None => client
            .default_scopes
            .iter()
            .filter(|sc| !USER_SCOPES.contains(&sc.as_str()))
            .cloned()
            .collect(),
    };
    if let Some(bad) = scopes
        .iter()
        .find(|sc| !client.scopes.contains(sc) || USER_SCOPES.contains(&sc.as_str()))
    {
        return Err(OAuthError::InvalidScope(format!(
            "scope {bad} is not allowed for this client"
        )));
    }
    Issuance {
        client,
        user: None,
        scopes: &scopes,
        auth_time: None,
        nonce: None,
        claims_request: None,
        sid: None,
        family: None,
    }
    .mint(ctx)
    .await
}
