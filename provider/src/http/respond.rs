//! One responder per error form: pages for people, redirects back to clients, JSON bodies for
//! the token endpoint family (RFC 6749 §5.2) and bearer challenges (RFC 6750 §3).

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Response},
};
use serde_json::{Value, json};

use super::pages;
use crate::protocol::authorize::ResponseMode;
use crate::{config::View, protocol::OAuthError, store::StoreError};

/// How a redirect answers the request that caused it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Redirect {
    /// 302 Found: the answer to a GET.
    Found,
    /// 303 See Other: the answer to a form POST, so the browser follows with a GET.
    SeeOther,
}

impl Redirect {
    fn status(self) -> StatusCode {
        match self {
            Self::Found => StatusCode::FOUND,
            Self::SeeOther => StatusCode::SEE_OTHER,
        }
    }
}

pub fn page(status: StatusCode, html: String) -> Response {
    (status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response()
}

pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    page(status, pages::error(title, message))
}

/// A 400 page: the request cannot be served, and why.
pub fn bad_request_page(title: &str, message: &str) -> Response {
    error_page(StatusCode::BAD_REQUEST, title, message)
}

pub fn unavailable_page(e: &StoreError) -> Response {
    tracing::error!(error = %e, "store");
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Temporarily unavailable",
        "Signing in is not possible right now. Please try again in a moment.",
    )
}

pub fn expired_request() -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        "This sign-in request has expired",
        "Go back to the application and start signing in again.",
    )
}

pub fn redirect(to: &str, how: Redirect) -> Response {
    (
        how.status(),
        [
            (header::LOCATION, to.to_string()),
            (header::CACHE_CONTROL, "no-store".into()),
        ],
    )
        .into_response()
}

/// An authorization response or error sent back to the client (RFC 6749 §4.1.2, RFC 9207 iss).
pub fn redirect_with(
    view: &View,
    redirect_uri: &str,
    params: &[(&str, &str)],
    state: Option<&str>,
    how: Redirect,
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
    redirect(url.as_str(), how)
}

/// An authorization response in the request's response mode: a redirect with query or
/// fragment parameters, or (form_post) a page whose form the browser posts to the redirect URI.
pub fn answer(
    view: &View,
    redirect_uri: &str,
    params: &[(&str, &str)],
    state: Option<&str>,
    how: Redirect,
    mode: ResponseMode,
) -> Response {
    if mode == ResponseMode::Query {
        return redirect_with(view, redirect_uri, params, state, how);
    }
    let mut fields: Vec<(&str, &str)> = params.to_vec();
    if let Some(s) = state {
        fields.push(("state", s));
    }
    fields.push(("iss", &view.issuer));
    if mode == ResponseMode::Fragment {
        // Registered redirect URIs have no fragment of their own.
        let Ok(mut url) = url::Url::parse(redirect_uri) else {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Invalid request",
                "The redirect URI is invalid.",
            );
        };
        let encoded = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&fields)
            .finish();
        url.set_fragment(Some(&encoded));
        return redirect(url.as_str(), how);
    }
    let nonce = crate::protocol::params::random_token();
    let csp = format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"
    );
    let mut response = page(
        StatusCode::OK,
        pages::form_post(redirect_uri, &fields, &nonce),
    );
    if let Ok(v) = axum::http::HeaderValue::from_str(&csp) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, v);
    }
    response
}

/// An error sent back to the client in the request's response mode.
pub fn answer_error(
    view: &View,
    redirect_uri: &str,
    error: &OAuthError,
    state: Option<&str>,
    how: Redirect,
    mode: ResponseMode,
) -> Response {
    answer(
        view,
        redirect_uri,
        &[
            ("error", error.code()),
            ("error_description", error.description()),
        ],
        state,
        how,
        mode,
    )
}

/// A JSON answer that nobody may cache (RFC 6749 §5.1).
pub fn no_store_json(status: StatusCode, body: Value) -> Response {
    (
        status,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        axum::Json(body),
    )
        .into_response()
}

/// RFC 6749 §5.2 at the token, introspection and revocation endpoints.
pub fn token_error(e: &OAuthError) -> Response {
    let status = match e {
        OAuthError::InvalidClient(_) => StatusCode::UNAUTHORIZED,
        OAuthError::TemporarilyUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        OAuthError::ServerError(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut res = no_store_json(
        status,
        json!({"error": e.code(), "error_description": e.description()}),
    );
    if status == StatusCode::UNAUTHORIZED {
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"kube-oidc\""),
        );
    }
    res
}

/// RFC 6750 §3 at a protected resource; `None` when no token was sent at all.
pub fn bearer_error(e: Option<&OAuthError>) -> Response {
    let Some(e) = e else {
        return (
            StatusCode::UNAUTHORIZED,
            [
                (header::WWW_AUTHENTICATE, "Bearer realm=\"kube-oidc\""),
                (header::CACHE_CONTROL, "no-store"),
            ],
            axum::Json(json!({})),
        )
            .into_response();
    };
    let status = match e {
        OAuthError::InvalidToken(_) => StatusCode::UNAUTHORIZED,
        OAuthError::InsufficientScope(_) => StatusCode::FORBIDDEN,
        OAuthError::TemporarilyUnavailable(_) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "5")],
            )
                .into_response();
        }
        _ => StatusCode::BAD_REQUEST,
    };
    let challenge = format!(
        "Bearer realm=\"kube-oidc\", error=\"{}\", error_description=\"{}\"",
        e.code(),
        e.description()
    );
    (
        status,
        [
            (header::WWW_AUTHENTICATE, challenge),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        axum::Json(json!({"error": e.code(), "error_description": e.description()})),
    )
        .into_response()
}
