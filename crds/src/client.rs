//! `OidcClient`: a relying party that may use the provider.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema, core::Duration};
use serde::{Deserialize, Serialize};

use crate::signing_key::{Algorithm, PublicJwk};

/// An OpenID Connect relying party (OAuth 2.0 client) served by kube-oidc.
///
/// The operator validates it, generates its credentials into the Secret `secretName` next to it,
/// and marks it Ready; the provider serves it from then on.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "kubeoidc.dev",
    version = "v1alpha1",
    kind = "OidcClient",
    namespaced,
    doc = "An OpenID Connect relying party (OAuth 2.0 client) served by kube-oidc.",
    status = "OidcClientStatus",
    shortname = "oidcc",
    category = "kube-oidc",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Client-ID", type_ = "string", json_path = ".status.clientId"),
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        priority = 1,
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = crate::cel::public_client_auth_none())]
#[x_kube(validation = crate::cel::confidential_client_authenticates())]
#[x_kube(validation = crate::cel::public_client_pkce())]
#[x_kube(validation = crate::cel::public_client_no_client_credentials())]
#[x_kube(validation = crate::cel::code_needs_redirect_uri())]
#[x_kube(validation = crate::cel::refresh_needs_code())]
#[x_kube(validation = crate::cel::default_scopes_allowed())]
pub struct OidcClientSpec {
    /// The OAuth 2.0 client_id the application sends. Defaults to `<namespace>.<name>`; must be
    /// unique in the cluster (the later of two clients with the same id is not served).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    #[x_kube(validation = crate::cel::client_id())]
    pub client_id: Option<String>,

    /// Human-readable name shown on the login and consent pages. Defaults to the clientId.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub display_name: Option<String>,

    /// A logo of the application, shown on its sign-in and consent pages (OpenID Connect
    /// Registration §2, `logo_uri`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    #[x_kube(validation = crate::cel::uri_rules("logoUri")[0].clone())]
    #[x_kube(validation = crate::cel::uri_rules("logoUri")[1].clone())]
    #[x_kube(validation = crate::cel::uri_rules("logoUri")[2].clone())]
    pub logo_uri: Option<String>,

    /// The application's privacy policy, linked from its sign-in and consent pages (`policy_uri`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    #[x_kube(validation = crate::cel::uri_rules("policyUri")[0].clone())]
    #[x_kube(validation = crate::cel::uri_rules("policyUri")[1].clone())]
    #[x_kube(validation = crate::cel::uri_rules("policyUri")[2].clone())]
    pub policy_uri: Option<String>,

    /// The application's terms of service, linked from its sign-in and consent pages (`tos_uri`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    #[x_kube(validation = crate::cel::uri_rules("tosUri")[0].clone())]
    #[x_kube(validation = crate::cel::uri_rules("tosUri")[1].clone())]
    #[x_kube(validation = crate::cel::uri_rules("tosUri")[2].clone())]
    pub tos_uri: Option<String>,

    /// `confidential` clients (server-side apps) authenticate with a secret; `public` clients
    /// (single-page apps, CLIs, mobile apps) cannot keep one and always use PKCE.
    #[serde(default, rename = "type")]
    pub type_: ClientType,

    /// Redirect URIs the authorization endpoint may send the browser back to, compared by exact
    /// string match. Absolute, without a fragment, https unless the host is loopback
    /// (localhost, 127.0.0.1, [::1]).
    #[serde(default)]
    #[schemars(length(max = 64), inner(length(max = 2048)))]
    #[x_kube(merge_strategy = kube::core::ListMerge::Set)]
    #[x_kube(validation = crate::cel::uri_list_rules("redirectUris")[0].clone())]
    #[x_kube(validation = crate::cel::uri_list_rules("redirectUris")[1].clone())]
    #[x_kube(validation = crate::cel::uri_list_rules("redirectUris")[2].clone())]
    pub redirect_uris: Vec<String>,

