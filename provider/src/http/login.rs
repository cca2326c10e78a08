//! `/login`: the sign-in form of a pending authorization.

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::Response,
};

use super::{
    Shared,
    authorize::{answered, respond},
    extract::{ClientIp, SESSION_COOKIE, set_cookie},
    pages,
    respond::{Redirect, expired_request, page, unavailable_page},
};
use crate::{
    protocol::{
        authorize::{self, Progress},
        connectors::Upstream,
        device,
        interaction::{self, Interaction, SignInStep},
        login::{self, SignIn},
        session::SESSION_TTL,
    },
    store::StoreError,
};

pub async fn login(
    State(s): State<Shared>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let view = s.view.load_full();
    let (form, pending) = match answered(&s, &headers, &body).await {
        Ok(answered) => answered,
        Err(page) => return page,
    };
    let result: Result<Response, StoreError> = async {
        let ctx = s.context(&view);
        let client_id = match &pending.step {
            SignInStep::Authorization(a) => Some(a.request.client_id.clone()),
            SignInStep::Device(d) => device::client_id(&ctx, &d.user_code).await?,
        };
        let Some(client) = client_id.and_then(|id| view.client(&id)) else {
            return Ok(expired_request());
        };
        let id = form.field("request").unwrap_or_default();
        if let Some(connector) = form.field("connector") {
            return super::upstream::start(&s, connector, id, &pending).await;
        }
        let options = pages::SignInOptions::of(&view, &client, form.field("directory"));
        let username = form.field("username").unwrap_or_default();
        let password = form.field("password").unwrap_or_default().to_string();
        let again = |status: StatusCode, message: &str| {
            super::authorize::with_client_csp(
                page(
                    status,
                    pages::login(
                        &client,
                        &options,
                        id,
                        &pending.csrf,
                        username,
                        Some(message),
                    ),
                ),
                &client,
            )
        };
        let directory = form.field("directory").filter(|d| !d.is_empty()).map(|d| {
            match view.upstreams.get(d).map(AsRef::as_ref) {
                Some(Upstream::Ldap(l)) if client.offers_connector(d) => Some(l),
                _ => None,
            }
        });
        let outcome = match directory {
            // A directory that is not offered here: the same answer as a wrong password.
            Some(None) => SignIn::Refused,
            Some(Some(directory)) => {
                let keep_for = client.refresh_token_ttl.max(SESSION_TTL);
                login::sign_in_directory(&ctx, directory, username, &password, &ip, keep_for)
                    .await?
            }
            None if options.local => login::sign_in(&ctx, username, password, &ip).await?,
            None => SignIn::Refused,
        };
        s.metrics.sign_in(match outcome {
            SignIn::SignedIn(_) => "success",
            SignIn::Throttled => "throttled",
            SignIn::Refused => "refused",
            SignIn::Busy => "busy",
            SignIn::Unreachable => "unreachable",
        });
        match outcome {
            // The same page as a wrong password: whether an account is locked is not told.
            SignIn::Throttled | SignIn::Refused => Ok(again(
                StatusCode::UNAUTHORIZED,
                "Wrong username or password.",
            )),
            SignIn::Busy => Ok(again(
                StatusCode::SERVICE_UNAVAILABLE,
                "Too many people are signing in right now. Try again in a moment.",
            )),
            SignIn::Unreachable => Ok(again(
                StatusCode::SERVICE_UNAVAILABLE,
                "The directory cannot be reached. Try again in a moment.",
            )),

            SignIn::SignedIn(session) => {
                interaction::finish(&s.store, Interaction::Authorization, id).await?;
                let cookie = set_cookie(&view, SESSION_COOKIE, &session.id, SESSION_TTL);
                let progress = Progress {
                    just_signed_in: true,
                    consent_given: false,
                };
                let next = match pending.step {
                    SignInStep::Authorization(a) => {
                        authorize::proceed(&ctx, a.request, Some(session), progress).await?
                    }
                    SignInStep::Device(d) => device::signed_in(&ctx, d, &session).await?,
                };
                let mut res = respond(&view, next, Redirect::SeeOther);
                res.headers_mut().append(header::SET_COOKIE, cookie);
                Ok(res)
            }
        }
    }
    .await;
    result.unwrap_or_else(|e| unavailable_page(&e))
}
