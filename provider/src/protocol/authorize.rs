//! The authorization endpoint (RFC 6749 §4.1.1, OpenID Connect Core §3.1.2): validating a
//! request, and taking it through sign-in and consent to a code.

use std::sync::Arc;

use crds::{ConsentPolicy, GrantType, ResponseType};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    Context, OAuthError,
    interaction::{self, Interaction, SignInStep, Started},
    params::{Params, random_token, split_scopes},
    pkce::is_challenge,
    session::Session,
    token::{
        code::{CodeGrant, issue_code},
        issuance::Issuance,
    },
};
use crate::{
    config::{ClientConfig, View},
    store::StoreError,
};

/// What the authorization endpoint was asked, once validated. Stored while the user signs in.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub redirect_uri: String,
    /// What comes back: a code, tokens (implicit), or both (hybrid).
    #[serde(default = "code_response")]
    pub response_type: ResponseType,
    /// How the answer goes back (OAuth 2.0 Multiple Response Type Encoding, Form Post).
    #[serde(default)]
    pub response_mode: ResponseMode,
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt: Vec<String>,
    pub max_age: Option<u64>,
    pub login_hint: Option<String>,
    /// Our own parameter: the IdentityConnector to sign in with (its button pressed already).
    #[serde(default)]
    pub connector: Option<String>,
    pub id_token_hint_sub: Option<String>,
    pub claims: Option<Value>,
}

fn code_response() -> ResponseType {
    ResponseType::Code
}

/// How an authorization response reaches the client: query parameters of a redirect, the
/// fragment of one (the default when tokens come back: they never reach a server), or a form
/// the browser posts to the redirect URI (OAuth 2.0 Form Post Response Mode): the answer then
/// stays out of URLs, logs and Referer headers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    #[default]
    Query,
    Fragment,
    FormPost,
}

impl ResponseMode {
    /// The default mode of a `response_type` value: the fragment for anything but the code
    /// alone (OAuth 2.0 Multiple Response Type Encoding §2.1, §3), also for an unknown value.
    fn default_for(response_type: Option<&String>) -> Self {
        match response_type {
            Some(t) if t.split(' ').any(|v| v != "code") => Self::Fragment,
            _ => Self::Query,
        }
    }

    /// The `response_mode` parameter, or why it is refused.
    fn of(p: &Params) -> Result<Self, OAuthError> {
        match p.get("response_mode").map(String::as_str) {
            None => Ok(Self::default_for(p.get("response_type"))),
            Some("query") => Ok(Self::Query),
            Some("fragment") => Ok(Self::Fragment),
            Some("form_post") => Ok(Self::FormPost),
            Some(other) => Err(OAuthError::InvalidRequest(format!(
                "response_mode {other} is not supported: use query, fragment or form_post"
            ))),
        }
    }
}

/// Why an authorization request fails: shown as a page (the redirect target is not trusted) or
/// sent back to the client.
#[derive(Debug, PartialEq)]
pub enum AuthorizeError {
    Page(String),
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: OAuthError,
        response_mode: ResponseMode,
    },
}

/// The longest `state` kept and echoed back.
const MAX_STATE: usize = 2048;
/// The longest values stored with a pending request: enough for any relying party, small enough
/// that anonymous requests cannot fill the store (each pending request lives 10 minutes).
const MAX_LENGTHS: [(&str, usize); 6] = [
    ("state", MAX_STATE),
    ("nonce", 512),
    ("login_hint", 256),
    ("connector", 63),
    ("claims", 4096),
    ("id_token_hint", 8192),
];

/// Validates an authorization request (OpenID Connect Core §3.1.2, RFC 6749 §4.1, RFC 7636).
/// Request objects are refused: [`validate_resolved`] takes a request whose object was resolved.
pub fn validate(view: &View, p: &Params) -> Result<AuthorizationRequest, AuthorizeError> {
    validate_resolved(view, p, None)
}