    /// URIs the end-session endpoint may redirect to after logout (exact match), with the same
    /// rules as redirectUris.
    #[serde(default)]
    #[schemars(length(max = 64), inner(length(max = 2048)))]
    #[x_kube(merge_strategy = kube::core::ListMerge::Set)]
    #[x_kube(validation = crate::cel::uri_list_rules("postLogoutRedirectUris")[0].clone())]
    #[x_kube(validation = crate::cel::uri_list_rules("postLogoutRedirectUris")[1].clone())]
    #[x_kube(validation = crate::cel::uri_list_rules("postLogoutRedirectUris")[2].clone())]
    pub post_logout_redirect_uris: Vec<String>,

    /// OpenID Connect Back-Channel Logout 1.0: the provider POSTs a logout token here when a
    /// session this client took part in ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    #[x_kube(validation = crate::cel::uri_rules("backchannelLogoutUri")[0].clone())]
    #[x_kube(validation = crate::cel::uri_rules("backchannelLogoutUri")[1].clone())]
    #[x_kube(validation = crate::cel::uri_rules("backchannelLogoutUri")[2].clone())]
    pub backchannel_logout_uri: Option<String>,

    /// The client's public keys, for `private_key_jwt` (RFC 7523): a JWK Set whose keys sign its
    /// client assertions. Only public members are kept; use either this or jwksUri.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<ClientJwks>,

    /// Where the client publishes its JWK Set, for `private_key_jwt`: fetched by the provider
    /// (https; not a private or loopback address unless the platform allows it), cached, and
    /// fetched again when an assertion names a key it does not know.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    #[x_kube(validation = crate::cel::uri_rules("jwksUri")[0].clone())]
    #[x_kube(validation = crate::cel::uri_rules("jwksUri")[1].clone())]
    #[x_kube(validation = crate::cel::uri_rules("jwksUri")[2].clone())]
    pub jwks_uri: Option<String>,

    /// Where the client publishes request objects (OpenID Connect Core §6.2): the only
    /// `request_uri` values the provider fetches for it (https; the fragment, if any, is part
    /// of the registered value and not sent).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(length(min = 1, max = 2048)))]
    #[x_kube(merge_strategy = kube::core::ListMerge::Set)]
    pub request_uris: Vec<String>,

    /// The algorithm the client signs its request objects with (`none` or one of
    /// private_key_jwt's): when set, request objects signed otherwise are refused. Signed
    /// request objects are verified against jwks / jwksUri.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 16))]
    pub request_object_signing_alg: Option<String>,

    /// OAuth 2.0 grant types the client may use at the token endpoint (none for a client of the
    /// implicit flow alone).
    #[serde(default = "default_grant_types")]
    #[schemars(length(max = 8))]
    #[x_kube(merge_strategy = kube::core::ListMerge::Set)]
    pub grant_types: Vec<GrantType>,

    /// Response types the client may request at the authorization endpoint.
    #[serde(default = "default_response_types")]
    #[schemars(length(min = 1, max = 6))]
    #[x_kube(merge_strategy = kube::core::ListMerge::Set)]
    pub response_types: Vec<ResponseType>,

    /// Require PKCE (RFC 7636, S256) on every authorization request. Always true for public
    /// clients; defaults to false for confidential ones so that older relying parties still work.
    /// A code requested with a code_challenge is redeemed only with its verifier either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_pkce: Option<bool>,

    /// Scopes the client may request. Each must be built in (openid, profile, email, address,
    /// phone, offline_access, groups) or defined by an OidcScope.
    #[serde(default = "default_scopes")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 256)))]
    #[x_kube(merge_strategy = kube::core::ListMerge::Set)]
    #[x_kube(validation = crate::cel::scope_token_list("scopes"))]
    pub scopes: Vec<String>,

    /// Scopes granted when an authorization request names none. Each must also be in scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 256)))]
    #[x_kube(merge_strategy = kube::core::ListMerge::Set)]
    pub default_scopes: Option<Vec<String>>,

    /// User claims put in the ID token although an access token is issued with it. OpenID
    /// Connect Core §5.4 returns the claims of the profile, email, address and phone scopes at
    /// userinfo then; list them here for verifiers that read only the ID token, such as
    /// kube-apiserver (`email` for a ClusterLogin's username). Only claims a granted scope
    /// releases are put in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(min = 1, max = 256)))]
    #[x_kube(merge_strategy = kube::core::ListMerge::Set)]
    pub id_token_claims: Vec<String>,

