//! `private_key_jwt` client authentication (RFC 7523 §2.2 and §3, OpenID Connect Core §9): a
//! JWT the client signs with its private key, verified against the public keys of its OidcClient
//! (`jwks`) or fetched from its `jwksUri`.

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use crds::{PublicJwk, TokenEndpointAuthMethod};
use serde::Deserialize;
use serde_json::Value;

use super::{Context, OAuthError};
use crate::{config::ClientConfig, store::Key};

/// The `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The longest an assertion may be valid: its `jti` is remembered that long.
const MAX_LIFETIME: u64 = 3600;
/// Clock skew tolerated on `exp`, `nbf` and `iat`.
const LEEWAY: u64 = 30;
/// The longest `jti` kept.
const MAX_JTI: usize = 256;

/// A client's public keys, ready to verify: each with the algorithms it may sign with.
pub struct KeySet {
    keys: Vec<ClientKey>,
}

struct ClientKey {
    kid: String,
    key: jsonwebtoken::DecodingKey,
    algs: Vec<jsonwebtoken::Algorithm>,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|k| &k.kid))
            .finish()
    }
}

impl KeySet {
    /// The usable keys of a JWK Set; a malformed key is left out (and logged).
    pub fn of(jwks: &[PublicJwk]) -> Self {
        let mut keys = Vec::new();
        for jwk in jwks {
            let algs = match crds::keys::client_key_algorithms(jwk) {
                Ok(algs) => algs,
                Err(e) => {
                    tracing::warn!(error = %e, "a client key is left out");
                    continue;
                }
            };
            if let Some(key) = crate::signing::decoding_key(jwk) {
                keys.push(ClientKey {
                    kid: jwk.kid.clone(),
                    key,
                    algs: algs.iter().filter_map(|a| a.parse().ok()).collect(),
                });
            }
        }
        Self { keys }
    }

    /// The key named by `kid`, or without one the only key that signs with `alg`.
    fn find(&self, kid: Option<&str>, alg: jsonwebtoken::Algorithm) -> Option<&ClientKey> {
        match kid {
            Some(kid) => self.keys.iter().find(|k| k.kid == kid),
            None => {
                let mut fitting = self.keys.iter().filter(|k| k.algs.contains(&alg));
                let only = fitting.next();
                fitting.next().is_none().then_some(only).flatten()
            }
        }
    }

    /// The key that verifies a JWT with this header: named by its `kid` (or the only one fitting
    /// its `alg`), and `alg` one of that key's.
    pub fn verifying(
        &self,
        header: &jsonwebtoken::Header,
    ) -> Result<&jsonwebtoken::DecodingKey, String> {
        let key = self
            .find(header.kid.as_deref(), header.alg)
            .ok_or("no key of the client fits its kid and alg")?;
        if !key.algs.contains(&header.alg) {
            return Err(format!("{:?} is not an algorithm of that key", header.alg));
        }
        Ok(&key.key)
    }

    fn knows(&self, kid: Option<&str>) -> bool {
        kid.is_none_or(|kid| self.keys.iter().any(|k| k.kid == kid))
    }
}

/// JWK Sets fetched from clients' `jwksUri`s, cached. An assertion naming a key the cached set
/// lacks fetches it again, at most once per [`REFETCH_AFTER`] per URI, so that a client's key
/// rotation is followed and forged `kid`s cannot make the provider fetch in a loop.
#[derive(Default)]
pub struct RemoteKeys {
    /// `None`: nothing is fetched (tests that build no HTTP client).
    http: Option<reqwest::Client>,
    allow_private: bool,
    cache: Mutex<HashMap<String, Fetched>>,
}

struct Fetched {
    /// When it was last fetched (or a fetch was last tried).
    at: Instant,
    keys: Option<Arc<KeySet>>,
}

/// How long a fetched JWK Set is used without fetching it again.
const FRESH_FOR: Duration = Duration::from_secs(300);
/// The shortest time between two fetches of one URI.
const REFETCH_AFTER: Duration = Duration::from_secs(1);
/// The largest document read from a client (JWK Set, request object).
const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// A response's body, refused once it is larger than `max` bytes (read no further).
pub async fn read_capped(mut response: reqwest::Response, max: usize) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        body.extend_from_slice(&chunk);
        if body.len() > max {
            return Err(format!("larger than {max} bytes"));
        }
    }
    Ok(body)
}

