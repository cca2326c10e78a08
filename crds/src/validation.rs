//! Semantic validation shared by the operator and the provider's standalone mode.
//!
//! It repeats the CEL rules of the CRDs (so objects read from files get the same answers as
//! objects that passed an apiserver) and adds checks CEL cannot express.

use std::collections::HashSet;

use crate::{
    Algorithm, ClientType, GrantType, OidcClient, OidcScope, SigningKeySpec,
    TokenEndpointAuthMethod,
};

/// Why an object is invalid: a stable label for conditions, Events and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    InvalidRedirectUri,
    InvalidClientId,
    InvalidAuthMethod,
    InvalidGrantTypes,
    UnsupportedGrantType,
    UnsupportedAuthMethod,
    InvalidScope,
    InvalidDuration,
    InvalidSecretName,
    InvalidKeySize,
    InvalidRotation,
    InvalidConnector,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRedirectUri => "InvalidRedirectUri",
            Self::InvalidClientId => "InvalidClientId",
            Self::InvalidAuthMethod => "InvalidAuthMethod",
            Self::InvalidGrantTypes => "InvalidGrantTypes",
            Self::UnsupportedGrantType => "UnsupportedGrantType",
            Self::UnsupportedAuthMethod => "UnsupportedAuthMethod",
            Self::InvalidScope => "InvalidScope",
            Self::InvalidDuration => "InvalidDuration",
            Self::InvalidSecretName => "InvalidSecretName",
            Self::InvalidKeySize => "InvalidKeySize",
            Self::InvalidRotation => "InvalidRotation",
            Self::InvalidConnector => "InvalidConnector",
        }
    }
}

/// One problem with an object: the field, a stable reason, and what to fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    pub field: String,
    pub reason: Reason,
    pub message: String,
}

fn invalid(field: impl Into<String>, reason: Reason, message: impl Into<String>) -> Invalid {
    Invalid {
        field: field.into(),
        reason,
        message: message.into(),
    }
}

/// Hosts for which plain http redirect URIs are allowed (RFC 8252 §7.3).
pub fn is_loopback_host(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "::1" | "[::1]")
}

/// Checks a redirect URI as the CRD's CEL rules do: absolute with a host, no fragment, https
/// unless the host is loopback.
pub fn validate_redirect_uri(uri: &str) -> Result<url::Url, String> {
    if uri.contains('#') {
        return Err(format!("\"{uri}\" must not contain a fragment (#...)"));
    }
    let absolute = || {
        format!(
            "\"{uri}\" must be an absolute URL with a host, such as https://app.example.com/callback"
        )
    };
    // `url` accepts "https:/host" for special schemes; the apiserver (Go) does not.
    let Some((scheme, rest)) = uri.split_once("://") else {
        return Err(absolute());
    };
    if scheme.is_empty() || rest.is_empty() {
        return Err(absolute());
    }
    let parsed = url::Url::parse(uri).map_err(|_| absolute())?;
    let host = parsed.host_str().unwrap_or_default();
    if host.is_empty() {
        return Err(absolute());
    }
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if is_loopback_host(host) => Ok(parsed),
        _ => Err(format!(
            "\"{uri}\" must use https; http is allowed only on a loopback host (localhost, 127.0.0.1, [::1])"
        )),
    }
}

/// RFC 6749 §3.3 scope-token.
pub fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

fn is_client_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'))
}

/// A DNS subdomain (RFC 1123), the form of a Secret name.
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn positive(d: &kube::core::Duration) -> bool {
    !d.is_negative() && !std::time::Duration::from(*d).is_zero()
}

fn duplicates<T: Eq + std::hash::Hash>(items: &[T]) -> Option<&T> {
    let mut seen = HashSet::new();
    items.iter().find(|i| !seen.insert(*i))
}