    /// Only people in one of these groups may use the client (their groups as the ID token
    /// carries them, an identity connector's prefix included); anyone when empty. Others get
    /// `access_denied` after signing in, never the consent page, and their refresh tokens stop
    /// working.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 256)))]
    #[x_kube(merge_strategy = kube::core::ListMerge::Set)]
    pub allowed_groups: Vec<String>,

    /// Only people signed in through one of these IdentityConnectors may use the client
    /// (`local` names the users Secret); any when empty. The sign-in page offers only these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(length(min = 1, max = 63)))]
    #[x_kube(merge_strategy = kube::core::ListMerge::Set)]
    pub allowed_connectors: Vec<String>,

    /// When the consent page is shown: `always`, `once` per user (remembered), or `skip` for
    /// first-party applications.
    #[serde(default)]
    pub consent: ConsentPolicy,

    /// How the client authenticates at the token endpoint. Defaults to client_secret_basic for
    /// confidential clients and none for public ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<TokenEndpointAuthMethod>,

    /// The Secret in the client's namespace that holds `client-id`, `client-secret` and
    /// `issuer-url`. Defaults to `<name>-oidc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = crate::cel::secret_name())]
    pub secret_name: Option<String>,

    /// The Secret `secretName` is provided by another tool (for example External Secrets): the
    /// operator waits for it and never writes it.
    #[serde(default)]
    pub external_secret: bool,

    /// Access token format: `jwt` (RFC 9068, verifiable offline) or `opaque` (checked through
    /// introspection).
    #[serde(default)]
    pub access_token_format: AccessTokenFormat,

    /// Algorithm of the keys that sign this client's tokens; a SigningKey with this algorithm
    /// must exist.
    #[serde(default)]
    pub signing_algorithm: Algorithm,

    /// Sign userinfo responses (`application/jwt`, with `iss` and `aud`) with a key of this
    /// algorithm, as OpenID Connect Core §5.3.2 allows; unset: plain JSON. A SigningKey with this
    /// algorithm must exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_signed_response_alg: Option<Algorithm>,

    /// Lifetime of access tokens.
    #[serde(default = "default_access_token_ttl")]
    #[schemars(length(max = 64), extend("default" = "1h"))]
    #[x_kube(validation = crate::cel::positive_duration("accessTokenTtl"))]
    pub access_token_ttl: Duration,

    /// Lifetime of ID tokens.
    #[serde(default = "default_id_token_ttl")]
    #[schemars(length(max = 64), extend("default" = "1h"))]
    #[x_kube(validation = crate::cel::positive_duration("idTokenTtl"))]
    pub id_token_ttl: Duration,

    /// Lifetime of refresh tokens; each use rotates the token and starts a new lifetime.
    #[serde(default = "default_refresh_token_ttl")]
    #[schemars(length(max = 64), extend("default" = "720h"))]
    #[x_kube(validation = crate::cel::positive_duration("refreshTokenTtl"))]
    pub refresh_token_ttl: Duration,
}

/// What the operator observed and decided about an OidcClient.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OidcClientStatus {
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Current state; `Ready` says whether the provider serves the client and, if not, what to fix.
    #[serde(default)]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// The effective client_id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,

    /// The Secret that holds the client's credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,

    /// Salted SHA-256 of the current client secret, so the provider verifies secrets without
    /// read access to application Secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_hash: Option<String>,

    /// The current secret sealed (AES-256-GCM) with the provider's sealing key, for
    /// client_secret_jwt only: the provider checks HMACs with the secret itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_secret: Option<String>,

    /// The previous secret after a rotation, accepted until `expiresAt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_secret: Option<PreviousSecret>,

    /// The last `kubeoidc.dev/rotate-secret` annotation value acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_rotate_secret: Option<String>,
}

/// A client secret that was rotated out but is still accepted for a grace period.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PreviousSecret {
    /// Salted SHA-256 of the previous secret.
    pub hash: String,
    /// The previous secret sealed, as `sealedSecret` (client_secret_jwt only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<String>,
    /// When the previous secret stops being accepted.
    pub expires_at: Time,
}

