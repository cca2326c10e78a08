//! OAuth 2.0 and OpenID Connect decisions, with no HTTP and no Kubernetes in them: the HTTP
//! layer parses a request, calls one of these, and maps the result. The clock is passed in.

pub mod access_token;
pub mod authorize;
pub mod claims;
pub mod client_assertion;
pub mod client_auth;
pub mod connectors;
pub mod consent;
pub mod device;
pub mod error;
pub mod interaction;
pub mod introspect;
pub mod ldap;
pub mod login;
pub mod logout;
pub mod params;
pub mod pkce;
pub mod registration;
pub mod request_object;
pub mod revoke;
pub mod session;
pub mod token;
pub mod upstream;
pub mod upstream_flow;
pub mod userinfo;

use std::time::{SystemTime, UNIX_EPOCH};

pub use error::OAuthError;

use crate::{config::View, store::Store};

/// What a protocol step reads and writes, and when it runs.
pub struct Context<'a> {
    pub view: &'a View,
    pub store: &'a Store,
    /// Seconds since the epoch.
    pub now: u64,
    pub settings: &'a Settings,
}

/// How the provider applies the protocol where the RFCs leave a choice, and its budgets.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// Seconds after a refresh token's redemption in which a second use of it (two refreshes at
    /// once) succeeds without revoking its family; 0 treats every second use as theft.
    pub refresh_reuse_interval: u64,
    /// The memory password checks may take at once.
    pub passwords: std::sync::Arc<login::PasswordBudget>,
    /// Clients' JWK Sets fetched from their jwksUri (private_key_jwt).
    pub client_keys: std::sync::Arc<client_assertion::RemoteKeys>,
}

/// The system clock in seconds since the epoch: what the HTTP layer passes as [`Context::now`].
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}
