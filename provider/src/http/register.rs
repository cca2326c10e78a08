//! Dynamic client registration (RFC 7591) and management (RFC 7592): a registered client is an
//! OidcClient in one configured namespace, accepted by the operator like any other.

use std::{collections::BTreeMap, net::IpAddr, time::Duration};

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use crds::{
    ClientType, GrantType, OidcClient, OidcClientSpec, ResponseType, TokenEndpointAuthMethod,
};
use k8s_openapi::{
    ByteString, api::core::v1::Secret, apimachinery::pkg::apis::meta::v1::OwnerReference,
};
use kube::{
    Api, Resource, ResourceExt,
    api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams},
};
use serde_json::{Value, json};

use super::Shared;
use crate::{
    protocol::{
        now,
        params::{random_token, split_scopes},
    },
    store::hash_token,
};

/// Annotation holding the hash of a registered client's registration access token.
pub const TOKEN_ANNOTATION: &str = "kubeoidc.dev/registration-token-hash";
/// Label on registered clients.
pub const REGISTERED_LABEL: &str = "kubeoidc.dev/registered";

/// Who may register clients.
pub enum Policy {
    Open,
    /// Callers present this initial access token (kept as a hash).
    Token(String),
}

pub struct Registration {
    pub policy: Policy,
    pub namespace: String,
    pub client: kube::Client,
    /// Allow metadata URLs on private and loopback addresses (tests, air-gapped setups).
    pub allow_private_urls: bool,
    /// Consent policy of registered clients (never `skip`: they are third parties).
    pub consent: crds::ConsentPolicy,
}

/// How long a registration waits for the operator to accept the new client and for this
/// provider to serve it, before it gives up and removes the client again.
const ACCEPT_TIMEOUT: Duration = Duration::from_secs(10);

fn error(status: StatusCode, error: &str, description: impl Into<String>) -> Response {
    let mut res = (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(json!({"error": error, "error_description": description.into()})),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED
        && let Ok(v) = format!("Bearer error=\"{error}\"").parse()
    {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    res
}

/// An error of a registration request; small, so helpers can return it in a Result.
pub struct RegError {
    status: StatusCode,
    error: &'static str,
    description: String,
}

impl IntoResponse for RegError {
    fn into_response(self) -> Response {
        error(self.status, self.error, self.description)
    }
}

fn reg_error(status: StatusCode, error: &'static str, description: impl Into<String>) -> RegError {
    RegError {
        status,
        error,
        description: description.into(),
    }
}

fn metadata_error(description: impl Into<String>) -> RegError {
    reg_error(
        StatusCode::BAD_REQUEST,
        "invalid_client_metadata",
        description,
    )
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(|t| t.trim().to_string())
}

fn same(a: &str, b: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
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
async fn check_url(field: &str, value: &str, allow_private: bool) -> Result<(), RegError> {
    let url =
        url::Url::parse(value).map_err(|_| metadata_error(format!("{field} is not a URL")))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(metadata_error(format!("{field} must be an http(s) URL")));
    }
    if allow_private {
        return Ok(());
    }
    let host = url
        .host_str()
        .ok_or_else(|| metadata_error(format!("{field} has no host")))?
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
        return Err(metadata_error(format!(
            "{field}: the host {host} cannot be resolved"
        )));
    }
    if addrs.into_iter().any(is_private) {
        return Err(metadata_error(format!(
            "{field} points at a private or loopback address, which is not allowed"
        )));
    }
    Ok(())
}

fn strings(v: &Value, field: &str) -> Result<Option<Vec<String>>, RegError> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map(String::from))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| metadata_error(format!("{field} must be an array of strings"))),
        Some(_) => Err(metadata_error(format!(
            "{field} must be an array of strings"
        ))),
    }
}

fn string(v: &Value, field: &str) -> Result<Option<String>, RegError> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(metadata_error(format!("{field} must be a string"))),
    }
}

