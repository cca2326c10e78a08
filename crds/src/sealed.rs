//! Values the operator hands the provider through a resource's status without revealing them to
//! whoever reads that status: AES-256-GCM under the sealing key, a Secret in the provider's
//! namespace that only the operator and the provider read.
//!
//! Used for the secrets of client_secret_jwt clients: an HMAC keyed with the secret cannot be
//! checked against a hash, and the provider has no read access to application Secrets.
//!
//! A sealed value is `v1.` and the base64url of nonce (12 bytes) ‖ ciphertext ‖ tag. The
//! associated data names what the value belongs to, so a value copied to another object does not
//! open there.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use k8s_openapi::api::core::v1::Secret;

/// The Secret in the provider's namespace that holds the sealing key (made by the operator).
pub const SEALING_KEY_SECRET: &str = "kube-oidc-sealing-key";
/// Its key: 32 random bytes.
pub const KEY_SEALING_KEY: &str = "key";

const PREFIX: &str = "v1.";

/// A sealing key, ready to use.
pub struct SealingKey(LessSafeKey);

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(..)")
    }
}

impl SealingKey {
    /// The key from its 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let key = UnboundKey::new(&AES_256_GCM, bytes).ok()?;
        Some(Self(LessSafeKey::new(key)))
    }

    /// The key of the sealing-key Secret; `None` when it has none of the right length.
    pub fn from_secret(secret: &Secret) -> Option<Self> {
        let bytes = secret.data.as_ref()?.get(KEY_SEALING_KEY)?;
        Self::from_bytes(&bytes.0)
    }

    /// `plaintext` sealed for `owner` (what it belongs to, e.g. `namespace/name`).
    pub fn seal(&self, owner: &str, plaintext: &str) -> String {
        let nonce = crate::secret::random::<NONCE_LEN>();
        let mut buf = plaintext.as_bytes().to_vec();
        let sealed = self.0.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(owner.as_bytes()),
            &mut buf,
        );
        // Only fails for a plaintext beyond AES-GCM's limit (64 GiB): not recoverable, like a
        // failing RNG.
        if sealed.is_err() {
            panic!("AES-GCM refused to seal {} bytes", plaintext.len());
        }
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        format!("{PREFIX}{}", B64.encode(out))
    }

    /// The value sealed for `owner`; `None` when it was sealed with another key, for another
    /// owner, or altered.
    pub fn open(&self, owner: &str, sealed: &str) -> Option<String> {
        let raw = B64.decode(sealed.strip_prefix(PREFIX)?).ok()?;
        if raw.len() < NONCE_LEN {
            return None;
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buf = sealed.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(owner.as_bytes()), &mut buf)
            .ok()?;
        String::from_utf8(plain.to_vec()).ok()
    }
}

/// 32 new random bytes for a sealing key.
pub fn generate_key() -> Vec<u8> {
    crate::secret::random::<32>().to_vec()
}

/// What a client's sealed secret belongs to: its namespace and name.
pub fn client_owner(namespace: &str, name: &str) -> String {
    format!("OidcClient/{namespace}/{name}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_owner_and_unaltered() {
        let key = SealingKey::from_bytes(&generate_key()).unwrap();
        let other = SealingKey::from_bytes(&generate_key()).unwrap();
        let sealed = key.seal("OidcClient/a/web", "s3cret");
        assert!(sealed.starts_with("v1."));
        assert!(!sealed.contains("s3cret"));
        assert_eq!(
            key.open("OidcClient/a/web", &sealed).as_deref(),
            Some("s3cret")
        );
        assert_eq!(key.open("OidcClient/b/web", &sealed), None);
        assert_eq!(other.open("OidcClient/a/web", &sealed), None);
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 1;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            key.open("OidcClient/a/web", &String::from_utf8(altered).unwrap()),
            None
        );
        assert_eq!(key.open("OidcClient/a/web", "v1."), None);
        assert_eq!(key.open("OidcClient/a/web", "garbage"), None);
        // A fresh nonce each time.
        assert_ne!(sealed, key.seal("OidcClient/a/web", "s3cret"));
        assert!(SealingKey::from_bytes(&[0u8; 16]).is_none());
    }
}
