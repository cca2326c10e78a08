//! In-process tests of what is HTTP-shaped (status codes, headers, cookies, redirects) through the
//! router (`tower::ServiceExt::oneshot`); one file per area.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod attacks;
mod authorization;
mod device;
mod introspection;
mod sessions;
mod tokens;

use std::{collections::HashMap, sync::Arc};

use arc_swap::ArcSwap;
use axum::{
    Router,
    body::Body,
    http::{HeaderMap, Request, StatusCode, header},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use crate::{
    http::{AppState, Limits, operations_router, router_with},
    metrics::Metrics,
    store::Store,
};

pub(super) use crate::test_support::{CHALLENGE, ISSUER, PASSWORD, VERIFIER};

pub(super) struct Harness {
    app: Router,
    kid: String,
    /// What the provider serves, to change as a watch would.
    view: Arc<ArcSwap<crate::config::View>>,
}

pub(super) fn harness_with(store: Store) -> Harness {
    harness_full(store, None)
}

pub(super) fn harness_full(store: Store, backchannel: Option<&str>) -> Harness {
    harness_split(store, backchannel, Limits::default()).0
}

/// A harness whose router serves /metrics only if `metrics_here`, and the operations router of
/// `--metrics-listen`.
pub(super) fn harness_split(
    store: Store,
    backchannel: Option<&str>,
    limits: Limits,
) -> (Harness, Router) {
    let (view, kid) = crate::test_support::view(backchannel);
    let shared_view = Arc::new(ArcSwap::from_pointee(view));
    let state = Arc::new(AppState {
        view: shared_view.clone(),
        store,
        metrics: Arc::new(Metrics::default()),
        http: {
            crate::install_crypto_provider();
            reqwest::Client::new()
        },
        registration: None,
        // Every second use of a refresh token is theft here; the reuse interval has its own
        // protocol test.
        settings: crate::protocol::Settings::default(),
        ui: Arc::new(crate::http::pages::Ui::load(&Default::default()).unwrap()),
    });
    let operations = operations_router(state.clone());
    (
        Harness {
            app: router_with(state, limits),
            kid,
            view: shared_view,
        },
        operations,
    )
}

pub(super) fn harness() -> Harness {
    harness_with(Store::memory())
}

pub(super) struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    fn location(&self) -> url::Url {
        url::Url::parse(self.headers[header::LOCATION].to_str().unwrap()).unwrap()
    }

    fn query(&self) -> HashMap<String, String> {
        self.location().query_pairs().into_owned().collect()
    }

    /// The parameters of a redirect's fragment (response_mode fragment).
    fn fragment(&self) -> HashMap<String, String> {
        let location = self.location();
        url::form_urlencoded::parse(location.fragment().unwrap_or_default().as_bytes())
            .into_owned()
            .collect()
    }

    /// The value of a hidden form field on the page.
    fn field(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no field {name} in {}", self.body))
            + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_string()
    }
}

/// A browser: keeps cookies across requests.
#[derive(Default)]
pub(super) struct Browser {
    cookies: HashMap<String, String>,
}

impl Browser {
    async fn send(&mut self, h: &Harness, mut req: Request<Body>) -> Reply {
        if !self.cookies.is_empty() {
            let c: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            req.headers_mut()
                .insert(header::COOKIE, c.join("; ").parse().unwrap());
        }
        let res = h.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        for v in headers.get_all(header::SET_COOKIE) {
            let v = v.to_str().unwrap();
            let (kv, _) = v.split_once(';').unwrap_or((v, ""));
            let (k, val) = kv.split_once('=').unwrap();
            self.cookies.insert(k.into(), val.into());
        }
        let body = String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec())
            .unwrap();
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn get(&mut self, h: &Harness, uri: &str) -> Reply {
        self.send(h, Request::get(uri).body(Body::empty()).unwrap())
            .await
    }

