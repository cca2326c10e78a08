//! Who is signed in: a user of the users Secret, or a person an identity connector vouched for,
//! kept in the store while their sign-in lasts (the provider writes nothing to Kubernetes).
//!
//! Every place that needs the person behind a subject asks [`Context::user`]; the local users
//! come first, so an upstream identity can never stand in for a local user's subject.

use std::{sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};

use crate::{
    protocol::Context,
    store::{Key, StoreError},
    users::User,
};

/// A person signed in through an identity connector, as the store keeps them.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct UpstreamIdentity {
    /// The IdentityConnector that vouched for them.
    pub connector: String,
    /// Their claims, as a user of ours (no password).
    pub user: User,
}

impl Context<'_> {
    /// The person with subject `sub`: a local user, else an upstream identity still signed in.
    pub async fn user(&self, sub: &str) -> Result<Option<Arc<User>>, StoreError> {
        if let Some(u) = self.view.users.by_sub(sub) {
            return Ok(Some(u));
        }
        Ok(self
            .store
            .get::<UpstreamIdentity>(Key::Identity(sub))
            .await?
            .map(|i| Arc::new(i.user)))
    }

    /// Keeps an upstream identity for `ttl` (its sign-in's longest use: the refresh tokens).
    pub async fn remember(
        &self,
        identity: &UpstreamIdentity,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.store
            .put(Key::Identity(&identity.user.subject()), identity, ttl)
            .await
    }
}
