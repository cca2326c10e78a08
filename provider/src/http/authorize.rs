//! `/authorize` (GET and POST): validate, then sign-in, consent or a code.

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::Response,
};

use super::{
    AppState, Shared,
    extract::{AnswerForm, BINDING_COOKIE, Parameters, SESSION_COOKIE, cookie, set_cookie},
    pages,
    respond::{
        Redirect, answer, answer_error, bad_request_page, error_page, expired_request, page,
        redirect, unavailable_page,
    },
};
use crate::{
    config::View,
    protocol::{
        authorize::{self, AuthorizeError, Next, Progress},
        interaction::{self, Interaction, PENDING_TTL, Pending, SignInStep},
        params::parse_params,
        request_object,
        session::Session,
    },
};

/// The title of the page that refuses a malformed request.
const INVALID_SIGN_IN: &str = "This sign-in request is invalid";

pub async fn authorize(
    State(s): State<Shared>,
    headers: HeaderMap,
    Parameters { raw, how }: Parameters,
) -> Response {
    let view = s.view.load_full();
    let validated = match parse_params(&raw) {
        Err(e) => Err(AuthorizeError::Page(e)),
        Ok(params) => {
            let ctx = s.context(&view);
            match request_object::resolve(&ctx, &params).await {
                Ok(Some(merged)) => authorize::validate_resolved(&view, &merged, None),
                Ok(None) => authorize::validate_resolved(&view, &params, None),
                Err(e) => {
                    let mut plain = params;
                    plain.remove("request");
                    plain.remove("request_uri");
                    authorize::validate_resolved(&view, &plain, Some(e))
                }
            }
        }
    };
    let request = match validated {
        Ok(r) => r,
        Err(AuthorizeError::Page(message)) => return bad_request_page(INVALID_SIGN_IN, &message),
        Err(AuthorizeError::Redirect {
            redirect_uri,
            state,
            error,
            response_mode,
        }) => {
            return answer_error(
                &view,
                &redirect_uri,
                &error,
                state.as_deref(),
                how,
                response_mode,
            );
        }
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
        Next::Answer {
            redirect_uri,
            state,
            params,
            response_mode,
        } => {
            let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            answer(
                view,
                &redirect_uri,
                &params,
                state.as_deref(),
                how,
                response_mode,
            )
        }
        Next::Error {
            redirect_uri,
            state,
            error,
            response_mode,
        } => answer_error(
            view,
            &redirect_uri,
            &error,
            state.as_deref(),
            how,
            response_mode,
        ),
        Next::SignIn {
            client,
            started,
            login_hint,
            connector,
        } => {
            let options = pages::SignInOptions::of(view, &client, connector.as_deref());
            if let Some(name) = options.straight_to(connector.as_deref()) {
                // Straight to the only (or the chosen) upstream, this browser bound to the
                // sign-in as the page would have bound it.
                let to = format!("{}/connector/{name}?request={}", view.issuer, started.id);
                let mut res = redirect(&to, how);
                res.headers_mut().append(
                    header::SET_COOKIE,
                    set_cookie(view, BINDING_COOKIE, &started.binding_cookie, PENDING_TTL),
                );
                return res;
            }
            let html = pages::login(
                &client,
                &options,
                &started.id,
                &started.csrf,
                login_hint.as_deref().unwrap_or_default(),
                None,
            );
            with_client_csp(bound_page(view, html, &started.binding_cookie), &client)
        }
        Next::Consent {
            client,
            started,
            account,
            scopes,
            device_code,
        } => {
            let html = pages::consent(
                &client,
                &account,
                &scopes,
                device_code.as_deref(),
                &started.id,
                &started.csrf,
            );
            with_client_csp(bound_page(view, html, &started.binding_cookie), &client)
        }
        Next::UnknownClient => error_page(
            StatusCode::BAD_REQUEST,
            "Unknown application",
            "The application is no longer registered.",
        ),
        Next::NotAllowed => error_page(
            StatusCode::FORBIDDEN,
            "Access denied",
            "You are not allowed to use this application.",
        ),
    }
}

/// A page that shows `client`'s logo, with the Content-Security-Policy that lets it load.
pub fn with_client_csp(mut page: Response, client: &crate::config::ClientConfig) -> Response {
    if let Some(csp) = pages::client_page_csp(client) {
        page.headers_mut()
            .insert(axum::http::header::CONTENT_SECURITY_POLICY, csp);
    }
    page
}

/// The form of a sign-in or consent page and the pending authorization it answers, if it is
/// this browser's; otherwise the page to show.
pub async fn answered(
    s: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(AnswerForm, Pending<SignInStep>), Response> {
    let form = AnswerForm::parse(body, headers).ok_or_else(expired_request)?;
    match interaction::resume(&s.store, Interaction::Authorization, form.answer()).await {
        Ok(Some(pending)) => Ok((form, pending)),
        Ok(None) => Err(expired_request()),
        Err(e) => Err(unavailable_page(&e)),
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
