//! `/register` and `/register/{client_id}`: dynamic client registration (RFC 7591) and its
//! management (RFC 7592). A registered client is an OidcClient, accepted by the operator like
//! any other in a cluster, and checked the same way in standalone mode.

use std::time::Duration;

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use crds::{ClientType, OidcClient};
use serde_json::{Value, json};

use super::{Shared, extract, extract::ClientIp};
use crate::{
    protocol::{
        OAuthError, now,
        params::{random_token, same},
        registration::{self, Settings},
    },
    registry::{Registry, RegistryError},
};

/// Registration as served: who may register, and where clients are kept.
pub struct Registration {
    pub settings: Settings,
    pub registry: Registry,
}

/// How long a registration waits for the operator to accept the new client and for this
/// provider to serve it, before it gives up and removes the client again.
const ACCEPT_TIMEOUT: Duration = Duration::from_secs(10);

/// RFC 7591 §3.2.2 and RFC 7592 §3 errors.
fn error(e: &OAuthError) -> Response {
    let status = match e {
        OAuthError::InvalidToken(_) => StatusCode::UNAUTHORIZED,
        OAuthError::AccessDenied(_) => StatusCode::FORBIDDEN,
        OAuthError::TemporarilyUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut res = (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(json!({"error": e.code(), "error_description": e.description()})),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED
        && let Ok(v) = format!("Bearer error=\"{}\"", e.code()).parse()
    {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    res
}

fn closed() -> OAuthError {
    OAuthError::AccessDenied("dynamic client registration is closed".into())
}

fn registry_error(e: RegistryError) -> OAuthError {
    match e {
        RegistryError::Invalid(message) => OAuthError::InvalidClientMetadata(message),
        other => {
            tracing::error!(error = %other, "registration: the registry failed");
            OAuthError::TemporarilyUnavailable(
                "the registration could not be stored; retry later".into(),
            )
        }
    }
}

fn json_body(body: &[u8]) -> Result<Value, OAuthError> {
    serde_json::from_slice(body)
        .map_err(|_| OAuthError::InvalidClientMetadata("the body must be JSON".into()))
}

fn answer(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(body),
    )
        .into_response()
}

/// Registrations from one address per [`REGISTRATION_WINDOW`].
const MAX_REGISTRATIONS_PER_IP: u64 = 20;
const REGISTRATION_WINDOW: Duration = Duration::from_secs(3600);

pub async fn register(
    State(s): State<Shared>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match register_client(&s, &headers, &body, &ip).await {
        Ok(body) => answer(StatusCode::CREATED, body),
        Err(e) => error(&e),
    }
}

async fn register_client(
    s: &Shared,
    headers: &HeaderMap,
    body: &[u8],
    ip: &str,
) -> Result<Value, OAuthError> {
    let reg = s.registration.as_ref().ok_or_else(closed)?;
    if s.store
        .count(crate::store::Key::Registrations(ip), REGISTRATION_WINDOW)
        .await?
        > MAX_REGISTRATIONS_PER_IP
    {
        tracing::warn!(%ip, "registration throttled");
        return Err(OAuthError::AccessDenied(
            "too many registrations from this address; try again later".into(),
        ));
    }
    reg.settings.admits(extract::bearer(headers).as_deref())?;
    let m = json_body(body)?;
    let mut spec = registration::spec_from_metadata(&reg.settings, &m).await?;
    // Anonymous callers must not fill the cluster with objects.
    let held = reg.registry.count().await.map_err(registry_error)?;
    if held >= reg.settings.quota {
        tracing::warn!(
            held,
            quota = reg.settings.quota,
            "registration refused: quota reached"
        );
        return Err(OAuthError::AccessDenied(format!(
            "the registration quota of {} clients is reached; ask the platform team",
            reg.settings.quota
        )));
    }
    let issuer = s.view.load().issuer.clone();
    let name = format!("dcr-{}", &hex_id());
    let token = random_token();
    let confidential = spec.type_ == ClientType::Confidential;
    spec.client_id = Some(name.clone());
    if confidential {
        spec.secret_name = Some(format!("{name}-oidc"));
        spec.external_secret = true;
    }
    let mut client = OidcClient::new(&name, spec);
    client.metadata.namespace = Some(reg.registry.namespace().to_string());
    registration::validate(&client)?;
    let secret = confidential.then(crds::secret::generate_secret);
    let created = reg
        .registry
        .create(
            &name,
            client.spec,
            registration::registration_token_hash(&token),
            secret.as_deref().map(|v| (v, issuer.as_str())),
        )
        .await
        .map_err(registry_error)?;
    // A relying party redirects to /authorize right after the 201: answer only once the client
    // is served here (other replicas see it within their watch delay).
    if let Err(e) = served(s, reg, &name).await {
        let _ = reg.registry.delete(&name).await;
        return Err(e);
    }
    tracing::info!(client = %name, namespace = %reg.registry.namespace(), "client registered");
    let mut body = registration::metadata(&issuer, &created, secret.as_deref(), Some(&token));
    body["client_id_issued_at"] = json!(now());
    Ok(body)
}

/// 48 random bits in hex: registered clients' names.
fn hex_id() -> String {
    let mut bytes = [0u8; 6];
    let _ = aws_lc_rs::rand::SecureRandom::fill(&aws_lc_rs::rand::SystemRandom::new(), &mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Waits until this provider serves client `name`. When it does not in time, the operator's
/// verdict on it (its Ready condition) says why.
async fn served(s: &Shared, reg: &Registration, name: &str) -> Result<(), OAuthError> {
    let deadline = tokio::time::Instant::now() + ACCEPT_TIMEOUT;
    let mut next_verdict = tokio::time::Instant::now() + Duration::from_millis(200);
    while tokio::time::Instant::now() < deadline {
        if s.view.load().client(name).is_some() {
            return Ok(());
        }
        // A refusal (invalid metadata, the registration policy) is answered at once.
        if tokio::time::Instant::now() >= next_verdict {
            if let Some(message) = reg.registry.refusal(name).await {
                tracing::info!(client = %name, %message, "registered client refused; removed");
                return Err(OAuthError::InvalidClientMetadata(message));
            }
            next_verdict = tokio::time::Instant::now() + Duration::from_millis(200);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let refused = reg.registry.refusal(name).await;
    tracing::warn!(client = %name, namespace = %reg.registry.namespace(), ?refused, "registered client not served in time; removed");
    Err(match refused {
        Some(message) => OAuthError::InvalidClientMetadata(message),
        None => OAuthError::TemporarilyUnavailable(
            "the client was not accepted in time; retry later".into(),
        ),
    })
}

/// The registered client a registration access token is for; 401 otherwise (also for unknown
/// clients, so that ids cannot be probed).
async fn authorized<'s>(
    s: &'s Shared,
    headers: &HeaderMap,
    client_id: &str,
) -> Result<(&'s Registration, OidcClient), OAuthError> {
    let unauthorized = || {
        OAuthError::InvalidToken(
            "the registration access token is not valid for this client".into(),
        )
    };
    let reg = s.registration.as_ref().ok_or_else(closed)?;
    let token = extract::bearer(headers).ok_or_else(unauthorized)?;
    let client = reg
        .registry
        .get(client_id)
        .await
        .map_err(registry_error)?
        .ok_or_else(unauthorized)?;
    if !registration::registration_token_matches(&Registry::token_hash(&client), &token) {
        return Err(unauthorized());
    }
    Ok((reg, client))
}

pub async fn read(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Response {
    match authorized(&s, &headers, &client_id).await {
        Ok((reg, client)) => {
            let secret = reg.registry.secret(&client).await;
            let issuer = s.view.load().issuer.clone();
            answer(
                StatusCode::OK,
                registration::metadata(&issuer, &client, secret.as_deref(), None),
            )
        }
        Err(e) => error(&e),
    }
}

pub async fn update(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Response {
    match update_client(&s, &headers, &client_id, &body).await {
        Ok(body) => answer(StatusCode::OK, body),
        Err(e) => error(&e),
    }
}

async fn update_client(
    s: &Shared,
    headers: &HeaderMap,
    client_id: &str,
    body: &[u8],
) -> Result<Value, OAuthError> {
    let (reg, client) = authorized(s, headers, client_id).await?;
    let m = json_body(body)?;
    let invalid = |d: &str| OAuthError::InvalidClientMetadata(d.into());
    // RFC 7592 §2.2: the body carries client_id, and client_secret only if it matches.
    if m.get("client_id").and_then(Value::as_str) != Some(client_id) {
        return Err(invalid("client_id must be the registered client's"));
    }
    let secret = reg.registry.secret(&client).await;
    if let Some(presented) = m.get("client_secret").and_then(Value::as_str)
        && secret.as_deref().is_none_or(|v| !same(v, presented))
    {
        return Err(invalid("client_secret does not match"));
    }
    let mut spec = registration::spec_from_metadata(&reg.settings, &m).await?;
    if spec.type_ != client.spec.type_ {
        return Err(invalid(
            "token_endpoint_auth_method cannot change between none and a secret",
        ));
    }
    spec.client_id = client.spec.client_id.clone();
    spec.secret_name = client.spec.secret_name.clone();
    spec.external_secret = client.spec.external_secret;
    let mut updated = client.clone();
    updated.spec = spec;
    registration::validate(&updated)?;
    let result = reg
        .registry
        .update_spec(client_id, &updated.spec)
        .await
        .map_err(registry_error)?;
    let issuer = s.view.load().issuer.clone();
    Ok(registration::metadata(
        &issuer,
        &result,
        secret.as_deref(),
        None,
    ))
}

pub async fn delete(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Response {
    let result = async {
        let (reg, _) = authorized(&s, &headers, &client_id).await?;
        reg.registry
            .delete(&client_id)
            .await
            .map_err(registry_error)
    }
    .await;
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error(&e),
    }
}
