//! Which claims a token or userinfo carries: scope claims, requested claims, audiences, at_hash.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use crds::Algorithm;
use serde_json::{Map, Value};

use crate::{
    config::{ClientConfig, View},
    users::User,
};

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

/// The user claims released for the granted scopes, plus individually requested claims
/// (`claims` parameter member `userinfo` or `id_token`).
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
    if scopes.iter().any(|s| s == "openid")
        && let Some(requested) = claims_request
            .and_then(|c| c.get(target.member()))
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

/// Whether `aud` (a string or a list) names `who`.
pub fn audience_contains(aud: &Value, who: &str) -> bool {
    match aud {
        Value::String(a) => a == who,
        Value::Array(list) => list.iter().any(|a| a.as_str() == Some(who)),
        _ => false,
    }
}