/// Whether the client can keep a secret (OAuth 2.0 §2.1).
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
#[serde(rename_all = "lowercase")]
pub enum ClientType {
    #[default]
    Confidential,
    Public,
}

/// Grant types of RFC 6749 and its extensions.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GrantType {
    #[serde(rename = "authorization_code")]
    AuthorizationCode,
    #[serde(rename = "refresh_token")]
    RefreshToken,
    #[serde(rename = "client_credentials")]
    ClientCredentials,
    #[serde(rename = "urn:ietf:params:oauth:grant-type:device_code")]
    DeviceCode,
    #[serde(rename = "urn:ietf:params:oauth:grant-type:token-exchange")]
    TokenExchange,
}

impl GrantType {
    /// Every grant type a client may list.
    pub const ALL: [GrantType; 5] = [
        Self::AuthorizationCode,
        Self::RefreshToken,
        Self::ClientCredentials,
        Self::DeviceCode,
        Self::TokenExchange,
    ];

    /// Whether this release of kube-oidc serves the grant at `/token`. A client that lists
    /// another one is not Ready: the provider would refuse every request it makes with it. The
    /// provider's token dispatch matches on the same variants (a test holds them together).
    pub fn is_served(self) -> bool {
        match self {
            Self::AuthorizationCode
            | Self::RefreshToken
            | Self::ClientCredentials
            | Self::DeviceCode => true,
            Self::TokenExchange => false,
        }
    }

    /// The served grants, in a stable order (discovery's `grant_types_supported`).
    pub fn served() -> impl Iterator<Item = GrantType> {
        Self::ALL.into_iter().filter(|g| g.is_served())
    }

    /// The grant type with this `grant_type` name.
    pub fn from_name(name: &str) -> Option<GrantType> {
        Self::ALL.into_iter().find(|g| g.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
            Self::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
            Self::TokenExchange => "urn:ietf:params:oauth:grant-type:token-exchange",
        }
    }
}

/// Authorization endpoint response types: the code flow, and the implicit and hybrid flows of
/// OpenID Connect Core §3.2 and §3.3, which return tokens from the authorization endpoint and
/// need a ClientPolicy with `allowImplicit` (RFC 9700 §2.1.2 advises against them).
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResponseType {
    #[serde(rename = "code")]
    Code,
    #[serde(rename = "id_token")]
    IdToken,
    #[serde(rename = "id_token token")]
    IdTokenToken,
    #[serde(rename = "code id_token")]
    CodeIdToken,
    #[serde(rename = "code token")]
    CodeToken,
    #[serde(rename = "code id_token token")]
    CodeIdTokenToken,
}

impl ResponseType {
    pub const ALL: [ResponseType; 6] = [
        Self::Code,
        Self::IdToken,
        Self::IdTokenToken,
        Self::CodeIdToken,
        Self::CodeToken,
        Self::CodeIdTokenToken,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Code => "code",
            Self::IdToken => "id_token",
            Self::IdTokenToken => "id_token token",
            Self::CodeIdToken => "code id_token",
            Self::CodeToken => "code token",
            Self::CodeIdTokenToken => "code id_token token",
        }
    }

    /// The response type a `response_type` parameter names: its values in any order
    /// (OAuth 2.0 Multiple Response Type Encoding §2).
    pub fn parse(value: &str) -> Option<Self> {
        let mut parts: Vec<&str> = value.split(' ').collect();
        parts.sort_unstable();
        if parts.windows(2).any(|w| w[0] == w[1]) {
            return None;
        }
        Self::ALL.into_iter().find(|t| {
            let mut own: Vec<&str> = t.as_str().split(' ').collect();
            own.sort_unstable();
            own == parts
        })
    }

    pub fn has_code(self) -> bool {
        matches!(
            self,
            Self::Code | Self::CodeIdToken | Self::CodeToken | Self::CodeIdTokenToken
        )
    }

    pub fn has_id_token(self) -> bool {
        matches!(
            self,
            Self::IdToken | Self::IdTokenToken | Self::CodeIdToken | Self::CodeIdTokenToken
        )
    }

    pub fn has_access_token(self) -> bool {
        matches!(
            self,
            Self::IdTokenToken | Self::CodeToken | Self::CodeIdTokenToken
        )
    }

    /// Tokens come back from the authorization endpoint: the implicit and hybrid flows.
    pub fn is_implicit(self) -> bool {
        self != Self::Code
    }
}

