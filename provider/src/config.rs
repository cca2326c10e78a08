//! The in-memory view every request reads: clients, scopes, signing keys, users, and the
//! discovery document and JWKS rendered once per change.

use std::{collections::HashMap, sync::Arc, time::Duration};

use arc_swap::ArcSwap;
use crds::{
    AccessTokenFormat, Algorithm, BUILTIN_SCOPES, ConsentPolicy, GrantType, KeyState, OidcClient,
    OidcScope, PublicJwk, TokenEndpointAuthMethod,
};
use serde_json::json;

/// What `allowedConnectors` calls the users Secret's people.
pub const LOCAL_CONNECTOR: &str = "local";

use crate::{
    protocol::client_assertion::KeySet,
    signing::{Signer, Verifier},
    users::{User, Users},
};

/// A client as the provider serves it.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub id: String,
    pub name: String,
    pub public: bool,
    /// The one way it authenticates at the token endpoint family (`none` for public clients).
    pub auth_method: TokenEndpointAuthMethod,
    /// Its public keys (private_key_jwt): inline, or where to fetch them.
    pub jwks: Option<Arc<KeySet>>,
    pub jwks_uri: Option<String>,
    /// Request objects: the request_uri values it registered, and its signing algorithm.
    pub request_uris: Vec<String>,
    pub request_object_signing_alg: Option<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    pub grant_types: Vec<GrantType>,
    pub response_types: Vec<crds::ResponseType>,
    pub require_pkce: bool,
    pub scopes: Vec<String>,
    pub default_scopes: Vec<String>,
    /// Its logo, privacy policy and terms of service, shown on its sign-in and consent pages.
    pub logo_uri: Option<String>,
    pub policy_uri: Option<String>,
    pub tos_uri: Option<String>,
    /// Userinfo-only claims (OpenID Connect Core §5.4) put in its ID tokens all the same.
    pub id_token_claims: Vec<String>,
    /// Only members of these groups may use it (all when empty).
    pub allowed_groups: Vec<String>,
    pub allowed_connectors: Vec<String>,
    pub consent: ConsentPolicy,
    pub access_token_format: AccessTokenFormat,
    pub alg: Algorithm,
    /// Userinfo answered as a JWT signed with this algorithm.
    pub userinfo_alg: Option<Algorithm>,
    pub access_token_ttl: Duration,
    pub id_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// Salted hashes of the secrets accepted now (current, and the previous one in its grace
    /// period).
    pub secret_hashes: Vec<String>,
    /// The secrets themselves (current, and the previous one in its grace period), for
    /// client_secret_jwt only: the keys its HMAC-signed assertions verify with.
    pub hmac_secrets: Vec<HmacSecret>,
    /// The object's identity (metadata.uid; the client ID where there is none, in standalone
    /// mode): remembered consent belongs to it, so a new client reusing an ID starts with none.
    pub uid: String,
    /// How long a sign-in may be kept alive by refreshing, from its policy.
    pub max_session: Option<Duration>,
}

impl ClientConfig {
    pub fn from_resource(c: &OidcClient, secret_hashes: Vec<String>) -> Self {
        let s = &c.spec;
        Self {
            id: c.client_id(),
            name: s.display_name.clone().unwrap_or_else(|| c.client_id()),
            public: s.type_ == crds::ClientType::Public,
            auth_method: s.token_endpoint_auth_method(),
            jwks: s.jwks.as_ref().map(|j| Arc::new(KeySet::of(&j.keys))),
            jwks_uri: s.jwks_uri.clone(),
            request_uris: s.request_uris.clone(),
            request_object_signing_alg: s.request_object_signing_alg.clone(),
            redirect_uris: s.redirect_uris.clone(),
            post_logout_redirect_uris: s.post_logout_redirect_uris.clone(),
            backchannel_logout_uri: s.backchannel_logout_uri.clone(),
            grant_types: s.grant_types.clone(),
            response_types: s.response_types.clone(),
            require_pkce: s.require_pkce(),
            scopes: s.scopes.clone(),
            default_scopes: s.default_scopes().to_vec(),
            id_token_claims: s.id_token_claims.clone(),
            allowed_groups: s.allowed_groups.clone(),
            allowed_connectors: s.allowed_connectors.clone(),
            logo_uri: s.logo_uri.clone(),
            policy_uri: s.policy_uri.clone(),
            tos_uri: s.tos_uri.clone(),
            consent: s.consent,
            access_token_format: s.access_token_format,
            alg: s.signing_algorithm,
            userinfo_alg: s.userinfo_signed_response_alg,
            access_token_ttl: s.access_token_ttl.into(),
            id_token_ttl: s.id_token_ttl.into(),
            refresh_token_ttl: s.refresh_token_ttl.into(),
            secret_hashes,
            hmac_secrets: Vec::new(),
            uid: c.metadata.uid.clone().unwrap_or_else(|| c.client_id()),
            max_session: None,
        }
    }

