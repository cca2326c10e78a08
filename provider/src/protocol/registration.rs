//! Dynamic client registration (RFC 7591, RFC 7592): who may register, and how registration
//! metadata maps onto an OidcClient and back. Storing the client is the config source's.

use std::{net::IpAddr, time::Duration};

use crds::{
    ClientType, ConsentPolicy, GrantType, OidcClient, OidcClientSpec, ResponseType,
    TokenEndpointAuthMethod,
};
use serde_json::{Value, json};

use super::{
    OAuthError,
    params::{same, split_scopes},
};
use crate::store::hash_token;

/// Who may register clients.
pub enum Policy {
    Open,
    /// Callers present this initial access token (kept as a hash).
    Token(String),
}

/// How registration is served.
pub struct Settings {
    pub policy: Policy,
    /// Allow metadata URLs on private and loopback addresses (tests, air-gapped setups).
    pub allow_private_urls: bool,
    /// Consent policy of registered clients (never `skip`: they are third parties).
    pub consent: ConsentPolicy,
    /// How many registered clients the registration namespace may hold.
    pub quota: usize,
}

impl Settings {
    /// Whether a caller presenting `bearer` may register (RFC 7591 §3).
    pub fn admits(&self, bearer: Option<&str>) -> Result<(), OAuthError> {
        let Policy::Token(hash) = &self.policy else {
            return Ok(());
        };
        let presented = bearer.map(|t| hash_token("initial", t)).unwrap_or_default();
        if same(&presented, hash) {
            Ok(())
        } else {
            Err(OAuthError::InvalidToken(
                "a valid initial access token is required".into(),
            ))
        }
    }
}

/// The hash of a registration access token, as kept on the registered client.
pub fn registration_token_hash(token: &str) -> String {
    hash_token("registration", token)
}

/// Whether `token` is the registration access token whose hash is `hash` (RFC 7592 §3).
pub fn registration_token_matches(hash: &str, token: &str) -> bool {
    !hash.is_empty() && same(&registration_token_hash(token), hash)
}

fn invalid_metadata(description: impl Into<String>) -> OAuthError {
    OAuthError::InvalidClientMetadata(description.into())
}

fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64 // 100.64/10
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00 // unique local
                || (v6.segments()[0] & 0xffc0) == 0xfe80 // link local
                || v6.to_ipv4_mapped().is_some_and(|v4| is_private(IpAddr::V4(v4)))
        }
    }
}

/// Refuses metadata URLs that point at private or loopback addresses (SSRF): checked on the
/// literal address and on every address the name resolves to.
pub async fn check_url(field: &str, value: &str, allow_private: bool) -> Result<(), String> {
    let url = url::Url::parse(value).map_err(|_| format!("{field} is not a URL"))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(format!("{field} must be an http(s) URL"));
    }
    if allow_private {
        return Ok(());
    }
    let host = url
        .host_str()
        .ok_or_else(|| format!("{field} has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => tokio::time::timeout(
            Duration::from_secs(2),
            tokio::net::lookup_host((host.as_str(), port)),
        )
        .await
        .ok()
        .and_then(Result::ok)
        .map(|it| it.map(|a| a.ip()).collect())
        .unwrap_or_default(),
    };
    if addrs.is_empty() {
        return Err(format!("{field}: the host {host} cannot be resolved"));
    }
    if addrs.into_iter().any(is_private) {
        return Err(format!(
            "{field} points at a private or loopback address, which is not allowed"
        ));
    }
    Ok(())
}

fn strings(v: &Value, field: &str) -> Result<Option<Vec<String>>, OAuthError> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map(String::from))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| invalid_metadata(format!("{field} must be an array of strings"))),
        Some(_) => Err(invalid_metadata(format!(
            "{field} must be an array of strings"
        ))),
    }
}

fn string(v: &Value, field: &str) -> Result<Option<String>, OAuthError> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid_metadata(format!("{field} must be a string"))),
    }
}