    async fn post(&mut self, h: &Harness, uri: &str, form: &[(&str, &str)]) -> Reply {
        let body = serde_urlencoded::to_string(form).unwrap();
        self.send(
            h,
            Request::post(uri)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
    }
}

pub(super) async fn call(h: &Harness, req: Request<Body>) -> Reply {
    Browser::default().send(h, req).await
}

pub(super) async fn token(h: &Harness, auth: Option<(&str, &str)>, form: &[(&str, &str)]) -> Reply {
    let mut req =
        Request::post("/token").header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some((id, secret)) = auth {
        let enc = |s: &str| serde_urlencoded::to_string([("v", s)]).unwrap()[2..].to_string();
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            enc(id),
            enc(secret)
        ));
        req = req.header(header::AUTHORIZATION, format!("Basic {basic}"));
    }
    call(
        h,
        req.body(Body::from(serde_urlencoded::to_string(form).unwrap()))
            .unwrap(),
    )
    .await
}

/// A request that must be answered with an error page, never a redirect (RFC 9700 §4.1.3: a
/// redirect to an unregistered URI is an open redirector).
pub(super) async fn refused_without_redirect(h: &Harness, uri: &str) {
    let r = call(h, Request::get(uri).body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}: {}", r.body);
    assert!(
        r.headers.get(header::LOCATION).is_none(),
        "{uri} redirected"
    );
    assert!(r.body.contains("<h1>"), "{uri}: {}", r.body);
}

pub(super) fn authorize_uri(client: &str, redirect: &str, extra: &str) -> String {
    format!(
        "/authorize?response_type=code&client_id={client}&redirect_uri={}&scope=openid%20email%20offline_access&state=st%20ate&nonce=n-0S6&code_challenge={CHALLENGE}&code_challenge_method=S256{extra}",
        urlencode(redirect)
    )
}

pub(super) fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("v", s)]).unwrap()[2..].to_string()
}

/// Opens the sign-in page of `uri` and signs `user` in: what comes next (the consent page, or
/// the authorization response).
pub(super) async fn open_and_log_in(h: &Harness, b: &mut Browser, uri: &str, user: &str) -> Reply {
    let page = b.get(h, uri).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("name=\"password\""),
        "not a login page: {}",
        page.body
    );
    sessions::log_in(h, b, &page, user, PASSWORD).await
}

/// Signs in (and consents if asked) and returns the authorization response.
pub(super) async fn sign_in(h: &Harness, b: &mut Browser, uri: &str, user: &str) -> Reply {
    let mut reply = open_and_log_in(h, b, uri, user).await;
    if reply.status == StatusCode::OK && reply.body.contains("name=\"decision\"") {
        reply = b
            .post(
                h,
                "/consent",
                &[
                    ("request", &reply.field("request")),
                    ("csrf", &reply.field("csrf")),
                    ("decision", "approve"),
                ],
            )
            .await;
    }
    reply
}

pub(super) fn decode_jwt(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let header = serde_json::from_slice(&B64.decode(parts.next().unwrap()).unwrap()).unwrap();
    let claims = serde_json::from_slice(&B64.decode(parts.next().unwrap()).unwrap()).unwrap();
    (header, claims)
}

pub(super) async fn code_for(h: &Harness, client: &str, redirect: &str, extra: &str) -> String {
    let mut b = Browser::default();
    let r = sign_in(h, &mut b, &authorize_uri(client, redirect, extra), "alice").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    r.query()["code"].clone()
}

pub(super) async fn introspect(h: &Harness, auth: (&str, &str), tok: &str) -> Value {
    let r = token_like(h, "/introspect", Some(auth), &[("token", tok)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
    r.json()
}

pub(super) async fn token_like(
    h: &Harness,
    path: &str,
    auth: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> Reply {
    let mut req =
        Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some((id, secret)) = auth {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            urlencode(id),
            urlencode(secret)
        ));
        req = req.header(header::AUTHORIZATION, format!("Basic {basic}"));
    }
    call(
        h,
        req.body(Body::from(serde_urlencoded::to_string(form).unwrap()))
            .unwrap(),
    )
    .await
}

pub(super) async fn web_tokens(h: &Harness) -> Value {
    let code = code_for(h, "web", "https://web.example/cb", "").await;
    let t = token(
        h,
        Some(("web", "web-secret")),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://web.example/cb"),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.body);
    t.json()
}
