//! What handlers read from a request: the peer address, cookies, credentials, form parameters.

use std::{net::SocketAddr, time::Duration};

use axum::{
    body::Bytes,
    extract::{ConnectInfo, FromRequest, FromRequestParts, Request},
    http::{HeaderMap, HeaderValue, Method, header, request::Parts},
    response::{IntoResponse, Response},
};

use super::respond::Redirect;
use crate::{
    config::View,
    protocol::{
        interaction::Answer,
        params::{Params, parse_params},
    },
};

/// The parameters of an endpoint served by GET (query) and POST (form body), and the redirect
/// that answers the method.
pub struct Parameters {
    pub raw: Bytes,
    pub how: Redirect,
}

impl<S: Send + Sync> FromRequest<S> for Parameters {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if req.method() == Method::POST {
            let raw = Bytes::from_request(req, state)
                .await
                .map_err(IntoResponse::into_response)?;
            Ok(Self {
                raw,
                how: Redirect::SeeOther,
            })
        } else {
            let query = req.uri().query().unwrap_or_default().as_bytes().to_vec();
            Ok(Self {
                raw: Bytes::from(query),
                how: Redirect::Found,
            })
        }
    }
}

/// The session cookie.
pub const SESSION_COOKIE: &str = "kube_oidc_session";
/// The cookie that binds a pending interaction to the browser that started it.
pub const BINDING_COOKIE: &str = "kube_oidc_req";

/// The peer address (direct connection; forwarded headers are not trusted).
pub struct ClientIp(pub String);

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

/// The value of cookie `name`.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// A `Set-Cookie` for the issuer's path: HttpOnly, SameSite=Lax, Secure under https.
pub fn set_cookie(view: &View, name: &str, value: &str, max_age: Duration) -> HeaderValue {
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

/// The value of an `Authorization` header with `scheme` (case-insensitive first letter).
fn authorization<'h>(headers: &'h HeaderMap, scheme: &str) -> Option<&'h str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let lower = scheme.to_ascii_lowercase();
    value
        .strip_prefix(&format!("{scheme} "))
        .or_else(|| value.strip_prefix(&format!("{lower} ")))
}

/// The credentials of `Authorization: Basic`, still base64.
pub fn basic(headers: &HeaderMap) -> Option<&str> {
    authorization(headers, "Basic")
}

/// The token of `Authorization: Bearer`.
pub fn bearer(headers: &HeaderMap) -> Option<String> {
    authorization(headers, "Bearer").map(|t| t.trim().to_string())
}

/// A form that answers a pending interaction, with the browser's binding cookie.
pub struct AnswerForm {
    pub form: Params,
    binding_cookie: Option<String>,
}

impl AnswerForm {
    /// The form in `body`, or `None` when it is malformed.
    pub fn parse(body: &[u8], headers: &HeaderMap) -> Option<Self> {
        Some(Self {
            form: parse_params(body).ok()?,
            binding_cookie: cookie(headers, BINDING_COOKIE),
        })
    }

    /// The form field `name`.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form.get(name).map(String::as_str)
    }

    /// What the protocol checks the answer by.
    pub fn answer(&self) -> Answer<'_> {
        Answer {
            id: self.field("request"),
            csrf: self.field("csrf"),
            binding_cookie: self.binding_cookie.as_deref(),
        }
    }
}