/// Validates a request whose request object (if any) [`super::request_object::resolve`]
/// merged into `p`, or failed to with `object_error`: sent back to the client once its
/// redirect URI is known.
pub fn validate_resolved(
    view: &View,
    p: &Params,
    object_error: Option<OAuthError>,
) -> Result<AuthorizationRequest, AuthorizeError> {
    let (client, redirect_uri) = client_and_redirect_uri(view, p)?;
    // An unsupported mode is answered in the default one; tokens never in the query.
    let response_mode = match ResponseMode::of(p) {
        Ok(ResponseMode::Query) | Err(_) => ResponseMode::default_for(p.get("response_type")),
        Ok(mode) => mode,
    };
    if let Some((name, max)) = MAX_LENGTHS
        .iter()
        .find(|(name, max)| p.get(*name).is_some_and(|v| v.len() > *max))
    {
        // Stored with the pending request and echoed back: refused, and an oversized state is
        // not echoed.
        let state = p.get("state").filter(|s| s.len() <= MAX_STATE).cloned();
        return Err(AuthorizeError::Redirect {
            redirect_uri,
            state,
            error: OAuthError::InvalidRequest(format!("{name} is longer than {max} bytes")),
            response_mode,
        });
    }
    let state = p.get("state").cloned();
    let redirect = |error: OAuthError| AuthorizeError::Redirect {
        redirect_uri: redirect_uri.clone(),
        state: state.clone(),
        error,
        response_mode,
    };
    if let Some(e) = object_error {
        return Err(redirect(e));
    }
    ResponseMode::of(p).map_err(redirect)?;
    let response_type = check_form(&client, p).map_err(redirect)?;
    if response_type.is_implicit() && p.get("response_mode").is_some_and(|m| m == "query") {
        return Err(redirect(OAuthError::InvalidRequest(
            "response_mode query cannot carry tokens: use fragment or form_post".into(),
        )));
    }
    let scopes = requested_scopes(&client, p).map_err(redirect)?;
    if response_type.has_id_token() {
        if !scopes.iter().any(|s| s == "openid") {
            return Err(redirect(OAuthError::InvalidScope(format!(
                "response type {} returns an ID token: request the openid scope",
                response_type.as_str()
            ))));
        }
        // OpenID Connect Core §3.2.2.1, §3.3.2.11: the ID token's replay protection.
        if p.get("nonce").is_none_or(String::is_empty) {
            return Err(redirect(OAuthError::InvalidRequest(format!(
                "nonce is required with response type {}",
                response_type.as_str()
            ))));
        }
    }
    let code_challenge = if response_type.has_code() {
        code_challenge(&client, p).map_err(redirect)?
    } else {
        None
    };
    let prompt = prompt(p).map_err(redirect)?;
    let max_age = match p.get("max_age") {
        None => None,
        Some(v) => Some(v.parse::<u64>().map_err(|_| {
            redirect(OAuthError::InvalidRequest(
                "max_age must be a number of seconds".into(),
            ))
        })?),
    };
    let claims = match p.get("claims") {
        None => None,
        Some(v) => Some(
            serde_json::from_str::<Value>(v)
                .ok()
                .filter(Value::is_object)
                .ok_or_else(|| {
                    redirect(OAuthError::InvalidRequest(
                        "claims must be a JSON object".into(),
                    ))
                })?,
        ),
    };
    let id_token_hint_sub = id_token_hint_subject(view, p).map_err(redirect)?;
    let scopes = with_claim_scopes(&client, scopes, claims.as_ref());
    Ok(AuthorizationRequest {
        client_id: client.id.clone(),
        redirect_uri,
        response_type,
        response_mode,
        scopes,
        state,
        nonce: p.get("nonce").cloned(),
        code_challenge,
        prompt,
        max_age,
        login_hint: p.get("login_hint").cloned(),
        connector: p.get("connector").cloned(),
        id_token_hint_sub,
        claims,
    })
}

/// The client and its redirect URI: until both are known, errors are shown, not redirected.
fn client_and_redirect_uri(
    view: &View,
    p: &Params,
) -> Result<(Arc<ClientConfig>, String), AuthorizeError> {
    let Some(client_id) = p.get("client_id") else {
        return Err(AuthorizeError::Page("The request has no client_id.".into()));
    };
    let Some(client) = view.client(client_id) else {
        return Err(AuthorizeError::Page(format!(
            "The application \"{client_id}\" is not known here."
        )));
    };
    // An unregistered redirect URI gets a page, never a redirect.
    match p.get("redirect_uri") {
        Some(uri)
            if client
                .redirect_uris
                .iter()
                .any(|r| redirect_uri_matches(r, uri)) =>
        {
            let uri = uri.clone();
            Ok((client, uri))
        }
        Some(_) => Err(AuthorizeError::Page(
            "The redirect_uri is not registered for this application.".into(),
        )),
        None => Err(AuthorizeError::Page(
            "The request has no redirect_uri.".into(),
        )),
    }
}

