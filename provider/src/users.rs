//! The users directory: a YAML list in a Secret (cluster) or a file (standalone).

use std::{collections::HashMap, sync::Arc};

use argon2::{
    Argon2,
    password_hash::{PasswordHash, PasswordHasher, SaltString},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use serde::{Deserialize, Serialize};

/// One user, as written in `users.yaml`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct User {
    pub username: String,
    pub password_hash: String,
    #[serde(default)]
    pub sub: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub email_verified: Option<bool>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub given_name: Option<String>,
    #[serde(default)]
    pub family_name: Option<String>,
    #[serde(default)]
    pub preferred_username: Option<String>,
    #[serde(default)]
    pub phone_number: Option<String>,
    #[serde(default)]
    pub phone_number_verified: Option<bool>,
    #[serde(default)]
    pub address: Option<serde_json::Value>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// The IdentityConnector that vouched for them; `None` for a user of the users Secret.
    /// Set when an upstream identity is read, never from a manifest.
    #[serde(skip)]
    pub connector: Option<String>,
}

impl User {
    /// The stable subject: `sub`, else derived from the username.
    pub fn subject(&self) -> String {
        self.sub.clone().unwrap_or_else(|| {
            let digest = aws_lc_rs::digest::digest(
                &aws_lc_rs::digest::SHA256,
                format!("kube-oidc:user:{}", self.username).as_bytes(),
            );
            B64.encode(&digest.as_ref()[..16])
        })
    }

    /// Every claim this user has, by name (OpenID Connect Core §5.1 names).
    pub fn claims(&self) -> serde_json::Map<String, serde_json::Value> {
        use serde_json::Value;
        let mut m = serde_json::Map::new();
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                m.insert(k.to_string(), v);
            }
        };
        put("sub", Some(Value::String(self.subject())));
        put("name", self.name.clone().map(Value::String));
        put("given_name", self.given_name.clone().map(Value::String));
        put("family_name", self.family_name.clone().map(Value::String));
        put(
            "preferred_username",
            Some(Value::String(
                self.preferred_username
                    .clone()
                    .unwrap_or_else(|| self.username.clone()),
            )),
        );
        put("email", self.email.clone().map(Value::String));
        put(
            "email_verified",
            self.email
                .as_ref()
                .map(|_| Value::Bool(self.email_verified.unwrap_or(false))),
        );
        put("phone_number", self.phone_number.clone().map(Value::String));
        put(
            "phone_number_verified",
            self.phone_number
                .as_ref()
                .map(|_| Value::Bool(self.phone_number_verified.unwrap_or(false))),
        );
        put("address", self.address.clone());
        put(
            "groups",
            Some(Value::Array(
                self.groups.iter().cloned().map(Value::String).collect(),
            )),
        );
        for (k, v) in &self.claims {
            m.entry(k.clone()).or_insert_with(|| v.clone());
        }
        m
    }
}

/// Users by name and by subject.
#[derive(Default, Clone)]
pub struct Users {
    by_name: HashMap<String, Arc<User>>,
    by_sub: HashMap<String, Arc<User>>,
}

#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error("users file is not a YAML list of users: {0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("user {0} is listed twice")]
    Duplicate(String),
    #[error(
        "user {0}: passwordHash is not an argon2 PHC string (make one with `kube-oidc-provider hash-password`)"
    )]
    BadHash(String),
}

impl Users {
    pub fn parse(yaml: &str) -> Result<Self, UsersError> {
        let list: Vec<User> = if yaml.trim().is_empty() {
            Vec::new()
        } else {
            serde_yaml::from_str(yaml)?
        };
        let mut users = Users::default();
        for user in list {
            if PasswordHash::new(&user.password_hash).is_err() {
                return Err(UsersError::BadHash(user.username));
            }
            let user = Arc::new(user);
            if users
                .by_name
                .insert(user.username.clone(), user.clone())
                .is_some()
            {
                return Err(UsersError::Duplicate(user.username.clone()));
            }
            users.by_sub.insert(user.subject(), user);
        }
        Ok(users)
    }

    pub fn by_name(&self, name: &str) -> Option<Arc<User>> {
        self.by_name.get(name).cloned()
    }

