//! `/end_session` (RP-Initiated Logout 1.0) and its confirmation; delivery of Back-Channel
//! Logout 1.0 tokens.

use std::time::Duration;

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::Response,
};

use super::{
    AppState, Shared,
    authorize::bound_page,
    extract::{AnswerForm, Parameters, SESSION_COOKIE, cookie, set_cookie},
    pages,
    respond::{Redirect, bad_request_page, page, redirect, unavailable_page},
};
use crate::{
    config::View,
    protocol::{
        interaction::{self, Interaction},
        logout::{self, BackchannelLogout, LogoutStep},
        params::parse_params,
        session::Session,
    },
    store::StoreError,
};

/// The title of the page that refuses a malformed request.
const INVALID_SIGN_OUT: &str = "This sign-out request is invalid";

pub async fn end_session(
    State(s): State<Shared>,
    headers: HeaderMap,
    Parameters { raw, how }: Parameters,
) -> Response {
    let view = s.view.load_full();
    let request = match parse_params(&raw).and_then(|p| logout::validate(&view, &p)) {
        Ok(r) => r,
        Err(m) => return bad_request_page(INVALID_SIGN_OUT, &m),
    };
    let result: Result<Response, StoreError> = async {
        let session = Session::find(&s.store, cookie(&headers, SESSION_COOKIE).as_deref()).await?;
        let step = request.step();
        let Some(session) = session else {
            return Ok(finish(&view, &step, how));
        };
        if request.tied_to(&session) {
            end(&s, &view, &session).await?;
            return Ok(finish(&view, &step, how));
        }
        // Not tied to this browser's session: ask the user.
        let started = interaction::start(&s.store, Interaction::Logout, step).await?;
        Ok(bound_page(
            &view,
            pages::logout_confirm(&started.id, &started.csrf),
            &started.binding_cookie,
        ))
    }
    .await;
    result.unwrap_or_else(|e| unavailable_page(&e))
}

pub async fn confirm(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let view = s.view.load_full();
    let Some(form) = AnswerForm::parse(&body, &headers) else {
        return bad_request_page(INVALID_SIGN_OUT, "The sign-out form is malformed.");
    };
    let result: Result<Response, StoreError> = async {
        let (Some(id), Some(_)) = (form.field("request"), form.field("csrf")) else {
            return Ok(bad_request_page(
                INVALID_SIGN_OUT,
                "The sign-out form is incomplete.",
            ));
        };
        let kind = Interaction::Logout;
        let Some(pending) =
            interaction::resume::<LogoutStep>(&s.store, kind, form.answer()).await?
        else {
            return Ok(bad_request_page(
                INVALID_SIGN_OUT,
                "This sign-out request has expired.",
            ));
        };
        interaction::finish(&s.store, kind, id).await?;
        if form.field("decision") != Some("logout") {
            return Ok(page(
                StatusCode::OK,
                pages::error("Still signed in", "You are still signed in."),
            ));
        }
        if let Some(session) =
            Session::find(&s.store, cookie(&headers, SESSION_COOKIE).as_deref()).await?
        {
            end(&s, &view, &session).await?;
        }
        Ok(finish(&view, &pending.step, Redirect::SeeOther))
    }
    .await;
    result.unwrap_or_else(|e| unavailable_page(&e))
}

/// Where the browser goes after signing out, with the session cookie cleared.
fn finish(view: &View, step: &LogoutStep, how: Redirect) -> Response {
    let mut res = match step
        .redirect
        .as_deref()
        .and_then(|r| url::Url::parse(r).ok())
    {
        Some(mut url) => {
            if let Some(st) = &step.state {
                url.query_pairs_mut().append_pair("state", st);
            }
            redirect(url.as_str(), how)
        }
        None => page(
            StatusCode::OK,
            pages::error("Signed out", "You are signed out."),
        ),
    };
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(view, SESSION_COOKIE, "", Duration::ZERO),
    );
    res
}

/// Ends the session and notifies, in the background, every client that took part in it.
pub(super) async fn end(s: &AppState, view: &View, session: &Session) -> Result<(), StoreError> {
    for notice in logout::end(&s.context(view), session).await? {
        let http = s.http.clone();
        tokio::spawn(async move { deliver(http, notice).await });
    }
    Ok(())
}

/// POSTs a logout token with bounded retries: three attempts within about ten seconds.
async fn deliver(http: reqwest::Client, notice: BackchannelLogout) {
    let client_id = &notice.client_id;
    for (attempt, delay) in [0u64, 1, 3].into_iter().enumerate() {
        tokio::time::sleep(Duration::from_secs(delay)).await;
        match http
            .post(&notice.uri)
            .timeout(Duration::from_secs(5))
            .form(&[("logout_token", notice.token.as_str())])
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => {
                tracing::info!(client = %client_id, "back-channel logout delivered");
                return;
            }
            Ok(r) => {
                tracing::warn!(client = %client_id, status = %r.status(), attempt, "back-channel logout refused")
            }
            Err(e) => {
                tracing::warn!(client = %client_id, error = %e, attempt, "back-channel logout failed")
            }
        }
    }
    tracing::error!(client = %client_id, "back-channel logout not delivered");
}
