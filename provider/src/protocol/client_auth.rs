//! Client authentication at the token, introspection and revocation endpoints (RFC 6749 §2.3):
//! `client_secret_basic`, `client_secret_post`, and public clients by `client_id` alone.

use std::sync::Arc;

use base64::{Engine, engine::general_purpose::STANDARD as B64STD};

use super::{OAuthError, params::Params};
use crate::config::{ClientConfig, View};

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

/// The client a request authenticates as. `basic` is the credentials part of an
/// `Authorization: Basic` header, if one was sent.
pub fn authenticate(
    view: &View,
    basic: Option<&str>,
    params: &Params,
) -> Result<Arc<ClientConfig>, OAuthError> {
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
    match secret {
        Some(secret) if client.verify_secret(&secret) => Ok(client),
        _ => Err(unknown()),
    }
}