    pub fn by_sub(&self, sub: &str) -> Option<Arc<User>> {
        self.by_sub.get(sub).cloned()
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

/// An argon2id PHC string for `password`.
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::SecureRandom::fill(&aws_lc_rs::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| argon2::password_hash::Error::Crypto)?;
    let salt = SaltString::encode_b64(&bytes)?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// A PHC string that matches no password, verified for unknown users so that a wrong username
/// takes as long as a wrong password.
static DUMMY_HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The hash a check of `user`'s password runs against: theirs, or the dummy.
fn phc_of(user: Option<&User>) -> &str {
    match user {
        Some(u) => &u.password_hash,
        None => DUMMY_HASH.get_or_init(|| hash_password("kube-oidc dummy").unwrap_or_default()),
    }
}

/// The memory a check of `user`'s password takes, in MiB (the Argon2 `m` parameter of its hash,
/// or of the dummy hash for an unknown user).
pub fn verification_cost_mib(user: Option<&User>) -> u32 {
    let kib = PasswordHash::new(phc_of(user))
        .ok()
        .and_then(|h| h.params.get_decimal("m"))
        .unwrap_or(argon2::Params::DEFAULT_M_COST);
    kib.div_ceil(1024).max(1)
}

/// Checks a password with `memory` as Argon2's working memory, grown to the hash's cost when it
/// is smaller: callers keep a few buffers and reuse them, so checks never allocate (a freed 19 MiB
/// block stays with the allocator: fresh buffers per check grew a storm to 600 MB). CPU-heavy:
/// call it from a blocking thread.
pub fn verify_password_in(
    user: Option<&User>,
    password: &str,
    memory: &mut Vec<argon2::Block>,
) -> bool {
    let ok = check_in(phc_of(user), password, memory).unwrap_or(false);
    ok && user.is_some()
}

fn check_in(phc: &str, password: &str, memory: &mut Vec<argon2::Block>) -> Option<bool> {
    let hash = PasswordHash::new(phc).ok()?;
    let expected = hash.hash?;
    let params = argon2::Params::try_from(&hash).ok()?;
    let algorithm = argon2::Algorithm::try_from(hash.algorithm).ok()?;
    let version = match hash.version {
        Some(v) => argon2::Version::try_from(v).ok()?,
        None => argon2::Version::default(),
    };
    let mut salt = [0u8; 64];
    let salt = hash.salt?.decode_b64(&mut salt).ok()?;
    if memory.len() < params.block_count() {
        memory.resize(params.block_count(), argon2::Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut memory[..])
        .ok()?;
    Some(aws_lc_rs::constant_time::verify_slices_are_equal(&out, expected.as_bytes()).is_ok())
}

/// Checks a password with working memory of its own; CPU-heavy, so call it from a blocking
/// thread. Sign-ins use [`verify_password_in`] with pooled memory.
pub fn verify_password(user: Option<&User>, password: &str) -> bool {
    verify_password_in(user, password, &mut Vec::new())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parse_and_verify() {
        let hash = hash_password("s3cret").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        let users = Users::parse(&format!(
            "- username: alice\n  passwordHash: \"{hash}\"\n  email: alice@example.com\n  emailVerified: true\n  groups: [admins]\n  claims: {{department: platform}}\n"
        ))
        .unwrap();
        let alice = users.by_name("alice").unwrap();
        assert!(verify_password(Some(&alice), "s3cret"));
        assert!(!verify_password(Some(&alice), "wrong"));
        assert!(!verify_password(None, "s3cret"));
        // The same answers with reused working memory, which grows once to the hash's cost.
        let mut memory = Vec::new();
        assert!(verify_password_in(Some(&alice), "s3cret", &mut memory));
        assert_eq!(memory.len(), 19 * 1024);
        assert!(!verify_password_in(Some(&alice), "wrong", &mut memory));
        assert!(verify_password_in(Some(&alice), "s3cret", &mut memory));
        assert!(!verify_password_in(None, "s3cret", &mut memory));
        assert_eq!(memory.len(), 19 * 1024);
        let claims = alice.claims();
        assert_eq!(claims["email_verified"], true);
        assert_eq!(claims["department"], "platform");
        assert_eq!(claims["groups"][0], "admins");
        assert_eq!(users.by_sub(&alice.subject()).unwrap().username, "alice");
        assert!(matches!(
            Users::parse("- username: bob\n  passwordHash: plain\n"),
            Err(UsersError::BadHash(_))
        ));
    }
}
