//! The HTTP layer: parse, call the protocol functions, map results to responses.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{
    Router,
    body::Bytes,
    extract::{ConnectInfo, FromRequestParts, RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
    middleware::{self, Next},
    response::{Html, IntoResponse, Response},
    routing::{get, post},
};
use base64::{Engine, engine::general_purpose::STANDARD as B64STD};
use crds::{AccessTokenFormat, ConsentPolicy, GrantType};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{
    config::{ClientConfig, SharedView, View},
    metrics::Metrics,
    oidc::{self, AuthorizationRequest, AuthorizeError},
    pages,
    store::{Store, StoreError, token_key},
    users::{self, User},
};

mod introspect;
mod logout;
pub mod register;

const SESSION_COOKIE: &str = "kube_oidc_session";
const BINDING_COOKIE: &str = "kube_oidc_req";
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
const PENDING_TTL: Duration = Duration::from_secs(600);
const CODE_TTL: Duration = Duration::from_secs(60);
const CONSENT_TTL: Duration = Duration::from_secs(365 * 24 * 3600);
const THROTTLE_WINDOW: Duration = Duration::from_secs(900);
const MAX_FAILURES_PER_USER: u64 = 5;
const MAX_FAILURES_PER_IP: u64 = 20;

/// What every handler shares.
pub struct AppState {
    pub view: SharedView,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    /// Delivers back-channel logout tokens.
    pub http: reqwest::Client,
    /// Dynamic client registration, when enabled.
    pub registration: Option<register::Registration>,
}

type Shared = Arc<AppState>;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// The router; nested under the issuer's path when it has one.
pub fn router(state: Shared) -> Router {
    let issuer = state.view.load().issuer.clone();
    let https = issuer.starts_with("https://");
    let routes = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/authorize", get(authorize_get).post(authorize_post))
        .route("/login", post(login))
        .route("/consent", post(consent))
        .route("/token", post(token))
        .route("/userinfo", get(userinfo).post(userinfo))
        .route("/introspect", post(introspect::introspect))
        .route("/revoke", post(introspect::revoke))
        .route(
            "/end_session",
            get(logout::end_session_get).post(logout::end_session_post),
        )
        .route("/end_session/confirm", post(logout::confirm))
        .route("/register", post(register::register))
        .route(
            "/register/{client_id}",
            get(register::read)
                .put(register::update)
                .delete(register::delete),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(64 * 1024))
        .layer(middleware::from_fn(move |req, next| {
            security_headers(https, req, next)
        }))
        .with_state(state);
    let path = url::Url::parse(&issuer)
        .map(|u| u.path().trim_end_matches('/').to_string())
        .unwrap_or_default();
    if path.is_empty() {
        routes
    } else {
        Router::new().nest(&path, routes)
    }
}

async fn security_headers(https: bool, req: axum::extract::Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if https {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    res
}

/// The peer address (direct connection; forwarded headers are not trusted).
struct ClientIp(String);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip().to_string())
                .unwrap_or_else(|| "unknown".into()),
        ))
    }
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn set_cookie(view: &View, name: &str, value: &str, max_age: Duration) -> HeaderValue {
    let secure = if view.issuer.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let path = url::Url::parse(&view.issuer)
        .map(|u| u.path().trim_end_matches('/').to_string())
        .unwrap_or_default();
    let path = if path.is_empty() {
        "/".to_string()
    } else {
        path
    };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
        max_age.as_secs()
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn page(status: StatusCode, html: String) -> Response {
    (status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response()
}

fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    page(status, pages::error(title, message))
}

fn unavailable_page(e: &StoreError) -> Response {
    tracing::error!(error = %e, "store");
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Temporarily unavailable",
        "Signing in is not possible right now. Please try again in a moment.",
    )
}

fn redirect(to: &str, after_post: bool) -> Response {
    let status = if after_post {
        StatusCode::SEE_OTHER
    } else {
        StatusCode::FOUND
    };
    (
        status,
        [
            (header::LOCATION, to.to_string()),
            (header::CACHE_CONTROL, "no-store".into()),
        ],
    )
        .into_response()
}

/// An authorization response or error sent back to the client (RFC 6749 §4.1.2, RFC 9207 iss).
fn redirect_with(
    view: &View,
    redirect_uri: &str,
    params: &[(&str, &str)],
    state: Option<&str>,
    after_post: bool,
) -> Response {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "The redirect URI is invalid.",
        );
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
        if let Some(s) = state {
            q.append_pair("state", s);
        }
        q.append_pair("iss", &view.issuer);
    }
    redirect(url.as_str(), after_post)
}

