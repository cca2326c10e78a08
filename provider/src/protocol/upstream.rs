//! What an upstream OpenID Connect provider says about a person, made into one of ours: the
//! subject scoped to the connector, the mapped claims, the groups filtered and prefixed.
//!
//! (The flow itself, start → upstream → callback, builds on this; see docs/issue-15-plan.md.)

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use serde_json::{Map, Value};

use crate::{identity::UpstreamIdentity, users::User};
use crds::connector::{IdentityConnectorSpec, OidcConnector};

/// Why an upstream's answer is not a person we sign in.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("the upstream's ID token has no {0} claim")]
    Missing(String),
    #[error("the upstream does not say the email {0} is verified")]
    EmailNotVerified(String),
}

/// Our subject for the upstream subject `upstream_sub` of connector `connector`: never equal
/// to another connector's or a local user's.
pub fn subject(connector: &str, upstream_sub: &str) -> String {
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        // The name's length first: no (connector, subject) pair reads as another.
        format!(
            "kube-oidc:connector:{}:{connector}:{upstream_sub}",
            connector.len()
        )
        .as_bytes(),
    );
    B64.encode(&digest.as_ref()[..16])
}

fn string(claims: &Map<String, Value>, name: &str) -> Option<String> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

/// The subject realm of connector `name`: its `subjectRealm`, else its name.
pub fn realm<'a>(name: &'a str, spec: &'a IdentityConnectorSpec) -> &'a str {
    spec.subject_realm.as_deref().unwrap_or(name)
}

/// The groups of `claims[name]` (an array of strings, or one string), filtered by the
/// connector's `groupsAllowed` and given its `groupPrefix`.
pub fn groups(
    spec: &IdentityConnectorSpec,
    claims: &Map<String, Value>,
    name: &str,
) -> Vec<String> {
    let raw: Vec<String> = match claims.get(name) {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    };
    scoped_groups(spec, raw)
}

/// An upstream's group names filtered by the connector's `groupsAllowed` and given its
/// `groupPrefix`.
pub fn scoped_groups(spec: &IdentityConnectorSpec, raw: Vec<String>) -> Vec<String> {
    let prefix = spec.group_prefix.as_deref().unwrap_or_default();
    raw.into_iter()
        .filter(|g| spec.groups_allowed.is_empty() || spec.groups_allowed.contains(g))
        .map(|g| format!("{prefix}{g}"))
        .collect()
}

/// The person behind the upstream's (verified) ID token claims, and userinfo's when read.
pub fn identity(
    name: &str,
    spec: &IdentityConnectorSpec,
    oidc: &OidcConnector,
    claims: &Map<String, Value>,
) -> Result<UpstreamIdentity, MappingError> {
    let names = &oidc.claims;
    let subject_claim = names.subject.as_deref().unwrap_or("sub");
    let upstream_sub =
        string(claims, subject_claim).ok_or_else(|| MappingError::Missing(subject_claim.into()))?;
    let username = string(claims, &names.username)
        .or_else(|| string(claims, &names.email))
        .unwrap_or_else(|| upstream_sub.clone());
    let email = string(claims, &names.email);
    let verified = claims
        .get(&names.email_verified)
        .and_then(|v| v.as_bool().or_else(|| v.as_str().map(|s| s == "true")))
        .unwrap_or(false);
    if let Some(e) = &email
        && !verified
        && !oidc.insecure_skip_email_verified
    {
        return Err(MappingError::EmailNotVerified(e.clone()));
    }
    let user = User {
        username,
        password_hash: String::new(),
        sub: Some(subject(realm(name, spec), &upstream_sub)),
        email_verified: email.as_ref().map(|_| true),
        email,
        name: string(claims, &names.name),
        given_name: string(claims, "given_name"),
        family_name: string(claims, "family_name"),
        preferred_username: string(claims, "preferred_username"),
        phone_number: None,
        phone_number_verified: None,
        address: None,
        groups: groups(spec, claims, &names.groups),
        claims: Map::new(),
        connector: Some(name.to_string()),
    };
    Ok(UpstreamIdentity {
        connector: name.to_string(),
        user,
        upstream_claims: claims.clone(),
        sealed_refresh: None,
        kept_until: 0,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn spec(extra: &str) -> IdentityConnectorSpec {
        serde_yaml::from_str(&format!(
            "type: oidc\ndisplayName: Corp\noidc:\n  issuer: https://idp.example\n  clientId: k\n  clientSecretRef: {{name: s, key: k}}\n{extra}"
        ))
        .unwrap()
    }

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn connectors_sharing_a_subject_realm_give_a_person_one_subject() {
        let c = claims(json!({"sub": "42", "email": "c@corp.example", "email_verified": true}));
        let mut a = spec("subjectRealm: people\n");
        let mut b = a.clone();
        let oidc = a.oidc.clone().unwrap();
        let (one, two) = (
            identity("corp", &a, &oidc, &c).unwrap(),
            identity("partner", &b, &oidc, &c).unwrap(),
        );
        assert_eq!(one.user.subject(), two.user.subject());
        assert_eq!(one.user.subject(), subject("people", "42"));
        a.subject_realm = None;
        b.subject_realm = None;
        assert_ne!(
            identity("corp", &a, &oidc, &c).unwrap().user.subject(),
            identity("partner", &b, &oidc, &c).unwrap().user.subject()
        );
    }

    #[test]
    fn subjects_are_scoped_to_their_connector() {
        assert_ne!(subject("corp", "42"), subject("partner", "42"));
        assert_eq!(subject("corp", "42"), subject("corp", "42"));
        // No ambiguity between "a" + "b\nc" and "a\nb" + "c".
        assert_ne!(subject("a", "b\nc"), subject("a\nb", "c"));
    }

    #[test]
    fn claims_are_mapped_groups_filtered_and_prefixed_and_email_must_be_verified() {
        let s = spec("groupPrefix: \"corp:\"\ngroupsAllowed: [dev, ops]\n");
        let oidc = s.oidc.clone().unwrap();
        let c = claims(
            json!({"sub": "42", "preferred_username": "carol", "email": "carol@corp.example",
            "email_verified": true, "name": "Carol", "groups": ["dev", "finance", "ops"]}),
        );
        let i = identity("corp", &s, &oidc, &c).unwrap();
        assert_eq!(i.user.username, "carol");
        assert_eq!(i.user.subject(), subject("corp", "42"));
        assert_eq!(i.user.groups, ["corp:dev", "corp:ops"]);
        assert_eq!(i.user.email_verified, Some(true));
        let unverified = claims(json!({"sub": "42", "email": "x@corp.example"}));
        assert_eq!(
            identity("corp", &s, &oidc, &unverified).unwrap_err(),
            MappingError::EmailNotVerified("x@corp.example".into())
        );
        let mut trusting = oidc.clone();
        trusting.insecure_skip_email_verified = true;
        assert!(identity("corp", &s, &trusting, &unverified).is_ok());
        assert_eq!(
            identity("corp", &s, &oidc, &claims(json!({"email": "x"}))).unwrap_err(),
            MappingError::Missing("sub".into())
        );
    }
}
