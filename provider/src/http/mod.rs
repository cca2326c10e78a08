//! The HTTP layer (axum only): extractors, responders, one small file per endpoint. Each handler
//! parses its request, calls `protocol`, and maps the result.

mod authorize;
mod consent;
mod device;
mod discovery;
pub mod extract;
mod introspect;
mod login;
mod logout;
pub mod pages;
pub mod register;
mod respond;
mod revoke;
mod token;
mod upstream;
mod userinfo;

use std::sync::Arc;

use axum::{
    Router,
    http::{HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::Response,
    routing::{get, post},
};

use crate::{
    config::{SharedView, View},
    metrics::Metrics,
    protocol::{self, Context},
    store::Store,
};

/// What every handler shares.
pub struct AppState {
    pub view: SharedView,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    /// Delivers back-channel logout tokens.
    pub http: reqwest::Client,
    /// Dynamic client registration, when enabled.
    pub registration: Option<register::Registration>,
    pub settings: protocol::Settings,
    /// The pages: templates, languages, branding.
    pub ui: Arc<pages::Ui>,
}

type Shared = Arc<AppState>;

impl AppState {
    /// The protocol's context for one request: this view, the store, now.
    fn context<'a>(&'a self, view: &'a View) -> Context<'a> {
        Context {
            view,
            store: &self.store,
            now: protocol::now(),
            settings: &self.settings,
        }
    }
}

/// The operations router of `--metrics-listen`: /metrics, /healthz, /readyz.
pub fn operations_router(state: Shared) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(discovery::readyz))
        .route("/metrics", get(discovery::metrics))
        .with_state(state)
}

/// The router; nested under the issuer's path when it has one. /metrics is on it only when
/// `metrics_here` (no separate operations listener): with one, metrics never reach the port
/// the public is sent to.
pub fn router(state: Shared) -> Router {
    router_with(state, Limits::default())
}

/// What the public router is held to.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Proxies whose `X-Forwarded-For` names the client (throttles key on it).
    pub trusted_proxies: extract::TrustedProxies,
    /// Serve /metrics here (no separate operations listener).
    pub metrics_here: bool,
    /// Requests served at once; more get 503 with Retry-After.
    pub max_concurrent_requests: usize,
    /// A request not answered in this time gets 408.
    pub request_timeout: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            trusted_proxies: extract::TrustedProxies::default(),
            metrics_here: true,
            max_concurrent_requests: 512,
            request_timeout: std::time::Duration::from_secs(30),
        }
    }
}

pub fn router_with(state: Shared, limits: Limits) -> Router {
    let metrics_here = limits.metrics_here;
    let issuer = state.view.load().issuer.clone();
    let https = issuer.starts_with("https://");
    let routes = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(discovery::discovery),
        )
        .route("/jwks", get(discovery::jwks))
        .route(
            "/authorize",
            get(authorize::authorize).post(authorize::authorize).layer(
                middleware::from_fn_with_state(state.clone(), interaction_starts),
            ),
        )
        .route("/login", post(login::login))
        .route("/callback/{connector}", get(upstream::callback))
        .route("/connector/{connector}", get(upstream::straight))
        .route("/consent", post(consent::consent))
        .route("/token", post(token::token))
        .route("/device_authorization", post(device::device_authorization))
        .route(
            "/device",
            get(device::verify)
                .post(device::verify)
                .layer(middleware::from_fn_with_state(
                    state.clone(),
                    interaction_starts,
                )),
        )
        .route(
            "/userinfo",
            get(userinfo::userinfo).post(userinfo::userinfo),
        )
        .route("/introspect", post(introspect::introspect))
        .route("/revoke", post(revoke::revoke))
        .route(
            "/end_session",
            get(logout::end_session).post(logout::end_session).layer(
                middleware::from_fn_with_state(state.clone(), interaction_starts),
            ),
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
        .route("/readyz", get(discovery::readyz));
    let routes = if metrics_here {
        routes.route("/metrics", get(discovery::metrics))
    } else {
        routes
    };
    let prefix = cookie_prefix(&issuer);
    let csp = HeaderValue::from_str(&pages::csp(&state.ui.img_src)).unwrap_or(HeaderValue::from_static(
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'",
    ));
    let ui = state.ui.clone();
    let routes = routes
        .layer(axum::Extension(limits.trusted_proxies.clone()))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(64 * 1024))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        // Beyond the limit, an answer at once rather than a queue that grows.
        .layer(
            tower::ServiceBuilder::new()
                .layer(axum::error_handling::HandleErrorLayer::new(
                    |_: tower::BoxError| async {
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            [(header::RETRY_AFTER, "1")],
                            "busy: try again in a moment",
                        )
                    },
                ))
                .layer(tower::load_shed::LoadShedLayer::new())
                .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
                    limits.max_concurrent_requests,
                )),
        )
        .layer(middleware::from_fn(move |req, next| {
            prefixed_cookies(prefix, req, next)
        }))
        .layer(middleware::from_fn(move |req, next| {
            pages_and_headers(https, ui.clone(), csp.clone(), req, next)
        }))
        .layer(tower_http::trace::TraceLayer::new_for_http())
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

