//! CEL rules (`x-kubernetes-validations`) checked by the apiserver at admission.
//!
//! Each rule has a message that says what to fix. The same checks exist in Rust in
//! [`crate::validation`] for objects that never pass an apiserver (standalone mode).

use kube::core::{Message, Rule};

/// Go `time.ParseDuration` syntax, as RE2 for CEL's `matches`.
pub const DURATION_RE: &str = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$";

fn rule(rule: impl Into<String>, message: &str) -> Rule {
    Rule::new(rule).message(message)
}

fn rule_expr(rule: impl Into<String>, message_expression: impl Into<String>) -> Rule {
    Rule::new(rule).message(Message::Expression(message_expression.into()))
}

/// A positive Go-style duration (`720h`, `15m`, `90s`).
pub fn positive_duration(field: &str) -> Rule {
    rule_expr(
        format!("self.matches(r'{DURATION_RE}') && duration(self) > duration('0s')"),
        format!(
            "'{field} must be a positive duration such as 720h, 15m or 90s, not \"' + self + '\"'"
        ),
    )
}

/// The three checks of a redirect URI, applied to every element of a list
/// (`redirectUris`, `postLogoutRedirectUris`).
pub fn uri_list_rules(field: &str) -> [Rule; 3] {
    [
        rule_expr(
            "self.all(u, !u.contains('#'))",
            format!(
                "'{field}: \"' + self.filter(u, u.contains('#'))[0] + '\" must not contain a fragment (#...)'"
            ),
        ),
        rule_expr(
            format!("self.all(u, {ABSOLUTE})"),
            format!(
                "'{field}: \"' + self.filter(u, !({ABSOLUTE}))[0] + '\" must be an absolute URL with a host, such as https://app.example.com/callback'"
            ),
        ),
        rule_expr(
            format!("self.all(u, {SECURE})"),
            format!(
                "'{field}: \"' + self.filter(u, !({SECURE}))[0] + '\" must use https; http is allowed only on a loopback host (localhost, 127.0.0.1, [::1])'"
            ),
        ),
    ]
}

/// The checks of [`uri_list_rules`] for one URI (`backchannelLogoutUri`).
pub fn uri_rules(field: &str) -> [Rule; 3] {
    [
        rule(
            "!self.contains('#')",
            &format!("{field} must not contain a fragment (#...)"),
        ),
        rule(
            ABSOLUTE.replace("(u)", "(self)"),
            &format!(
                "{field} must be an absolute URL with a host, such as https://app.example.com/logout"
            ),
        ),
        rule(
            SECURE.replace("(u)", "(self)"),
            &format!(
                "{field} must use https; http is allowed only on a loopback host (localhost, 127.0.0.1, [::1])"
            ),
        ),
    ]
}

const ABSOLUTE: &str = "isURL(u) && url(u).getScheme() != '' && url(u).getHostname() != ''";
const SECURE: &str = "!isURL(u) || url(u).getScheme() == 'https' || (url(u).getScheme() == 'http' && url(u).getHostname() in ['localhost', '127.0.0.1', '::1'])";

/// Scope tokens: RFC 6749 §3.3 `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
pub const SCOPE_TOKEN_RE: &str = r"^[!#-\[\]-~]+$";

pub fn scope_token_list(field: &str) -> Rule {
    rule_expr(
        format!("self.all(s, s.matches(r'{SCOPE_TOKEN_RE}'))"),
        format!(
            "'{field}: \"' + self.filter(s, !s.matches(r'{SCOPE_TOKEN_RE}'))[0] + '\" is not a scope name: one word of printable ASCII without spaces, double quotes or backslashes (RFC 6749 §3.3)'"
        ),
    )
}

pub fn scope_token(field: &str) -> Rule {
    rule(
        format!("self.matches(r'{SCOPE_TOKEN_RE}')"),
        &format!(
            "{field} must be one word of printable ASCII without spaces, double quotes or backslashes (RFC 6749 §3.3)"
        ),
    )
}

/// `client_id` characters: unreserved URI characters, so the id needs no escaping anywhere.
pub const CLIENT_ID_RE: &str = r"^[A-Za-z0-9._~-]+$";

pub fn client_id() -> Rule {
    rule(
        format!("self.matches(r'{CLIENT_ID_RE}')"),
        "clientId may contain only letters, digits and the characters . _ ~ -",
    )
}

/// A DNS subdomain, the form of a Secret name.
pub const DNS_SUBDOMAIN_RE: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

pub fn secret_name() -> Rule {
    rule(
        format!("self.matches(r'{DNS_SUBDOMAIN_RE}')"),
        "secretName must be a valid Secret name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit",
    )
}

// Cross-field rules of OidcClientSpec (`self` is the spec).

// Rules of IdentityConnectorSpec (`self` is the spec).

pub fn connector_settings_match_type() -> Rule {
    rule(
        "(self.type == 'oidc') == has(self.oidc) && (self.type == 'ldap') == has(self.ldap)",
        "set the settings of the connector's type, and only those: spec.oidc for type oidc, spec.ldap for type ldap, neither for type local",
    )
}

