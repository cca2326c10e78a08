//! Sign-in through an upstream identity provider: the sign-in page's connector button (POST
//! /login with `connector`) sends the browser there; `/callback/{connector}` comes back.

use std::collections::HashMap;

use axum::{
    extract::{Path, Query, State},
    http::{HeaderMap, header},
    response::Response,
};

use super::{
    Shared,
    authorize::respond,
    extract::{BINDING_COOKIE, SESSION_COOKIE, cookie, set_cookie},
    respond::{Redirect, bad_request_page, expired_request, redirect, unavailable_page},
};
use crate::{
    protocol::{
        OAuthError,
        authorize::{self, Progress},
        device,
        interaction::{self, Interaction, Pending, SignInStep},
        params::same,
        session::{SESSION_TTL, Session},
        upstream,
        upstream_flow::{UpstreamError, UpstreamState},
    },
    store::{Key, StoreError},
};

/// The redirect URI kube-oidc registers at the upstream for connector `name`.
pub fn redirect_uri(issuer: &str, name: &str) -> String {
    format!("{issuer}/callback/{name}")
}

/// The sign-in page's button for connector `name`: to the upstream.
pub async fn start(
    s: &Shared,
    name: &str,
    pending_id: &str,
    pending: &Pending<SignInStep>,
) -> Result<Response, StoreError> {
    let view = s.view.load_full();
    let ctx = s.context(&view);
    let client_id = match &pending.step {
        SignInStep::Authorization(a) => Some(a.request.client_id.clone()),
        SignInStep::Device(d) => device::client_id(&ctx, &d.user_code).await?,
    };
    let offered = client_id
        .and_then(|id| view.client(&id))
        .is_some_and(|c| c.offers_connector(name));
    let Some(up) = view.upstreams.get(name).cloned().filter(|_| offered) else {
        return Ok(bad_request_page(
            "Unknown sign-in method",
            "This way of signing in is not offered.",
        ));
    };
    let Some(up) = up.oidc() else {
        return Ok(bad_request_page(
            "Unknown sign-in method",
            "This directory signs in with the password form.",
        ));
    };
    match up
        .start(
            &ctx,
            pending_id,
            &pending.binding,
            &redirect_uri(&view.issuer, name),
        )
        .await
    {
        Ok(url) => Ok(redirect(&url, Redirect::SeeOther)),
        Err(UpstreamError::Store(e)) => Err(e),
        Err(e) => {
            tracing::warn!(connector = name, error = %e, "upstream sign-in not started");
            Ok(bad_request_page(
                "Sign-in is unavailable",
                "The identity provider cannot be reached. Try again in a moment.",
            ))
        }
    }
}

/// `/connector/{connector}?request=<id>`: straight to an upstream, the sign-in page skipped (the
/// only way to sign in, or the one the authorization request named), for the browser the
/// pending sign-in is bound to.
pub async fn straight(
    State(s): State<Shared>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let result: Result<Response, StoreError> = async {
        let id = q.get("request").map(String::as_str).unwrap_or_default();
        let binding = cookie(&headers, BINDING_COOKIE)
            .map(|c| interaction::binding_of(&c))
            .unwrap_or_default();
        let Some(pending) = interaction::resume_bound::<SignInStep>(
            &s.store,
            Interaction::Authorization,
            id,
            &binding,
        )
        .await?
        else {
            return Ok(expired_request());
        };
        start(&s, &name, id, &pending).await
    }
    .await;
    result.unwrap_or_else(|e| unavailable_page(&e))
}

/// `/callback/{connector}`: the upstream's answer, for the browser that started the sign-in.
pub async fn callback(
    State(s): State<Shared>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let view = s.view.load_full();
    let result: Result<Response, StoreError> = async {
        let ctx = s.context(&view);
        let Some(state) = q.get("state") else {
            return Ok(bad_request_page(
                "This sign-in is not valid",
                "The answer names no sign-in.",
            ));
        };
        let Some((pending_id, secret)) = UpstreamState::parse(state) else {
            return Ok(expired_request());
        };
        // Single use: taken, whatever happens next.
        let Some(saved) = ctx
            .store
            .take::<UpstreamState>(Key::UpstreamState(pending_id))
            .await?
        else {
            return Ok(expired_request());
        };
        let binding = cookie(&headers, BINDING_COOKIE)
            .map(|c| interaction::binding_of(&c))
            .unwrap_or_default();
        if !same(secret, &saved.secret) || saved.connector != name || binding != saved.binding {
            return Ok(expired_request());
        }
        let Some(pending) = interaction::resume_bound::<SignInStep>(
            ctx.store,
            Interaction::Authorization,
            &saved.pending,
            &binding,
        )
        .await?
        else {
            return Ok(expired_request());
        };
        let Some(entry) = view.upstreams.get(&name).cloned() else {
            return Ok(expired_request());
        };
        let Some(up) = entry.oidc() else {
            return Ok(expired_request());
        };
        // Who the upstream vouches for, or why not.
        let vouched: Result<_, String> = if let Some(error) = q.get("error") {
            Err(error.clone())
        } else {
            let code = q.get("code").map(String::as_str).unwrap_or_default();
            match up
                .finish(&saved, code, &redirect_uri(&view.issuer, &name))
                .await
            {
                Err(UpstreamError::Store(e)) => return Err(e),
                Err(e) => Err(e.to_string()),
                Ok((claims, refresh)) => upstream::identity(&name, &up.spec, &up.settings, &claims)
                    .map(|identity| (identity, refresh))
                    .map_err(|e| e.to_string()),
            }
        };
        interaction::finish(ctx.store, Interaction::Authorization, &saved.pending).await?;
        let (mut identity, refresh) = match vouched {
            Ok(ok) => ok,
            Err(why) => {
                tracing::warn!(connector = %name, why, "upstream sign-in refused");
                let refused = OAuthError::AccessDenied(format!(
                    "the identity provider {} did not sign you in",
                    up.spec.display_name
                ));
                return Ok(match pending.step {
                    SignInStep::Authorization(a) => respond(
                        &view,
                        authorize::deny(a.request, refused),
                        Redirect::SeeOther,
                    ),
                    SignInStep::Device(_) => bad_request_page(
                        "Sign-in failed",
                        "The identity provider did not sign you in. Start again on your device.",
                    ),
                });
            }
        };
        // Kept as long as the client's refresh tokens may ask for it.
        let client_id = match &pending.step {
            SignInStep::Authorization(a) => Some(a.request.client_id.clone()),
            SignInStep::Device(d) => device::client_id(&ctx, &d.user_code).await?,
        };
        let ttl = client_id
            .and_then(|id| view.client(&id))
            .map_or(SESSION_TTL, |c| c.refresh_token_ttl.max(SESSION_TTL));
        identity.seal_refresh(&ctx, refresh.as_deref());
        ctx.remember(&mut identity, ttl).await?;
        let session = Session::start(ctx.store, identity.user.subject(), ctx.now).await?;
        let next = match pending.step {
            SignInStep::Authorization(a) => {
                let progress = Progress {
                    just_signed_in: true,
                    consent_given: false,
                };
                authorize::proceed(&ctx, a.request, Some(session.clone()), progress).await?
            }
            SignInStep::Device(d) => device::signed_in(&ctx, d, &session).await?,
        };
        let mut res = respond(&view, next, Redirect::SeeOther);
        res.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(&view, SESSION_COOKIE, &session.id, SESSION_TTL),
        );
        Ok(res)
    }
    .await;
    result.unwrap_or_else(|e| unavailable_page(&e))
}
