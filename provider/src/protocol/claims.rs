//! Which claims a token or userinfo carries: scope claims, requested claims, audiences, at_hash.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use crds::Algorithm;
use serde_json::{Map, Value};

use crate::{config::View, users::User};

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

/// Where requested claims go: the `claims` parameter's members (OpenID Connect Core §5.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimsTarget {
    IdToken,
    Userinfo,
}

impl ClaimsTarget {
    fn member(self) -> &'static str {
        match self {
            Self::IdToken => "id_token",
            Self::Userinfo => "userinfo",
        }
    }
}

/// The user claims released for the granted scopes. The `claims` request parameter (members
/// `userinfo` and `id_token`) only selects among those: a claim no granted scope releases was
/// never consented to and is not released (OpenID Connect Core §5.5 lets the provider refuse).
pub fn select_claims(
    view: &View,
    user: &User,
    scopes: &[String],
    claims_request: Option<&Value>,
    target: ClaimsTarget,
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
    if let Some(requested) = claims_request
        .and_then(|c| c.get(target.member()))
        .and_then(Value::as_object)
    {
        let refused: Vec<&String> = requested.keys().filter(|n| !out.contains_key(*n)).collect();
        if !refused.is_empty() {
            tracing::debug!(
                ?refused,
                "requested claims outside the granted scopes are not released"
            );
        }
    }
    out.insert("sub".into(), Value::String(user.subject()));
    out
}

/// The `aud` of an access token: the resources it is for. Those are the audiences of the
/// granted scopes, and this provider's userinfo endpoint when `openid` was granted to a user;
/// a token for none of them is for this provider (its introspection): the issuer. Never the
/// bare client ID, so that no ID-token verifier takes an access token for an ID token
/// (RFC 9068 §3, RFC 9700 §4.15).
pub fn access_token_audience(view: &View, scopes: &[String], for_user: bool) -> Value {
    let mut aud: Vec<String> = Vec::new();
    for s in scopes {
        if let Some(a) = view.scopes.get(s).and_then(|s| s.audience.clone())
            && !aud.contains(&a)
        {
            aud.push(a);
        }
    }
    if for_user && scopes.iter().any(|s| s == "openid") {
        aud.push(format!("{}/userinfo", view.issuer));
    }
    match aud.len() {
        0 => Value::String(view.issuer.clone()),
        1 => Value::String(aud.remove(0)),
        _ => Value::Array(aud.into_iter().map(Value::String).collect()),
    }
}

/// Whether `aud` (a string or a list) names `who`.
pub fn audience_contains(aud: &Value, who: &str) -> bool {
    match aud {
        Value::String(a) => a == who,
        Value::Array(list) => list.iter().any(|a| a.as_str() == Some(who)),
        _ => false,
    }
}