/// `private_key_jwt` needs the client's public keys (jwks or jwksUri, one of them), and only
/// `private_key_jwt` uses them.
fn client_key_problems(
    spec: &crate::OidcClientSpec,
    method: TokenEndpointAuthMethod,
) -> Vec<Invalid> {
    let mut out = Vec::new();
    let keys = spec.jwks.is_some() as u8 + spec.jwks_uri.is_some() as u8;
    if method == TokenEndpointAuthMethod::PrivateKeyJwt && keys != 1 {
        out.push(invalid(
            "spec.jwks",
            Reason::InvalidAuthMethod,
            "private_key_jwt needs the client's public keys: set jwks (a JWK Set) or jwksUri, one of them",
        ));
    }
    if method != TokenEndpointAuthMethod::PrivateKeyJwt && keys > 0 {
        out.push(invalid(
            "spec.jwks",
            Reason::InvalidAuthMethod,
            "jwks and jwksUri are used only by tokenEndpointAuthMethod private_key_jwt: remove them or set that method",
        ));
    }
    if let Some(uri) = &spec.jwks_uri
        && let Err(message) = validate_redirect_uri(uri)
    {
        out.push(invalid("spec.jwksUri", Reason::InvalidAuthMethod, message));
    }
    if let Some(jwks) = &spec.jwks {
        let mut kids = Vec::new();
        for (i, jwk) in jwks.keys.iter().enumerate() {
            if let Err(e) = crate::keys::client_key_algorithms(jwk) {
                out.push(invalid(
                    format!("spec.jwks.keys[{i}]"),
                    Reason::InvalidAuthMethod,
                    e.to_string(),
                ));
            }
            kids.push(&jwk.kid);
        }
        if let Some(dup) = duplicates(&kids) {
            out.push(invalid(
                "spec.jwks.keys",
                Reason::InvalidAuthMethod,
                format!("kid {dup:?} is used by two keys"),
            ));
        }
    }
    out
}