    /// With the secrets its HMAC-signed assertions verify with (client_secret_jwt).
    pub fn with_hmac_secrets(self, hmac_secrets: Vec<HmacSecret>) -> Self {
        Self {
            hmac_secrets,
            ..self
        }
    }

    /// With the maximum session length of the policy that governs it.
    pub fn with_max_session(self, max_session: Option<Duration>) -> Self {
        Self {
            max_session,
            ..self
        }
    }

    /// Whether a person in `groups` may use this client.
    /// `user` may use this client: in one of its `allowedGroups`, signed in through one of its
    /// `allowedConnectors`.
    pub fn admits(&self, user: &User) -> bool {
        (self.allowed_groups.is_empty()
            || user.groups.iter().any(|g| self.allowed_groups.contains(g)))
            && self.offers_connector(user.connector.as_deref().unwrap_or(LOCAL_CONNECTOR))
    }

    /// People may sign in to this client through connector `name` (`local`: the users Secret).
    pub fn offers_connector(&self, name: &str) -> bool {
        self.allowed_connectors.is_empty() || self.allowed_connectors.iter().any(|c| c == name)
    }

    pub fn allows(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// Constant-time check of a presented secret against every accepted hash.
    pub fn verify_secret(&self, secret: &str) -> bool {
        let mut ok = false;
        for h in &self.secret_hashes {
            ok |= crds::secret::verify_secret(secret, h);
        }
        ok
    }
}

/// A client secret kept to verify HMACs with; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct HmacSecret(pub String);

impl std::fmt::Debug for HmacSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacSecret(..)")
    }
}

/// A scope as served: built in or from an OidcScope.
#[derive(Clone, Debug)]
pub struct ScopeConfig {
    pub description: String,
    pub claims: Vec<String>,
    /// A scope of OpenID Connect Core §5.4: its claims go to userinfo, and into the ID token only
    /// when no access token is issued, the `claims` parameter asks, or the client lists them.
    pub userinfo_only: bool,
    pub audience: Option<String>,
}

/// A signing key as served.
#[derive(Clone)]
pub struct KeyInput {
    pub jwk: PublicJwk,
    pub state: KeyState,
    /// The private key, for the Active key.
    pub private_pem: Option<String>,
    /// The rotation prepublish time of the key's SigningKey (bounds JWKS caching).
    pub prepublish: Duration,
}

/// Everything a request needs, swapped atomically as a whole on every change.
pub struct View {
    pub issuer: String,
    pub clients: HashMap<String, Arc<ClientConfig>>,
    pub scopes: HashMap<String, ScopeConfig>,
    pub signers: HashMap<Algorithm, Arc<Signer>>,
    pub verifier: Verifier,
    pub users: Users,
    pub discovery: String,
    pub jwks: String,
    pub jwks_max_age: u64,
    /// All sources have delivered their initial state.
    pub synced: bool,
    /// Upstream OpenID Connect providers people may sign in with, by connector name.
    pub upstreams: crate::protocol::connectors::Upstreams,
    /// Whether the sign-in page offers the password form (the local users).
    pub local_sign_in: bool,
    /// Seals what the store keeps of upstreams (their refresh tokens); none: not kept.
    pub sealing: Option<Arc<crds::sealed::SealingKey>>,
}