fn authorize_error(view: &View, e: AuthorizeError, after_post: bool) -> Response {
    match e {
        AuthorizeError::Page(message) => error_page(
            StatusCode::BAD_REQUEST,
            "This sign-in request is invalid",
            &message,
        ),
        AuthorizeError::Redirect {
            redirect_uri,
            state,
            error,
            description,
        } => redirect_with(
            view,
            &redirect_uri,
            &[("error", error), ("error_description", &description)],
            state.as_deref(),
            after_post,
        ),
    }
}

// ---- discovery, JWKS, health ----

async fn discovery(State(s): State<Shared>) -> Response {
    let view = s.view.load();
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=300"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        view.discovery.clone(),
    )
        .into_response()
}

async fn jwks(State(s): State<Shared>) -> Response {
    let view = s.view.load();
    (
        [
            (header::CONTENT_TYPE, "application/jwk-set+json".to_string()),
            (
                header::CACHE_CONTROL,
                format!("public, max-age={}", view.jwks_max_age),
            ),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*".to_string()),
        ],
        view.jwks.clone(),
    )
        .into_response()
}

async fn readyz(State(s): State<Shared>) -> Response {
    let ready = s.view.load().ready();
    match (ready, s.store.ping().await) {
        (true, Ok(())) => (StatusCode::OK, "ok").into_response(),
        (false, _) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not synced or no active signing key",
        )
            .into_response(),
        (_, Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, format!("store: {e}")).into_response(),
    }
}

async fn metrics(State(s): State<Shared>) -> Response {
    match s.metrics.encode() {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

// ---- authorization endpoint, login, consent ----

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Session {
    sub: String,
    auth_time: u64,
    sid: String,
    /// Clients that received a code in this session (back-channel logout goes to them).
    #[serde(default)]
    clients: Vec<String>,
    /// The store key of this session.
    #[serde(skip)]
    key: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Pending {
    request: AuthorizationRequest,
    csrf: String,
    binding: String,
    /// Set once the user signed in (consent stage).
    sub: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct CodeGrant {
    client_id: String,
    redirect_uri: String,
    scopes: Vec<String>,
    nonce: Option<String>,
    sub: String,
    auth_time: u64,
    code_challenge: Option<String>,
    claims: Option<Value>,
    sid: String,
}

async fn current_session(s: &AppState, headers: &HeaderMap) -> Result<Option<Session>, StoreError> {
    let Some(id) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let key = token_key("session", &id);
    Ok(s.store
        .get(&key)
        .await?
        .and_then(|v| serde_json::from_str::<Session>(&v).ok())
        .map(|mut session| {
            session.key = key;
            session
        }))
}

async fn authorize_get(
    State(s): State<Shared>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    authorize(s, headers, q.unwrap_or_default().as_bytes(), false).await
}

async fn authorize_post(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    authorize(s, headers, &body, true).await
}

async fn authorize(s: Shared, headers: HeaderMap, raw: &[u8], after_post: bool) -> Response {
    let view = s.view.load_full();
    let params = match oidc::parse_params(raw) {
        Ok(p) => p,
        Err(m) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "This sign-in request is invalid",
                &m,
            );
        }
    };
    let request = match oidc::validate_authorization(&view, &params) {
        Ok(r) => r,
        Err(e) => return authorize_error(&view, e, after_post),
    };
    let session = match current_session(&s, &headers).await {
        Ok(session) => session,
        Err(e) => return unavailable_page(&e),
    };
    proceed(&s, &view, request, session, false, false, after_post)
        .await
        .unwrap_or_else(|e| unavailable_page(&e))
}

/// Takes a validated request as far as it can go: sign-in, consent, then the code.
async fn proceed(
    s: &AppState,
    view: &View,
    request: AuthorizationRequest,
    session: Option<Session>,
    just_signed_in: bool,
    consent_given: bool,
    after_post: bool,
) -> Result<Response, StoreError> {
    let Some(client) = view.client(&request.client_id) else {
        return Ok(error_page(
            StatusCode::BAD_REQUEST,
            "Unknown application",
            "The application is no longer registered.",
        ));
    };
    let prompt = |v: &str| request.prompt.iter().any(|p| p == v);
    let fail = |error: &'static str, description: &str| {
        redirect_with(
            view,
            &request.redirect_uri,
            &[("error", error), ("error_description", description)],
            request.state.as_deref(),
            after_post,
        )
    };
    let session = session.filter(|sess| {
        just_signed_in
            || (!prompt("login")
                && !prompt("select_account")
                && request
                    .max_age
                    .is_none_or(|max| now().saturating_sub(sess.auth_time) <= max)
                && request
                    .id_token_hint_sub
                    .as_ref()
                    .is_none_or(|h| *h == sess.sub)
                && view.users.by_sub(&sess.sub).is_some())
    });
    let Some(session) = session else {
        if prompt("none") {
            return Ok(fail("login_required", "the user is not signed in"));
        }
        return start_pending(s, view, &client, request, None).await;
    };
    let consent_key = format!("consent:{}:{}", session.sub, client.id);
    let needs_consent = !consent_given
        && (prompt("consent")
            || match client.consent {
                ConsentPolicy::Skip => false,
                ConsentPolicy::Always => true,
                ConsentPolicy::Once => {
                    let granted: Vec<String> = s
                        .store
                        .get(&consent_key)
                        .await?
                        .and_then(|v| serde_json::from_str(&v).ok())
                        .unwrap_or_default();
                    !request.scopes.iter().all(|sc| granted.contains(sc))
                }
            });
    if needs_consent {
        if prompt("none") {
            return Ok(fail(
                "consent_required",
                "the user has not consented to this application",
            ));
        }
        return start_pending(s, view, &client, request, Some(session.sub)).await;
    }

    if !session.clients.contains(&client.id) {
        let mut updated = session.clone();
        updated.clients.push(client.id.clone());
        s.store
            .put(
                &session.key,
                &serde_json::to_string(&updated).unwrap_or_default(),
                SESSION_TTL,
            )
            .await?;
    }
    let code = oidc::random_token();
    let grant = CodeGrant {
        client_id: client.id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        scopes: request.scopes.clone(),
        nonce: request.nonce.clone(),
        sub: session.sub.clone(),
        auth_time: session.auth_time,
        code_challenge: request.code_challenge.clone(),
        claims: request.claims.clone(),
        sid: session.sid.clone(),
    };
    s.store
        .put(
            &token_key(CODE.kind, &code),
            &serde_json::to_string(&grant).unwrap_or_default(),
            CODE_TTL,
        )
        .await?;
    Ok(redirect_with(
        view,
        &request.redirect_uri,
        &[("code", &code)],
        request.state.as_deref(),
        after_post,
    ))
}

/// Stores the request while the user signs in or consents, bound to this browser by a cookie,
/// and shows the page.
async fn start_pending(
    s: &AppState,
    view: &View,
    client: &ClientConfig,
    request: AuthorizationRequest,
    sub: Option<String>,
) -> Result<Response, StoreError> {
    let id = oidc::random_token();
    let csrf = oidc::random_token();
    let binding = oidc::random_token();
    let pending = Pending {
        request: request.clone(),
        csrf: csrf.clone(),
        binding: token_key("binding", &binding),
        sub: sub.clone(),
    };
    s.store
        .put(
            &token_key("pending", &id),
            &serde_json::to_string(&pending).unwrap_or_default(),
            PENDING_TTL,
        )
        .await?;
    let html = match sub {
        None => pages::login(
            &client.name,
            &id,
            &csrf,
            request.login_hint.as_deref().unwrap_or_default(),
            None,
        ),
        Some(_) => {
            let scopes: Vec<(String, String)> = request
                .scopes
                .iter()
                .map(|sc| {
                    let d = view
                        .scopes
                        .get(sc)
                        .map(|c| c.description.clone())
                        .unwrap_or_default();
                    (sc.clone(), d)
                })
                .collect();
            pages::consent(&client.name, &scopes, &id, &csrf)
        }
    };
    let mut res = page(StatusCode::OK, html);
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(view, BINDING_COOKIE, &binding, PENDING_TTL),
    );
    Ok(res)
}

