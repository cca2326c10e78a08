//! Every key the provider stores, in one enum: the layout of the store is decided here and
//! nowhere else. Keys of tokens are hashes of the tokens, so a store dump reveals no usable
//! token.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};

/// A stored record's key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key<'a> {
    /// An authorization code, until it is redeemed.
    Code(&'a str),
    /// A redeemed code: the token family its redemption started (reuse revokes it).
    CodeUsed(&'a str),
    /// A refresh token, until it is redeemed.
    RefreshToken(&'a str),
    /// A redeemed refresh token: its family (reuse revokes it).
    RefreshTokenUsed(&'a str),
    /// An opaque access token's claims.
    AccessToken(&'a str),
    /// A token family: while it exists, the tokens issued in it are valid.
    Family(&'a str),
    /// A revoked JWT access token, by `jti`, until it expires.
    RevokedJti(&'a str),
    /// A device code (RFC 8628): the user code of its authorization.
    DeviceCode(&'a str),
    /// A device authorization, by its user code.
    UserCode(&'a str),
    /// Wrong user codes entered from an address.
    UserCodeFailures(&'a str),
    /// A browser's sign-in session, by the session cookie.
    Session(&'a str),
    /// An authorization request waiting for sign-in or consent.
    PendingAuthorization(&'a str),
    /// A logout waiting for the user's confirmation.
    PendingLogout(&'a str),
    /// The scopes a user consented to for a client.
    Consent { sub: &'a str, client_id: &'a str },
    /// Failed sign-ins for a username.
    UserFailures(&'a str),
    /// Failed sign-ins from an address.
    IpFailures(&'a str),
    /// Failed client authentications of a client from an address.
    ClientFailures { client_id: &'a str, ip: &'a str },
    /// Client registrations from an address.
    Registrations(&'a str),
    /// Requests from an address that may start a pending interaction (sign-in, device, logout).
    InteractionStarts(&'a str),
    /// Clients registered in standalone mode (a map by client ID, kept until deleted).
    RegisteredClients,
    /// A person an identity connector vouched for, by subject, while their sign-in lasts.
    Identity(&'a str),
    /// A sign-in sent to an upstream provider, by its `state`, until the callback.
    UpstreamState(&'a str),
    /// A client assertion's `jti`, until the assertion expires (replay, RFC 7523 §3).
    ClientAssertion { client_id: &'a str, jti: &'a str },
}

impl Key<'_> {
    /// The key as stored (before the backend's prefix).
    pub(super) fn render(&self) -> String {
        match self {
            Key::Code(t) => hash_token("code", t),
            Key::CodeUsed(t) => hash_token("codeused", t),
            Key::RefreshToken(t) => hash_token("rt", t),
            Key::RefreshTokenUsed(t) => hash_token("rtused", t),
            Key::AccessToken(t) => hash_token("at", t),
            Key::Family(f) => format!("family:{f}"),
            Key::RevokedJti(j) => format!("revoked:{j}"),
            Key::DeviceCode(t) => hash_token("device", t),
            Key::UserCode(c) => format!("usercode:{c}"),
            Key::UserCodeFailures(ip) => format!("throttle:usercode:{ip}"),
            Key::Session(t) => hash_token("session", t),
            Key::PendingAuthorization(t) => hash_token("pending", t),
            Key::PendingLogout(t) => hash_token("logout", t),
            Key::Consent { sub, client_id } => format!("consent:{sub}:{client_id}"),
            Key::UserFailures(u) => format!("throttle:user:{u}"),
            Key::IpFailures(ip) => format!("throttle:ip:{ip}"),
            Key::ClientFailures { client_id, ip } => {
                format!("throttle:client:{}:{ip}", hash_token("client", client_id))
            }
            Key::Registrations(ip) => format!("throttle:register:{ip}"),
            Key::InteractionStarts(ip) => format!("throttle:starts:{ip}"),
            Key::RegisteredClients => "registered-clients".into(),
            Key::Identity(sub) => format!("identity:{sub}"),
            Key::UpstreamState(state) => hash_token("upstream-state", state),
            Key::ClientAssertion { client_id, jti } => {
                hash_token("assertion", &format!("{client_id}\n{jti}"))
            }
        }
    }
}

/// `kind:` and the SHA-256 of a token, base64url: how tokens are stored and compared (store keys,
/// browser bindings, registration access tokens).
pub fn hash_token(kind: &str, token: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    format!("{kind}:{}", B64.encode(digest.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_keys_are_hashes_and_the_layout_is_stable() {
        let k = Key::Code("secret-code").render();
        assert!(k.starts_with("code:"));
        assert!(!k.contains("secret-code"));
        // The layout Redis already holds in a running installation.
        assert_eq!(Key::Family("f1").render(), "family:f1");
        assert_eq!(
            Key::Consent {
                sub: "s",
                client_id: "c"
            }
            .render(),
            "consent:s:c"
        );
        assert_eq!(Key::UserFailures("alice").render(), "throttle:user:alice");
        assert_eq!(Key::RefreshToken("t").render(), hash_token("rt", "t"));
    }
}