/// What a view is built from, as its config source read it.
#[derive(Default)]
pub struct Sources {
    pub clients: Vec<ClientConfig>,
    pub scopes: Vec<OidcScope>,
    /// Published keys (the Active one with its private key).
    pub keys: Vec<KeyInput>,
    /// The algorithms of the configured SigningKeys, whether or not they have a key yet.
    pub algorithms: Vec<Algorithm>,
    pub users: Users,
    /// All sources have delivered their initial state.
    pub synced: bool,
    /// Dynamic client registration is served.
    pub registration: bool,
    /// Upstream OpenID Connect providers, by connector name.
    pub upstreams: crate::protocol::connectors::Upstreams,
    /// No connector turns the local users off: with none, or with a `local` connector, the
    /// password form is offered.
    pub local_sign_in: Option<bool>,
    /// The key upstream refresh tokens are sealed with in the store.
    pub sealing: Option<Arc<crds::sealed::SealingKey>>,
}

impl View {
    pub fn empty(issuer: &str) -> Self {
        build(issuer, Sources::default())
    }

    /// The same view with other keys: what a standalone key rotation serves. Clients are shared,
    /// not copied; the signing algorithms, and so discovery, stay the same.
    pub fn with_keys(&self, keys: &[KeyInput]) -> View {
        let Published {
            signers,
            verifier,
            jwks,
            max_age,
        } = Published::of(keys);
        View {
            issuer: self.issuer.clone(),
            clients: self.clients.clone(),
            scopes: self.scopes.clone(),
            signers,
            verifier,
            users: self.users.clone(),
            discovery: self.discovery.clone(),
            jwks,
            jwks_max_age: max_age,
            synced: self.synced,
            upstreams: self.upstreams.clone(),
            local_sign_in: self.local_sign_in,
            sealing: self.sealing.clone(),
        }
    }

    pub fn client(&self, id: &str) -> Option<Arc<ClientConfig>> {
        self.clients.get(id).cloned()
    }

    /// Ready to serve: synced, and a key can sign.
    pub fn ready(&self) -> bool {
        self.synced && !self.signers.is_empty()
    }
}

pub type SharedView = Arc<ArcSwap<View>>;

/// Builds the view and renders the documents served from it.
pub fn build(issuer: &str, sources: Sources) -> View {
    let Sources {
        clients,
        scopes: oidc_scopes,
        keys,
        algorithms,
        users,
        synced,
        registration,
        upstreams,
        local_sign_in,
        sealing,
    } = sources;
    let scopes = scope_configs(&oidc_scopes);
    let published = Published::of(&keys);
    let discovery = discovery(
        issuer,
        &scopes,
        &signing_algorithms(&published.signers, &algorithms),
        registration,
    );
    let Published {
        signers,
        verifier,
        jwks,
        max_age,
    } = published;
    View {
        issuer: issuer.to_string(),
        clients: clients
            .into_iter()
            .map(|c| (c.id.clone(), Arc::new(c)))
            .collect(),
        scopes,
        signers,
        verifier,
        users,
        discovery,
        jwks,
        jwks_max_age: max_age,
        synced,
        local_sign_in: local_sign_in.unwrap_or(true),
        upstreams,
        sealing,
    }
}

/// The built-in scopes, with the OidcScopes' descriptions, claims and audiences.
fn scope_configs(oidc_scopes: &[OidcScope]) -> HashMap<String, ScopeConfig> {
    let mut scopes: HashMap<String, ScopeConfig> = BUILTIN_SCOPES
        .iter()
        .map(|s| {
            (
                s.name.to_string(),
                ScopeConfig {
                    description: s.description.into(),
                    claims: s.claims.iter().map(|c| c.to_string()).collect(),
                    userinfo_only: crds::scope::USERINFO_SCOPES.contains(&s.name),
                    audience: None,
                },
            )
        })
        .collect();
    for s in oidc_scopes {
        let name = s.scope();
        let entry = scopes.entry(name.clone()).or_insert_with(|| ScopeConfig {
            description: String::new(),
            claims: Vec::new(),
            userinfo_only: false,
            audience: None,
        });
        if !s.spec.description.is_empty() {
            entry.description = s.spec.description.clone();
        }
        if crds::scope::builtin(&name).is_none() {
            entry.claims = s.spec.claims.clone();
        }
        entry.audience = s.spec.audience.clone();
    }
    scopes
}

/// The published keys: signers of the Active ones, the verifier and the JWKS of all.
struct Published {
    signers: HashMap<Algorithm, Arc<Signer>>,
    verifier: Verifier,
    jwks: String,
    /// How long the JWKS may be cached.
    max_age: u64,
}

