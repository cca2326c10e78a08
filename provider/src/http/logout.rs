//! RP-Initiated Logout 1.0 at /end_session and Back-Channel Logout 1.0.

use std::time::Duration;

use axum::{
    body::Bytes,
    extract::{RawQuery, State},
    http::{HeaderMap, StatusCode, header},
    response::Response,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{
    AppState, BINDING_COOKIE, PENDING_TTL, SESSION_COOKIE, Session, Shared, cookie,
    current_session, error_page, now, page, redirect, set_cookie, unavailable_page,
};
use crate::{config::View, oidc, pages, store::StoreError, store::token_key};

#[derive(Serialize, Deserialize)]
struct PendingLogout {
    redirect: Option<String>,
    state: Option<String>,
    csrf: String,
    binding: String,
}

pub async fn end_session_get(
    State(s): State<Shared>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    end_session(s, headers, q.unwrap_or_default().as_bytes(), false).await
}

pub async fn end_session_post(
    State(s): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    end_session(s, headers, &body, true).await
}

fn bad(message: &str) -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        "This sign-out request is invalid",
        message,
    )
}

async fn end_session(s: Shared, headers: HeaderMap, raw: &[u8], after_post: bool) -> Response {
    let view = s.view.load_full();
    let params = match oidc::parse_params(raw) {
        Ok(p) => p,
        Err(m) => return bad(&m),
    };
    let hint: Option<Value> = match params.get("id_token_hint") {
        None => None,
        Some(h) => match view.verifier.verify::<Value>(h, &view.issuer, true) {
            Some((claims, _)) => Some(claims),
            None => return bad("id_token_hint is not an ID token issued here."),
        },
    };
    let hint_aud = hint.as_ref().and_then(|h| match &h["aud"] {
        Value::String(a) => Some(a.clone()),
        Value::Array(a) => a.first().and_then(Value::as_str).map(String::from),
        _ => None,
    });
    let client_id = match (params.get("client_id"), hint_aud) {
        (Some(a), Some(b)) if *a != b => return bad("client_id does not match the id_token_hint."),
        (Some(a), _) => Some(a.clone()),
        (None, b) => b,
    };
    let client = match &client_id {
        Some(id) => match view.client(id) {
            Some(c) => Some(c),
            None => return bad("The application is not known here."),
        },
        None => None,
    };
    // Exact match against the client's registered list; never redirect anywhere else.
    let redirect_to = match params.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => match &client {
            Some(c) if c.post_logout_redirect_uris.iter().any(|r| r == uri) => Some(uri.clone()),
            Some(_) => {
                return bad("post_logout_redirect_uri is not registered for this application.");
            }
            None => return bad("post_logout_redirect_uri needs client_id or id_token_hint."),
        },
    };
    let state = params.get("state").cloned();
    let result: Result<Response, StoreError> = async {
        let session = current_session(&s, &headers).await?;
        let Some(session) = session else {
            return Ok(finish(
                &view,
                redirect_to.as_deref(),
                state.as_deref(),
                after_post,
            ));
        };
        let tied = hint.as_ref().is_some_and(|h| {
            h["sub"].as_str() == Some(session.sub.as_str())
                && h["sid"].as_str().is_none_or(|sid| sid == session.sid)
        });
        if tied {
            end(&s, &view, &session).await?;
            return Ok(finish(
                &view,
                redirect_to.as_deref(),
                state.as_deref(),
                after_post,
            ));
        }
        // Not tied to this browser's session: ask the user.
        let id = oidc::random_token();
        let csrf = oidc::random_token();
        let binding = oidc::random_token();
        let pending = PendingLogout {
            redirect: redirect_to.clone(),
            state: state.clone(),
            csrf: csrf.clone(),
            binding: token_key("binding", &binding),
        };
        s.store
            .put(
                &token_key("logout", &id),
                &serde_json::to_string(&pending).unwrap_or_default(),
                PENDING_TTL,
            )
            .await?;
        let mut res = page(StatusCode::OK, pages::logout_confirm(&id, &csrf));
        res.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(&view, BINDING_COOKIE, &binding, PENDING_TTL),
        );
        Ok(res)
    }
    .await;
    result.unwrap_or_else(|e| unavailable_page(&e))
}

