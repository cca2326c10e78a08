//! Short-lived protocol state: codes, refresh tokens, token families, sessions, pending
//! interactions, consents, throttling counters and revocations.
//!
//! One enum of keys ([`Key`]) and typed records (JSON) over two backends ([`Store`]: memory or
//! Redis). Nothing outside this module builds a key or encodes a value.

mod backend;
mod keys;

use std::time::Duration;

use serde::{Serialize, de::DeserializeOwned};

pub use backend::{DEFAULT_PREFIX, MemoryStore, Store};
pub use keys::{Key, hash_token};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("a record could not be encoded: {0}")]
    Encoding(String),
}

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

fn decode<T: DeserializeOwned>(key: Key<'_>, raw: Option<String>) -> Option<T> {
    let raw = raw?;
    match serde_json::from_str(&raw) {
        Ok(v) => Some(v),
        Err(e) => {
            // Written by another version, or tampered with: treated as absent.
            tracing::warn!(key = ?std::mem::discriminant(&key), error = %e, "undecodable store record ignored");
            None
        }
    }
}

impl Store {
    /// Stores `value` under `key` for `ttl`.
    pub async fn put<T: Serialize + ?Sized>(
        &self,
        key: Key<'_>,
        value: &T,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let raw = serde_json::to_string(value).map_err(|e| StoreError::Encoding(e.to_string()))?;
        self.put_raw(&key.render(), &raw, ttl).await
    }

    /// The record under `key`, if any (and readable).
    pub async fn get<T: DeserializeOwned>(&self, key: Key<'_>) -> Result<Option<T>, StoreError> {
        Ok(decode(key, self.get_raw(&key.render()).await?))
    }

    /// Returns and removes the record in one step: of concurrent takers exactly one gets it.
    pub async fn take<T: DeserializeOwned>(&self, key: Key<'_>) -> Result<Option<T>, StoreError> {
        Ok(decode(key, self.take_raw(&key.render()).await?))
    }

    /// Whether a record exists under `key`, whatever it holds.
    pub async fn exists(&self, key: Key<'_>) -> Result<bool, StoreError> {
        Ok(self.get_raw(&key.render()).await?.is_some())
    }

    pub async fn delete(&self, key: Key<'_>) -> Result<(), StoreError> {
        self.delete_raw(&key.render()).await
    }

    /// Increments a counter that expires `ttl` after its first increment; returns the new count.
    pub async fn count(&self, key: Key<'_>, ttl: Duration) -> Result<u64, StoreError> {
        self.incr_raw(&key.render(), ttl).await
    }

    /// Takes one back from a counter (an attempt that turned out fine).
    pub async fn uncount(&self, key: Key<'_>) -> Result<(), StoreError> {
        self.decr_raw(&key.render()).await
    }

    /// The current value of a counter (0 when absent or expired).
    pub async fn counter(&self, key: Key<'_>) -> Result<u64, StoreError> {
        Ok(self
            .get_raw(&key.render())
            .await?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }
}

/// Maps: records kept until deleted, each under a field of one key.
impl Store {
    pub async fn put_entry<T: Serialize + ?Sized>(
        &self,
        key: Key<'_>,
        field: &str,
        value: &T,
    ) -> Result<(), StoreError> {
        let raw = serde_json::to_string(value).map_err(|e| StoreError::Encoding(e.to_string()))?;
        self.map_put_raw(&key.render(), field, &raw).await
    }

    pub async fn entry<T: DeserializeOwned>(
        &self,
        key: Key<'_>,
        field: &str,
    ) -> Result<Option<T>, StoreError> {
        Ok(decode(key, self.map_get_raw(&key.render(), field).await?))
    }

    /// Every readable record of the map, by field.
    pub async fn entries<T: DeserializeOwned>(
        &self,
        key: Key<'_>,
    ) -> Result<Vec<(String, T)>, StoreError> {
        Ok(self
            .map_all_raw(&key.render())
            .await?
            .into_iter()
            .filter_map(|(field, raw)| Some((field, decode(key, Some(raw))?)))
            .collect())
    }

