//! Signing in through an upstream OpenID Connect provider: the redirect there (code flow with
//! PKCE S256, `state`, `nonce`) and the callback (code exchange, ID token verified against the
//! upstream's keys, optional userinfo).
//!
//! The state of a sign-in in flight is kept in the store under its `state` value, bound to the
//! pending authorization and to the browser that started it (the same binding cookie as the
//! sign-in page), for [`PENDING_TTL`].

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{
    Context,
    client_assertion::{RemoteKeys, read_capped},
    interaction::PENDING_TTL,
    params::random_token,
};
use crate::store::{Key, StoreError};
use crds::connector::OidcConnector;

/// How long an upstream's discovery document is used before it is read again.
const METADATA_FRESH_FOR: Duration = Duration::from_secs(300);
/// The largest answer read from an upstream (discovery, token, userinfo).
const MAX_UPSTREAM_BYTES: usize = 256 * 1024;
/// The longest an upstream request may take.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(5);

/// A sign-in sent to an upstream, until its callback.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct UpstreamState {
    pub connector: String,
    /// The pending authorization (interaction id) the sign-in continues.
    pub pending: String,
    /// Hash of the browser's binding cookie, as the pending authorization has it.
    pub binding: String,
    pub nonce: String,
    pub verifier: String,
    /// The `state` sent upstream is `<pending>.<secret>`: the pending id finds this, the
    /// secret proves the answer is for this very redirect.
    pub secret: String,
}

impl UpstreamState {
    /// The pending sign-in a `state` from upstream names, and its secret part.
    pub fn parse(state: &str) -> Option<(&str, &str)> {
        state.split_once('.')
    }
}

/// Why an upstream sign-in failed: said to the person (and logged), never a 500.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("the identity provider cannot be reached: {0}")]
    Unreachable(String),
    #[error("the identity provider refused the sign-in: {0}")]
    Refused(String),
    #[error("the identity provider's answer is not valid: {0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The parts of an upstream's discovery document a sign-in uses.
#[derive(Deserialize, Clone, Debug)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    userinfo_endpoint: Option<String>,
}

/// One upstream OpenID Connect provider, ready to sign people in.
pub struct OidcUpstream {
    pub name: String,
    /// The connector's spec (display name, group prefix and filter).
    pub spec: crds::connector::IdentityConnectorSpec,
    pub settings: OidcConnector,
    client_secret: String,
    http: reqwest::Client,
    keys: RemoteKeys,
    metadata: Mutex<Option<(Instant, Metadata)>>,
}

impl std::fmt::Debug for OidcUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcUpstream")
            .field("name", &self.name)
            .field("issuer", &self.settings.issuer)
            .finish_non_exhaustive()
    }
}

impl OidcUpstream {
    /// `ca_pem`: the CA certificates the upstream's TLS certificate is checked against, instead
    /// of the system's.
    pub fn new(
        name: &str,
        spec: crds::connector::IdentityConnectorSpec,
        settings: OidcConnector,
        client_secret: String,
        ca_pem: Option<&str>,
    ) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder()
            .timeout(UPSTREAM_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = ca_pem {
            builder = builder.tls_built_in_root_certs(false);
            for cert in reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                .map_err(|e| format!("caRef: {e}"))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| e.to_string())?;
        Ok(Self {
            name: name.to_string(),
            spec,
            settings,
            client_secret,
            // The platform team chose the upstream: a private address is fine.
            keys: RemoteKeys::new(http.clone(), true),
            http,
            metadata: Mutex::new(None),
        })
    }

    async fn metadata(&self) -> Result<Metadata, UpstreamError> {
        if let Ok(guard) = self.metadata.lock()
            && let Some((at, m)) = guard.as_ref()
            && at.elapsed() < METADATA_FRESH_FOR
        {
            return Ok(m.clone());
        }
        let issuer = self.settings.issuer.trim_end_matches('/');
        let url = format!("{issuer}/.well-known/openid-configuration");
        let m: Metadata = self.get_json(self.http.get(&url), "discovery").await?;
        if m.issuer.trim_end_matches('/') != issuer {
            return Err(UpstreamError::Invalid(format!(
                "discovery names the issuer {}",
                m.issuer
            )));
        }
        if let Ok(mut guard) = self.metadata.lock() {
            *guard = Some((Instant::now(), m.clone()));
        }
        Ok(m)
    }

