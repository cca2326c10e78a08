//! `/consent`: approve or deny a pending authorization.

use std::time::Duration;

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::Response,
};

use super::{
    Shared,
    authorize::{answered, respond},
    extract::{SESSION_COOKIE, cookie, set_cookie},
    pages,
    respond::{Redirect, answer_error, expired_request, page, redirect, unavailable_page},
};
use crate::{
    protocol::{
        OAuthError,
        authorize::{self, Progress},
        consent, device,
        interaction::{self, Interaction, SignInStep},
        session::Session,
    },
    store::StoreError,
};

pub async fn consent(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let view = s.view.load_full();
    let (form, pending) = match answered(&s, &headers, &body).await {
        Ok(answered) => answered,
        Err(page) => return page,
    };
    let result: Result<Response, StoreError> = async {
        let session = Session::find(&s.store, cookie(&headers, SESSION_COOKIE).as_deref()).await?;
        let Some(session) = session.filter(|sess| Some(&sess.sub) == pending.step.sub()) else {
            return Ok(expired_request());
        };
        interaction::finish(
            &s.store,
            Interaction::Authorization,
            form.field("request").unwrap_or_default(),
        )
        .await?;
        let ctx = s.context(&view);
        // "Not you?": this browser's session ends (its clients are told, as at sign-out) and
        // the request goes back to the sign-in page, for someone else.
        if form.field("decision") == Some("switch") {
            super::logout::end(&s, &view, &session).await?;
            let mut res = match pending.step {
                SignInStep::Authorization(a) => {
                    let next =
                        authorize::proceed(&ctx, a.request, None, Progress::default()).await?;
                    respond(&view, next, Redirect::SeeOther)
                }
                SignInStep::Device(d) => redirect(
                    &format!("device?user_code={}", device::display(&d.user_code)),
                    Redirect::SeeOther,
                ),
            };
            res.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(&view, SESSION_COOKIE, "", Duration::ZERO),
            );
            return Ok(res);
        }
        let approve = form.field("decision") == Some("approve");
        let request = match pending.step {
            SignInStep::Authorization(a) => a.request,
            SignInStep::Device(d) => {
                let decided = device::decide(&ctx, &d.user_code, &session, approve).await?;
                return Ok(device_decided(decided, approve));
            }
        };
        if form.field("decision") != Some("approve") {
            return Ok(answer_error(
                &view,
                &request.redirect_uri,
                &OAuthError::AccessDenied("the user denied access".into()),
                request.state.as_deref(),
                Redirect::SeeOther,
                request.response_mode,
            ));
        }
        consent::record(&ctx, &request.client_id, &session.sub, &request.scopes).await?;
        let progress = Progress {
            just_signed_in: true,
            consent_given: true,
        };
        let next = authorize::proceed(&ctx, request, Some(session), progress).await?;
        Ok(respond(&view, next, Redirect::SeeOther))
    }
    .await;
    result.unwrap_or_else(|e| unavailable_page(&e))
}

/// The page after a user answered a device's request.
fn device_decided(decided: bool, approved: bool) -> Response {
    match (decided, approved) {
        (false, _) => expired_request(),
        (true, true) => page(
            StatusCode::OK,
            pages::error(
                "Device signed in",
                "Your device is signed in. You can close this page and return to it.",
            ),
        ),
        (true, false) => page(
            StatusCode::OK,
            pages::error(
                "Access denied",
                "The device was not signed in. You can close this page.",
            ),
        ),
    }
}