/// The pending request a form refers to, if the CSRF token and the browser binding match.
async fn pending_for(
    s: &AppState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<Option<(String, Pending)>, StoreError> {
    let (Some(id), Some(csrf)) = (form.get("request"), form.get("csrf")) else {
        return Ok(None);
    };
    let key = token_key("pending", id);
    let Some(pending) = s
        .store
        .get(&key)
        .await?
        .and_then(|v| serde_json::from_str::<Pending>(&v).ok())
    else {
        return Ok(None);
    };
    let binding = cookie(headers, BINDING_COOKIE)
        .map(|b| token_key("binding", &b))
        .unwrap_or_default();
    let csrf_ok =
        aws_lc_rs::constant_time::verify_slices_are_equal(csrf.as_bytes(), pending.csrf.as_bytes())
            .is_ok();
    let binding_ok = aws_lc_rs::constant_time::verify_slices_are_equal(
        binding.as_bytes(),
        pending.binding.as_bytes(),
    )
    .is_ok();
    Ok((csrf_ok && binding_ok).then_some((key, pending)))
}

fn expired_request() -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        "This sign-in request has expired",
        "Go back to the application and start signing in again.",
    )
}

async fn login(
    State(s): State<Shared>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let view = s.view.load_full();
    let Ok(form) = oidc::parse_params(&body) else {
        return expired_request();
    };
    let result: Result<Response, StoreError> = async {
        let Some((key, pending)) = pending_for(&s, &headers, &form).await? else {
            return Ok(expired_request());
        };
        let Some(client) = view.client(&pending.request.client_id) else {
            return Ok(expired_request());
        };
        let username = form.get("username").cloned().unwrap_or_default();
        let password = form.get("password").cloned().unwrap_or_default();
        let user_key = format!("throttle:user:{username}");
        let ip_key = format!("throttle:ip:{ip}");
        let user_failures = s
            .store
            .get(&user_key)
            .await?
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        let ip_failures = s
            .store
            .get(&ip_key)
            .await?
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        if user_failures >= MAX_FAILURES_PER_USER || ip_failures >= MAX_FAILURES_PER_IP {
            tracing::warn!(%username, %ip, "sign-in throttled");
            return Ok(page(
                StatusCode::TOO_MANY_REQUESTS,
                pages::login(
                    &client.name,
                    form.get("request").map(String::as_str).unwrap_or_default(),
                    &pending.csrf,
                    &username,
                    Some("Too many failed attempts. Wait 15 minutes and try again."),
                ),
            ));
        }
        let user = view.users.by_name(&username);
        let candidate = user.clone();
        // Argon2 is CPU-heavy: off the async executor.
        let ok = tokio::task::spawn_blocking(move || {
            users::verify_password(candidate.as_deref(), &password)
        })
        .await
        .unwrap_or(false);
        let Some(user) = user.filter(|_| ok) else {
            s.store.incr(&user_key, THROTTLE_WINDOW).await?;
            s.store.incr(&ip_key, THROTTLE_WINDOW).await?;
            return Ok(page(
                StatusCode::UNAUTHORIZED,
                pages::login(
                    &client.name,
                    form.get("request").map(String::as_str).unwrap_or_default(),
                    &pending.csrf,
                    &username,
                    Some("Wrong username or password."),
                ),
            ));
        };
        s.store.delete(&user_key).await?;
        s.store.delete(&key).await?;
        let session_id = oidc::random_token();
        let session = Session {
            sub: user.subject(),
            auth_time: now(),
            sid: oidc::random_token(),
            clients: Vec::new(),
            key: token_key("session", &session_id),
        };
        s.store
            .put(
                &session.key,
                &serde_json::to_string(&session).unwrap_or_default(),
                SESSION_TTL,
            )
            .await?;
        let mut res = proceed(&s, &view, pending.request, Some(session), true, false, true).await?;
        res.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(&view, SESSION_COOKIE, &session_id, SESSION_TTL),
        );
        Ok(res)
    }
    .await;
    result.unwrap_or_else(|e| unavailable_page(&e))
}