    pub async fn entry_count(&self, key: Key<'_>) -> Result<usize, StoreError> {
        self.map_len_raw(&key.render()).await
    }

    pub async fn delete_entry(&self, key: Key<'_>, field: &str) -> Result<(), StoreError> {
        self.map_delete_raw(&key.render(), field).await
    }
}

/// Token families: every token issued from one authorization is valid while its family exists;
/// deleting the family revokes them all (refresh token reuse, revocation).
impl Store {
    pub async fn activate_family(&self, family: &str, ttl: Duration) -> Result<(), StoreError> {
        self.put(Key::Family(family), "active", ttl).await
    }

    pub async fn family_active(&self, family: &str) -> Result<bool, StoreError> {
        self.exists(Key::Family(family)).await
    }

    pub async fn revoke_family(&self, family: &str) -> Result<(), StoreError> {
        self.delete(Key::Family(family)).await
    }
}

/// Consents given with `consent: once`.
impl Store {
    /// The scopes `sub` consented to for the client object `client_id` (its uid: a new object
    /// reusing the client ID starts with none).
    pub async fn consented_scopes(
        &self,
        sub: &str,
        client_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        Ok(self
            .get(Key::Consent { sub, client_id })
            .await?
            .unwrap_or_default())
    }

    /// Adds `scopes` to what `sub` consented to for `client_id`.
    pub async fn add_consent(
        &self,
        sub: &str,
        client_id: &str,
        scopes: &[String],
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let mut granted = self.consented_scopes(sub, client_id).await?;
        for scope in scopes {
            if !granted.contains(scope) {
                granted.push(scope.clone());
            }
        }
        self.put(Key::Consent { sub, client_id }, &granted, ttl)
            .await
    }
}

/// JWT access tokens cannot be recalled: a revoked one's `jti` is denied until it expires.
impl Store {
    pub async fn revoke_jti(&self, jti: &str, ttl: Duration) -> Result<(), StoreError> {
        self.put(Key::RevokedJti(jti), &1, ttl).await
    }

    pub async fn jti_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        self.exists(Key::RevokedJti(jti)).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn typed_records_round_trip_and_repositories_keep_their_rules() {
        let store = Store::memory();
        let ttl = Duration::from_secs(10);
        store
            .put(Key::Code("c"), &vec!["a".to_string()], ttl)
            .await
            .unwrap();
        let got: Option<Vec<String>> = store.take(Key::Code("c")).await.unwrap();
        assert_eq!(got, Some(vec!["a".to_string()]));
        assert_eq!(
            store.take::<Vec<String>>(Key::Code("c")).await.unwrap(),
            None
        );
        // A record of another shape reads as absent, never as garbage.
        store.put(Key::Code("d"), "text", ttl).await.unwrap();
        assert_eq!(
            store.get::<Vec<String>>(Key::Code("d")).await.unwrap(),
            None
        );

        store.activate_family("f", ttl).await.unwrap();
        assert!(store.family_active("f").await.unwrap());
        store.revoke_family("f").await.unwrap();
        assert!(!store.family_active("f").await.unwrap());

        let scopes = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        store
            .add_consent("s", "c", &scopes(&["openid"]), ttl)
            .await
            .unwrap();
        store
            .add_consent("s", "c", &scopes(&["openid", "email"]), ttl)
            .await
            .unwrap();
        assert_eq!(
            store.consented_scopes("s", "c").await.unwrap(),
            scopes(&["openid", "email"])
        );
        assert!(
            store
                .consented_scopes("s", "other")
                .await
                .unwrap()
                .is_empty()
        );

        assert_eq!(store.count(Key::UserFailures("u"), ttl).await.unwrap(), 1);
        assert_eq!(store.count(Key::UserFailures("u"), ttl).await.unwrap(), 2);
        assert_eq!(store.counter(Key::UserFailures("u")).await.unwrap(), 2);

        store.revoke_jti("j", ttl).await.unwrap();
        assert!(store.jti_revoked("j").await.unwrap());
    }
}