/// LDAP over TLS only: passwords never cross the network in clear.
pub fn ldap_over_tls() -> Rule {
    rule(
        "self.url.startsWith('ldaps://') || (self.url.startsWith('ldap://') && has(self.startTLS) && self.startTLS)",
        "use ldaps://, or ldap:// with startTLS: true: passwords never cross the network in clear",
    )
}

pub fn public_client_auth_none() -> Rule {
    rule(
        "self.type != 'public' || !has(self.tokenEndpointAuthMethod) || self.tokenEndpointAuthMethod == 'none'",
        "a public client cannot keep a secret: set tokenEndpointAuthMethod to none (or leave it unset), or set type: confidential",
    )
    .field_path(".tokenEndpointAuthMethod")
}

pub fn confidential_client_authenticates() -> Rule {
    rule(
        "self.type != 'confidential' || !has(self.tokenEndpointAuthMethod) || self.tokenEndpointAuthMethod != 'none'",
        "a confidential client must authenticate: use client_secret_basic, client_secret_post, client_secret_jwt or private_key_jwt, or set type: public",
    )
    .field_path(".tokenEndpointAuthMethod")
}

pub fn public_client_pkce() -> Rule {
    rule(
        "self.type != 'public' || !has(self.requirePkce) || self.requirePkce",
        "public clients always use PKCE: remove requirePkce or set it to true",
    )
    .field_path(".requirePkce")
}

pub fn public_client_no_client_credentials() -> Rule {
    rule(
        "self.type != 'public' || !self.grantTypes.exists(g, g == 'client_credentials')",
        "the client_credentials grant needs a client that can authenticate: set type: confidential or remove client_credentials from grantTypes",
    )
    .field_path(".grantTypes")
}

pub fn code_needs_redirect_uri() -> Rule {
    rule(
        "!self.grantTypes.exists(g, g == 'authorization_code') || (has(self.redirectUris) && size(self.redirectUris) > 0)",
        "the authorization_code grant needs at least one entry in redirectUris (or remove authorization_code from grantTypes)",
    )
    .field_path(".redirectUris")
}

pub fn refresh_needs_code() -> Rule {
    rule(
        "!self.grantTypes.exists(g, g == 'refresh_token') || self.grantTypes.exists(g, g == 'authorization_code' || g == 'urn:ietf:params:oauth:grant-type:device_code')",
        "refresh tokens are issued only with the authorization_code grant or the device code grant: add one of them to grantTypes or remove refresh_token",
    )
    .field_path(".grantTypes")
}

pub fn default_scopes_allowed() -> Rule {
    rule_expr(
        "!has(self.defaultScopes) || self.defaultScopes.all(s, s in self.scopes)",
        "'defaultScopes: \"' + self.defaultScopes.filter(s, !(s in self.scopes))[0] + '\" must also be listed in scopes'",
    )
    .field_path(".defaultScopes")
}

// SigningKey rules.

pub fn key_size_rsa_only() -> Rule {
    rule(
        "self.algorithm in ['RS256', 'PS256'] || !has(self.keySize)",
        "keySize applies only to RSA algorithms (RS256, PS256): remove it for ES256 and EdDSA",
    )
    .field_path(".keySize")
}

pub fn key_size() -> Rule {
    rule(
        "self in [2048, 3072, 4096]",
        "keySize must be 2048, 3072 or 4096",
    )
}

fn duration_lt(a: &str, b: &str, message: &str) -> Rule {
    rule(
        format!(
            "!self.{a}.matches(r'{DURATION_RE}') || !self.{b}.matches(r'{DURATION_RE}') || duration(self.{a}) < duration(self.{b})"
        ),
        message,
    )
    .field_path(format!(".{a}"))
}

pub fn prepublish_lt_interval() -> Rule {
    duration_lt(
        "prepublish",
        "interval",
        "prepublish must be shorter than interval: a key is published this long before it signs, within one interval",
    )
}

pub fn retain_lt_interval() -> Rule {
    duration_lt(
        "retain",
        "interval",
        "retain must be shorter than interval: a retired key stays published this long after it stopped signing",
    )
}

// ClusterLogin rules.

/// An object name in the namespace (a DNS subdomain).
pub fn object_name(field: &str) -> Rule {
    rule(
        format!("self.matches(r'{DNS_SUBDOMAIN_RE}')"),
        &format!(
            "{field} must be an object name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"
        ),
    )
}

/// Claim names the rendered CEL rules can name: an identifier.
pub const CLAIM_NAME_RE: &str = r"^[A-Za-z_][A-Za-z0-9_]*$";

pub fn claim_name() -> Rule {
    rule(
        format!("self.matches(r'{CLAIM_NAME_RE}')"),
        "claim must be a claim name of letters, digits and '_' (such as email, preferred_username, sub or groups)",
    )
}

pub fn exactly_one_ca_source() -> Rule {
    rule(
        "has(self.secret) != has(self.configMap)",
        "set exactly one of issuerCA.secret and issuerCA.configMap",
    )
}