/// When the consent page is shown.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
#[serde(rename_all = "lowercase")]
pub enum ConsentPolicy {
    Always,
    #[default]
    Once,
    Skip,
}

/// Client authentication at the token endpoint (OpenID Connect Core §9).
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TokenEndpointAuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    /// A JWT signed with HMAC keyed by the client secret (RFC 7523). The provider must recover
    /// the secret, so the operator keeps it sealed in status (see `crds::sealed`).
    ClientSecretJwt,
    PrivateKeyJwt,
    None,
}

/// A client's public keys (RFC 7517 §5).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientJwks {
    /// The keys; each names its `kid`.
    #[schemars(length(min = 1, max = 16))]
    pub keys: Vec<PublicJwk>,
}

/// Access token format.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
#[serde(rename_all = "lowercase")]
pub enum AccessTokenFormat {
    #[default]
    Jwt,
    Opaque,
}

fn default_grant_types() -> Vec<GrantType> {
    vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
}

fn default_response_types() -> Vec<ResponseType> {
    vec![ResponseType::Code]
}

fn default_scopes() -> Vec<String> {
    ["openid", "profile", "email", "offline_access"]
        .into_iter()
        .map(String::from)
        .collect()
}

fn hours(h: u64) -> Duration {
    std::time::Duration::from_secs(h * 3600).into()
}

fn default_access_token_ttl() -> Duration {
    hours(1)
}

fn default_id_token_ttl() -> Duration {
    hours(1)
}

fn default_refresh_token_ttl() -> Duration {
    hours(720)
}

impl OidcClient {
    /// The effective client_id: `spec.clientId`, else `<namespace>.<name>`.
    pub fn client_id(&self) -> String {
        self.spec.client_id.clone().unwrap_or_else(|| {
            format!(
                "{}.{}",
                self.metadata.namespace.as_deref().unwrap_or("default"),
                self.metadata.name.as_deref().unwrap_or_default()
            )
        })
    }

    /// The effective Secret name: `spec.secretName`, else `<name>-oidc`.
    pub fn secret_name(&self) -> String {
        self.spec.secret_name.clone().unwrap_or_else(|| {
            format!("{}-oidc", self.metadata.name.as_deref().unwrap_or_default())
        })
    }
}

impl OidcClientSpec {
    /// PKCE is always required of public clients (RFC 9700 §2.1.1).
    pub fn require_pkce(&self) -> bool {
        self.type_ == ClientType::Public || self.require_pkce.unwrap_or(false)
    }

    /// Authenticates with a client secret (client_secret_basic, client_secret_post or
    /// client_secret_jwt).
    pub fn uses_secret(&self) -> bool {
        matches!(
            self.token_endpoint_auth_method(),
            TokenEndpointAuthMethod::ClientSecretBasic
                | TokenEndpointAuthMethod::ClientSecretPost
                | TokenEndpointAuthMethod::ClientSecretJwt
        )
    }

    /// The provider needs the secret itself, not only its hash (client_secret_jwt).
    pub fn needs_recoverable_secret(&self) -> bool {
        self.token_endpoint_auth_method() == TokenEndpointAuthMethod::ClientSecretJwt
    }

    /// The effective token endpoint authentication method.
    pub fn token_endpoint_auth_method(&self) -> TokenEndpointAuthMethod {
        self.token_endpoint_auth_method.unwrap_or(match self.type_ {
            ClientType::Confidential => TokenEndpointAuthMethod::ClientSecretBasic,
            ClientType::Public => TokenEndpointAuthMethod::None,
        })
    }

    /// Scopes granted when a request names none.
    pub fn default_scopes(&self) -> &[String] {
        self.default_scopes.as_deref().unwrap_or_default()
    }
}
