//! RP-Initiated Logout 1.0 and the logout tokens of Back-Channel Logout 1.0.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{
    Context,
    params::{Params, random_token},
    session::Session,
};
use crate::{config::View, store::StoreError};

/// A validated logout request.
#[derive(Clone, Debug)]
pub struct LogoutRequest {
    /// The claims of the `id_token_hint`, if one was sent.
    pub hint: Option<Value>,
    /// Where to send the browser afterwards: registered for the client, exactly.
    pub redirect: Option<String>,
    pub state: Option<String>,
}

/// A logout waiting for the user's confirmation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LogoutStep {
    pub redirect: Option<String>,
    pub state: Option<String>,
}

/// Validates an end-session request; the error is a message for the user.
pub fn validate(view: &View, params: &Params) -> Result<LogoutRequest, String> {
    let hint: Option<Value> = match params.get("id_token_hint") {
        None => None,
        Some(h) => match view.verifier.verify::<Value>(h, &view.issuer, true) {
            Some((claims, _)) => Some(claims),
            None => return Err("id_token_hint is not an ID token issued here.".into()),
        },
    };
    let hint_aud = hint.as_ref().and_then(|h| match &h["aud"] {
        Value::String(a) => Some(a.clone()),
        Value::Array(a) => a.first().and_then(Value::as_str).map(String::from),
        _ => None,
    });
    let client_id = match (params.get("client_id"), hint_aud) {
        (Some(a), Some(b)) if *a != b => {
            return Err("client_id does not match the id_token_hint.".into());
        }
        (Some(a), _) => Some(a.clone()),
        (None, b) => b,
    };
    let client = match &client_id {
        Some(id) => Some(
            view.client(id)
                .ok_or_else(|| "The application is not known here.".to_string())?,
        ),
        None => None,
    };
    // Exact match against the client's registered list; never redirect anywhere else.
    let redirect = match params.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => match &client {
            Some(c) if c.post_logout_redirect_uris.iter().any(|r| r == uri) => Some(uri.clone()),
            Some(_) => {
                return Err(
                    "post_logout_redirect_uri is not registered for this application.".into(),
                );
            }
            None => return Err("post_logout_redirect_uri needs client_id or id_token_hint.".into()),
        },
    };
    Ok(LogoutRequest {
        hint,
        redirect,
        state: params.get("state").cloned(),
    })
}

impl LogoutRequest {
    /// Whether the hint names this browser's session: then no confirmation is needed.
    pub fn tied_to(&self, session: &Session) -> bool {
        self.hint.as_ref().is_some_and(|h| {
            h["sub"].as_str() == Some(session.sub.as_str())
                && h["sid"].as_str().is_none_or(|sid| sid == session.sid)
        })
    }

    pub fn step(&self) -> LogoutStep {
        LogoutStep {
            redirect: self.redirect.clone(),
            state: self.state.clone(),
        }
    }
}

/// A logout token for one client's back-channel logout URI.
#[derive(Clone, Debug)]
pub struct BackchannelLogout {
    pub client_id: String,
    pub uri: String,
    pub token: String,
}

/// Ends the session; returns a logout token for every client that took part in it and asked for
/// back-channel logout.
pub async fn end(
    ctx: &Context<'_>,
    session: &Session,
) -> Result<Vec<BackchannelLogout>, StoreError> {
    session.end(ctx.store).await?;
    let view = ctx.view;
    let mut out = Vec::new();
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
        // Back-Channel Logout 1.0 §2.4: no nonce; events, and sid and sub.
        let claims = json!({
            "iss": view.issuer,
            "aud": client.id,
            "iat": ctx.now,
            "exp": ctx.now + 120,
            "jti": random_token(),
            "sub": session.sub,
            "sid": session.sid,
            "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
        });
        match signer.sign(Some("logout+jwt"), &claims) {
            Ok(token) => out.push(BackchannelLogout {
                client_id: client.id.clone(),
                uri,
                token,
            }),
            Err(e) => tracing::error!(error = %e, "signing a logout token"),
        }
    }
    Ok(out)
}