async fn consent(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let view = s.view.load_full();
    let Ok(form) = oidc::parse_params(&body) else {
        return expired_request();
    };
    let result: Result<Response, StoreError> = async {
        let Some((key, pending)) = pending_for(&s, &headers, &form).await? else {
            return Ok(expired_request());
        };
        let session = current_session(&s, &headers).await?;
        let Some(session) = session.filter(|sess| Some(&sess.sub) == pending.sub.as_ref()) else {
            return Ok(expired_request());
        };
        s.store.delete(&key).await?;
        let request = pending.request;
        if form.get("decision").map(String::as_str) != Some("approve") {
            return Ok(redirect_with(
                &view,
                &request.redirect_uri,
                &[
                    ("error", "access_denied"),
                    ("error_description", "the user denied access"),
                ],
                request.state.as_deref(),
                true,
            ));
        }
        if let Some(client) = view.client(&request.client_id)
            && client.consent == ConsentPolicy::Once
        {
            let key = format!("consent:{}:{}", session.sub, client.id);
            let mut granted: Vec<String> = s
                .store
                .get(&key)
                .await?
                .and_then(|v| serde_json::from_str(&v).ok())
                .unwrap_or_default();
            for sc in &request.scopes {
                if !granted.contains(sc) {
                    granted.push(sc.clone());
                }
            }
            s.store
                .put(
                    &key,
                    &serde_json::to_string(&granted).unwrap_or_default(),
                    CONSENT_TTL,
                )
                .await?;
        }
        proceed(&s, &view, request, Some(session), true, true, true).await
    }
    .await;
    result.unwrap_or_else(|e| unavailable_page(&e))
}

// ---- token endpoint ----

/// RFC 6749 §5.2 errors.
#[derive(Debug)]
pub struct TokenError {
    status: StatusCode,
    error: &'static str,
    description: String,
}

fn token_error(error: &'static str, description: impl Into<String>) -> TokenError {
    TokenError {
        status: if error == "invalid_client" {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        },
        error,
        description: description.into(),
    }
}

