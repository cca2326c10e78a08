//! Client authentication at the token, introspection and revocation endpoints (RFC 6749 §2.3):
//! `client_secret_basic`, `client_secret_post`, `client_secret_jwt` and `private_key_jwt`
//! (RFC 7523), and public clients
//! by `client_id` alone.

use std::sync::Arc;

use base64::{Engine, engine::general_purpose::STANDARD as B64STD};

use super::{Context, OAuthError, client_assertion, params::Params};
use crate::config::ClientConfig;
use crds::TokenEndpointAuthMethod;

fn malformed() -> OAuthError {
    OAuthError::InvalidClient("malformed Basic credentials".into())
}

/// RFC 6749 §2.3.1: both parts of Basic credentials are form-urlencoded.
fn form_decode(s: &str) -> Option<String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={s}"))
        .ok()
        .and_then(|mut v| v.pop())
        .map(|(_, v)| v)
}

/// (client_id, secret) from the base64 of an `Authorization: Basic` header.
fn basic_credentials(b64: &str) -> Result<(String, String), OAuthError> {
    let decoded = B64STD
        .decode(b64.trim())
        .ok()
        .and_then(|d| String::from_utf8(d).ok())
        .ok_or_else(malformed)?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    Ok((
        form_decode(id).ok_or_else(malformed)?,
        form_decode(secret).ok_or_else(malformed)?,
    ))
}

/// Who a request claims to be and how it tried to authenticate: what a failure is logged with
/// (never the secret).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attempt {
    pub client_id: Option<String>,
    pub method: &'static str,
}

impl Attempt {
    /// Read from the request without checking anything.
    pub fn of(basic: Option<&str>, params: &Params) -> Self {
        let (client_id, method) = match basic {
            Some(b64) => (
                basic_credentials(b64).ok().map(|(id, _)| id),
                "client_secret_basic",
            ),
            None if params.contains_key("client_secret") => {
                (params.get("client_id").cloned(), "client_secret_post")
            }
            None if params.contains_key("client_assertion") => {
                let assertion = params.get("client_assertion");
                (
                    params
                        .get("client_id")
                        .cloned()
                        .or_else(|| assertion.and_then(|a| client_assertion::claimed_subject(a))),
                    if assertion.is_some_and(|a| client_assertion::is_hmac(a)) {
                        "client_secret_jwt"
                    } else {
                        "private_key_jwt"
                    },
                )
            }
            None => (params.get("client_id").cloned(), "none"),
        };
        Self { client_id, method }
    }
}

/// The client a request authenticates as. `basic` is the credentials part of an
/// `Authorization: Basic` header, if one was sent. A confidential client authenticates only with
/// the method it is registered with.
pub async fn authenticate(
    ctx: &Context<'_>,
    basic: Option<&str>,
    params: &Params,
) -> Result<Arc<ClientConfig>, OAuthError> {
    if params.contains_key("client_assertion") || params.contains_key("client_assertion_type") {
        return by_assertion(ctx, basic, params).await;
    }
    let view = ctx.view;
    let used = if basic.is_some() {
        TokenEndpointAuthMethod::ClientSecretBasic
    } else {
        TokenEndpointAuthMethod::ClientSecretPost
    };
    let (id, secret) = match basic {
        Some(b64) => {
            if params.contains_key("client_secret") {
                return Err(OAuthError::InvalidRequest(
                    "use one client authentication method".into(),
                ));
            }
            let (id, secret) = basic_credentials(b64)?;
            if params.get("client_id").is_some_and(|c| *c != id) {
                return Err(OAuthError::InvalidRequest(
                    "client_id does not match the credentials".into(),
                ));
            }
            (id, Some(secret))
        }
        None => (
            params.get("client_id").cloned().ok_or_else(|| {
                OAuthError::InvalidClient("client authentication is required".into())
            })?,
            params.get("client_secret").cloned(),
        ),
    };
    let unknown = || OAuthError::InvalidClient("unknown client or wrong credentials".into());
    let client = view.client(&id).ok_or_else(unknown)?;
    if client.public {
        return Ok(client);
    }
    if secret.is_some() && client.auth_method != used {
        return Err(OAuthError::InvalidClient(format!(
            "this client authenticates with {}",
            method_name(client.auth_method)
        )));
    }
    match secret {
        Some(secret) if client.verify_secret(&secret) => Ok(client),
        _ => Err(unknown()),
    }
}

/// `private_key_jwt` and `client_secret_jwt`: the client named by `client_id` or by the
/// assertion's `sub`, registered for one of them, and an assertion it signed.
async fn by_assertion(
    ctx: &Context<'_>,
    basic: Option<&str>,
    params: &Params,
) -> Result<Arc<ClientConfig>, OAuthError> {
    if basic.is_some() || params.contains_key("client_secret") {
        return Err(OAuthError::InvalidRequest(
            "use one client authentication method".into(),
        ));
    }
    if params.get("client_assertion_type").map(String::as_str) != Some(client_assertion::JWT_BEARER)
    {
        return Err(OAuthError::InvalidClient(format!(
            "client_assertion_type must be {}",
            client_assertion::JWT_BEARER
        )));
    }
    let assertion = params
        .get("client_assertion")
        .ok_or_else(|| OAuthError::InvalidRequest("client_assertion is missing".into()))?;
    let sub = client_assertion::claimed_subject(assertion);
    let id = match (params.get("client_id"), &sub) {
        (Some(id), Some(sub)) if id != sub => {
            return Err(OAuthError::InvalidClient(
                "client_id does not match the assertion's sub".into(),
            ));
        }
        (Some(id), _) => id.clone(),
        (None, Some(sub)) => sub.clone(),
        (None, None) => {
            return Err(OAuthError::InvalidClient(
                "the client assertion names no client (sub)".into(),
            ));
        }
    };
    let unknown = || OAuthError::InvalidClient("unknown client or wrong credentials".into());
    let client = ctx.view.client(&id).ok_or_else(unknown)?;
    if !matches!(
        client.auth_method,
        TokenEndpointAuthMethod::PrivateKeyJwt | TokenEndpointAuthMethod::ClientSecretJwt
    ) {
        return Err(OAuthError::InvalidClient(format!(
            "this client authenticates with {}",
            method_name(client.auth_method)
        )));
    }
    client_assertion::verify(ctx, &client, assertion).await?;
    Ok(client)
}

/// The registered name of a method (RFC 7591 §2).
fn method_name(m: TokenEndpointAuthMethod) -> &'static str {
    match m {
        TokenEndpointAuthMethod::ClientSecretBasic => "client_secret_basic",
        TokenEndpointAuthMethod::ClientSecretPost => "client_secret_post",
        TokenEndpointAuthMethod::ClientSecretJwt => "client_secret_jwt",
        TokenEndpointAuthMethod::PrivateKeyJwt => "private_key_jwt",
        TokenEndpointAuthMethod::None => "none",
    }
}