/// The most URIs cached: beyond it the cache starts over.
const MAX_CACHED: usize = 10_000;

impl fmt::Debug for RemoteKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteKeys")
            .field("allow_private", &self.allow_private)
            .finish_non_exhaustive()
    }
}

impl RemoteKeys {
    /// `allow_private`: fetch from private and loopback addresses too.
    pub fn new(http: reqwest::Client, allow_private: bool) -> Self {
        Self {
            http: Some(http),
            allow_private,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The keys at `uri`, fetched when not cached, stale, or lacking `kid`.
    pub async fn keys(&self, uri: &str, kid: Option<&str>) -> Result<Arc<KeySet>, OAuthError> {
        let cached = {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let (cached, fetch) = match cache.get(uri) {
                Some(f) => {
                    let known = f.keys.as_ref().is_some_and(|k| k.knows(kid));
                    let age = now.duration_since(f.at);
                    let fetch = (age >= FRESH_FOR) || (!known && age >= REFETCH_AFTER);
                    (f.keys.clone(), fetch)
                }
                None => (None, true),
            };
            if !fetch {
                return cached.ok_or_else(unreachable_keys);
            }
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
            // Marked before fetching: concurrent requests use what is cached meanwhile.
            cache.insert(
                uri.to_string(),
                Fetched {
                    at: now,
                    keys: cached.clone(),
                },
            );
            cached
        };
        match self.fetch(uri).await {
            Ok(keys) => {
                let keys = Arc::new(keys);
                let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
                cache.insert(
                    uri.to_string(),
                    Fetched {
                        at: Instant::now(),
                        keys: Some(keys.clone()),
                    },
                );
                Ok(keys)
            }
            Err(why) => {
                tracing::warn!(jwks_uri = uri, why, "a client's JWK Set cannot be fetched");
                cached.ok_or_else(unreachable_keys)
            }
        }
    }

    /// GETs a client's document (`field` names it in errors): only from public addresses
    /// unless allowed, without following redirects, at most [`MAX_DOCUMENT_BYTES`].
    pub async fn get(&self, field: &str, uri: &str, accept: &str) -> Result<Vec<u8>, String> {
        super::registration::check_url(field, uri, self.allow_private).await?;
        let http = self.http.as_ref().ok_or("no HTTP client")?;
        let response = http
            .get(uri)
            .header(reqwest::header::ACCEPT, accept)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status()));
        }
        read_capped(response, MAX_DOCUMENT_BYTES).await
    }

    async fn fetch(&self, uri: &str) -> Result<KeySet, String> {
        let body = self.get("jwks_uri", uri, "application/json").await?;
        let doc: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        let keys: Vec<PublicJwk> = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("not a JWK Set")?
            .iter()
            .filter_map(|k| crds::keys::client_jwk(k).ok())
            .collect();
        Ok(KeySet::of(&keys))
    }
}

/// The client's public keys: inline, or fetched from its jwksUri (again when `kid` is new).
/// `None` when it has neither.
pub async fn client_keys(
    ctx: &Context<'_>,
    client: &ClientConfig,
    kid: Option<&str>,
) -> Result<Option<Arc<KeySet>>, OAuthError> {
    Ok(match (&client.jwks, &client.jwks_uri) {
        (Some(keys), _) => Some(keys.clone()),
        (None, Some(uri)) => Some(ctx.settings.client_keys.keys(uri, kid).await?),
        (None, None) => None,
    })
}

fn unreachable_keys() -> OAuthError {
    OAuthError::InvalidClient("the client's keys (jwks_uri) cannot be fetched".into())
}

fn refused(why: impl Into<String>) -> OAuthError {
    OAuthError::InvalidClient(format!("client assertion refused: {}", why.into()))
}

/// The `sub` an assertion claims, unverified: whom it is about, for finding the client and for
/// logging a failure.
pub fn claimed_subject(assertion: &str) -> Option<String> {
    let payload = assertion.split('.').nth(1)?;
    let claims: Value = serde_json::from_slice(&B64.decode(payload).ok()?).ok()?;
    claims.get("sub")?.as_str().map(String::from)
}

#[derive(Deserialize)]
struct AssertionClaims {
    exp: u64,
    jti: Option<String>,
}