impl Published {
    fn of(keys: &[KeyInput]) -> Self {
        let mut signers = HashMap::new();
        let mut max_age = 3600u64;
        for k in keys {
            // A relying party that caches the JWKS must see a new key before it signs.
            max_age = max_age.min((k.prepublish.as_secs() / 2).max(1));
            if k.state == KeyState::Active
                && let Some(pem) = &k.private_pem
                && let Some(alg) = k
                    .jwk
                    .alg
                    .as_deref()
                    .and_then(|a| serde_json::from_value::<Algorithm>(json!(a)).ok())
            {
                match Signer::from_pem(alg, &k.jwk.kid, pem) {
                    Ok(s) => {
                        signers.insert(alg, Arc::new(s));
                    }
                    Err(e) => tracing::error!(error = %e, "signing key unusable"),
                }
            }
        }
        let published: Vec<&PublicJwk> = keys.iter().map(|k| &k.jwk).collect();
        Self {
            signers,
            verifier: Verifier::new(published.iter().copied()),
            jwks: json!({ "keys": published }).to_string(),
            max_age,
        }
    }
}

/// What the provider signs with: the configured algorithms, also before their first key exists
/// (and RS256, the default and OIDC's mandatory algorithm, when nothing is configured), so that
/// discovery does not change while keys are generated.
fn signing_algorithms(
    signers: &HashMap<Algorithm, Arc<Signer>>,
    configured: &[Algorithm],
) -> Vec<&'static str> {
    let mut algs: Vec<&str> = signers
        .keys()
        .chain(configured)
        .map(|a| a.as_str())
        .collect();
    if algs.is_empty() {
        algs.push(Algorithm::RS256.as_str());
    }
    algs.sort_unstable();
    algs.dedup();
    algs
}

/// The discovery document (OpenID Connect Discovery 1.0 §3).
fn discovery(
    issuer: &str,
    scopes: &HashMap<String, ScopeConfig>,
    algs: &[&str],
    registration: bool,
) -> String {
    let mut scope_names: Vec<&String> = scopes.keys().collect();
    scope_names.sort();
    let mut claims: Vec<&str> = scopes
        .values()
        .flat_map(|s| s.claims.iter().map(String::as_str))
        .chain([
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "acr",
            "nonce",
            "at_hash",
            "azp",
            "sid",
        ])
        .collect();
    claims.sort_unstable();
    claims.dedup();
    let e = |p: &str| format!("{issuer}{p}");
    let mut discovery = json!({
        "issuer": issuer,
        "authorization_endpoint": e("/authorize"),
        "token_endpoint": e("/token"),
        "userinfo_endpoint": e("/userinfo"),
        "jwks_uri": e("/jwks"),
        // The implicit and hybrid types serve only clients whose policy allows them.
        "response_types_supported": crds::ResponseType::ALL.map(crds::ResponseType::as_str),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "grant_types_supported": GrantType::served().map(GrantType::as_str).chain(["implicit"]).collect::<Vec<_>>(),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
        "userinfo_signing_alg_values_supported": std::iter::once("none").chain(algs.iter().copied()).collect::<Vec<_>>(),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": crate::protocol::registration::assertion_algorithms(),
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": scope_names,
        "claims_supported": claims,
        "claim_types_supported": ["normal"],
        "acr_values_supported": [crate::protocol::token::issuance::ACR_PASSWORD],
        "claims_parameter_supported": true,
        "request_parameter_supported": true,
        "request_uri_parameter_supported": true,
        "require_request_uri_registration": true,
        "request_object_signing_alg_values_supported": std::iter::once("none").chain(crds::keys::CLIENT_KEY_ALGORITHMS).collect::<Vec<_>>(),
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "display_values_supported": ["page"],
        "authorization_response_iss_parameter_supported": true,
        "device_authorization_endpoint": e("/device_authorization"),
        "introspection_endpoint": e("/introspect"),
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt"],
        "introspection_endpoint_auth_signing_alg_values_supported": crate::protocol::registration::assertion_algorithms(),
        "revocation_endpoint": e("/revoke"),
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"],
        "revocation_endpoint_auth_signing_alg_values_supported": crate::protocol::registration::assertion_algorithms(),
        "end_session_endpoint": e("/end_session"),
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": false,
    });
    if registration {
        discovery["registration_endpoint"] = json!(e("/register"));
    }
    discovery.to_string()
}