/// Maps RFC 7591 metadata onto an OidcClient spec.
pub async fn spec_from_metadata(
    settings: &Settings,
    m: &Value,
) -> Result<OidcClientSpec, OAuthError> {
    if !m.is_object() {
        return Err(invalid_metadata("the body must be a JSON object"));
    }
    if let Some(u) = string(m, "sector_identifier_uri")? {
        check_url("sector_identifier_uri", &u, settings.allow_private_urls)
            .await
            .map_err(invalid_metadata)?;
        return Err(invalid_metadata("sector_identifier_uri is not supported"));
    }
    for field in [
        "logo_uri",
        "client_uri",
        "policy_uri",
        "tos_uri",
        "jwks_uri",
    ] {
        if let Some(u) = string(m, field)? {
            check_url(field, &u, settings.allow_private_urls)
                .await
                .map_err(invalid_metadata)?;
        }
    }
    let auth = match string(m, "token_endpoint_auth_method")?.as_deref() {
        None | Some("client_secret_basic") => TokenEndpointAuthMethod::ClientSecretBasic,
        Some("client_secret_post") => TokenEndpointAuthMethod::ClientSecretPost,
        Some("none") => TokenEndpointAuthMethod::None,
        Some("private_key_jwt") => TokenEndpointAuthMethod::PrivateKeyJwt,
        Some("client_secret_jwt") => TokenEndpointAuthMethod::ClientSecretJwt,
        Some(other) => {
            return Err(invalid_metadata(format!(
                "token_endpoint_auth_method {other} is not supported"
            )));
        }
    };
    let response_types = match strings(m, "response_types")? {
        None => vec![ResponseType::Code],
        Some(list) => list
            .iter()
            .map(|r| {
                ResponseType::parse(r)
                    .ok_or_else(|| invalid_metadata(format!("response type {r} is not supported")))
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    // `implicit` (RFC 7591 §2.1) names no token endpoint grant: the response types say it.
    let grant_types = match strings(m, "grant_types")? {
        None if response_types.iter().any(|t| t.has_code()) => vec![GrantType::AuthorizationCode],
        None => Vec::new(),
        Some(list) => list
            .iter()
            .filter(|g| *g != "implicit")
            .map(|g| {
                serde_json::from_value::<GrantType>(json!(g))
                    .map_err(|_| invalid_metadata(format!("grant type {g} is not supported")))
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let scopes = string(m, "scope")?
        .map(|s| split_scopes(&s))
        .unwrap_or_else(|| {
            ["openid", "profile", "email", "offline_access"]
                .map(String::from)
                .to_vec()
        });
    let mut spec: OidcClientSpec =
        serde_json::from_value(json!({})).map_err(|e| invalid_metadata(e.to_string()))?;
    spec.display_name = string(m, "client_name")?;
    // Shown on the client's sign-in and consent pages (checked above like every URL).
    spec.logo_uri = string(m, "logo_uri")?;
    spec.policy_uri = string(m, "policy_uri")?;
    spec.tos_uri = string(m, "tos_uri")?;
    spec.type_ = if auth == TokenEndpointAuthMethod::None {
        ClientType::Public
    } else {
        ClientType::Confidential
    };
    spec.token_endpoint_auth_method = Some(auth);
    spec.jwks = client_jwks(m)?;
    spec.jwks_uri = string(m, "jwks_uri")?;
    // Some libraries send relative request_uris nobody could fetch (pyoidc: `requests/<hash>`):
    // those are left out (RFC 7591 §3.2.1 lets the server replace values; the answer shows
    // what is kept), and only absolute http(s) URLs are kept.
    spec.request_uris = match m.get("request_uris") {
        Some(Value::String(one)) => vec![one.clone()],
        _ => strings(m, "request_uris")?.unwrap_or_default(),
    }
    .into_iter()
    .filter(|u| {
        let absolute = url::Url::parse(u).is_ok_and(|p| matches!(p.scheme(), "https" | "http"));
        if !absolute {
            tracing::debug!(request_uri = %u, "a request_uri that is not an absolute URL is left out");
        }
        absolute
    })
    .collect();
    for u in &spec.request_uris {
        // The provider will fetch them: the same SSRF rule.
        check_url("request_uris", u, settings.allow_private_urls)
            .await
            .map_err(invalid_metadata)?;
    }
    spec.request_object_signing_alg = string(m, "request_object_signing_alg")?;
    // OpenID Connect Dynamic Client Registration §2: how its ID tokens and userinfo are signed.
    let algorithm = |field: &str| -> Result<Option<crds::Algorithm>, OAuthError> {
        match string(m, field)? {
            None => Ok(None),
            Some(a) => serde_json::from_value(json!(a)).map(Some).map_err(|_| {
                invalid_metadata(format!(
                    "{field} {a} is not supported: use one of {}",
                    ["RS256", "PS256", "ES256", "EdDSA"].join(", ")
                ))
            }),
        }
    };
    if let Some(alg) = algorithm("id_token_signed_response_alg")? {
        spec.signing_algorithm = alg;
    }
    spec.userinfo_signed_response_alg = match string(m, "userinfo_signed_response_alg")?.as_deref()
    {
        Some("none") => None,
        _ => algorithm("userinfo_signed_response_alg")?,
    };
    if let Some(alg) = string(m, "token_endpoint_auth_signing_alg")?
        && !ASSERTION_ALGORITHMS.contains(&alg.as_str())
        && !(auth == TokenEndpointAuthMethod::ClientSecretJwt
            && HMAC_ALGORITHMS.contains(&alg.as_str()))
    {
        return Err(invalid_metadata(format!(
            "token_endpoint_auth_signing_alg {alg} is not supported"
        )));
    }
    spec.redirect_uris = strings(m, "redirect_uris")?.unwrap_or_default();
    spec.post_logout_redirect_uris = strings(m, "post_logout_redirect_uris")?.unwrap_or_default();
    spec.backchannel_logout_uri = string(m, "backchannel_logout_uri")?;
    if let Some(u) = &spec.backchannel_logout_uri {
        // The provider will POST to it: the same SSRF rule.
        check_url("backchannel_logout_uri", u, settings.allow_private_urls)
            .await
            .map_err(invalid_metadata)?;
    }
    spec.grant_types = grant_types;
    spec.response_types = response_types;
    spec.scopes = scopes;
    spec.consent = settings.consent;
    Ok(spec)
}

/// The algorithms client assertions may be signed with (discovery's
/// `token_endpoint_auth_signing_alg_values_supported`).
pub const ASSERTION_ALGORITHMS: [&str; 9] = crds::keys::CLIENT_KEY_ALGORITHMS;

/// The algorithms client_secret_jwt assertions may be signed with: HMAC keyed by the secret.
pub const HMAC_ALGORITHMS: [&str; 3] = ["HS256", "HS384", "HS512"];

/// Every algorithm a client assertion may be signed with, as discovery lists them.
pub fn assertion_algorithms() -> Vec<&'static str> {
    ASSERTION_ALGORITHMS
        .into_iter()
        .chain(HMAC_ALGORITHMS)
        .collect()
}

/// The `jwks` member: public keys only. A private key sent here is refused, not stored.
fn client_jwks(m: &Value) -> Result<Option<crds::client::ClientJwks>, OAuthError> {
    let Some(jwks) = m.get("jwks").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid_metadata("jwks must be a JWK Set: an object with keys"))?;
    const PRIVATE: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];
    if keys
        .iter()
        .any(|k| PRIVATE.iter().any(|member| k.get(member).is_some()))
    {
        return Err(invalid_metadata(
            "jwks holds private key material; register the public keys only",
        ));
    }
    let keys = keys
        .iter()
        .map(crds::keys::client_jwk)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid_metadata(format!("jwks: {e}")))?;
    Ok(Some(crds::client::ClientJwks { keys }))
}

pub fn validate(client: &OidcClient) -> Result<(), OAuthError> {
    let problems = crds::validation::validate_client(client);
    let Some(first) = problems.first() else {
        return Ok(());
    };
    let description = problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    Err(
        if first.reason == crds::validation::Reason::InvalidRedirectUri {
            OAuthError::InvalidRedirectUri(description)
        } else {
            OAuthError::InvalidClientMetadata(description)
        },
    )
}

pub fn metadata(
    issuer: &str,
    client: &OidcClient,
    secret: Option<&str>,
    token: Option<&str>,
) -> Value {
    let s = &client.spec;
    let id = client.client_id();
    let mut out = json!({
        "client_id": id,
        "client_name": s.display_name,
        "redirect_uris": s.redirect_uris,
        "post_logout_redirect_uris": s.post_logout_redirect_uris,
        "grant_types": s.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "response_types": s.response_types.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
        "token_endpoint_auth_method": serde_json::to_value(s.token_endpoint_auth_method()).unwrap_or(Value::Null),
        "scope": s.scopes.join(" "),
        "registration_client_uri": format!("{issuer}/register/{id}"),
    });
    for (member, value) in [
        ("backchannel_logout_uri", &s.backchannel_logout_uri),
        ("logo_uri", &s.logo_uri),
        ("policy_uri", &s.policy_uri),
        ("tos_uri", &s.tos_uri),
    ] {
        if let Some(v) = value {
            out[member] = json!(v);
        }
    }
    if let Some(jwks) = &s.jwks {
        out["jwks"] = json!(jwks);
    }
    if let Some(uri) = &s.jwks_uri {
        out["jwks_uri"] = json!(uri);
    }
    out["id_token_signed_response_alg"] = json!(s.signing_algorithm.as_str());
    if let Some(alg) = s.userinfo_signed_response_alg {
        out["userinfo_signed_response_alg"] = json!(alg.as_str());
    }
    if !s.request_uris.is_empty() {
        out["request_uris"] = json!(s.request_uris);
    }
    if let Some(alg) = &s.request_object_signing_alg {
        out["request_object_signing_alg"] = json!(alg);
    }
    if let Some(created) = &client.metadata.creation_timestamp {
        out["client_id_issued_at"] = json!(created.0.as_second());
    }
    // A private_key_jwt client never authenticates with a secret: none is handed out.
    if let Some(secret) =
        secret.filter(|_| s.token_endpoint_auth_method() != TokenEndpointAuthMethod::PrivateKeyJwt)
    {
        out["client_secret"] = json!(secret);
        out["client_secret_expires_at"] = json!(0);
    }
    if let Some(token) = token {
        out["registration_access_token"] = json!(token);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// RFC 7591 and OpenID Connect Dynamic Client Registration metadata for private_key_jwt,
    /// request objects and signed responses: kept when sound, refused with the reason.
    #[tokio::test]
    async fn key_and_signing_metadata_is_mapped_or_refused() {
        let settings = Settings {
            policy: Policy::Open,
            allow_private_urls: false,
            consent: ConsentPolicy::Once,
            quota: 10,
        };
        let key = crds::keys::generate(crds::Algorithm::ES256, 2048)
            .unwrap()
            .jwk;
        let mut kidless = serde_json::to_value(&key).unwrap();
        kidless.as_object_mut().unwrap().remove("kid");
        let base = json!({
            "redirect_uris": ["https://app.example/cb"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [kidless]},
            "id_token_signed_response_alg": "ES256",
            "userinfo_signed_response_alg": "RS256",
            "request_object_signing_alg": "RS256",
        });
        let spec = spec_from_metadata(&settings, &base).await.unwrap();
        // A key without kid is named by its thumbprint.
        assert_eq!(spec.jwks.unwrap().keys[0].kid, key.kid);
        assert_eq!(spec.signing_algorithm, crds::Algorithm::ES256);
        assert_eq!(
            spec.userinfo_signed_response_alg,
            Some(crds::Algorithm::RS256)
        );
        assert_eq!(spec.request_object_signing_alg.as_deref(), Some("RS256"));
        // pyoidc's relative request_uris are left out, not refused.
        let mut relative = base.clone();
        relative["request_uris"] = json!("requests/abc");
        let spec = spec_from_metadata(&settings, &relative).await.unwrap();
        assert!(spec.request_uris.is_empty());
        // client_secret_jwt, with an HMAC algorithm for its assertions.
        let hmac = json!({
            "redirect_uris": ["https://app.example/cb"],
            "token_endpoint_auth_method": "client_secret_jwt",
            "token_endpoint_auth_signing_alg": "HS256",
        });
        let spec = spec_from_metadata(&settings, &hmac).await.unwrap();
        assert_eq!(
            spec.token_endpoint_auth_method,
            Some(TokenEndpointAuthMethod::ClientSecretJwt)
        );
        assert!(spec.uses_secret() && spec.needs_recoverable_secret());
        let refused = |change: Value| {
            let mut m = base.clone();
            for (k, v) in change.as_object().unwrap() {
                m[k] = v.clone();
            }
            let settings = &settings;
            async move {
                spec_from_metadata(settings, &m)
                    .await
                    .unwrap_err()
                    .to_string()
            }
        };
        let mut private = serde_json::to_value(&key).unwrap();
        private["d"] = json!("c2VjcmV0");
        for (change, why) in [
            (json!({"jwks": {"keys": [private]}}), "private key material"),
            (
                json!({"id_token_signed_response_alg": "none"}),
                "not supported",
            ),
            // HMAC is for client_secret_jwt, not for a client that has keys.
            (
                json!({"token_endpoint_auth_signing_alg": "HS256"}),
                "HS256 is not supported",
            ),
            (
                json!({"request_uris": ["https://10.0.0.1/r"]}),
                "private or loopback",
            ),
            (
                json!({"jwks_uri": "https://169.254.169.254/jwks"}),
                "private or loopback",
            ),
            (
                json!({"token_endpoint_auth_signing_alg": "HS256"}),
                "not supported",
            ),
        ] {
            let e = refused(change.clone()).await;
            assert!(e.contains(why), "{change}: {e}");
        }
    }

    #[test]
    fn private_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "0.0.0.0",
        ] {
            assert!(
                is_private(
                    ip.parse()
                        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
                ),
                "{ip}"
            );
        }
        for ip in ["93.184.216.34", "2606:2800:220:1::1"] {
            assert!(
                !is_private(
                    ip.parse()
                        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
                ),
                "{ip}"
            );
        }
    }
}