/// Whether `requested` is the `registered` redirect URI: the same string (RFC 9700 §4.1.3),
/// except that the port of an http loopback IP literal is the native app's to choose at request
/// time (RFC 8252 §7.3). `localhost` is matched exactly (RFC 8252 §8.3 advises against it), and
/// a requested URI that parsing would change (dot segments, case, escapes) never matches.
pub fn redirect_uri_matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    fn without_port(uri: &str) -> Option<String> {
        let mut u = url::Url::parse(uri).ok()?;
        let loopback = match u.host()? {
            url::Host::Ipv4(ip) => ip.is_loopback(),
            url::Host::Ipv6(ip) => ip.is_loopback(),
            url::Host::Domain(_) => false,
        };
        if u.scheme() != "http" || !loopback || !u.username().is_empty() || u.password().is_some() {
            return None;
        }
        u.set_port(None).ok()?;
        Some(u.to_string())
    }
    let canonical = url::Url::parse(requested).is_ok_and(|u| u.as_str() == requested);
    canonical
        && without_port(registered).is_some_and(|r| without_port(requested).is_some_and(|q| q == r))
}

/// Request objects, and the response type: one the client lists, the code flow's needing the
/// authorization_code grant.
fn check_form(client: &ClientConfig, p: &Params) -> Result<ResponseType, OAuthError> {
    if p.contains_key("request") {
        return Err(OAuthError::RequestNotSupported(
            "request objects are not supported".into(),
        ));
    }
    if p.contains_key("request_uri") {
        return Err(OAuthError::RequestUriNotSupported(
            "request_uri is not supported".into(),
        ));
    }
    let Some(value) = p.get("response_type") else {
        return Err(OAuthError::InvalidRequest(
            "response_type is required".into(),
        ));
    };
    let Some(response_type) = ResponseType::parse(value) else {
        return Err(OAuthError::UnsupportedResponseType(format!(
            "response_type {value} is not supported"
        )));
    };
    if !client.response_types.contains(&response_type) {
        return Err(OAuthError::UnauthorizedClient(format!(
            "this client may not use response_type {}",
            response_type.as_str()
        )));
    }
    if response_type.has_code() && !client.allows(GrantType::AuthorizationCode) {
        return Err(OAuthError::UnauthorizedClient(
            "this client may not use the authorization code flow".into(),
        ));
    }
    Ok(response_type)
}

/// The requested scopes (or the client's defaults), each allowed for the client.
fn requested_scopes(client: &ClientConfig, p: &Params) -> Result<Vec<String>, OAuthError> {
    let scopes = match p.get("scope").map(|s| split_scopes(s)) {
        Some(s) if !s.is_empty() => s,
        _ => client.default_scopes.clone(),
    };
    if scopes.is_empty() {
        return Err(OAuthError::InvalidScope(
            "no scope requested and none configured by default".into(),
        ));
    }
    if let Some(bad) = scopes.iter().find(|s| !client.scopes.contains(s)) {
        return Err(OAuthError::InvalidScope(format!(
            "scope {bad} is not allowed for this client"
        )));
    }
    Ok(scopes)
}

/// The scopes, with the standard ones (profile, email, address, phone) that release a claim
/// the `claims` parameter asks for (OpenID Connect Core §5.5), where the client may request
/// them: the consent page then asks the user for them, and what the user allowed is released.
/// Without `openid` there are no claims to ask for.
fn with_claim_scopes(
    client: &ClientConfig,
    mut scopes: Vec<String>,
    claims: Option<&Value>,
) -> Vec<String> {
    let Some(claims) = claims.filter(|_| scopes.iter().any(|s| s == "openid")) else {
        return scopes;
    };
    let requested: Vec<&String> = ["userinfo", "id_token"]
        .iter()
        .filter_map(|member| claims.get(member).and_then(Value::as_object))
        .flat_map(|m| m.keys())
        .collect();
    for scope in crds::scope::USERINFO_SCOPES {
        let releases = crds::scope::builtin(scope)
            .is_some_and(|b| requested.iter().any(|c| b.claims.contains(&c.as_str())));
        if releases
            && client.scopes.iter().any(|s| s == scope)
            && !scopes.iter().any(|s| s == scope)
        {
            scopes.push(scope.to_string());
        }
    }
    scopes
}

