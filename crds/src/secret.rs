//! Client secrets: generation and the salted SHA-256 hash kept in `status.secretHash`, so the
//! provider verifies secrets without read access to application Secrets.
//!
//! A generated secret carries 256 bits of entropy, so a fast salted hash is as strong as a slow
//! password hash would be here.

use aws_lc_rs::{
    constant_time::verify_slices_are_equal,
    digest::{SHA256, digest},
    rand::{SecureRandom, SystemRandom},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};

use std::collections::BTreeMap;

use k8s_openapi::{ByteString, api::core::v1::Secret};

const SCHEME: &str = "sha256";

/// Key of a client's credentials Secret: the client ID.
pub const KEY_CLIENT_ID: &str = "client-id";
/// Key of a client's credentials Secret: the client secret.
pub const KEY_CLIENT_SECRET: &str = "client-secret";
/// Key of a client's credentials Secret: the issuer URL.
pub const KEY_ISSUER_URL: &str = "issuer-url";
/// The shortest secret a client_secret_jwt client may have: HMAC-SHA256's key size (RFC 7518
/// §3.2). A generated secret has 43 characters.
pub const MIN_HMAC_SECRET: usize = 32;

/// Why `secret` cannot key a client_secret_jwt client's HMAC, if it cannot.
pub fn hmac_secret_problem(secret: &str) -> Option<String> {
    (secret.len() < MIN_HMAC_SECRET).then(|| {
        format!(
            "client_secret_jwt signs with HMAC keyed by the secret: {KEY_CLIENT_SECRET} must be at least {MIN_HMAC_SECRET} bytes (RFC 7518 §3.2); put a longer one there"
        )
    })
}

/// Key of the users Secret: the users directory (YAML).
pub const KEY_USERS: &str = "users.yaml";

/// The data of a client's credentials Secret, as applications read it.
pub fn client_secret_data(
    client_id: &str,
    secret: &str,
    issuer: &str,
) -> BTreeMap<String, ByteString> {
    BTreeMap::from([
        (
            KEY_CLIENT_ID.to_string(),
            ByteString(client_id.as_bytes().to_vec()),
        ),
        (
            KEY_CLIENT_SECRET.to_string(),
            ByteString(secret.as_bytes().to_vec()),
        ),
        (
            KEY_ISSUER_URL.to_string(),
            ByteString(issuer.as_bytes().to_vec()),
        ),
    ])
}

/// The non-empty UTF-8 value of `key` in a Secret (`stringData` too, as a manifest may have it).
pub fn secret_data(secret: &Secret, key: &str) -> Option<String> {
    secret
        .string_data
        .as_ref()
        .and_then(|d| d.get(key).cloned())
        .or_else(|| {
            secret
                .data
                .as_ref()?
                .get(key)
                .and_then(|v| String::from_utf8(v.0.clone()).ok())
        })
        .filter(|v| !v.is_empty())
}

/// N random bytes from the system RNG (secrets, sealing keys, nonces).
pub(crate) fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // The system RNG failing is not recoverable; aws-lc aborts before returning an error here.
    if SystemRandom::new().fill(&mut bytes).is_err() {
        panic!("system random number generator failed");
    }
    bytes
}

/// A new client secret: 256 random bits, base64url.
pub fn generate_secret() -> String {
    B64.encode(random::<32>())
}

fn salted(salt: &[u8], secret: &str) -> Vec<u8> {
    let mut input = Vec::with_capacity(salt.len() + secret.len());
    input.extend_from_slice(salt);
    input.extend_from_slice(secret.as_bytes());
    digest(&SHA256, &input).as_ref().to_vec()
}

/// `sha256$<salt>$<digest>` with a fresh 128-bit salt.
pub fn hash_secret(secret: &str) -> String {
    let salt = random::<16>();
    format!(
        "{SCHEME}${}${}",
        B64.encode(salt),
        B64.encode(salted(&salt, secret))
    )
}

/// Checks a presented secret against a stored hash in constant time.
pub fn verify_secret(secret: &str, hash: &str) -> bool {
    let mut parts = hash.split('$');
    let (Some(SCHEME), Some(salt), Some(expected), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let (Ok(salt), Ok(expected)) = (B64.decode(salt), B64.decode(expected)) else {
        return false;
    };
    verify_slices_are_equal(&salted(&salt, secret), &expected).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let secret = generate_secret();
        assert_eq!(secret.len(), 43);
        let hash = hash_secret(&secret);
        assert!(verify_secret(&secret, &hash));
        assert!(!verify_secret("wrong", &hash));
        assert_ne!(hash, hash_secret(&secret), "salted");
        assert!(!verify_secret(&secret, "sha256$x"));
        assert!(!verify_secret(&secret, "md5$a$b"));
        assert!(!verify_secret(&secret, ""));
    }
}