impl From<StoreError> for TokenError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store");
        TokenError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            error: "temporarily_unavailable",
            description: "the service is temporarily unavailable; retry later".into(),
        }
    }
}

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        let mut res = (
            self.status,
            [
                (header::CACHE_CONTROL, "no-store"),
                (header::PRAGMA, "no-cache"),
            ],
            axum::Json(json!({"error": self.error, "error_description": self.description})),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"kube-oidc\""),
            );
        }
        res
    }
}

/// Claims of an access token (RFC 9068), also stored for opaque tokens.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: Value,
    pub exp: u64,
    pub iat: u64,
    pub jti: String,
    pub client_id: String,
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<u64>,
    /// The refresh token family the token came from: revoking the family revokes the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fam: Option<String>,
    /// Claims requested for userinfo through the `claims` parameter.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "userinfo_claims"
    )]
    pub userinfo_claims: Option<Value>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct RefreshGrant {
    #[serde(default)]
    exp: u64,
    client_id: String,
    sub: String,
    scopes: Vec<String>,
    auth_time: u64,
    family: String,
    claims: Option<Value>,
    sid: String,
}

fn authenticate_client(
    view: &View,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> Result<Arc<ClientConfig>, TokenError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        });
    let (id, secret) = match basic {
        Some(b64) => {
            if params.contains_key("client_secret") {
                return Err(token_error(
                    "invalid_request",
                    "use one client authentication method",
                ));
            }
            let decoded = B64STD
                .decode(b64.trim())
                .ok()
                .and_then(|d| String::from_utf8(d).ok())
                .ok_or_else(|| token_error("invalid_client", "malformed Basic credentials"))?;
            let (id, secret) = decoded
                .split_once(':')
                .ok_or_else(|| token_error("invalid_client", "malformed Basic credentials"))?;
            // RFC 6749 §2.3.1: both parts are form-urlencoded.
            let d = |s: &str| {
                serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={s}"))
                    .ok()
                    .and_then(|mut v| v.pop())
                    .map(|(_, v)| v)
            };
            let (id, secret) = (
                d(id)
                    .ok_or_else(|| token_error("invalid_client", "malformed Basic credentials"))?,
                d(secret)
                    .ok_or_else(|| token_error("invalid_client", "malformed Basic credentials"))?,
            );
            if params.get("client_id").is_some_and(|c| *c != id) {
                return Err(token_error(
                    "invalid_request",
                    "client_id does not match the credentials",
                ));
            }
            (id, Some(secret))
        }
        None => (
            params.get("client_id").cloned().ok_or_else(|| {
                token_error("invalid_client", "client authentication is required")
            })?,
            params.get("client_secret").cloned(),
        ),
    };
    let client = view
        .client(&id)
        .ok_or_else(|| token_error("invalid_client", "unknown client or wrong credentials"))?;
    if client.public {
        return Ok(client);
    }
    match secret {
        Some(secret) if client.verify_secret(&secret) => Ok(client),
        _ => Err(token_error(
            "invalid_client",
            "unknown client or wrong credentials",
        )),
    }
}