/// PKCE (RFC 7636 §4.3): S256 only, required when the client requires it.
fn code_challenge(client: &ClientConfig, p: &Params) -> Result<Option<String>, OAuthError> {
    let invalid = |d: &str| Err(OAuthError::InvalidRequest(d.into()));
    let challenge = p.get("code_challenge").cloned();
    match (
        p.get("code_challenge_method").map(String::as_str),
        &challenge,
    ) {
        (Some("S256"), Some(_)) => {}
        (None, Some(_)) | (Some("plain"), Some(_)) => {
            return invalid("code_challenge_method must be S256 (plain is not accepted)");
        }
        (Some(_), Some(_)) => return invalid("code_challenge_method must be S256"),
        (Some(_), None) => return invalid("code_challenge_method without code_challenge"),
        (None, None) if client.require_pkce => {
            return invalid(
                "this client must use PKCE: send code_challenge and code_challenge_method=S256",
            );
        }
        (None, None) => {}
    }
    if let Some(c) = &challenge
        && !is_challenge(c)
    {
        return invalid(
            "code_challenge must be the base64url SHA-256 of the code_verifier (43 characters)",
        );
    }
    Ok(challenge)
}

/// The `prompt` values (OpenID Connect Core §3.1.2.1).
fn prompt(p: &Params) -> Result<Vec<String>, OAuthError> {
    let prompt: Vec<String> = p.get("prompt").map(|s| split_scopes(s)).unwrap_or_default();
    for v in &prompt {
        if !matches!(v.as_str(), "none" | "login" | "consent" | "select_account") {
            return Err(OAuthError::InvalidRequest(format!(
                "unknown prompt value {v}"
            )));
        }
    }
    if prompt.iter().any(|v| v == "none") && prompt.len() > 1 {
        return Err(OAuthError::InvalidRequest(
            "prompt=none cannot be combined with other values".into(),
        ));
    }
    Ok(prompt)
}

/// The subject of an `id_token_hint`: our own ID tokens, expired ones included (OpenID Connect
/// Core §3.1.2.1).
fn id_token_hint_subject(view: &View, p: &Params) -> Result<Option<String>, OAuthError> {
    let Some(hint) = p.get("id_token_hint") else {
        return Ok(None);
    };
    let (claims, _): (Value, _) =
        view.verifier
            .verify(hint, &view.issuer, true)
            .ok_or_else(|| {
                OAuthError::InvalidRequest("id_token_hint is not an ID token issued here".into())
            })?;
    Ok(claims.get("sub").and_then(Value::as_str).map(String::from))
}

/// An authorization request waiting for the user: signed in (consent stage) or not yet.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AuthorizationStep {
    pub request: AuthorizationRequest,
    /// Set once the user signed in (consent stage).
    pub sub: Option<String>,
}

/// How far the user got in this request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Signed in by this request (prompt=login and max_age are satisfied).
    pub just_signed_in: bool,
    /// Consented by this request.
    pub consent_given: bool,
}

