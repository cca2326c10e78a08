//! Protocol rules as plain functions: authorization request validation, PKCE, scopes, claims.
//! No HTTP and no Kubernetes here.

use std::collections::HashMap;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use crds::{Algorithm, GrantType};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{
    config::{ClientConfig, View},
    users::User,
};

/// Request parameters; a parameter sent twice is an error (RFC 6749 §3.1).
pub fn parse_params(raw: &[u8]) -> Result<HashMap<String, String>, String> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_bytes(raw).map_err(|_| "malformed parameters".to_string())?;
    let mut out = HashMap::new();
    for (k, v) in pairs {
        if out.insert(k.clone(), v).is_some() {
            return Err(format!("parameter {k} is repeated"));
        }
    }
    Ok(out)
}

/// What the authorization endpoint was asked, once validated. Stored while the user signs in.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt: Vec<String>,
    pub max_age: Option<u64>,
    pub login_hint: Option<String>,
    pub id_token_hint_sub: Option<String>,
    pub claims: Option<Value>,
}

/// Why an authorization request fails: shown as a page (the redirect target is not trusted) or
/// sent back to the client.
#[derive(Debug, PartialEq)]
pub enum AuthorizeError {
    Page(String),
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: &'static str,
        description: String,
    },
}

/// Validates an authorization request (OpenID Connect Core §3.1.2, RFC 6749 §4.1, RFC 7636).
pub fn validate_authorization(
    view: &View,
    p: &HashMap<String, String>,
) -> Result<AuthorizationRequest, AuthorizeError> {
    let Some(client_id) = p.get("client_id") else {
        return Err(AuthorizeError::Page("The request has no client_id.".into()));
    };
    let Some(client) = view.client(client_id) else {
        return Err(AuthorizeError::Page(format!(
            "The application \"{client_id}\" is not known here."
        )));
    };
    // Exact string match (RFC 9700 §4.1.3); an unregistered redirect URI gets a page, never a
    // redirect.
    let redirect_uri = match p.get("redirect_uri") {
        Some(uri) if client.redirect_uris.iter().any(|r| r == uri) => uri.clone(),
        Some(_) => {
            return Err(AuthorizeError::Page(
                "The redirect_uri is not registered for this application.".into(),
            ));
        }
        None => {
            return Err(AuthorizeError::Page(
                "The request has no redirect_uri.".into(),
            ));
        }
    };
    let state = p.get("state").cloned();
    let fail = |error: &'static str, description: &str| AuthorizeError::Redirect {
        redirect_uri: redirect_uri.clone(),
        state: state.clone(),
        error,
        description: description.into(),
    };

    if p.contains_key("request") {
        return Err(fail(
            "request_not_supported",
            "request objects are not supported",
        ));
    }
    if p.contains_key("request_uri") {
        return Err(fail(
            "request_uri_not_supported",
            "request_uri is not supported",
        ));
    }
    match p.get("response_type").map(String::as_str) {
        Some("code") => {}
        None => return Err(fail("invalid_request", "response_type is required")),
        Some(_) => {
            return Err(fail(
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
    }
    if !client.allows(GrantType::AuthorizationCode) {
        return Err(fail(
            "unauthorized_client",
            "this client may not use the authorization code flow",
        ));
    }
    if let Some(mode) = p.get("response_mode")
        && mode != "query"
    {
        return Err(fail(
            "invalid_request",
            "only response_mode=query is supported",
        ));
    }

    let scopes = match p.get("scope").map(|s| split_scopes(s)) {
        Some(s) if !s.is_empty() => s,
        _ => client.default_scopes.clone(),
    };
    if scopes.is_empty() {
        return Err(fail(
            "invalid_scope",
            "no scope requested and none configured by default",
        ));
    }
    if let Some(bad) = scopes.iter().find(|s| !client.scopes.contains(s)) {
        return Err(fail(
            "invalid_scope",
            &format!("scope {bad} is not allowed for this client"),
        ));
    }

    // PKCE (RFC 7636 §4.3): S256 only.
    let code_challenge = p.get("code_challenge").cloned();
    match (
        p.get("code_challenge_method").map(String::as_str),
        &code_challenge,
    ) {
        (Some("S256"), Some(_)) => {}
        (None, Some(_)) | (Some("plain"), Some(_)) => {
            return Err(fail(
                "invalid_request",
                "code_challenge_method must be S256 (plain is not accepted)",
            ));
        }
        (Some(_), Some(_)) => {
            return Err(fail(
                "invalid_request",
                "code_challenge_method must be S256",
            ));
        }
        (Some(_), None) => {
            return Err(fail(
                "invalid_request",
                "code_challenge_method without code_challenge",
            ));
        }
        (None, None) if client.require_pkce => {
            return Err(fail(
                "invalid_request",
                "this client must use PKCE: send code_challenge and code_challenge_method=S256",
            ));
        }
        (None, None) => {}
    }
    if let Some(c) = &code_challenge
        && (c.len() != 43 || !c.bytes().all(is_unreserved))
    {
        return Err(fail(
            "invalid_request",
            "code_challenge must be the base64url SHA-256 of the code_verifier (43 characters)",
        ));
    }

    let prompt: Vec<String> = p.get("prompt").map(|s| split_scopes(s)).unwrap_or_default();
    for v in &prompt {
        if !matches!(v.as_str(), "none" | "login" | "consent" | "select_account") {
            return Err(fail(
                "invalid_request",
                &format!("unknown prompt value {v}"),
            ));
        }
    }
    if prompt.iter().any(|v| v == "none") && prompt.len() > 1 {
        return Err(fail(
            "invalid_request",
            "prompt=none cannot be combined with other values",
        ));
    }
    let max_age = match p.get("max_age") {
        None => None,
        Some(v) => Some(
            v.parse::<u64>()
                .map_err(|_| fail("invalid_request", "max_age must be a number of seconds"))?,
        ),
    };
    let claims = match p.get("claims") {
        None => None,
        Some(v) => Some(
            serde_json::from_str::<Value>(v)
                .ok()
                .filter(Value::is_object)
                .ok_or_else(|| fail("invalid_request", "claims must be a JSON object"))?,
        ),
    };
    let id_token_hint_sub = match p.get("id_token_hint") {
        None => None,
        Some(hint) => {
            // Our own ID tokens, expired ones included (OpenID Connect Core §3.1.2.1).
            let (claims, _): (Value, _) = view
                .verifier
                .verify(hint, &view.issuer, true)
                .ok_or_else(|| {
                    fail(
                        "invalid_request",
                        "id_token_hint is not an ID token issued here",
                    )
                })?;
            claims.get("sub").and_then(Value::as_str).map(String::from)
        }
    };
    Ok(AuthorizationRequest {
        client_id: client.id.clone(),
        redirect_uri,
        scopes,
        state,
        nonce: p.get("nonce").cloned(),
        code_challenge,
        prompt,
        max_age,
        login_hint: p.get("login_hint").cloned(),
        id_token_hint_sub,
        claims,
    })
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

pub fn split_scopes(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in s.split(' ').filter(|p| !p.is_empty()) {
        if !out.iter().any(|o| o == part) {
            out.push(part.to_string());
        }
    }
    out
}

/// RFC 7636 §4.6: BASE64URL(SHA256(code_verifier)) == code_challenge, and the verifier is
/// 43 to 128 unreserved characters.
pub fn verify_pkce(verifier: &str, challenge: &str) -> bool {
    if !(43..=128).contains(&verifier.len()) || !verifier.bytes().all(is_unreserved) {
        return false;
    }
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    aws_lc_rs::constant_time::verify_slices_are_equal(
        B64.encode(digest.as_ref()).as_bytes(),
        challenge.as_bytes(),
    )
    .is_ok()
}

/// `at_hash` (OpenID Connect Core §3.1.3.6): the left half of the hash of the access token,
/// with the hash of the ID token's algorithm.
pub fn at_hash(alg: Algorithm, access_token: &str) -> String {
    let algorithm = match alg {
        Algorithm::EdDSA => &aws_lc_rs::digest::SHA512,
        _ => &aws_lc_rs::digest::SHA256,
    };
    let digest = aws_lc_rs::digest::digest(algorithm, access_token.as_bytes());
    let bytes = digest.as_ref();
    B64.encode(&bytes[..bytes.len() / 2])
}

/// The user claims released for the granted scopes, plus individually requested claims
/// (`claims` parameter member `userinfo` or `id_token`).
pub fn select_claims(
    view: &View,
    user: &User,
    scopes: &[String],
    claims_request: Option<&Value>,
    member: &str,
) -> Map<String, Value> {
    let all = user.claims();
    let mut out = Map::new();
    for scope in scopes {
        if let Some(s) = view.scopes.get(scope) {
            for claim in &s.claims {
                if let Some(v) = all.get(claim) {
                    out.insert(claim.clone(), v.clone());
                }
            }
        }
    }
    if scopes.iter().any(|s| s == "openid")
        && let Some(requested) = claims_request
            .and_then(|c| c.get(member))
            .and_then(Value::as_object)
    {
        for name in requested.keys() {
            if let Some(v) = all.get(name) {
                out.insert(name.clone(), v.clone());
            }
        }
    }
    out.insert("sub".into(), Value::String(user.subject()));
    out
}

/// The `aud` of an access token: the client, and the audiences of granted scopes.
pub fn access_token_audience(view: &View, client: &ClientConfig, scopes: &[String]) -> Value {
    let mut aud = vec![client.id.clone()];
    for s in scopes {
        if let Some(a) = view.scopes.get(s).and_then(|s| s.audience.clone())
            && !aud.contains(&a)
        {
            aud.push(a);
        }
    }
    if aud.len() == 1 {
        Value::String(aud.remove(0))
    } else {
        Value::Array(aud.into_iter().map(Value::String).collect())
    }
}

/// A random token: 256 bits, base64url.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    let rng = aws_lc_rs::rand::SystemRandom::new();
    if aws_lc_rs::rand::SecureRandom::fill(&rng, &mut bytes).is_err() {
        // aws-lc aborts rather than fail here; keep the type honest anyway.
        panic!("system random number generator failed");
    }
    B64.encode(bytes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn pkce_rfc7636_appendix_b() {
        assert!(verify_pkce(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!verify_pkce(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXx",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!verify_pkce(
            "short",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
    }

    #[test]
    fn repeated_parameters_are_refused() {
        assert!(parse_params(b"a=1&b=2").is_ok());
        assert!(parse_params(b"a=1&a=2").unwrap_err().contains("repeated"));
    }

    #[test]
    fn scopes_split_and_dedupe() {
        assert_eq!(split_scopes("openid  email openid"), ["openid", "email"]);
    }
}