async fn token(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let view = s.view.load_full();
    match token_inner(&s, &view, &headers, &body).await {
        Ok(json) => (
            [
                (header::CACHE_CONTROL, "no-store"),
                (header::PRAGMA, "no-cache"),
            ],
            axum::Json(json),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

async fn token_inner(
    s: &AppState,
    view: &View,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, TokenError> {
    let params = oidc::parse_params(body).map_err(|m| token_error("invalid_request", m))?;
    let client = authenticate_client(view, headers, &params)?;
    let grant_type = params
        .get("grant_type")
        .ok_or_else(|| token_error("invalid_request", "grant_type is required"))?;
    let result = match grant_type.as_str() {
        "authorization_code" => code_grant(s, view, &client, &params).await,
        "refresh_token" => refresh_grant(s, view, &client, &params).await,
        "client_credentials" => client_credentials_grant(s, view, &client, &params).await,
        other => Err(token_error(
            "unsupported_grant_type",
            format!("grant_type {other} is not supported"),
        )),
    };
    if result.is_ok() {
        s.metrics.token_issued(grant_type);
    }
    result
}

/// A kind of single-use grant: authorization codes and refresh tokens.
struct SingleUse {
    grant_type: GrantType,
    /// The form parameter that carries it.
    param: &'static str,
    /// Its key prefix in the store, and that of the marker a redeemed one leaves behind.
    kind: &'static str,
    used_kind: &'static str,
    /// How error descriptions name it.
    what: &'static str,
}

const CODE: SingleUse = SingleUse {
    grant_type: GrantType::AuthorizationCode,
    param: "code",
    kind: "code",
    used_kind: "codeused",
    what: "the code",
};

const REFRESH_TOKEN: SingleUse = SingleUse {
    grant_type: GrantType::RefreshToken,
    param: "refresh_token",
    kind: "rt",
    used_kind: "rtused",
    what: "the refresh token",
};

/// What a stored single-use grant knows about whom it was issued to.
trait IssuedTo {
    fn client_id(&self) -> &str;
}

impl IssuedTo for CodeGrant {
    fn client_id(&self) -> &str {
        &self.client_id
    }
}

impl IssuedTo for RefreshGrant {
    fn client_id(&self) -> &str {
        &self.client_id
    }
}

/// Redeems a single-use grant sent in `params`: the client may use the grant type, the grant is
/// taken from the store at most once, and it was issued to this client. Returns it with the
/// token as sent. A second use revokes the family the first use produced (RFC 6749 §4.1.2,
/// RFC 9700 §4.14.2) and fails with invalid_grant.
async fn redeem<'p, G: serde::de::DeserializeOwned + IssuedTo>(
    s: &AppState,
    client: &ClientConfig,
    params: &'p HashMap<String, String>,
    single: &SingleUse,
) -> Result<(G, &'p String), TokenError> {
    if !client.allows(single.grant_type) {
        return Err(token_error(
            "unauthorized_client",
            format!("this client may not use {}", single.grant_type.as_str()),
        ));
    }
    let token = params
        .get(single.param)
        .ok_or_else(|| token_error("invalid_request", format!("{} is required", single.param)))?;
    let Some(stored) = s.store.take(&token_key(single.kind, token)).await? else {
        if let Some(family) = s.store.get(&token_key(single.used_kind, token)).await? {
            s.store.delete(&format!("family:{family}")).await?;
            tracing::warn!(
                kind = single.kind,
                "a single-use grant was used twice; its family is revoked"
            );
        }
        return Err(token_error(
            "invalid_grant",
            format!("{} is invalid, expired or already used", single.what),
        ));
    };
    let grant: G = serde_json::from_str(&stored)
        .map_err(|_| token_error("invalid_grant", format!("{} is invalid", single.what)))?;
    if grant.client_id() != client.id {
        return Err(token_error(
            "invalid_grant",
            format!("{} was issued to another client", single.what),
        ));
    }
    Ok((grant, token))
}

async fn code_grant(
    s: &AppState,
    view: &View,
    client: &ClientConfig,
    params: &HashMap<String, String>,
) -> Result<Value, TokenError> {
    let (grant, code): (CodeGrant, _) = redeem(s, client, params, &CODE).await?;
    if params.get("redirect_uri") != Some(&grant.redirect_uri) {
        return Err(token_error(
            "invalid_grant",
            "redirect_uri does not match the authorization request",
        ));
    }
    match (&grant.code_challenge, params.get("code_verifier")) {
        (Some(challenge), Some(verifier)) if oidc::verify_pkce(verifier, challenge) => {}
        (Some(_), Some(_)) => {
            return Err(token_error("invalid_grant", "code_verifier does not match"));
        }
        (Some(_), None) => return Err(token_error("invalid_grant", "code_verifier is required")),
        (None, Some(_)) => {
            return Err(token_error(
                "invalid_grant",
                "code_verifier sent but no code_challenge was",
            ));
        }
        (None, None) => {}
    }
    let user = view
        .users
        .by_sub(&grant.sub)
        .ok_or_else(|| token_error("invalid_grant", "the user no longer exists"))?;
    let family = oidc::random_token();
    s.store
        .put(
            &token_key(CODE.used_kind, code),
            &family,
            Duration::from_secs(600),
        )
        .await?;
    issue(
        s,
        view,
        client,
        Some(&user),
        &grant.scopes,
        Some(grant.auth_time),
        grant.nonce.as_deref(),
        grant.claims.as_ref(),
        &grant.sid,
        Some(family),
    )
    .await
}

async fn refresh_grant(
    s: &AppState,
    view: &View,
    client: &ClientConfig,
    params: &HashMap<String, String>,
) -> Result<Value, TokenError> {
    let (grant, token): (RefreshGrant, _) = redeem(s, client, params, &REFRESH_TOKEN).await?;
    if s.store
        .get(&format!("family:{}", grant.family))
        .await?
        .is_none()
    {
        return Err(token_error(
            "invalid_grant",
            "the refresh token was revoked",
        ));
    }
    s.store
        .put(
            &token_key(REFRESH_TOKEN.used_kind, token),
            &grant.family,
            client.refresh_token_ttl,
        )
        .await?;
    let scopes = match params.get("scope") {
        None => grant.scopes.clone(),
        Some(s) => {
            let requested = oidc::split_scopes(s);
            if let Some(bad) = requested.iter().find(|r| !grant.scopes.contains(r)) {
                return Err(token_error(
                    "invalid_scope",
                    format!("scope {bad} was not granted"),
                ));
            }
            requested
        }
    };
    let user = view
        .users
        .by_sub(&grant.sub)
        .ok_or_else(|| token_error("invalid_grant", "the user no longer exists"))?;
    issue(
        s,
        view,
        client,
        Some(&user),
        &scopes,
        Some(grant.auth_time),
        None,
        grant.claims.as_ref(),
        &grant.sid,
        Some(grant.family),
    )
    .await
}

async fn client_credentials_grant(
    s: &AppState,
    view: &View,
    client: &ClientConfig,
    params: &HashMap<String, String>,
) -> Result<Value, TokenError> {
    if client.public || !client.allows(GrantType::ClientCredentials) {
        return Err(token_error(
            "unauthorized_client",
            "this client may not use client_credentials",
        ));
    }
    let user_scopes = ["openid", "offline_access"];
    let scopes: Vec<String> = match params.get("scope") {
        Some(sc) => oidc::split_scopes(sc),
        None => client
            .default_scopes
            .iter()
            .filter(|sc| !user_scopes.contains(&sc.as_str()))
            .cloned()
            .collect(),
    };
    if let Some(bad) = scopes
        .iter()
        .find(|sc| !client.scopes.contains(sc) || user_scopes.contains(&sc.as_str()))
    {
        return Err(token_error(
            "invalid_scope",
            format!("scope {bad} is not allowed for this client"),
        ));
    }
    issue(s, view, client, None, &scopes, None, None, None, "", None).await
}

/// Mints the tokens of a grant.
#[allow(clippy::too_many_arguments)]
async fn issue(
    s: &AppState,
    view: &View,
    client: &ClientConfig,
    user: Option<&User>,
    scopes: &[String],
    auth_time: Option<u64>,
    nonce: Option<&str>,
    claims_request: Option<&Value>,
    sid: &str,
    family: Option<String>,
) -> Result<Value, TokenError> {
    let signer = view.signers.get(&client.alg).ok_or_else(|| {
        tracing::error!(alg = client.alg.as_str(), "no active signing key");
        TokenError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            error: "temporarily_unavailable",
            description: "no signing key is available".into(),
        }
    })?;
    let iat = now();
    let sub = user
        .map(|u| u.subject())
        .unwrap_or_else(|| client.id.clone());
    if let Some(f) = &family {
        // The family outlives every token issued from it; deleting it revokes them all.
        s.store
            .put(
                &format!("family:{f}"),
                "active",
                client.refresh_token_ttl.max(client.access_token_ttl),
            )
            .await?;
    }
    let claims = AccessClaims {
        iss: view.issuer.clone(),
        sub: sub.clone(),
        aud: oidc::access_token_audience(view, client, scopes),
        exp: iat + client.access_token_ttl.as_secs(),
        iat,
        jti: oidc::random_token(),
        client_id: client.id.clone(),
        scope: scopes.join(" "),
        auth_time,
        fam: family.clone(),
        userinfo_claims: claims_request.and_then(|c| c.get("userinfo")).cloned(),
    };
    let access_token = match client.access_token_format {
        AccessTokenFormat::Jwt => signer.sign(Some("at+jwt"), &claims).map_err(|e| {
            tracing::error!(error = %e, "signing");
            token_error("server_error", "signing failed")
        })?,
        AccessTokenFormat::Opaque => {
            let token = oidc::random_token();
            s.store
                .put(
                    &token_key("at", &token),
                    &serde_json::to_string(&claims).unwrap_or_default(),
                    client.access_token_ttl,
                )
                .await?;
            token
        }
    };
    let mut response = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": client.access_token_ttl.as_secs(),
        "scope": scopes.join(" "),
    });
    if let Some(user) = user
        && scopes.iter().any(|sc| sc == "openid")
    {
        let mut id = oidc::select_claims(view, user, scopes, claims_request, "id_token");
        id.insert("iss".into(), json!(view.issuer));
        id.insert("aud".into(), json!(client.id));
        id.insert("azp".into(), json!(client.id));
        id.insert("iat".into(), json!(iat));
        id.insert("exp".into(), json!(iat + client.id_token_ttl.as_secs()));
        if let Some(t) = auth_time {
            id.insert("auth_time".into(), json!(t));
        }
        if let Some(n) = nonce {
            id.insert("nonce".into(), json!(n));
        }
        if !sid.is_empty() {
            id.insert("sid".into(), json!(sid));
        }
        id.insert(
            "at_hash".into(),
            json!(oidc::at_hash(signer.alg, &access_token)),
        );
        let id_token = signer.sign(Some("JWT"), &id).map_err(|e| {
            tracing::error!(error = %e, "signing");
            token_error("server_error", "signing failed")
        })?;
        response["id_token"] = json!(id_token);
    }
    if let (Some(user), Some(family)) = (user, family)
        && client.allows(GrantType::RefreshToken)
        && scopes.iter().any(|sc| sc == "offline_access")
    {
        let refresh = oidc::random_token();
        let grant = RefreshGrant {
            exp: iat + client.refresh_token_ttl.as_secs(),
            client_id: client.id.clone(),
            sub: user.subject(),
            scopes: scopes.to_vec(),
            auth_time: auth_time.unwrap_or(iat),
            family: family.clone(),
            claims: claims_request.cloned(),
            sid: sid.to_string(),
        };
        s.store
            .put(
                &token_key(REFRESH_TOKEN.kind, &refresh),
                &serde_json::to_string(&grant).unwrap_or_default(),
                client.refresh_token_ttl,
            )
            .await?;
        response["refresh_token"] = json!(refresh);
    }
    Ok(response)
}