/// Where an authorization request goes next.
#[derive(Debug)]
pub enum Next {
    /// Back to the client with a code, tokens, or both.
    Answer {
        redirect_uri: String,
        state: Option<String>,
        params: Vec<(&'static str, String)>,
        response_mode: ResponseMode,
    },
    /// Back to the client with an error.
    Error {
        redirect_uri: String,
        state: Option<String>,
        error: OAuthError,
        response_mode: ResponseMode,
    },
    /// The sign-in page, for the interaction started.
    SignIn {
        client: Arc<ClientConfig>,
        started: Started,
        login_hint: Option<String>,
        /// The connector the request asked for.
        connector: Option<String>,
    },
    /// The consent page: the client asks for these scopes (name, description).
    Consent {
        client: Arc<ClientConfig>,
        started: Started,
        /// Who is signed in, as the page names them.
        account: String,
        scopes: Vec<(String, String)>,
        /// For a device sign-in: the user code (as displayed) the person checks against the
        /// device (RFC 8628 §3.3.1, §5.4: a code sent by someone else is remote phishing).
        device_code: Option<String>,
    },
    /// The client is no longer served.
    UnknownClient,
    /// The person may not use the client (its allowedGroups or allowedConnectors) and there is
    /// no redirect to tell it (a device's sign-in).
    NotAllowed,
}

/// Back to the client with `error` (an upstream sign-in that failed: `access_denied`).
pub fn deny(request: AuthorizationRequest, error: OAuthError) -> Next {
    Next::Error {
        redirect_uri: request.redirect_uri,
        state: request.state,
        error,
        response_mode: request.response_mode,
    }
}

/// Takes a validated request as far as it can go: sign-in, consent, then the code.
pub async fn proceed(
    ctx: &Context<'_>,
    request: AuthorizationRequest,
    session: Option<Session>,
    progress: Progress,
) -> Result<Next, StoreError> {
    let Some(client) = ctx.view.client(&request.client_id) else {
        return Ok(Next::UnknownClient);
    };
    let prompt = |v: &str| request.prompt.iter().any(|p| p == v);
    let error = |error: OAuthError| Next::Error {
        redirect_uri: request.redirect_uri.clone(),
        state: request.state.clone(),
        error,
        response_mode: request.response_mode,
    };
    let session = match session {
        Some(s) if progress.just_signed_in || reusable(ctx, &request, &s).await? => Some(s),
        _ => None,
    };
    let Some(mut session) = session else {
        if prompt("none") {
            return Ok(error(OAuthError::LoginRequired(
                "the user is not signed in".into(),
            )));
        }
        return wait_for_user(ctx, client, request, None).await;
    };
    // allowedGroups: decided before the consent page, which people outside never see.
    let member = ctx
        .user(&session.sub)
        .await?
        .is_some_and(|u| client.admits(&u));
    if !member {
        return Ok(error(OAuthError::AccessDenied(
            "you are not allowed to use this application (its allowed groups or sign-in methods)"
                .into(),
        )));
    }
    let needs_consent = !progress.consent_given
        && (prompt("consent") || consent_missing(ctx, &client, &session, &request).await?);
    if needs_consent {
        if prompt("none") {
            return Ok(error(OAuthError::ConsentRequired(
                "the user has not consented to this application".into(),
            )));
        }
        return wait_for_user(ctx, client, request, Some(session.sub)).await;
    }
    if !session.clients.contains(&client.id) {
        session.clients.push(client.id.clone());
        session.save(ctx.store).await?;
    }
    let mut params = Vec::new();
    let response_type = request.response_type;
    if response_type.has_code() {
        let grant = CodeGrant {
            client_id: client.id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            scopes: request.scopes.clone(),
            nonce: request.nonce.clone(),
            sub: session.sub.clone(),
            auth_time: session.auth_time,
            code_challenge: request.code_challenge.clone(),
            claims: request.claims.clone(),
            sid: session.sid.clone(),
        };
        params.push(("code", issue_code(ctx, &grant).await?));
    }
    if response_type.is_implicit() {
        // A failure here (store, signing key) goes back to the client as its error.
        match front_channel_tokens(ctx, &client, &request, &session, params.first()).await {
            Ok(tokens) => params.extend(tokens),
            Err(e) => return Ok(error(e)),
        }
    }
    Ok(Next::Answer {
        redirect_uri: request.redirect_uri,
        state: request.state,
        params,
        response_mode: request.response_mode,
    })
}

/// The tokens an implicit or hybrid response carries for the signed-in user.
async fn front_channel_tokens(
    ctx: &Context<'_>,
    client: &ClientConfig,
    request: &AuthorizationRequest,
    session: &Session,
    code: Option<&(&'static str, String)>,
) -> Result<Vec<(&'static str, String)>, OAuthError> {
    let user = ctx
        .user(&session.sub)
        .await?
        .ok_or_else(|| OAuthError::LoginRequired("the user no longer exists".into()))?;
    let response_type = request.response_type;
    Issuance {
        client,
        user: Some(&user),
        scopes: &request.scopes,
        auth_time: Some(session.auth_time),
        nonce: request.nonce.as_deref(),
        claims_request: request.claims.as_ref(),
        sid: Some(&session.sid),
        family: response_type.has_access_token().then(random_token),
    }
    .front_channel(
        ctx,
        code.map(|(_, c)| c.as_str()),
        response_type.has_access_token(),
        response_type.has_id_token(),
    )
    .await
}

/// Whether an existing session serves this request without signing in again.
async fn reusable(
    ctx: &Context<'_>,
    request: &AuthorizationRequest,
    session: &Session,
) -> Result<bool, StoreError> {
    let prompt = |v: &str| request.prompt.iter().any(|p| p == v);
    Ok(!prompt("login")
        && !prompt("select_account")
        && request
            .max_age
            .is_none_or(|max| ctx.now.saturating_sub(session.auth_time) <= max)
        && request
            .id_token_hint_sub
            .as_ref()
            .is_none_or(|h| *h == session.sub)
        && ctx.user(&session.sub).await?.is_some())
}

/// Whether the client's consent policy asks the user for these scopes.
async fn consent_missing(
    ctx: &Context<'_>,
    client: &ClientConfig,
    session: &Session,
    request: &AuthorizationRequest,
) -> Result<bool, StoreError> {
    Ok(match client.consent {
        ConsentPolicy::Skip => false,
        ConsentPolicy::Always => true,
        ConsentPolicy::Once => {
            let granted = ctx
                .store
                .consented_scopes(&session.sub, &client.uid)
                .await?;
            !request.scopes.iter().all(|sc| granted.contains(sc))
        }
    })
}

/// Stores the request while the user signs in (`sub` unknown) or consents.
async fn wait_for_user(
    ctx: &Context<'_>,
    client: Arc<ClientConfig>,
    request: AuthorizationRequest,
    sub: Option<String>,
) -> Result<Next, StoreError> {
    let account = match sub.as_deref() {
        Some(sub) => Some(account(ctx, sub).await?),
        None => None,
    };
    let login_hint = request.login_hint.clone();
    let connector = request.connector.clone();
    let scopes = scope_descriptions(ctx, &request.scopes);
    let step = SignInStep::Authorization(Box::new(AuthorizationStep { request, sub }));
    let started = interaction::start(ctx.store, Interaction::Authorization, step).await?;
    Ok(if let Some(account) = account {
        Next::Consent {
            client,
            started,
            account,
            scopes,
            device_code: None,
        }
    } else {
        Next::SignIn {
            client,
            started,
            login_hint,
            connector,
        }
    })
}

/// The scopes with the descriptions the consent page shows.
/// How the consent page names the signed-in user: name and username, or the username.
pub async fn account(ctx: &Context<'_>, sub: &str) -> Result<String, StoreError> {
    Ok(match ctx.user(sub).await? {
        Some(u) => match u.name.as_deref().filter(|n| !n.is_empty()) {
            Some(name) => format!("{name} ({})", u.username),
            None => u.username.clone(),
        },
        None => sub.to_string(),
    })
}

pub fn scope_descriptions(ctx: &Context<'_>, scopes: &[String]) -> Vec<(String, String)> {
    scopes
        .iter()
        .map(|sc| {
            let d = ctx
                .view
                .scopes
                .get(sc)
                .map(|c| c.description.clone())
                .unwrap_or_default();
            (sc.clone(), d)
        })
        .collect()
}

#[cfg(test)]
mod redirect_tests {
    use super::redirect_uri_matches as m;

    /// RFC 8252 §7.3: any port for loopback IP literals over http; everything else exact.
    #[test]
    fn loopback_ports_are_the_apps_and_nothing_else_varies() {
        assert!(m("http://127.0.0.1/cb", "http://127.0.0.1:53412/cb"));
        assert!(m("http://127.0.0.1:8000/cb", "http://127.0.0.1:9000/cb"));
        assert!(m("http://[::1]/cb", "http://[::1]:61000/cb"));
        for (registered, requested) in [
            ("http://localhost:8000/cb", "http://localhost:9000/cb"),
            ("https://127.0.0.1/cb", "https://127.0.0.1:8443/cb"),
            ("http://127.0.0.1/cb", "http://127.0.0.1:9000/cb/"),
            ("http://127.0.0.1/cb", "http://127.0.0.1:9000/CB"),
            ("http://127.0.0.1/cb", "http://127.0.0.1:9000/x/../cb"),
            ("http://127.0.0.1/cb", "http://127.0.0.1:9000/cb?x=1"),
            ("http://127.0.0.1/cb", "http://user@127.0.0.1:9000/cb"),
            ("http://127.0.0.1/cb", "http://127.0.0.2:9000/cb"),
            ("http://127.0.0.1/cb", "http://127.000.000.001:9000/cb"),
            ("https://app.example/cb", "https://app.example:443/cb"),
        ] {
            assert!(
                !m(registered, requested),
                "{registered} matched {requested}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::test_support::{CHALLENGE, view};

    #[test]
    fn every_stored_field_has_a_bound() {
        let (view, _) = view(None);
        for (name, max) in MAX_LENGTHS {
            let mut p: Params = [
                ("response_type", "code"),
                ("client_id", "spa"),
                ("redirect_uri", "https://spa.example/cb"),
                ("scope", "openid"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            p.insert(name.to_string(), "a".repeat(max + 1));
            let Err(AuthorizeError::Redirect { error, .. }) = validate(&view, &p) else {
                panic!("{name} of {} bytes accepted", max + 1);
            };
            assert_eq!(error.code(), "invalid_request");
            assert!(error.description().starts_with(name), "{error}");
        }
    }
}