pub async fn confirm(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let view = s.view.load_full();
    let Ok(form) = oidc::parse_params(&body) else {
        return bad("The sign-out form is malformed.");
    };
    let result: Result<Response, StoreError> = async {
        let (Some(id), Some(csrf)) = (form.get("request"), form.get("csrf")) else {
            return Ok(bad("The sign-out form is incomplete."));
        };
        let key = token_key("logout", id);
        let Some(pending) = s
            .store
            .get(&key)
            .await?
            .and_then(|v| serde_json::from_str::<PendingLogout>(&v).ok())
        else {
            return Ok(bad("This sign-out request has expired."));
        };
        let binding = cookie(&headers, BINDING_COOKIE)
            .map(|b| token_key("binding", &b))
            .unwrap_or_default();
        let eq = |a: &str, b: &str| {
            aws_lc_rs::constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
        };
        if !eq(csrf, &pending.csrf) || !eq(&binding, &pending.binding) {
            return Ok(bad("This sign-out request has expired."));
        }
        s.store.delete(&key).await?;
        if form.get("decision").map(String::as_str) != Some("logout") {
            return Ok(page(
                StatusCode::OK,
                pages::error("Still signed in", "You are still signed in."),
            ));
        }
        if let Some(session) = current_session(&s, &headers).await? {
            end(&s, &view, &session).await?;
        }
        Ok(finish(
            &view,
            pending.redirect.as_deref(),
            pending.state.as_deref(),
            true,
        ))
    }
    .await;
    result.unwrap_or_else(|e| unavailable_page(&e))
}

fn finish(
    view: &View,
    redirect_to: Option<&str>,
    state: Option<&str>,
    after_post: bool,
) -> Response {
    let mut res = match redirect_to.and_then(|r| url::Url::parse(r).ok()) {
        Some(mut url) => {
            if let Some(st) = state {
                url.query_pairs_mut().append_pair("state", st);
            }
            redirect(url.as_str(), after_post)
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

/// Ends the session and notifies every client that took part in it.
async fn end(s: &AppState, view: &View, session: &Session) -> Result<(), StoreError> {
    s.store.delete(&session.key).await?;
    for client_id in &session.clients {
        let Some(client) = view.client(client_id) else {
            continue;
        };
        let (Some(uri), Some(signer)) = (
            client.backchannel_logout_uri.clone(),
            view.signers.get(&client.alg),
        ) else {
            continue;
        };
        let iat = now();
        // Back-Channel Logout 1.0 §2.4: no nonce; events, and sid and sub.
        let claims = json!({
            "iss": view.issuer,
            "aud": client.id,
            "iat": iat,
            "exp": iat + 120,
            "jti": oidc::random_token(),
            "sub": session.sub,
            "sid": session.sid,
            "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
        });
        let token = match signer.sign(Some("logout+jwt"), &claims) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "signing a logout token");
                continue;
            }
        };
        let http = s.http.clone();
        let client_id = client.id.clone();
        tokio::spawn(async move { deliver(http, uri, client_id, token).await });
    }
    Ok(())
}

/// POSTs a logout token with bounded retries: three attempts within about ten seconds.
async fn deliver(http: reqwest::Client, uri: String, client_id: String, token: String) {
    for (attempt, delay) in [0u64, 1, 3].into_iter().enumerate() {
        tokio::time::sleep(Duration::from_secs(delay)).await;
        match http
            .post(&uri)
            .timeout(Duration::from_secs(5))
            .form(&[("logout_token", token.as_str())])
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
