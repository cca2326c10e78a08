//! Signing in with a username and password: throttled per user and per address.

use std::time::Duration;

use super::{Context, session::Session};
use crate::{
    store::{Key, StoreError},
    users,
};

const THROTTLE_WINDOW: Duration = Duration::from_secs(900);
const MAX_FAILURES_PER_USER: u64 = 5;
const MAX_FAILURES_PER_IP: u64 = 20;

/// The outcome of a sign-in attempt.
#[derive(Debug)]
pub enum SignIn {
    /// Too many recent failures for the user or the address: not even tried.
    Throttled,
    /// Wrong username or password.
    Refused,
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
    let user_failures = store.counter(Key::UserFailures(username)).await?;
    let ip_failures = store.counter(Key::IpFailures(ip)).await?;
    if user_failures >= MAX_FAILURES_PER_USER || ip_failures >= MAX_FAILURES_PER_IP {
        tracing::warn!(%username, %ip, "sign-in throttled");
        return Ok(SignIn::Throttled);
    }
    let user = ctx.view.users.by_name(username);
    let candidate = user.clone();
    // Argon2 is CPU-heavy: off the async executor.
    let ok = tokio::task::spawn_blocking(move || {
        users::verify_password(candidate.as_deref(), &password)
    })
    .await
    .unwrap_or(false);
    let Some(user) = user.filter(|_| ok) else {
        store
            .count(Key::UserFailures(username), THROTTLE_WINDOW)
            .await?;
        store.count(Key::IpFailures(ip), THROTTLE_WINDOW).await?;
        return Ok(SignIn::Refused);
    };
    store.delete(Key::UserFailures(username)).await?;
    Ok(SignIn::SignedIn(
        Session::start(store, user.subject(), ctx.now).await?,
    ))
}