/// Maps RFC 7591 metadata onto an OidcClient spec.
async fn spec_from_metadata(reg: &Registration, m: &Value) -> Result<OidcClientSpec, RegError> {
    if !m.is_object() {
        return Err(metadata_error("the body must be a JSON object"));
    }
    for field in ["jwks_uri", "sector_identifier_uri"] {
        if let Some(u) = string(m, field)? {
            check_url(field, &u, reg.allow_private_urls).await?;
            return Err(metadata_error(format!("{field} is not supported")));
        }
    }
    if m.get("jwks").is_some() {
        return Err(metadata_error(
            "jwks is not supported (private_key_jwt is not available)",
        ));
    }
    for field in ["logo_uri", "client_uri", "policy_uri", "tos_uri"] {
        if let Some(u) = string(m, field)? {
            check_url(field, &u, reg.allow_private_urls).await?;
        }
    }
    let auth = match string(m, "token_endpoint_auth_method")?.as_deref() {
        None | Some("client_secret_basic") => TokenEndpointAuthMethod::ClientSecretBasic,
        Some("client_secret_post") => TokenEndpointAuthMethod::ClientSecretPost,
        Some("none") => TokenEndpointAuthMethod::None,
        Some(other) => {
            return Err(metadata_error(format!(
                "token_endpoint_auth_method {other} is not supported"
            )));
        }
    };
    let grant_types = match strings(m, "grant_types")? {
        None => vec![GrantType::AuthorizationCode],
        Some(list) => list
            .iter()
            .map(|g| {
                serde_json::from_value::<GrantType>(json!(g))
                    .map_err(|_| metadata_error(format!("grant type {g} is not supported")))
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    if let Some(list) = strings(m, "response_types")?
        && list.iter().any(|r| r != "code")
    {
        return Err(metadata_error("only the response type code is supported"));
    }
    let scopes = string(m, "scope")?
        .map(|s| split_scopes(&s))
        .unwrap_or_else(|| {
            ["openid", "profile", "email", "offline_access"]
                .map(String::from)
                .to_vec()
        });
    let mut spec: OidcClientSpec =
        serde_json::from_value(json!({})).map_err(|e| metadata_error(e.to_string()))?;
    spec.display_name = string(m, "client_name")?;
    spec.type_ = if auth == TokenEndpointAuthMethod::None {
        ClientType::Public
    } else {
        ClientType::Confidential
    };
    spec.token_endpoint_auth_method = Some(auth);
    spec.redirect_uris = strings(m, "redirect_uris")?.unwrap_or_default();
    spec.post_logout_redirect_uris = strings(m, "post_logout_redirect_uris")?.unwrap_or_default();
    spec.backchannel_logout_uri = string(m, "backchannel_logout_uri")?;
    if let Some(u) = &spec.backchannel_logout_uri {
        // The provider will POST to it: the same SSRF rule.
        check_url("backchannel_logout_uri", u, reg.allow_private_urls).await?;
    }
    spec.grant_types = grant_types;
    spec.response_types = vec![ResponseType::Code];
    spec.scopes = scopes;
    spec.consent = reg.consent;
    Ok(spec)
}

fn validate(client: &OidcClient) -> Result<(), RegError> {
    let problems = crds::validation::validate_client(client);
    let Some(first) = problems.first() else {
        return Ok(());
    };
    let description = problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    let code = if first.reason == crds::validation::Reason::InvalidRedirectUri {
        "invalid_redirect_uri"
    } else {
        "invalid_client_metadata"
    };
    Err(reg_error(StatusCode::BAD_REQUEST, code, description))
}

fn metadata(issuer: &str, client: &OidcClient, secret: Option<&str>, token: Option<&str>) -> Value {
    let s = &client.spec;
    let id = client.client_id();
    let mut out = json!({
        "client_id": id,
        "client_name": s.display_name,
        "redirect_uris": s.redirect_uris,
        "post_logout_redirect_uris": s.post_logout_redirect_uris,
        "grant_types": s.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "response_types": ["code"],
        "token_endpoint_auth_method": serde_json::to_value(s.token_endpoint_auth_method()).unwrap_or(Value::Null),
        "scope": s.scopes.join(" "),
        "registration_client_uri": format!("{issuer}/register/{id}"),
    });
    if let Some(b) = &s.backchannel_logout_uri {
        out["backchannel_logout_uri"] = json!(b);
    }
    if let Some(created) = &client.metadata.creation_timestamp {
        out["client_id_issued_at"] = json!(created.0.as_second());
    }
    if let Some(secret) = secret {
        out["client_secret"] = json!(secret);
        out["client_secret_expires_at"] = json!(0);
    }
    if let Some(token) = token {
        out["registration_access_token"] = json!(token);
    }
    out
}

fn secret_for(client: &OidcClient, name: &str, issuer: &str, value: &str) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(BTreeMap::from([(
                REGISTERED_LABEL.to_string(),
                "true".to_string(),
            )])),
            // Owned for garbage collection, not as controller: the operator treats it as a
            // Secret made outside and never rewrites it.
            owner_references: Some(vec![OwnerReference {
                api_version: OidcClient::api_version(&()).into(),
                kind: OidcClient::kind(&()).into(),
                name: client.name_any(),
                uid: client.uid().unwrap_or_default(),
                controller: Some(false),
                block_owner_deletion: None,
            }]),
            ..Default::default()
        },
        data: Some(BTreeMap::from([
            (
                "client-id".to_string(),
                ByteString(client.client_id().into_bytes()),
            ),
            (
                "client-secret".to_string(),
                ByteString(value.as_bytes().to_vec()),
            ),
            (
                "issuer-url".to_string(),
                ByteString(issuer.as_bytes().to_vec()),
            ),
        ])),
        ..Default::default()
    }
}