// ---- userinfo ----

fn bearer_error(status: StatusCode, error: Option<&'static str>, description: &str) -> Response {
    let challenge = match error {
        Some(e) => format!(
            "Bearer realm=\"kube-oidc\", error=\"{e}\", error_description=\"{description}\""
        ),
        None => "Bearer realm=\"kube-oidc\"".to_string(),
    };
    let body = error
        .map(|e| json!({"error": e, "error_description": description}))
        .unwrap_or_else(|| json!({}));
    (
        status,
        [
            (header::WWW_AUTHENTICATE, challenge),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        axum::Json(body),
    )
        .into_response()
}

/// Validates an access token issued here: a JWT (signature, issuer, expiry, `typ`) or an
/// opaque token in the store.
pub async fn access_claims(
    s: &AppState,
    view: &View,
    token: &str,
) -> Result<Option<AccessClaims>, StoreError> {
    let claims = if token.matches('.').count() == 2 {
        let Some((claims, typ)) = view
            .verifier
            .verify::<AccessClaims>(token, &view.issuer, false)
        else {
            return Ok(None);
        };
        if !typ.is_some_and(|t| t.eq_ignore_ascii_case("at+jwt")) {
            return Ok(None);
        }
        // A revoked JWT looks valid until it expires: the deny list says otherwise.
        if s.store
            .get(&format!("revoked:{}", claims.jti))
            .await?
            .is_some()
        {
            return Ok(None);
        }
        claims
    } else {
        let Some(claims) = s
            .store
            .get(&token_key("at", token))
            .await?
            .and_then(|v| serde_json::from_str::<AccessClaims>(&v).ok())
            .filter(|c| c.exp > now())
        else {
            return Ok(None);
        };
        claims
    };
    // Revoking a refresh token family revokes the access tokens issued from it.
    if let Some(family) = &claims.fam
        && s.store.get(&format!("family:{family}")).await?.is_none()
    {
        return Ok(None);
    }
    Ok(Some(claims))
}

async fn userinfo(
    State(s): State<Shared>,
    method: axum::http::Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let view = s.view.load_full();
    let header_token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_string());
    // RFC 6750 §2.2: form-encoded body parameter, POST only.
    let form_token = if method == axum::http::Method::POST
        && headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
    {
        match oidc::parse_params(&body) {
            Ok(p) => p.get("access_token").cloned(),
            Err(m) => return bearer_error(StatusCode::BAD_REQUEST, Some("invalid_request"), &m),
        }
    } else {
        None
    };
    let token = match (header_token, form_token) {
        (Some(_), Some(_)) => {
            return bearer_error(
                StatusCode::BAD_REQUEST,
                Some("invalid_request"),
                "send the token once",
            );
        }
        (Some(t), None) | (None, Some(t)) => t,
        (None, None) => return bearer_error(StatusCode::UNAUTHORIZED, None, ""),
    };
    let claims = match access_claims(&s, &view, &token).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return bearer_error(
                StatusCode::UNAUTHORIZED,
                Some("invalid_token"),
                "the access token is invalid or expired",
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "store");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "5")],
            )
                .into_response();
        }
    };
    let scopes = oidc::split_scopes(&claims.scope);
    let user = view.users.by_sub(&claims.sub);
    let (Some(user), true) = (user, scopes.iter().any(|sc| sc == "openid")) else {
        return bearer_error(
            StatusCode::FORBIDDEN,
            Some("insufficient_scope"),
            "the token does not carry the openid scope of a user",
        );
    };
    let request = claims.userinfo_claims.map(|u| json!({ "userinfo": u }));
    let body = oidc::select_claims(&view, &user, &scopes, request.as_ref(), "userinfo");
    (
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(Value::Object(body)),
    )
        .into_response()
}