    /// Where to send the browser, having kept the state of this sign-in.
    pub async fn start(
        &self,
        ctx: &Context<'_>,
        pending: &str,
        binding: &str,
        redirect_uri: &str,
    ) -> Result<String, UpstreamError> {
        let m = self.metadata().await?;
        let saved = UpstreamState {
            connector: self.name.clone(),
            pending: pending.to_string(),
            binding: binding.to_string(),
            nonce: random_token(),
            verifier: random_token(),
            secret: random_token(),
        };
        // Kept under the pending sign-in: pressing the button again replaces it, so one
        // pending sign-in holds one upstream state however often it is pressed.
        ctx.store
            .put(Key::UpstreamState(pending), &saved, PENDING_TTL)
            .await?;
        let state = format!("{pending}.{}", saved.secret);
        let challenge = B64.encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            saved.verifier.as_bytes(),
        ));
        let scope = self.settings.scopes.join(" ");
        let mut query = vec![
            ("response_type", "code"),
            ("client_id", self.settings.client_id.as_str()),
            ("redirect_uri", redirect_uri),
            ("scope", scope.as_str()),
            ("state", state.as_str()),
            ("nonce", saved.nonce.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        // OpenID Connect Core §11: a refresh token for offline_access needs prompt=consent.
        if self.settings.scopes.iter().any(|s| s == "offline_access") {
            query.push(("prompt", "consent"));
        }
        let query = serde_urlencoded::to_string(&query)
            .map_err(|e| UpstreamError::Invalid(e.to_string()))?;
        let sep = if m.authorization_endpoint.contains('?') {
            '&'
        } else {
            '?'
        };
        Ok(format!("{}{sep}{query}", m.authorization_endpoint))
    }

    /// The callback: the upstream's code exchanged, its ID token verified (issuer, audience,
    /// expiry, signature with its published keys, our nonce), userinfo merged when configured.
    /// The verified claims, and the upstream's refresh token if it gave one.
    pub async fn finish(
        &self,
        state: &UpstreamState,
        code: &str,
        redirect_uri: &str,
    ) -> Result<(Map<String, Value>, Option<String>), UpstreamError> {
        let m = self.metadata().await?;
        let body = self
            .token_request(
                &m,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", redirect_uri),
                    ("code_verifier", state.verifier.as_str()),
                ],
            )
            .await?;
        let id_token = body["id_token"]
            .as_str()
            .ok_or_else(|| UpstreamError::Invalid("no id_token".into()))?;
        let mut claims = self.verify(&m, id_token, Some(&state.nonce)).await?;
        self.merge_userinfo(&m, &body, &mut claims).await?;
        Ok((claims, body["refresh_token"].as_str().map(String::from)))
    }

    /// The upstream asked again about a person signed in before (OpenID Connect Core §12):
    /// their refresh token redeemed, and the claims of the new ID token (and userinfo, when
    /// configured) over `previous`. `Refused` when the upstream no longer vouches for them.
    /// The new claims, and the refresh token to keep (the upstream may rotate it).
    pub async fn refresh(
        &self,
        refresh_token: &str,
        previous: Map<String, Value>,
    ) -> Result<(Map<String, Value>, String), UpstreamError> {
        let m = self.metadata().await?;
        let body = self
            .token_request(
                &m,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh_token),
                ],
            )
            .await?;
        let mut claims = previous;
        if let Some(id_token) = body["id_token"].as_str() {
            let fresh = self.verify(&m, id_token, None).await?;
            // §12.2: the same person, or the answer is not about them.
            if fresh.get("sub") != claims.get("sub") {
                return Err(UpstreamError::Invalid(
                    "the refreshed id_token names another sub".into(),
                ));
            }
            claims.extend(fresh);
        }
        self.merge_userinfo(&m, &body, &mut claims).await?;
        let kept = body["refresh_token"]
            .as_str()
            .unwrap_or(refresh_token)
            .to_string();
        Ok((claims, kept))
    }

    /// A request to the upstream's token endpoint with our client's credentials: its JSON
    /// answer when it succeeded. A refusal (4xx with an OAuth error) is `Refused`; anything
    /// else that is not an answer (5xx, timeouts, no connection) is `Unreachable`.
    async fn token_request(
        &self,
        m: &Metadata,
        form: &[(&str, &str)],
    ) -> Result<Value, UpstreamError> {
        let response = self
            .http
            .post(&m.token_endpoint)
            .basic_auth(
                form_encode(&self.settings.client_id),
                Some(form_encode(&self.client_secret)),
            )
            .form(form)
            .send()
            .await
            .map_err(|e| UpstreamError::Unreachable(e.to_string()))?;
        let status = response.status();
        if status.is_server_error() {
            return Err(UpstreamError::Unreachable(format!(
                "token endpoint: {status}"
            )));
        }
        let body: Value = read_capped(response, MAX_UPSTREAM_BYTES)
            .await
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            .map_err(|e| UpstreamError::Invalid(format!("token response: {e}")))?;
        if !status.is_success() {
            return Err(UpstreamError::Refused(
                body["error"].as_str().unwrap_or("error").to_string(),
            ));
        }
        Ok(body)
    }

    /// The JSON document a GET answers: `Unreachable` without a successful answer, `Invalid`
    /// when it is not the document (`what`) expected.
    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<T, UpstreamError> {
        let response = request
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| UpstreamError::Unreachable(e.to_string()))?;
        let body = read_capped(response, MAX_UPSTREAM_BYTES)
            .await
            .map_err(|e| UpstreamError::Invalid(format!("{what}: {e}")))?;
        serde_json::from_slice(&body).map_err(|e| UpstreamError::Invalid(format!("{what}: {e}")))
    }

    /// Userinfo's claims under those of the ID token, when the connector reads userinfo.
    async fn merge_userinfo(
        &self,
        m: &Metadata,
        token_response: &Value,
        claims: &mut Map<String, Value>,
    ) -> Result<(), UpstreamError> {
        let (true, Some(endpoint), Some(access_token)) = (
            self.settings.userinfo,
            &m.userinfo_endpoint,
            token_response["access_token"].as_str(),
        ) else {
            return Ok(());
        };
        let info: Map<String, Value> = self
            .get_json(
                self.http.get(endpoint).bearer_auth(access_token),
                "userinfo",
            )
            .await?;
        // OpenID Connect Core §5.3.2: userinfo about another subject is not used.
        if info.get("sub") != claims.get("sub") {
            return Err(UpstreamError::Invalid("userinfo names another sub".into()));
        }
        for (k, v) in info {
            claims.entry(k).or_insert(v);
        }
        Ok(())
    }

    /// An upstream ID token checked: signature with the upstream's published keys (refetched
    /// for an unknown `kid`, so a key rotation is followed), issuer, audience, expiry, and our
    /// nonce when the sign-in sent one.
    async fn verify(
        &self,
        m: &Metadata,
        id_token: &str,
        nonce: Option<&str>,
    ) -> Result<Map<String, Value>, UpstreamError> {
        let header = jsonwebtoken::decode_header(id_token)
            .map_err(|e| UpstreamError::Invalid(format!("id_token: {e}")))?;
        let keys = self
            .keys
            .keys(&m.jwks_uri, header.kid.as_deref())
            .await
            .map_err(|e| UpstreamError::Unreachable(format!("jwks_uri: {e}")))?;
        let key = keys
            .verifying(&header)
            .map_err(|e| UpstreamError::Invalid(format!("id_token: {e}")))?;
        let mut validation = jsonwebtoken::Validation::new(header.alg);
        validation.set_issuer(&[&m.issuer]);
        validation.set_audience(&[&self.settings.client_id]);
        validation.set_required_spec_claims(&["iss", "sub", "aud", "exp"]);
        validation.leeway = 30;
        let claims = jsonwebtoken::decode::<Map<String, Value>>(id_token, key, &validation)
            .map_err(|e| UpstreamError::Invalid(format!("id_token: {e}")))?
            .claims;
        if let Some(nonce) = nonce
            && claims.get("nonce").and_then(Value::as_str) != Some(nonce)
        {
            return Err(UpstreamError::Invalid("id_token: wrong nonce".into()));
        }
        Ok(claims)
    }
}

/// RFC 6749 §2.3.1: Basic credentials are form-urlencoded first.
fn form_encode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)])
        .map(|v| v.trim_start_matches('=').to_string())
        .unwrap_or_default()
}
