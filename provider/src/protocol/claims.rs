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

/// Where claims go: userinfo, or an ID token (the `claims` parameter's members, OpenID Connect
/// Core §5.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimsTarget<'a> {
    IdToken {
        /// An access token is issued with it: the claims of the profile, email, address and
        /// phone scopes are then for userinfo (OpenID Connect Core §5.4).
        with_access_token: bool,
        /// The client's idTokenClaims: put in all the same.
        client_claims: &'a [String],
    },
    Userinfo,
}

impl ClaimsTarget<'_> {
    fn member(self) -> &'static str {
        match self {
            Self::IdToken { .. } => "id_token",
            Self::Userinfo => "userinfo",
        }
    }
}

/// The user claims released for the granted scopes. The `claims` request parameter (members
/// `userinfo` and `id_token`) only selects among those: a claim no granted scope releases was
/// never consented to and is not released (OpenID Connect Core §5.5 lets the provider refuse).
/// In an ID token issued with an access token, the claims of the §5.4 scopes appear only when
/// the `claims` parameter asks for them there or the client lists them in idTokenClaims.
pub fn select_claims(
    view: &View,
    user: &User,
    scopes: &[String],
    claims_request: Option<&Value>,
    target: ClaimsTarget<'_>,
) -> Map<String, Value> {
    let all = user.claims();
    let requested = claims_request
        .and_then(|c| c.get(target.member()))
        .and_then(Value::as_object);
    let wanted_in_id_token = |claim: &String| match target {
        ClaimsTarget::IdToken {
            with_access_token: true,
            client_claims,
        } => client_claims.contains(claim) || requested.is_some_and(|r| r.contains_key(claim)),
        _ => true,
    };
    let mut out = Map::new();
    for scope in scopes {
        if let Some(s) = view.scopes.get(scope) {
            for claim in &s.claims {
                if s.userinfo_only && !wanted_in_id_token(claim) {
                    continue;
                }
                if let Some(v) = all.get(claim) {
                    out.insert(claim.clone(), v.clone());
                }
            }
        }
    }
    if let Some(requested) = requested {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    /// OpenID Connect Core §5.4: with an access token, the claims of the profile, email, address
    /// and phone scopes go to userinfo, and into the ID token only when asked for there.
    #[test]
    fn scope_claims_go_to_userinfo_when_an_access_token_is_issued() {
        let (view, _) = crate::test_support::view(None);
        let alice = view.users.by_name("alice").unwrap();
        let scopes: Vec<String> = ["openid", "profile", "email", "groups"]
            .map(String::from)
            .to_vec();
        let names = |request: Option<&Value>, target| {
            let mut n: Vec<String> = select_claims(&view, &alice, &scopes, request, target)
                .keys()
                .cloned()
                .collect();
            n.sort();
            n
        };
        let id_token = |client_claims| ClaimsTarget::IdToken {
            with_access_token: true,
            client_claims,
        };
        // Groups is not a §5.4 scope: it stays in the ID token.
        assert_eq!(names(None, id_token(&[])), ["groups", "sub"]);
        assert_eq!(
            names(None, ClaimsTarget::Userinfo),
            [
                "email",
                "email_verified",
                "groups",
                "name",
                "preferred_username",
                "sub"
            ]
        );
        let no_access_token = ClaimsTarget::IdToken {
            with_access_token: false,
            client_claims: &[],
        };
        assert_eq!(
            names(None, no_access_token),
            names(None, ClaimsTarget::Userinfo)
        );
        // Asked for in the ID token by the claims parameter, or listed by the client.
        let asked = json!({"id_token": {"email": null}, "userinfo": {"name": null}});
        assert_eq!(
            names(Some(&asked), id_token(&[])),
            ["email", "groups", "sub"]
        );
        let listed = ["email".to_string(), "email_verified".to_string()];
        assert_eq!(
            names(None, id_token(&listed)),
            ["email", "email_verified", "groups", "sub"]
        );
        // Never a claim of a scope not granted.
        let only_openid = ["openid".to_string()];
        let all = select_claims(
            &view,
            &alice,
            &only_openid,
            Some(&json!({"id_token": {"email": {"essential": true}}})),
            id_token(&listed),
        );
        assert_eq!(all.keys().collect::<Vec<_>>(), ["sub"]);
    }
}