/// Requests that may start a pending interaction, per address and [`STARTS_WINDOW`] (the
/// lifetime of a pending interaction): beyond it, a page asking to wait, so that one address
/// cannot fill the store with pending sign-ins.
pub const MAX_STARTS_PER_IP: u64 = 600;
const STARTS_WINDOW: std::time::Duration = std::time::Duration::from_secs(600);

async fn interaction_starts(
    axum::extract::State(s): axum::extract::State<Shared>,
    extract::ClientIp(ip): extract::ClientIp,
    req: axum::extract::Request,
    next: Next,
) -> Response {
    match s
        .store
        .count(crate::store::Key::InteractionStarts(&ip), STARTS_WINDOW)
        .await
    {
        Ok(n) if n > MAX_STARTS_PER_IP => {
            tracing::warn!(%ip, "interaction starts throttled");
            respond::error_page(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many sign-ins",
                "Too many sign-ins were started from your network. Wait a few minutes and try again.",
            )
        }
        Ok(_) => next.run(req).await,
        Err(e) => respond::unavailable_page(&e),
    }
}

/// The cookie name prefix of an issuer: `__Host-` over https at the root (the browser then
/// only accepts the cookie from this exact host, over https, for every path), `__Secure-` over
/// https under a path, none over http.
fn cookie_prefix(issuer: &str) -> &'static str {
    let Some(rest) = issuer.strip_prefix("https://") else {
        return "";
    };
    if rest.trim_end_matches('/').contains('/') {
        "__Secure-"
    } else {
        "__Host-"
    }
}

/// The provider's cookies under their prefix: set with it, and read only with it, so a cookie
/// planted without the prefix (from a sibling subdomain, or over http) is never taken for a
/// session. Handlers see the plain names.
async fn prefixed_cookies(
    prefix: &'static str,
    mut req: axum::extract::Request,
    next: Next,
) -> Response {
    if prefix.is_empty() {
        return next.run(req).await;
    }
    let ours = [extract::SESSION_COOKIE, extract::BINDING_COOKIE];
    let kept: Vec<String> = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter_map(|kv| {
            let name = kv.split('=').next().unwrap_or_default();
            match name.strip_prefix(prefix) {
                Some(plain) if ours.contains(&plain) => Some(kv[prefix.len()..].to_string()),
                _ if ours.contains(&name) => None,
                _ => Some(kv.to_string()),
            }
        })
        .collect();
    req.headers_mut().remove(header::COOKIE);
    if let Ok(v) = HeaderValue::from_str(&kept.join("; "))
        && !kept.is_empty()
    {
        req.headers_mut().insert(header::COOKIE, v);
    }
    let mut res = next.run(req).await;
    let set: Vec<HeaderValue> = res
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| {
            let text = v.to_str().unwrap_or_default();
            let name = text.split('=').next().unwrap_or_default();
            if ours.contains(&name) {
                HeaderValue::from_str(&format!("{prefix}{text}")).unwrap_or_else(|_| v.clone())
            } else {
                v.clone()
            }
        })
        .collect();
    res.headers_mut().remove(header::SET_COOKIE);
    for v in set {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

/// Pages in the language the request asks for (read only if a page is rendered), and the
/// security headers of every answer.
async fn pages_and_headers(
    https: bool,
    ui: Arc<pages::Ui>,
    csp: HeaderValue,
    req: axum::extract::Request,
    next: Next,
) -> Response {
    let accept = req.headers().get(header::ACCEPT_LANGUAGE).cloned();
    let mut res = pages::localized(ui, accept, next.run(req)).await;
    let h = res.headers_mut();
    // A page with a policy of its own (the form_post page's script nonce) keeps it.
    h.entry(header::CONTENT_SECURITY_POLICY).or_insert(csp);
    // Pages differ by language.
    if h.get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"))
    {
        h.append(header::VARY, HeaderValue::from_static("Accept-Language"));
    }
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