/// Whether an assertion's header names an HMAC algorithm (client_secret_jwt), unverified.
pub fn is_hmac(assertion: &str) -> bool {
    jsonwebtoken::decode_header(assertion).is_ok_and(|h| hmac_hash_len(h.alg).is_some())
}

/// The output size of an HMAC algorithm: the shortest key it is used with (RFC 7518 §3.2).
fn hmac_hash_len(alg: jsonwebtoken::Algorithm) -> Option<usize> {
    match alg {
        jsonwebtoken::Algorithm::HS256 => Some(32),
        jsonwebtoken::Algorithm::HS384 => Some(48),
        jsonwebtoken::Algorithm::HS512 => Some(64),
        _ => None,
    }
}

/// The keys an assertion with this header may verify with: for client_secret_jwt its secrets
/// (HMAC, each long enough for the algorithm), otherwise the one public key its header names.
async fn verifying_keys(
    ctx: &Context<'_>,
    client: &ClientConfig,
    header: &jsonwebtoken::Header,
) -> Result<Vec<jsonwebtoken::DecodingKey>, OAuthError> {
    if client.auth_method == TokenEndpointAuthMethod::ClientSecretJwt {
        let min = hmac_hash_len(header.alg).ok_or_else(|| {
            refused("client_secret_jwt assertions are signed with HS256, HS384 or HS512")
        })?;
        let keys: Vec<_> = client
            .hmac_secrets
            .iter()
            .filter(|s| s.0.len() >= min)
            .map(|s| jsonwebtoken::DecodingKey::from_secret(s.0.as_bytes()))
            .collect();
        if keys.is_empty() {
            return Err(refused(format!(
                "the client's secret is too short for {:?}",
                header.alg
            )));
        }
        return Ok(keys);
    }
    let keys = client_keys(ctx, client, header.kid.as_deref())
        .await?
        .ok_or_else(|| refused("the client has no keys"))?;
    Ok(vec![keys.verifying(header).map_err(refused)?.clone()])
}

/// Verifies `assertion` as `client`'s (RFC 7523 §3): signed by one of its public keys with an
/// asymmetric algorithm (private_key_jwt) or with HMAC keyed by its secret (client_secret_jwt),
/// `iss` and `sub` its client ID, `aud` this provider (its issuer or one of its endpoints),
/// unexpired and valid at most [`MAX_LIFETIME`], and its `jti` never seen before.
pub async fn verify(
    ctx: &Context<'_>,
    client: &ClientConfig,
    assertion: &str,
) -> Result<(), OAuthError> {
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| refused("not a JWT"))?;
    let keys = verifying_keys(ctx, client, &header).await?;
    let issuer = &ctx.view.issuer;
    let audiences: Vec<String> = std::iter::once(issuer.clone())
        .chain(
            ["/token", "/introspect", "/revoke", "/device_authorization"]
                .iter()
                .map(|p| format!("{issuer}{p}")),
        )
        .collect();
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.algorithms = vec![header.alg];
    validation.set_issuer(&[&client.id]);
    validation.sub = Some(client.id.clone());
    validation.set_audience(&audiences);
    validation.set_required_spec_claims(&["iss", "sub", "aud", "exp"]);
    validation.leeway = LEEWAY;
    validation.validate_nbf = true;
    // Current and previous secret: the first that verifies.
    let mut outcome = Err(refused("no key"));
    for key in &keys {
        outcome = jsonwebtoken::decode::<AssertionClaims>(assertion, key, &validation)
            .map_err(|e| refused(e.to_string()));
        if outcome.is_ok() {
            break;
        }
    }
    let claims = outcome?.claims;
    let lifetime = claims.exp.saturating_sub(ctx.now);
    if lifetime > MAX_LIFETIME {
        return Err(refused(format!(
            "exp is more than {MAX_LIFETIME} seconds away"
        )));
    }
    let jti = claims
        .jti
        .filter(|j| !j.is_empty() && j.len() <= MAX_JTI)
        .ok_or_else(|| refused(format!("jti is missing or longer than {MAX_JTI}")))?;
    let seen = ctx
        .store
        .count(
            Key::ClientAssertion {
                client_id: &client.id,
                jti: &jti,
            },
            Duration::from_secs(lifetime + LEEWAY),
        )
        .await?;
    if seen > 1 {
        return Err(refused("it was used before (jti)"));
    }
    Ok(())
}