/// Every problem with an OidcClient that can be seen without looking at other objects.
pub fn validate_client(client: &OidcClient) -> Vec<Invalid> {
    let spec = &client.spec;
    let mut out = Vec::new();
    let client_id = client.client_id();
    if !is_client_id(&client_id) {
        out.push(invalid(
            "spec.clientId",
            Reason::InvalidClientId,
            format!(
                "\"{client_id}\": clientId may contain only letters, digits and the characters . _ ~ - (at most 128)"
            ),
        ));
    }
    let method = spec.token_endpoint_auth_method();
    match spec.type_ {
        ClientType::Public if method != TokenEndpointAuthMethod::None => out.push(invalid(
            "spec.tokenEndpointAuthMethod",
            Reason::InvalidAuthMethod,
            "a public client cannot keep a secret: set tokenEndpointAuthMethod to none (or leave it unset), or set type: confidential",
        )),
        ClientType::Confidential if method == TokenEndpointAuthMethod::None => out.push(invalid(
            "spec.tokenEndpointAuthMethod",
            Reason::InvalidAuthMethod,
            "a confidential client must authenticate: use client_secret_basic, client_secret_post, client_secret_jwt or private_key_jwt, or set type: public",
        )),
        _ => {}
    }
    out.extend(client_key_problems(spec, method));
    if spec.type_ == ClientType::Public && spec.require_pkce == Some(false) {
        out.push(invalid(
            "spec.requirePkce",
            Reason::InvalidAuthMethod,
            "public clients always use PKCE: remove requirePkce or set it to true",
        ));
    }

    let grants = &spec.grant_types;
    let has = |g: GrantType| grants.contains(&g);
    if grants.is_empty() && !spec.response_types.iter().any(|t| t.is_implicit()) {
        out.push(invalid(
            "spec.grantTypes",
            Reason::InvalidGrantTypes,
            "grantTypes must name at least one grant type",
        ));
    }
    if let Some(dup) = duplicates(grants) {
        out.push(invalid(
            "spec.grantTypes",
            Reason::InvalidGrantTypes,
            format!("{} is listed twice", dup.as_str()),
        ));
    }
    for grant in grants.iter().filter(|g| !g.is_served()) {
        out.push(invalid(
            "spec.grantTypes",
            Reason::UnsupportedGrantType,
            format!(
                "{} is not served by this kube-oidc release: remove it from grantTypes",
                grant.as_str()
            ),
        ));
    }
    if spec.type_ == ClientType::Public && has(GrantType::ClientCredentials) {
        out.push(invalid(
            "spec.grantTypes",
            Reason::InvalidGrantTypes,
            "the client_credentials grant needs a client that can authenticate: set type: confidential or remove client_credentials from grantTypes",
        ));
    }
    if has(GrantType::RefreshToken)
        && !has(GrantType::AuthorizationCode)
        && !has(GrantType::DeviceCode)
    {
        out.push(invalid(
            "spec.grantTypes",
            Reason::InvalidGrantTypes,
            "refresh tokens are issued only with the authorization_code grant or the device code grant: add one of them to grantTypes or remove refresh_token",
        ));
    }
    let implicit = spec.response_types.iter().find(|t| t.is_implicit());
    if let Some(t) = implicit
        && spec.redirect_uris.is_empty()
    {
        out.push(invalid(
            "spec.redirectUris",
            Reason::InvalidRedirectUri,
            format!(
                "response type {} needs at least one entry in redirectUris",
                t.as_str()
            ),
        ));
    }
    if let Some(t) = spec.response_types.iter().find(|t| t.has_id_token())
        && !spec.scopes.iter().any(|s| s == "openid")
    {
        out.push(invalid(
            "spec.responseTypes",
            Reason::InvalidGrantTypes,
            format!(
                "response type {} returns an ID token: add openid to scopes",
                t.as_str()
            ),
        ));
    }
    if let Some(dup) = duplicates(&spec.response_types) {
        out.push(invalid(
            "spec.responseTypes",
            Reason::InvalidGrantTypes,
            format!("{} is listed twice", dup.as_str()),
        ));
    }
    if has(GrantType::AuthorizationCode) && spec.redirect_uris.is_empty() {
        out.push(invalid(
            "spec.redirectUris",
            Reason::InvalidRedirectUri,
            "the authorization_code grant needs at least one entry in redirectUris (or remove authorization_code from grantTypes)",
        ));
    }

    for (field, uris) in [
        ("spec.redirectUris", &spec.redirect_uris),
        (
            "spec.postLogoutRedirectUris",
            &spec.post_logout_redirect_uris,
        ),
    ] {
        for (i, uri) in uris.iter().enumerate() {
            if let Err(message) = validate_redirect_uri(uri) {
                out.push(invalid(
                    format!("{field}[{i}]"),
                    Reason::InvalidRedirectUri,
                    message,
                ));
            }
        }
        if let Some(dup) = duplicates(uris) {
            out.push(invalid(
                field,
                Reason::InvalidRedirectUri,
                format!("\"{dup}\" is listed twice"),
            ));
        }
    }
    for (i, uri) in spec.request_uris.iter().enumerate() {
        if validate_redirect_uri(uri.split('#').next().unwrap_or_default()).is_err() {
            out.push(invalid(
                format!("spec.requestUris[{i}]"),
                Reason::InvalidRedirectUri,
                "request URIs must be absolute https URLs (http only on a loopback host)",
            ));
        }
    }
    if let Some(alg) = &spec.request_object_signing_alg
        && alg != "none"
        && !crate::keys::CLIENT_KEY_ALGORITHMS.contains(&alg.as_str())
    {
        out.push(invalid(
            "spec.requestObjectSigningAlg",
            Reason::InvalidAuthMethod,
            format!(
                "{alg} is not supported: use none or one of {}",
                crate::keys::CLIENT_KEY_ALGORITHMS.join(", ")
            ),
        ));
    }
    for (field, uri) in [
        ("spec.backchannelLogoutUri", &spec.backchannel_logout_uri),
        ("spec.logoUri", &spec.logo_uri),
        ("spec.policyUri", &spec.policy_uri),
        ("spec.tosUri", &spec.tos_uri),
    ] {
        if let Some(uri) = uri
            && let Err(message) = validate_redirect_uri(uri)
        {
            out.push(invalid(field, Reason::InvalidRedirectUri, message));
        }
    }

    for scope in &spec.scopes {
        if !is_scope_token(scope) {
            out.push(invalid(
                "spec.scopes",
                Reason::InvalidScope,
                format!(
                    "\"{scope}\" is not a scope name: one word of printable ASCII without spaces, double quotes or backslashes (RFC 6749 §3.3)"
                ),
            ));
        }
    }
    for scope in spec.default_scopes() {
        if !spec.scopes.contains(scope) {
            out.push(invalid(
                "spec.defaultScopes",
                Reason::InvalidScope,
                format!("defaultScopes: \"{scope}\" must also be listed in scopes"),
            ));
        }
    }

    for (field, ttl) in [
        ("accessTokenTtl", &spec.access_token_ttl),
        ("idTokenTtl", &spec.id_token_ttl),
        ("refreshTokenTtl", &spec.refresh_token_ttl),
    ] {
        if !positive(ttl) {
            out.push(invalid(
                format!("spec.{field}"),
                Reason::InvalidDuration,
                duration_message(field),
            ));
        }
    }

    let secret_name = client.secret_name();
    if !is_dns_subdomain(&secret_name) {
        out.push(invalid(
            "spec.secretName",
            Reason::InvalidSecretName,
            format!("\"{secret_name}\" is not a valid Secret name: lowercase letters, digits, '-' and '.'"),
        ));
    }
    out
}

