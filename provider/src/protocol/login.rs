//! Signing in with a username and password: throttled per user and per address.

use std::time::Duration;

use super::{Context, ldap::LdapUpstream, session::Session, upstream_flow::UpstreamError};
use crate::{
    store::{Key, StoreError},
    users,
};

const THROTTLE_WINDOW: Duration = Duration::from_secs(900);
const MAX_FAILURES_PER_USER: u64 = 5;
const MAX_FAILURES_PER_IP: u64 = 20;

/// The memory password checks may take at once. Each Argon2 check takes its hash's `m` (19 MiB by
/// default) for its duration: without a bound, a few dozen anonymous sign-ins exhaust a pod's
/// memory. A check waits for its share at most `wait`, then the user is asked to try again.
/// Checks reuse working memory from a pool, so the budget is what the process holds, whatever
/// the allocator keeps.
#[derive(Debug)]
pub struct PasswordBudget {
    mib: tokio::sync::Semaphore,
    total_mib: u32,
    wait: Duration,
    memory: std::sync::Mutex<Vec<Vec<argon2::Block>>>,
}

impl PasswordBudget {
    pub fn new(total_mib: u32, wait: Duration) -> Self {
        Self {
            mib: tokio::sync::Semaphore::new(total_mib as usize),
            total_mib,
            wait,
            memory: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// A working memory buffer: a returned one, or a new empty one (grown by the check).
    fn borrow(&self) -> Vec<argon2::Block> {
        self.memory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop()
            .unwrap_or_default()
    }

    fn give_back(&self, buffer: Vec<argon2::Block>) {
        self.memory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(buffer);
    }
}

impl Default for PasswordBudget {
    /// Two default Argon2 checks at once, waiting up to 2 seconds.
    fn default() -> Self {
        Self::new(48, Duration::from_secs(2))
    }
}

/// The outcome of a sign-in attempt.
#[derive(Debug)]
pub enum SignIn {
    /// Too many recent failures for the user or the address: not even tried.
    Throttled,
    /// Too many sign-ins at this moment: not tried; the user tries again.
    Busy,
    /// Wrong username or password.
    Refused,
    /// The directory that checks the password cannot be asked.
    Unreachable,
    SignedIn(Session),
}

/// Checks `password` for `username` from `ip`; signs the user in on success.
pub async fn sign_in(
    ctx: &Context<'_>,
    username: &str,
    password: String,
    ip: &str,
) -> Result<SignIn, StoreError> {
    let store = ctx.store;
    if throttled(store, username, ip).await? {
        return Ok(SignIn::Throttled);
    }
    let user = ctx.view.users.by_name(username);
    let budget = &ctx.settings.passwords;
    // A hash larger than the whole budget still runs, alone.
    let cost = users::verification_cost_mib(user.as_deref()).min(budget.total_mib);
    let Ok(Ok(_permit)) = tokio::time::timeout(budget.wait, budget.mib.acquire_many(cost)).await
    else {
        tracing::warn!(%ip, "sign-in refused: password checks are at their memory budget");
        // Nothing was checked: the attempt does not count.
        store.uncount(Key::UserFailures(username)).await?;
        store.uncount(Key::IpFailures(ip)).await?;
        return Ok(SignIn::Busy);
    };
    let candidate = user.clone();
    let mut memory = budget.borrow();
    // Argon2 is CPU-heavy: off the async executor.
    let (ok, memory) = tokio::task::spawn_blocking(move || {
        let ok = users::verify_password_in(candidate.as_deref(), &password, &mut memory);
        (ok, memory)
    })
    .await
    .unwrap_or_default();
    budget.give_back(memory);
    let Some(user) = user.filter(|_| ok) else {
        return Ok(SignIn::Refused);
    };
    store.delete(Key::UserFailures(username)).await?;
    store.uncount(Key::IpFailures(ip)).await?;
    Ok(SignIn::SignedIn(
        Session::start(store, user.subject(), ctx.now).await?,
    ))
}

/// Counts an attempt for `user` (a username, scoped to its directory) from `ip`: whether they
/// are over their limits (then the password is not checked at all). Counted before the check,
/// atomically (INCR): guesses sent in parallel cannot all pass the limit. A success takes its
/// count back.
async fn throttled(store: &crate::store::Store, user: &str, ip: &str) -> Result<bool, StoreError> {
    let user_attempts = store
        .count(Key::UserFailures(user), THROTTLE_WINDOW)
        .await?;
    let ip_attempts = store.count(Key::IpFailures(ip), THROTTLE_WINDOW).await?;
    let over = user_attempts > MAX_FAILURES_PER_USER || ip_attempts > MAX_FAILURES_PER_IP;
    if over {
        tracing::warn!(%user, %ip, "sign-in throttled");
    }
    Ok(over)
}

/// A sign-in with an LDAP directory's password: throttled like a local one (per directory
/// and username, and per address); the person kept for `keep_for` on success.
pub async fn sign_in_directory(
    ctx: &Context<'_>,
    directory: &LdapUpstream,
    username: &str,
    password: &str,
    ip: &str,
    keep_for: Duration,
) -> Result<SignIn, StoreError> {
    let store = ctx.store;
    let user = format!("{}\u{0}{username}", directory.name);
    if throttled(store, &user, ip).await? {
        return Ok(SignIn::Throttled);
    }
    // Bounded as a whole (connection, searches, binds).
    match crate::identity::bounded(directory.sign_in(username, password)).await {
        Ok(None) => Ok(SignIn::Refused),
        Ok(Some(mut identity)) => {
            store.delete(Key::UserFailures(&user)).await?;
            store.uncount(Key::IpFailures(ip)).await?;
            ctx.remember(&mut identity, keep_for).await?;
            Ok(SignIn::SignedIn(
                Session::start(store, identity.user.subject(), ctx.now).await?,
            ))
        }
        Err(UpstreamError::Store(e)) => Err(e),
        Err(e) => {
            tracing::warn!(connector = %directory.name, error = %e, "LDAP sign-in failed");
            // Not the person's failure: it does not count against them.
            store.uncount(Key::UserFailures(&user)).await?;
            store.uncount(Key::IpFailures(ip)).await?;
            Ok(SignIn::Unreachable)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;

    use super::*;
    use crate::{
        protocol::Settings,
        store::Store,
        test_support::{PASSWORD, view},
    };

    /// With the budget taken by other checks, a sign-in is told to retry instead of taking more
    /// memory; once they are done, sign-ins go through again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn password_checks_stay_within_their_memory_budget() {
        let (view, _) = view(None);
        let store = Store::memory();
        let settings = Settings {
            passwords: Arc::new(PasswordBudget::new(19, Duration::from_millis(50))),
            ..Settings::default()
        };
        let ctx = Context {
            view: &view,
            store: &store,
            now: 1,
            settings: &settings,
        };
        // Another check holds the whole budget.
        let held = settings.passwords.mib.acquire_many(19).await.unwrap();
        let busy = sign_in(&ctx, "alice", PASSWORD.into(), "10.0.0.2")
            .await
            .unwrap();
        assert!(matches!(busy, SignIn::Busy), "{busy:?}");
        // Not counted as a failure: nothing was checked.
        assert_eq!(store.counter(Key::UserFailures("alice")).await.unwrap(), 0);
        drop(held);
        let again = sign_in(&ctx, "alice", PASSWORD.into(), "10.0.0.2")
            .await
            .unwrap();
        assert!(matches!(again, SignIn::SignedIn(_)), "{again:?}");
        assert_eq!(users::verification_cost_mib(None), 19);
    }

    /// Guesses sent all at once: the counter is taken before the check, so no more than the
    /// limit are ever checked, however many run in parallel.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn parallel_guesses_never_pass_the_limit() {
        let (view, _) = view(None);
        let store = Store::memory();
        let settings = Settings::default();
        let ctx = Context {
            view: &view,
            store: &store,
            now: 1,
            settings: &settings,
        };
        let guesses = (0..16).map(|i| {
            let ctx = &ctx;
            async move { sign_in(ctx, "bob", format!("guess-{i}"), "10.0.0.3").await }
        });
        let outcomes = futures::future::join_all(guesses).await;
        let checked = outcomes
            .iter()
            .filter(|o| matches!(o, Ok(SignIn::Refused)))
            .count();
        assert!(
            checked <= MAX_FAILURES_PER_USER as usize,
            "{checked} guesses checked in parallel"
        );
        let right = sign_in(&ctx, "bob", PASSWORD.into(), "10.0.0.4")
            .await
            .unwrap();
        assert!(matches!(right, SignIn::Throttled), "{right:?}");
    }
}
