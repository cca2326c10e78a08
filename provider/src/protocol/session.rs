//! Browser sign-in sessions.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::params::random_token;
use crate::store::{Key, Store, StoreError};

/// How long a sign-in lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// A signed-in browser.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Session {
    pub sub: String,
    pub auth_time: u64,
    pub sid: String,
    /// Clients that received a code in this session (back-channel logout goes to them).
    #[serde(default)]
    pub clients: Vec<String>,
    /// The session cookie's value.
    #[serde(skip)]
    pub id: String,
}

impl Session {
    /// The session of the browser that sent `cookie`.
    pub async fn find(store: &Store, cookie: Option<&str>) -> Result<Option<Session>, StoreError> {
        let Some(id) = cookie else {
            return Ok(None);
        };
        Ok(store
            .get::<Session>(Key::Session(id))
            .await?
            .map(|session| Session {
                id: id.to_string(),
                ..session
            }))
    }

    /// Signs `sub` in now.
    pub async fn start(store: &Store, sub: String, now: u64) -> Result<Session, StoreError> {
        let session = Session {
            sub,
            auth_time: now,
            sid: random_token(),
            clients: Vec::new(),
            id: random_token(),
        };
        session.save(store).await?;
        Ok(session)
    }

    pub async fn save(&self, store: &Store) -> Result<(), StoreError> {
        store.put(Key::Session(&self.id), self, SESSION_TTL).await
    }

    pub async fn end(&self, store: &Store) -> Result<(), StoreError> {
        store.delete(Key::Session(&self.id)).await
    }
}
