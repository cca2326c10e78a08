//! Who is signed in: a user of the users Secret, or a person an identity connector vouched for,
//! kept in the store while their sign-in lasts (the provider writes nothing to Kubernetes).
//!
//! Every place that needs the person behind a subject asks [`Context::user`]; the local users
//! come first, so an upstream identity can never stand in for a local user's subject.

use std::{sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{
    protocol::{Context, OAuthError, connectors::Upstream, upstream, upstream_flow::UpstreamError},
    store::{Key, StoreError},
    users::User,
};

/// The longest a refresh or a directory sign-in waits for the upstream.
const UPSTREAM_BOUND: Duration = Duration::from_secs(10);

/// A person signed in through an identity connector, as the store keeps them.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct UpstreamIdentity {
    /// The IdentityConnector that vouched for them.
    pub connector: String,
    /// Their claims, as a user of ours (no password).
    pub user: User,
    /// What the upstream said (its verified ID token and userinfo claims), mapped again when
    /// it is asked again.
    #[serde(default)]
    pub upstream_claims: Map<String, Value>,
    /// The upstream's refresh token, sealed with the sealing key for this subject
    /// ([`crds::sealed`]): the store never holds it in the clear.
    #[serde(default)]
    pub sealed_refresh: Option<String>,
    /// Until when it is kept (seconds since the epoch): a shorter sign-in never shortens it.
    #[serde(default)]
    pub kept_until: u64,
}

/// `asking` an upstream (a refresh, a directory sign-in), within [`UPSTREAM_BOUND`] however
/// many round trips it takes.
pub(crate) async fn bounded<T>(
    asking: impl std::future::Future<Output = Result<T, UpstreamError>>,
) -> Result<T, UpstreamError> {
    tokio::time::timeout(UPSTREAM_BOUND, asking)
        .await
        .unwrap_or_else(|_| Err(UpstreamError::Unreachable("no answer in time".into())))
}

/// The sealing owner of an identity's upstream refresh token: a sealed token copied to another
/// identity does not open.
fn sealing_owner(sub: &str) -> String {
    format!("UpstreamIdentity/{sub}")
}

impl UpstreamIdentity {
    /// Keeps the upstream's refresh token, sealed; without a sealing key it is not kept (and
    /// refresh then does not go back to the upstream).
    pub fn seal_refresh(&mut self, ctx: &Context<'_>, token: Option<&str>) {
        self.sealed_refresh = match (token, ctx.view.sealing.as_deref()) {
            (Some(t), Some(key)) => Some(key.seal(&sealing_owner(&self.user.subject()), t)),
            _ => None,
        };
    }
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
            .map(|i| {
                let mut user = i.user;
                user.connector = Some(i.connector);
                Arc::new(user)
            }))
    }

    /// Keeps an upstream identity for at least `ttl` (its sign-in's longest use: the refresh
    /// tokens), and never less than it was kept for already.
    pub async fn remember(
        &self,
        identity: &mut UpstreamIdentity,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let sub = identity.user.subject();
        let before = self
            .store
            .get::<UpstreamIdentity>(Key::Identity(&sub))
            .await?
            .map_or(0, |i| i.kept_until);
        identity.kept_until = before.max(self.now.saturating_add(ttl.as_secs()));
        let ttl = Duration::from_secs(identity.kept_until.saturating_sub(self.now).max(1));
        self.store.put(Key::Identity(&sub), identity, ttl).await
    }

    /// Before a refresh for `sub`: an upstream identity is asked about again (an OpenID
    /// provider with the refresh token it gave, a directory by searching the user and their
    /// groups), so a person disabled or moved out of a group upstream loses access now. The upstream's answer within its timeout, or `temporarily_unavailable` (the refresh
    /// token is not used up). A local user, or an upstream without refresh, passes as is.
    pub async fn refresh_upstream(&self, sub: &str) -> Result<(), OAuthError> {
        if self.view.users.by_sub(sub).is_some() {
            return Ok(());
        }
        let Some(mut identity) = self
            .store
            .get::<UpstreamIdentity>(Key::Identity(sub))
            .await?
        else {
            return Ok(());
        };
        let Some(up) = self.view.upstreams.get(&identity.connector).cloned() else {
            return Err(OAuthError::InvalidGrant(format!(
                "sign-in through {} is no longer offered; sign in again",
                identity.connector
            )));
        };
        let asked = match up.as_ref() {
            Upstream::Ldap(directory) => {
                bounded(async { directory.lookup(&identity).await.map(|i| (i, None)) }).await
            }
            Upstream::Oidc(oidc) => {
                // Asked with the refresh token it gave, if it gave one.
                let (Some(sealed), Some(key)) =
                    (&identity.sealed_refresh, self.view.sealing.as_deref())
                else {
                    return Ok(());
                };
                let Some(token) = key.open(&sealing_owner(sub), sealed) else {
                    // Sealed under a key since replaced: the upstream cannot be asked.
                    return Err(self
                        .forget(sub, "the upstream sign-in cannot be renewed")
                        .await);
                };
                bounded(async {
                    let (claims, token) = oidc
                        .refresh(&token, identity.upstream_claims.clone())
                        .await?;
                    upstream::identity(&identity.connector, &oidc.spec, &oidc.settings, &claims)
                        .map(|i| (i, Some(token)))
                        .map_err(|e| UpstreamError::Refused(e.to_string()))
                })
                .await
            }
        };
        let (mut fresh, token) = match asked {
            Ok(ok) => ok,
            Err(UpstreamError::Refused(why)) => {
                tracing::info!(connector = %identity.connector, why, "the upstream no longer vouches for a person");
                return Err(self
                    .forget(sub, "the identity provider no longer signs this person in")
                    .await);
            }
            Err(UpstreamError::Store(e)) => return Err(e.into()),
            Err(e) => {
                tracing::warn!(connector = %identity.connector, error = %e, "upstream refresh failed");
                return Err(OAuthError::TemporarilyUnavailable(
                    "the identity provider cannot be reached; try again in a moment".into(),
                ));
            }
        };
        if fresh.user.subject() != sub {
            return Err(self
                .forget(sub, "the upstream answered about another person")
                .await);
        }
        if token.is_some() {
            fresh.seal_refresh(self, token.as_deref());
        }
        fresh.kept_until = identity.kept_until;
        identity = fresh;
        let ttl = Duration::from_secs(identity.kept_until.saturating_sub(self.now).max(1));
        self.store.put(Key::Identity(sub), &identity, ttl).await?;
        Ok(())
    }

    /// Drops an upstream identity (its tokens stop working); the error to answer.
    async fn forget(&self, sub: &str, why: &str) -> OAuthError {
        if let Err(e) = self.store.delete(Key::Identity(sub)).await {
            return e.into();
        }
        OAuthError::InvalidGrant(format!("{why}; sign in again"))
    }
}