fn api_error(e: kube::Error) -> Response {
    tracing::error!(error = %e, "registration: Kubernetes API");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        "the registration could not be stored; retry later",
    )
}

pub async fn register(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(reg) = &s.registration else {
        return error(
            StatusCode::FORBIDDEN,
            "access_denied",
            "dynamic client registration is closed",
        );
    };
    if let Policy::Token(hash) = &reg.policy {
        let presented = bearer(&headers)
            .map(|t| hash_token("initial", &t))
            .unwrap_or_default();
        if !same(&presented, hash) {
            return error(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "a valid initial access token is required",
            );
        }
    }
    let Ok(m) = serde_json::from_slice::<Value>(&body) else {
        return metadata_error("the body must be JSON").into_response();
    };
    let spec = match spec_from_metadata(reg, &m).await {
        Ok(spec) => spec,
        Err(res) => return res.into_response(),
    };
    let issuer = s.view.load().issuer.clone();
    let mut name_bytes = [0u8; 6];
    let _ =
        aws_lc_rs::rand::SecureRandom::fill(&aws_lc_rs::rand::SystemRandom::new(), &mut name_bytes);
    let name = format!(
        "dcr-{}",
        name_bytes
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let token = random_token();
    let confidential = spec.type_ == ClientType::Confidential;
    let mut spec = spec;
    spec.client_id = Some(name.clone());
    if confidential {
        spec.secret_name = Some(format!("{name}-oidc"));
        spec.external_secret = true;
    }
    let mut client = OidcClient::new(&name, spec);
    client.metadata.namespace = Some(reg.namespace.clone());
    client.metadata.labels = Some(BTreeMap::from([(
        REGISTERED_LABEL.to_string(),
        "true".to_string(),
    )]));
    client.metadata.annotations = Some(BTreeMap::from([(
        TOKEN_ANNOTATION.to_string(),
        hash_token("registration", &token),
    )]));
    if let Err(res) = validate(&client) {
        return res.into_response();
    }
    let clients: Api<OidcClient> = Api::namespaced(reg.client.clone(), &reg.namespace);
    let created = match clients.create(&PostParams::default(), &client).await {
        Ok(c) => c,
        Err(kube::Error::Api(e)) if e.code == 422 => {
            return metadata_error(e.message).into_response();
        }
        Err(e) => return api_error(e),
    };
    let secret = if confidential {
        let value = crds::secret::generate_secret();
        let secrets: Api<Secret> = Api::namespaced(reg.client.clone(), &reg.namespace);
        if let Err(e) = secrets
            .create(
                &PostParams::default(),
                &secret_for(&created, &format!("{name}-oidc"), &issuer, &value),
            )
            .await
        {
            let _ = clients.delete(&name, &DeleteParams::default()).await;
            return api_error(e);
        }
        Some(value)
    } else {
        None
    };
    // A relying party redirects to /authorize right after the 201: answer only once the client
    // is served here (other replicas see it within their watch delay).
    if let Err(res) = served(&s, reg, &clients, &name).await {
        let _ = clients.delete(&name, &DeleteParams::default()).await;
        return res;
    }
    tracing::info!(client = %name, namespace = %reg.namespace, "client registered");
    let mut body = metadata(&issuer, &created, secret.as_deref(), Some(&token));
    body["client_id_issued_at"] = json!(now());
    (
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(body),
    )
        .into_response()
}

/// Waits until this provider serves client `name`. When it does not in time, the operator's
/// verdict on it (its Ready condition) says why.
async fn served(
    s: &Shared,
    reg: &Registration,
    clients: &Api<OidcClient>,
    name: &str,
) -> Result<(), Response> {
    let deadline = tokio::time::Instant::now() + ACCEPT_TIMEOUT;
    while tokio::time::Instant::now() < deadline {
        if s.view.load().client(name).is_some() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let refused = clients.get_opt(name).await.ok().flatten().and_then(|c| {
        let generation = c.metadata.generation;
        let status = c.status?;
        let ready = crds::condition::find(&status.conditions, "Ready")?;
        (ready.status == "False" && ready.observed_generation == generation)
            .then(|| ready.message.clone())
    });
    tracing::warn!(client = %name, namespace = %reg.namespace, ?refused, "registered client not served in time; removed");
    Err(match refused {
        Some(message) => metadata_error(message).into_response(),
        None => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "the client was not accepted in time; retry later",
        ),
    })
}

/// The registered client a registration access token is for; 401 otherwise (also for unknown
/// clients, so that ids cannot be probed).
async fn authorized(
    s: &Shared,
    headers: &HeaderMap,
    client_id: &str,
) -> Result<(Api<OidcClient>, OidcClient), Response> {
    let unauthorized = || {
        error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the registration access token is not valid for this client",
        )
    };
    let Some(reg) = &s.registration else {
        return Err(error(
            StatusCode::FORBIDDEN,
            "access_denied",
            "dynamic client registration is closed",
        ));
    };
    let token = bearer(headers).ok_or_else(unauthorized)?;
    let api: Api<OidcClient> = Api::namespaced(reg.client.clone(), &reg.namespace);
    let client = api
        .get_opt(client_id)
        .await
        .map_err(api_error)?
        .ok_or_else(unauthorized)?;
    let hash = client
        .annotations()
        .get(TOKEN_ANNOTATION)
        .cloned()
        .unwrap_or_default();
    if hash.is_empty() || !same(&hash_token("registration", &token), &hash) {
        return Err(unauthorized());
    }
    Ok((api, client))
}