/// What to fix in a duration field (the words of its CEL rule).
pub fn duration_message(field: &str) -> String {
    format!("{field} must be a positive duration such as 720h, 15m or 90s")
}

/// Every problem with an OidcScope.
pub fn validate_scope(scope: &OidcScope) -> Vec<Invalid> {
    let mut out = Vec::new();
    let name = scope.scope();
    if !is_scope_token(&name) {
        out.push(invalid(
            "spec.name",
            Reason::InvalidScope,
            format!(
                "\"{name}\": name must be one word of printable ASCII without spaces, double quotes or backslashes (RFC 6749 §3.3)"
            ),
        ));
    }
    if let Some(dup) = duplicates(&scope.spec.claims) {
        out.push(invalid(
            "spec.claims",
            Reason::InvalidScope,
            format!("claim \"{dup}\" is listed twice"),
        ));
    }
    out
}

/// Every problem with a SigningKey spec.
pub fn validate_signing_key(spec: &SigningKeySpec) -> Vec<Invalid> {
    let mut out = Vec::new();
    match (spec.algorithm, spec.key_size) {
        (Algorithm::RS256 | Algorithm::PS256, Some(bits))
            if ![2048, 3072, 4096].contains(&bits) =>
        {
            out.push(invalid(
                "spec.keySize",
                Reason::InvalidKeySize,
                "keySize must be 2048, 3072 or 4096",
            ))
        }
        (Algorithm::ES256 | Algorithm::EdDSA, Some(_)) => out.push(invalid(
            "spec.keySize",
            Reason::InvalidKeySize,
            "keySize applies only to RSA algorithms (RS256, PS256): remove it for ES256 and EdDSA",
        )),
        _ => {}
    }
    let r = &spec.rotation;
    for (field, d) in [
        ("interval", &r.interval),
        ("prepublish", &r.prepublish),
        ("retain", &r.retain),
    ] {
        if !positive(d) {
            out.push(invalid(
                format!("spec.rotation.{field}"),
                Reason::InvalidRotation,
                duration_message(field),
            ));
        }
    }
    if r.prepublish >= r.interval {
        out.push(invalid(
            "spec.rotation.prepublish",
            Reason::InvalidRotation,
            "prepublish must be shorter than interval: a key is published this long before it signs, within one interval",
        ));
    }
    if r.retain >= r.interval {
        out.push(invalid(
            "spec.rotation.retain",
            Reason::InvalidRotation,
            "retain must be shorter than interval: a retired key stays published this long after it stopped signing",
        ));
    }
    out
}

