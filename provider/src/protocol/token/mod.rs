//! The token endpoint (RFC 6749 §3.2): one module per grant, chosen by one exhaustive match.
//!
//! Adding a grant: a [`GrantType`] variant served by `GrantType::is_served` (crds), a
//! [`TokenRequest`] variant, its module, and its arms in [`TokenRequest::parse`] and
//! [`exchange`]; discovery and the metrics labels follow from the grant type.

pub mod client_credentials;
pub mod code;
pub mod device_code;
pub mod issuance;
pub mod refresh;
mod single_use;

use crds::GrantType;
use serde_json::Value;

pub use issuance::Issuance;

use super::{Context, OAuthError, params::Params};
use crate::config::ClientConfig;

/// A token request, by grant. Its fields are the request's parameters as sent: each grant checks
/// them in the order its RFC gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenRequest {
    AuthorizationCode(code::Request),
    RefreshToken(refresh::Request),
    ClientCredentials(client_credentials::Request),
    DeviceCode(device_code::Request),
}

impl TokenRequest {
    /// The request for the `grant_type` in `params`.
    pub fn parse(params: &Params) -> Result<Self, OAuthError> {
        let name = params
            .get("grant_type")
            .ok_or_else(|| OAuthError::InvalidRequest("grant_type is required".into()))?;
        let unsupported =
            || OAuthError::UnsupportedGrantType(format!("grant_type {name} is not supported"));
        let grant = GrantType::from_name(name).ok_or_else(unsupported)?;
        let param = |p: &str| params.get(p).cloned();
        Ok(match grant {
            GrantType::AuthorizationCode => Self::AuthorizationCode(code::Request {
                code: param("code"),
                redirect_uri: param("redirect_uri"),
                code_verifier: param("code_verifier"),
            }),
            GrantType::RefreshToken => Self::RefreshToken(refresh::Request {
                refresh_token: param("refresh_token"),
                scope: param("scope"),
            }),
            GrantType::ClientCredentials => Self::ClientCredentials(client_credentials::Request {
                scope: param("scope"),
            }),
            GrantType::DeviceCode => Self::DeviceCode(device_code::Request {
                device_code: param("device_code"),
            }),
            GrantType::TokenExchange => return Err(unsupported()),
        })
    }

    pub fn grant_type(&self) -> GrantType {
        match self {
            Self::AuthorizationCode(_) => GrantType::AuthorizationCode,
            Self::RefreshToken(_) => GrantType::RefreshToken,
            Self::ClientCredentials(_) => GrantType::ClientCredentials,
            Self::DeviceCode(_) => GrantType::DeviceCode,
        }
    }
}

/// Whether `client` may use `grant` (RFC 6749 §5.2 unauthorized_client).
pub fn allowed(client: &ClientConfig, grant: GrantType) -> Result<(), OAuthError> {
    if client.allows(grant) {
        Ok(())
    } else {
        Err(OAuthError::UnauthorizedClient(format!(
            "this client may not use {}",
            grant.as_str()
        )))
    }
}

/// Exchanges an authenticated client's request for a token response.
pub async fn exchange(
    ctx: &Context<'_>,
    client: &ClientConfig,
    request: TokenRequest,
) -> Result<Value, OAuthError> {
    match request {
        TokenRequest::AuthorizationCode(r) => code::exchange(ctx, client, r).await,
        TokenRequest::RefreshToken(r) => refresh::exchange(ctx, client, r).await,
        TokenRequest::ClientCredentials(r) => client_credentials::exchange(ctx, client, r).await,
        TokenRequest::DeviceCode(r) => device_code::exchange(ctx, client, r).await,
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod dispatch_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The dispatch serves exactly the grants the operator lets clients list.
    #[test]
    fn every_served_grant_parses_and_no_other() {
        for grant in GrantType::ALL {
            let params = Params::from([("grant_type".to_string(), grant.as_str().to_string())]);
            match TokenRequest::parse(&params) {
                Ok(r) => {
                    assert!(grant.is_served(), "{grant:?} parses but is not served");
                    assert_eq!(r.grant_type(), grant);
                }
                Err(e) => {
                    assert!(!grant.is_served(), "{grant:?} is served but refused: {e}");
                    assert_eq!(e.code(), "unsupported_grant_type");
                }
            }
        }
        let none = TokenRequest::parse(&Params::new()).unwrap_err();
        assert_eq!(none.code(), "invalid_request");
    }
}