async fn current_secret(s: &Shared, client: &OidcClient) -> Option<String> {
    let reg = s.registration.as_ref()?;
    let secrets: Api<Secret> = Api::namespaced(reg.client.clone(), &reg.namespace);
    let secret = secrets.get_opt(&client.secret_name()).await.ok()??;
    String::from_utf8(secret.data?.get("client-secret")?.0.clone()).ok()
}

pub async fn read(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Response {
    match authorized(&s, &headers, &client_id).await {
        Ok((_, client)) => {
            let secret = current_secret(&s, &client).await;
            let issuer = s.view.load().issuer.clone();
            (
                [(header::CACHE_CONTROL, "no-store")],
                axum::Json(metadata(&issuer, &client, secret.as_deref(), None)),
            )
                .into_response()
        }
        Err(res) => res,
    }
}

pub async fn update(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Response {
    let (api, client) = match authorized(&s, &headers, &client_id).await {
        Ok(found) => found,
        Err(res) => return res.into_response(),
    };
    let Some(reg) = &s.registration else {
        return error(
            StatusCode::FORBIDDEN,
            "access_denied",
            "dynamic client registration is closed",
        );
    };
    let Ok(m) = serde_json::from_slice::<Value>(&body) else {
        return metadata_error("the body must be JSON").into_response();
    };
    // RFC 7592 §2.2: the body carries client_id, and client_secret only if it matches.
    if m.get("client_id").and_then(Value::as_str) != Some(client_id.as_str()) {
        return metadata_error("client_id must be the registered client's").into_response();
    }
    let secret = current_secret(&s, &client).await;
    if let Some(presented) = m.get("client_secret").and_then(Value::as_str)
        && secret.as_deref().is_none_or(|v| !same(v, presented))
    {
        return metadata_error("client_secret does not match").into_response();
    }
    let mut spec = match spec_from_metadata(reg, &m).await {
        Ok(spec) => spec,
        Err(res) => return res.into_response(),
    };
    if spec.type_ != client.spec.type_ {
        return metadata_error(
            "token_endpoint_auth_method cannot change between none and a secret",
        )
        .into_response();
    }
    spec.client_id = client.spec.client_id.clone();
    spec.secret_name = client.spec.secret_name.clone();
    spec.external_secret = client.spec.external_secret;
    let mut updated = client.clone();
    updated.spec = spec;
    if let Err(res) = validate(&updated) {
        return res.into_response();
    }
    let patch = json!({"spec": serde_json::to_value(&updated.spec).unwrap_or(Value::Null)});
    let result = match api
        .patch(&client_id, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(c) => c,
        Err(kube::Error::Api(e)) if e.code == 422 => {
            return metadata_error(e.message).into_response();
        }
        Err(e) => return api_error(e),
    };
    let issuer = s.view.load().issuer.clone();
    (
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(metadata(&issuer, &result, secret.as_deref(), None)),
    )
        .into_response()
}

pub async fn delete(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Response {
    let (api, _) = match authorized(&s, &headers, &client_id).await {
        Ok(found) => found,
        Err(res) => return res.into_response(),
    };
    match api.delete(&client_id, &DeleteParams::default()).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => api_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
