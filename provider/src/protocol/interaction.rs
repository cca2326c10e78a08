//! Interactions with the user that span requests (sign-in, consent, logout confirmation): one
//! generic pending type, stored under a random id, answered only by a form that carries its CSRF
//! token from the browser that holds its binding cookie.

use std::time::Duration;

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::params::{random_token, same};
use crate::store::{Key, Store, StoreError, hash_token};

/// How long a user has to answer.
pub const PENDING_TTL: Duration = Duration::from_secs(600);

/// Which interaction a pending step belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interaction {
    /// Sign-in and consent of an authorization request.
    Authorization,
    /// Confirmation of a logout not tied to the browser's session.
    Logout,
}

impl Interaction {
    fn key(self, id: &str) -> Key<'_> {
        match self {
            Self::Authorization => Key::PendingAuthorization(id),
            Self::Logout => Key::PendingLogout(id),
        }
    }
}

/// What a sign-in or consent form continues: an authorization request, or a device waiting for
/// its user code to be approved.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SignInStep {
    Authorization(Box<super::authorize::AuthorizationStep>),
    Device(super::device::DeviceStep),
}

impl SignInStep {
    /// The signed-in user, at the consent stage.
    pub fn sub(&self) -> Option<&String> {
        match self {
            Self::Authorization(s) => s.sub.as_ref(),
            Self::Device(s) => s.sub.as_ref(),
        }
    }
}

/// A step waiting for the user, with what binds it to one form in one browser.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Pending<T> {
    #[serde(flatten)]
    pub step: T,
    pub csrf: String,
    /// Hash of the browser's binding cookie.
    pub binding: String,
}

/// A started interaction: the page needs `id` and `csrf`, the browser gets `binding_cookie`.
#[derive(Clone, Debug)]
pub struct Started {
    pub id: String,
    pub csrf: String,
    pub binding_cookie: String,
}

fn binding_hash(cookie: &str) -> String {
    hash_token("binding", cookie)
}

/// Stores `step` while the user answers.
pub async fn start<T: Serialize>(
    store: &Store,
    kind: Interaction,
    step: T,
) -> Result<Started, StoreError> {
    let started = Started {
        id: random_token(),
        csrf: random_token(),
        binding_cookie: random_token(),
    };
    let pending = Pending {
        step,
        csrf: started.csrf.clone(),
        binding: binding_hash(&started.binding_cookie),
    };
    store
        .put(kind.key(&started.id), &pending, PENDING_TTL)
        .await?;
    Ok(started)
}

/// What the user answers to: the form's `request` id and `csrf`, and the browser's binding
/// cookie.
#[derive(Clone, Copy, Debug, Default)]
pub struct Answer<'a> {
    pub id: Option<&'a str>,
    pub csrf: Option<&'a str>,
    pub binding_cookie: Option<&'a str>,
}

/// The pending step an answer refers to, if its CSRF token and browser binding match.
pub async fn resume<T: DeserializeOwned>(
    store: &Store,
    kind: Interaction,
    answer: Answer<'_>,
) -> Result<Option<Pending<T>>, StoreError> {
    let (Some(id), Some(csrf)) = (answer.id, answer.csrf) else {
        return Ok(None);
    };
    let Some(pending) = store.get::<Pending<T>>(kind.key(id)).await? else {
        return Ok(None);
    };
    let binding = answer.binding_cookie.map(binding_hash).unwrap_or_default();
    let csrf_ok = same(csrf, &pending.csrf);
    let binding_ok = same(&binding, &pending.binding);
    Ok((csrf_ok && binding_ok).then_some(pending))
}

/// The binding of a browser cookie, as a pending step keeps it.
pub fn binding_of(cookie: &str) -> String {
    binding_hash(cookie)
}

/// The pending step `id`, if `binding` (from [`binding_of`]) is the one it was started with:
/// for the callback of an upstream sign-in, whose unguessable single-use `state` stands in for
/// the form's CSRF token.
pub async fn resume_bound<T: DeserializeOwned>(
    store: &Store,
    kind: Interaction,
    id: &str,
    binding: &str,
) -> Result<Option<Pending<T>>, StoreError> {
    let Some(pending) = store.get::<Pending<T>>(kind.key(id)).await? else {
        return Ok(None);
    };
    Ok(same(binding, &pending.binding).then_some(pending))
}

/// Removes a pending step once answered.
pub async fn finish(store: &Store, kind: Interaction, id: &str) -> Result<(), StoreError> {
    store.delete(kind.key(id)).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::protocol::logout::LogoutStep;

    #[tokio::test]
    async fn only_the_form_in_the_browser_that_started_it_answers() {
        let store = Store::memory();
        let step = LogoutStep {
            redirect: None,
            state: Some("st".into()),
        };
        let s = start(&store, Interaction::Logout, step).await.unwrap();
        let right = Answer {
            id: Some(&s.id),
            csrf: Some(&s.csrf),
            binding_cookie: Some(&s.binding_cookie),
        };
        let resumed = |a| resume::<LogoutStep>(&store, Interaction::Logout, a);
        let pending = resumed(right).await.unwrap().unwrap();
        assert_eq!(pending.step.state.as_deref(), Some("st"));
        for wrong in [
            Answer {
                csrf: Some("x"),
                ..right
            },
            Answer {
                binding_cookie: Some("x"),
                ..right
            },
            Answer {
                binding_cookie: None,
                ..right
            },
            Answer { id: None, ..right },
        ] {
            assert!(resumed(wrong).await.unwrap().is_none());
        }
        // Another kind of interaction never answers it.
        assert!(
            resume::<LogoutStep>(&store, Interaction::Authorization, right)
                .await
                .unwrap()
                .is_none()
        );
        finish(&store, Interaction::Logout, &s.id).await.unwrap();
        assert!(resumed(right).await.unwrap().is_none());
    }
}
