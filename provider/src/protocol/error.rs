//! The protocol's errors: one enum of the codes OAuth 2.0 and OpenID Connect define. Where and
//! how an error is sent (JSON body, redirect, `WWW-Authenticate`, page) is the HTTP layer's.

use crate::store::StoreError;

/// An error with its RFC code and a description for the client (never internals: those go to
/// the log).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {}", self.code(), self.description())]
pub enum OAuthError {
    // RFC 6749 §5.2 (token endpoint) and §4.1.2.1 (authorization endpoint).
    InvalidRequest(String),
    InvalidClient(String),
    InvalidGrant(String),
    UnauthorizedClient(String),
    UnsupportedGrantType(String),
    InvalidScope(String),
    AccessDenied(String),
    UnsupportedResponseType(String),
    ServerError(String),
    TemporarilyUnavailable(String),
    // RFC 8628 §3.5 (device code polling).
    AuthorizationPending(String),
    SlowDown(String),
    ExpiredToken(String),
    // RFC 6750 §3 (protected resources).
    InvalidToken(String),
    InsufficientScope(String),
    // OpenID Connect Core §3.1.2.6.
    LoginRequired(String),
    ConsentRequired(String),
    RequestNotSupported(String),
    RequestUriNotSupported(String),
    InvalidRequestObject(String),
    InvalidRequestUri(String),
    // RFC 7591 §3.2.2 (registration).
    InvalidRedirectUri(String),
    InvalidClientMetadata(String),
}

impl OAuthError {
    /// The `error` code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidClient(_) => "invalid_client",
            Self::InvalidGrant(_) => "invalid_grant",
            Self::UnauthorizedClient(_) => "unauthorized_client",
            Self::UnsupportedGrantType(_) => "unsupported_grant_type",
            Self::InvalidScope(_) => "invalid_scope",
            Self::AccessDenied(_) => "access_denied",
            Self::UnsupportedResponseType(_) => "unsupported_response_type",
            Self::ServerError(_) => "server_error",
            Self::TemporarilyUnavailable(_) => "temporarily_unavailable",
            Self::AuthorizationPending(_) => "authorization_pending",
            Self::SlowDown(_) => "slow_down",
            Self::ExpiredToken(_) => "expired_token",
            Self::InvalidToken(_) => "invalid_token",
            Self::InsufficientScope(_) => "insufficient_scope",
            Self::LoginRequired(_) => "login_required",
            Self::ConsentRequired(_) => "consent_required",
            Self::RequestNotSupported(_) => "request_not_supported",
            Self::RequestUriNotSupported(_) => "request_uri_not_supported",
            Self::InvalidRequestObject(_) => "invalid_request_object",
            Self::InvalidRequestUri(_) => "invalid_request_uri",
            Self::InvalidRedirectUri(_) => "invalid_redirect_uri",
            Self::InvalidClientMetadata(_) => "invalid_client_metadata",
        }
    }

    /// The `error_description`.
    pub fn description(&self) -> &str {
        match self {
            Self::InvalidRequest(d)
            | Self::InvalidClient(d)
            | Self::InvalidGrant(d)
            | Self::UnauthorizedClient(d)
            | Self::UnsupportedGrantType(d)
            | Self::InvalidScope(d)
            | Self::AccessDenied(d)
            | Self::UnsupportedResponseType(d)
            | Self::ServerError(d)
            | Self::TemporarilyUnavailable(d)
            | Self::AuthorizationPending(d)
            | Self::SlowDown(d)
            | Self::ExpiredToken(d)
            | Self::InvalidToken(d)
            | Self::InsufficientScope(d)
            | Self::LoginRequired(d)
            | Self::ConsentRequired(d)
            | Self::RequestNotSupported(d)
            | Self::RequestUriNotSupported(d)
            | Self::InvalidRequestObject(d)
            | Self::InvalidRequestUri(d)
            | Self::InvalidRedirectUri(d)
            | Self::InvalidClientMetadata(d) => d,
        }
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store");
        OAuthError::TemporarilyUnavailable(
            "the service is temporarily unavailable; retry later".into(),
        )
    }
}
