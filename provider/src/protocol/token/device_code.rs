//! The device code grant at the token endpoint (RFC 8628 §3.4).

use crds::GrantType;
use serde_json::Value;

use super::Issuance;
use crate::{
    config::ClientConfig,
    protocol::{
        Context, OAuthError,
        device::{self, Decision},
        params::random_token,
    },
};

/// The parameters of a device access token request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub device_code: Option<String>,
}

pub async fn exchange(
    ctx: &Context<'_>,
    client: &ClientConfig,
    request: Request,
) -> Result<Value, OAuthError> {
    super::allowed(client, GrantType::DeviceCode)?;
    let device_code = request
        .device_code
        .ok_or_else(|| OAuthError::InvalidRequest("device_code is required".into()))?;
    let grant = device::poll(ctx, client, &device_code).await?;
    let Decision::Approved {
        sub,
        auth_time,
        sid,
    } = grant.decision
    else {
        return Err(OAuthError::InvalidGrant(
            "the device_code is not approved".into(),
        ));
    };
    let user = ctx
        .user(&sub)
        .await?
        .ok_or_else(|| OAuthError::InvalidGrant("the user no longer exists".into()))?;
    if !client.admits(&user) {
        return Err(OAuthError::AccessDenied(
            "the user is not allowed to use this client (its allowed groups)".into(),
        ));
    }
    Issuance {
        client,
        user: Some(&user),
        scopes: &grant.scopes,
        auth_time: Some(auth_time),
        nonce: None,
        claims_request: None,
        sid: Some(&sid),
        family: Some(random_token()),
    }
    .mint(ctx)
    .await
}