/// An IdentityConnector's spec, as the CRD's rules and the operator check it (standalone mode
/// has no API server to run the rules).
pub fn validate_connector(spec: &crate::connector::IdentityConnectorSpec) -> Vec<Invalid> {
    let mut out = Vec::new();
    if !spec.settings_match_type() {
        out.push(invalid(
            "spec",
            Reason::InvalidConnector,
            "set the settings of the connector's type, and only those: spec.oidc for type oidc, spec.ldap for type ldap, neither for type local",
        ));
    }
    if let Some(oidc) = &spec.oidc {
        if let Err(message) = validate_redirect_uri(&oidc.issuer) {
            out.push(invalid(
                "spec.oidc.issuer",
                Reason::InvalidConnector,
                message,
            ));
        }
        if !oidc.scopes.iter().any(|s| s == "openid") {
            out.push(invalid(
                "spec.oidc.scopes",
                Reason::InvalidConnector,
                "the scopes must include openid: the upstream's ID token says who signed in",
            ));
        }
    }
    if let Some(ldap) = &spec.ldap {
        let secure =
            ldap.url.starts_with("ldaps://") || (ldap.url.starts_with("ldap://") && ldap.start_tls);
        if !secure {
            out.push(invalid(
                "spec.ldap.url",
                Reason::InvalidConnector,
                "use ldaps://, or ldap:// with startTLS: true: passwords never cross the network in clear",
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn client(yaml: &str) -> OidcClient {
        serde_yaml::from_str(&format!(
            "apiVersion: kubeoidc.dev/v1alpha1\nkind: OidcClient\nmetadata:\n  name: app\n  namespace: team\nspec:\n{yaml}"
        ))
        .unwrap()
    }

    fn reasons(yaml: &str) -> Vec<String> {
        validate_client(&client(yaml))
            .into_iter()
            .map(|i| i.to_string())
            .collect()
    }

    #[test]
    fn redirect_uris() {
        for ok in [
            "https://app.example.com/cb",
            "https://app.example.com:8443/cb?x=1",
            "http://127.0.0.1:8250/callback",
            "http://[::1]/cb",
            "http://localhost/cb",
        ] {
            assert!(validate_redirect_uri(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("https://app.example.com/cb#x", "fragment"),
            ("/callback", "absolute"),
            ("https:/app.example.com", "absolute"),
            ("app.example.com/cb", "absolute"),
            ("http://app.example.com/cb", "https"),
            ("http://127.0.0.1.example.com/cb", "https"),
            ("javascript://alert(1)", "https"),
            ("com.example.app:/cb", "absolute"),
        ] {
            let err = validate_redirect_uri(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn defaults_and_effective_values() {
        let c = client("  redirectUris: [https://a.example.com/cb]\n");
        assert_eq!(c.client_id(), "team.app");
        assert_eq!(c.secret_name(), "app-oidc");
        assert!(!c.spec.require_pkce());
        assert_eq!(
            c.spec.token_endpoint_auth_method(),
            TokenEndpointAuthMethod::ClientSecretBasic
        );
        assert_eq!(
            c.spec.grant_types,
            vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
        );
        assert!(validate_client(&c).is_empty());

        let p = client("  type: public\n  redirectUris: [http://127.0.0.1/cb]\n");
        assert!(p.spec.require_pkce());
        assert_eq!(
            p.spec.token_endpoint_auth_method(),
            TokenEndpointAuthMethod::None
        );
        assert!(validate_client(&p).is_empty());
    }

    #[test]
    fn private_key_jwt_needs_one_source_of_valid_public_keys() {
        let reasons = |extra: &str| {
            validate_client(&client(&format!(
                "  grantTypes: [client_credentials]\n  tokenEndpointAuthMethod: private_key_jwt\n{extra}"
            )))
            .into_iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
        };
        assert!(reasons("")[0].contains("set jwks (a JWK Set) or jwksUri"));
        let key = crate::keys::generate(crate::Algorithm::ES256, 2048)
            .unwrap()
            .jwk;
        let jwks = serde_json::json!({"keys": [key]}).to_string();
        assert_eq!(reasons(&format!("  jwks: {jwks}\n")), Vec::<String>::new());
        assert_eq!(
            reasons("  jwksUri: https://app.example/jwks\n"),
            Vec::<String>::new()
        );
        assert_eq!(
            reasons(&format!(
                "  jwks: {jwks}\n  jwksUri: https://app.example/jwks\n"
            ))
            .len(),
            1
        );
        assert!(reasons("  jwksUri: http://app.example/jwks\n")[0].contains("https"));
        // A truncated key, and keys where no private_key_jwt uses them.
        let mut short = key.clone();
        short.x = Some("AAAA".into());
        let p = reasons(&format!(
            "  jwks: {}\n",
            serde_json::json!({"keys": [short]})
        ));
        assert!(p[0].contains("member x has 3 bytes"), "{p:?}");
        let p = validate_client(&client(&format!(
            "  grantTypes: [client_credentials]\n  jwks: {jwks}\n"
        )));
        assert!(p[0].message.contains("used only by"), "{p:?}");
    }

    #[test]
    fn a_grant_the_provider_does_not_serve_is_named() {
        let problems = validate_client(&client(
            "  grantTypes: [client_credentials, urn:ietf:params:oauth:grant-type:token-exchange]\n",
        ));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].reason, Reason::UnsupportedGrantType);
        assert!(
            problems[0]
                .message
                .contains("urn:ietf:params:oauth:grant-type:token-exchange"),
            "{problems:?}"
        );
    }

    #[test]
    fn client_rules_match_the_cel_rules() {
        let cases = [
            (
                "  type: public\n  tokenEndpointAuthMethod: client_secret_post\n  redirectUris: [http://127.0.0.1/cb]\n",
                "public client cannot keep a secret",
            ),
            (
                "  tokenEndpointAuthMethod: none\n  redirectUris: [https://a.example.com/cb]\n",
                "confidential client must authenticate",
            ),
            (
                "  type: public\n  requirePkce: false\n  redirectUris: [http://127.0.0.1/cb]\n",
                "always use PKCE",
            ),
            (
                "  type: public\n  grantTypes: [client_credentials]\n",
                "client_credentials grant needs",
            ),
            (
                "  displayName: x\n",
                "needs at least one entry in redirectUris",
            ),
            (
                "  grantTypes: [client_credentials, refresh_token]\n",
                "refresh tokens are issued only",
            ),
            (
                "  redirectUris: [https://a.example.com/cb]\n  scopes: [openid]\n  defaultScopes: [email]\n",
                "\"email\" must also be listed",
            ),
            (
                "  redirectUris: [https://a.example.com/cb]\n  scopes: [\"read all\"]\n",
                "is not a scope name",
            ),
            (
                "  clientId: team/app\n  redirectUris: [https://a.example.com/cb]\n",
                "clientId may contain only",
            ),
            (
                "  redirectUris: [https://a.example.com/cb]\n  idTokenTtl: 0s\n",
                "idTokenTtl must be a positive duration",
            ),
            (
                "  redirectUris: [http://a.example.com/cb]\n",
                "must use https",
            ),
            (
                "  redirectUris: [https://a.example.com/cb, https://a.example.com/cb]\n",
                "listed twice",
            ),
            (
                "  redirectUris: [https://a.example.com/cb]\n  secretName: Bad_Name\n",
                "not a valid Secret name",
            ),
            (
                "  redirectUris: [https://a.example.com/cb]\n  backchannelLogoutUri: http://rp.example.com/logout\n",
                "must use https",
            ),
        ];
        for (yaml, needle) in cases {
            let got = reasons(yaml);
            assert!(
                got.iter().any(|m| m.contains(needle)),
                "{yaml}: expected {needle:?}, got {got:?}"
            );
        }
    }

    #[test]
    fn unknown_enum_values_do_not_deserialize() {
        let err = serde_yaml::from_str::<OidcClient>(
            "apiVersion: kubeoidc.dev/v1alpha1\nkind: OidcClient\nmetadata: {name: a}\nspec:\n  grantTypes: [password]\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("password"), "{err}");
    }

    fn key(yaml: &str) -> SigningKeySpec {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn signing_key_rules() {
        assert!(validate_signing_key(&key("{}")).is_empty());
        assert_eq!(key("{}").rsa_bits(), Some(2048));
        assert_eq!(key("algorithm: ES256").rsa_bits(), None);
        let cases = [
            ("algorithm: ES256\nkeySize: 2048", "applies only to RSA"),
            ("keySize: 1024", "2048, 3072 or 4096"),
            (
                "rotation: {interval: 1h, prepublish: 2h, retain: 30m}",
                "prepublish must be shorter",
            ),
            (
                "rotation: {interval: 1h, prepublish: 10m, retain: 1h}",
                "retain must be shorter",
            ),
            (
                "rotation: {interval: 6s, prepublish: 0s, retain: 2s}",
                "prepublish must be a positive",
            ),
        ];
        for (yaml, needle) in cases {
            let got: Vec<String> = validate_signing_key(&key(yaml))
                .into_iter()
                .map(|i| i.to_string())
                .collect();
            assert!(got.iter().any(|m| m.contains(needle)), "{yaml}: {got:?}");
        }
    }

    #[test]
    fn scope_tokens() {
        assert!(is_scope_token("orders:read"));
        assert!(is_scope_token("https://api.example.com/read"));
        assert!(!is_scope_token("read all"));
        assert!(!is_scope_token("a\"b"));
        assert!(!is_scope_token("a\\b"));
        assert!(!is_scope_token(""));
        let s: OidcScope = serde_yaml::from_str(
            "apiVersion: kubeoidc.dev/v1alpha1\nkind: OidcScope\nmetadata: {name: x}\nspec:\n  name: \"read all\"\n",
        )
        .unwrap();
        assert_eq!(validate_scope(&s).len(), 1);
    }

    #[test]
    fn builtin_scopes() {
        assert!(crate::scope::builtin("openid").is_some());
        assert_eq!(
            crate::scope::builtin("email").map(|s| s.claims),
            Some(&["email", "email_verified"][..])
        );
        assert!(crate::scope::builtin("orders:read").is_none());
    }
}
