//! `/authorize` (GET and POST): validate, then sign-in, consent or a code.

use axum::{
    body::Bytes,
    extract::{RawQuery, State},
    http::{HeaderMap, StatusCode, header},
    response::Response,
};

use super::{
    Shared,
    extract::{BINDING_COOKIE, SESSION_COOKIE, cookie, set_cookie},
    pages,
    respond::{Redirect, error_page, page, redirect_error, redirect_with, unavailable_page},
};
use crate::{
    config::View,
    protocol::{
        authorize::{self, AuthorizeError, Next, Progress},
        interaction::PENDING_TTL,
        params::parse_params,
        session::Session,
    },
};

pub async fn authorize_get(
    State(s): State<Shared>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    authorize(
        s,
        headers,
        q.unwrap_or_default().as_bytes(),
        Redirect::Found,
    )
    .await
}

pub async fn authorize_post(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    authorize(s, headers, &body, Redirect::SeeOther).await
}

fn invalid(message: &str) -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        "This sign-in request is invalid",
        message,
    )
}

async fn authorize(s: Shared, headers: HeaderMap, raw: &[u8], how: Redirect) -> Response {
    let view = s.view.load_full();
    let params = match parse_params(raw) {
        Ok(p) => p,
        Err(m) => return invalid(&m),
    };
    let request = match authorize::validate(&view, &params) {
        Ok(r) => r,
        Err(AuthorizeError::Page(message)) => return invalid(&message),
        Err(AuthorizeError::Redirect {
            redirect_uri,
            state,
            error,
        }) => return redirect_error(&view, &redirect_uri, &error, state.as_deref(), how),
    };
    let ctx = s.context(&view);
    let cookie = cookie(&headers, SESSION_COOKIE);
    let next = match Session::find(&s.store, cookie.as_deref()).await {
        Ok(session) => authorize::proceed(&ctx, request, session, Progress::default()).await,
        Err(e) => Err(e),
    };
    match next {
        Ok(next) => respond(&view, next, how),
        Err(e) => unavailable_page(&e),
    }
}

/// The response to where an authorization request goes next.
pub fn respond(view: &View, next: Next, how: Redirect) -> Response {
    match next {
        Next::Code {
            redirect_uri,
            state,
            code,
        } => redirect_with(
            view,
            &redirect_uri,
            &[("code", &code)],
            state.as_deref(),
            how,
        ),
        Next::Error {
            redirect_uri,
            state,
            error,
        } => redirect_error(view, &redirect_uri, &error, state.as_deref(), how),
        Next::SignIn {
            client,
            started,
            login_hint,
        } => {
            let html = pages::login(
                &client.name,
                &started.id,
                &started.csrf,
                login_hint.as_deref().unwrap_or_default(),
                None,
            );
            bound_page(view, html, &started.binding_cookie)
        }
        Next::Consent {
            client,
            started,
            scopes,
        } => {
            let html = pages::consent(&client.name, &scopes, &started.id, &started.csrf);
            bound_page(view, html, &started.binding_cookie)
        }
        Next::UnknownClient => error_page(
            StatusCode::BAD_REQUEST,
            "Unknown application",
            "The application is no longer registered.",
        ),
    }
}

/// A page of a pending interaction, with the cookie that binds it to this browser.
pub fn bound_page(view: &View, html: String, binding_cookie: &str) -> Response {
    let mut res = page(StatusCode::OK, html);
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(view, BINDING_COOKIE, binding_cookie, PENDING_TTL),
    );
    res
}
