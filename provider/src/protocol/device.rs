//! The device authorization grant (RFC 8628): a device without a browser gets a user code, the
//! user enters it on another device, signs in and approves; the device polls `/token`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{
    Context, OAuthError,
    authorize::Next,
    interaction::{self, Interaction, SignInStep},
    params::{random_token, split_scopes},
    session::Session,
};
use crate::{
    config::ClientConfig,
    store::{Key, StoreError},
};

/// How long a user has to enter the code.
pub const EXPIRES_IN: u64 = 600;
/// The polling interval a device starts with (RFC 8628 §3.2), in seconds.
pub const INTERVAL: u64 = 5;
/// The alphabet of user codes: no vowels (no words), no look-alikes (RFC 8628 §6.1).
const USER_CODE_ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Wrong user codes allowed from one address per window (20^8 codes: guessing is hopeless).
const MAX_USER_CODE_FAILURES: u64 = 20;
const FAILURE_WINDOW: Duration = Duration::from_secs(900);

/// What the user decided.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    Pending,
    Approved {
        sub: String,
        auth_time: u64,
        sid: String,
    },
    Denied,
}

/// A device authorization, stored under its user code.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeviceGrant {
    pub client_id: String,
    pub scopes: Vec<String>,
    pub expires_at: u64,
    pub interval: u64,
    pub last_poll: u64,
    pub decision: Decision,
}

/// The device authorization response (RFC 8628 §3.2), without the URIs.
#[derive(Clone, Debug)]
pub struct DeviceAuthorization {
    pub device_code: String,
    pub user_code: String,
    pub expires_in: u64,
    pub interval: u64,
}

/// A user code as people write it: upper case, with or without the dash.
pub fn normalize(user_code: &str) -> String {
    user_code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Eight letters of the alphabet, shown as `XXXX-XXXX`.
fn new_user_code() -> String {
    let mut bytes = [0u8; 8];
    let _ = aws_lc_rs::rand::SecureRandom::fill(&aws_lc_rs::rand::SystemRandom::new(), &mut bytes);
    bytes
        .iter()
        .map(|b| USER_CODE_ALPHABET[usize::from(*b) % USER_CODE_ALPHABET.len()] as char)
        .collect()
}

/// Formats a normalized user code for people.
pub fn display(user_code: &str) -> String {
    match user_code.split_at_checked(4) {
        Some((a, b)) => format!("{a}-{b}"),
        None => user_code.to_string(),
    }
}

/// Starts a device authorization for `client` (RFC 8628 §3.1).
pub async fn start(
    ctx: &Context<'_>,
    client: &ClientConfig,
    scope: Option<&str>,
) -> Result<DeviceAuthorization, OAuthError> {
    super::token::allowed(client, crds::GrantType::DeviceCode)?;
    let scopes = match scope.map(split_scopes) {
        Some(s) if !s.is_empty() => s,
        _ => client.default_scopes.clone(),
    };
    if let Some(bad) = scopes.iter().find(|s| !client.scopes.contains(s)) {
        return Err(OAuthError::InvalidScope(format!(
            "scope {bad} is not allowed for this client"
        )));
    }
    let mut user_code = new_user_code();
    while ctx.store.exists(Key::UserCode(&user_code)).await? {
        user_code = new_user_code();
    }
    let device_code = random_token();
    let grant = DeviceGrant {
        client_id: client.id.clone(),
        scopes,
        expires_at: ctx.now + EXPIRES_IN,
        interval: INTERVAL,
        last_poll: 0,
        decision: Decision::Pending,
    };
    // Kept a minute past expiry, so that a late poll learns expired_token.
    let ttl = Duration::from_secs(EXPIRES_IN + 60);
    ctx.store
        .put(Key::UserCode(&user_code), &grant, ttl)
        .await?;
    ctx.store
        .put(Key::DeviceCode(&device_code), &user_code, ttl)
        .await?;
    Ok(DeviceAuthorization {
        device_code,
        user_code: display(&user_code),
        expires_in: EXPIRES_IN,
        interval: INTERVAL,
    })
}

/// The authorization a user code entered from `ip` stands for, while it waits for the user.
/// Wrong codes are counted per address.
pub async fn waiting(
    ctx: &Context<'_>,
    user_code: &str,
    ip: &str,
) -> Result<Option<DeviceGrant>, StoreError> {
    if ctx.store.counter(Key::UserCodeFailures(ip)).await? >= MAX_USER_CODE_FAILURES {
        return Ok(None);
    }
    let grant = ctx
        .store
        .get::<DeviceGrant>(Key::UserCode(&normalize(user_code)))
        .await?
        .filter(|g| g.decision == Decision::Pending && g.expires_at > ctx.now);
    if grant.is_none() {
        ctx.store
            .count(Key::UserCodeFailures(ip), FAILURE_WINDOW)
            .await?;
    }
    Ok(grant)
}

/// Records the signed-in user's decision on a waiting authorization.
pub async fn decide(
    ctx: &Context<'_>,
    user_code: &str,
    session: &Session,
    approve: bool,
) -> Result<bool, StoreError> {
    let key = Key::UserCode(user_code);
    let Some(mut grant) = ctx.store.get::<DeviceGrant>(key).await? else {
        return Ok(false);
    };
    if grant.decision != Decision::Pending || grant.expires_at <= ctx.now {
        return Ok(false);
    }
    grant.decision = if approve {
        Decision::Approved {
            sub: session.sub.clone(),
            auth_time: session.auth_time,
            sid: session.sid.clone(),
        }
    } else {
        Decision::Denied
    };
    let ttl = Duration::from_secs(grant.expires_at.saturating_sub(ctx.now) + 60);
    ctx.store.put(key, &grant, ttl).await?;
    Ok(true)
}

/// A device polling with `device_code` (RFC 8628 §3.4, §3.5): the approved grant, once.
pub async fn poll(
    ctx: &Context<'_>,
    client: &ClientConfig,
    device_code: &str,
) -> Result<DeviceGrant, OAuthError> {
    let invalid = || OAuthError::InvalidGrant("the device_code is invalid or expired".into());
    let user_code: String = ctx
        .store
        .get(Key::DeviceCode(device_code))
        .await?
        .ok_or_else(invalid)?;
    let key = Key::UserCode(&user_code);
    let mut grant: DeviceGrant = ctx.store.get(key).await?.ok_or_else(invalid)?;
    if grant.client_id != client.id {
        return Err(OAuthError::InvalidGrant(
            "the device_code was issued to another client".into(),
        ));
    }
    if grant.expires_at <= ctx.now {
        return Err(OAuthError::ExpiredToken(
            "the device code expired; start again".into(),
        ));
    }
    let ttl = Duration::from_secs(grant.expires_at.saturating_sub(ctx.now) + 60);
    match grant.decision.clone() {
        Decision::Pending => {
            let too_soon = ctx.now < grant.last_poll + grant.interval;
            grant.last_poll = ctx.now;
            if too_soon {
                // RFC 8628 §3.5: every slow_down adds 5 seconds to the interval.
                grant.interval += 5;
            }
            ctx.store.put(key, &grant, ttl).await?;
            Err(if too_soon {
                OAuthError::SlowDown(format!("poll every {} seconds", grant.interval))
            } else {
                OAuthError::AuthorizationPending("the user has not answered yet".into())
            })
        }
        Decision::Denied => {
            ctx.store.delete(Key::DeviceCode(device_code)).await?;
            Err(OAuthError::AccessDenied("the user denied access".into()))
        }
        Decision::Approved { .. } => {
            // Single use: of concurrent polls exactly one takes the device code.
            let taken: Option<String> = ctx.store.take(Key::DeviceCode(device_code)).await?;
            if taken.is_none() {
                return Err(invalid());
            }
            ctx.store.delete(key).await?;
            Ok(grant)
        }
    }
}

/// A device authorization waiting for the user to sign in (`sub` unknown) or to approve.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeviceStep {
    /// Normalized.
    pub user_code: String,
    pub sub: Option<String>,
}

/// Where a user code entered in a browser goes next: sign-in, then approval. `None` for a code
/// that is unknown, expired or already answered.
pub async fn verify(
    ctx: &Context<'_>,
    user_code: &str,
    ip: &str,
    session: Option<Session>,
) -> Result<Option<Next>, StoreError> {
    let Some(grant) = waiting(ctx, user_code, ip).await? else {
        return Ok(None);
    };
    let Some(client) = ctx.view.client(&grant.client_id) else {
        return Ok(None);
    };
    let sub = match session {
        Some(s) if ctx.user(&s.sub).await?.is_some() => Some(s.sub),
        _ => None,
    };
    let step = DeviceStep {
        user_code: normalize(user_code),
        sub: sub.clone(),
    };
    let started = interaction::start(
        ctx.store,
        Interaction::Authorization,
        SignInStep::Device(step),
    )
    .await?;
    Ok(Some(match sub {
        None => Next::SignIn {
            client,
            started,
            login_hint: None,
            connector: None,
        },
        Some(sub) => Next::Consent {
            account: super::authorize::account(ctx, &sub).await?,
            scopes: super::authorize::scope_descriptions(ctx, &grant.scopes),
            client,
            started,
            device_code: Some(display(&normalize(user_code))),
        },
    }))
}

/// After sign-in: the approval page for the signed-in user.
pub async fn signed_in(
    ctx: &Context<'_>,
    step: DeviceStep,
    session: &Session,
) -> Result<Next, StoreError> {
    let grant = ctx
        .store
        .get::<DeviceGrant>(Key::UserCode(&step.user_code))
        .await?;
    let Some((grant, client)) = grant.and_then(|g| ctx.view.client(&g.client_id).map(|c| (g, c)))
    else {
        return Ok(Next::UnknownClient);
    };
    // allowedGroups / allowedConnectors: decided before the consent page, which people outside
    // never see; the device is told access_denied.
    if !ctx
        .user(&session.sub)
        .await?
        .is_some_and(|u| client.admits(&u))
    {
        decide(ctx, &step.user_code, session, false).await?;
        return Ok(Next::NotAllowed);
    }
    let shown = display(&step.user_code);
    let step = DeviceStep {
        sub: Some(session.sub.clone()),
        ..step
    };
    let started = interaction::start(
        ctx.store,
        Interaction::Authorization,
        SignInStep::Device(step),
    )
    .await?;
    Ok(Next::Consent {
        account: super::authorize::account(ctx, &session.sub).await?,
        scopes: super::authorize::scope_descriptions(ctx, &grant.scopes),
        client,
        started,
        device_code: Some(shown),
    })
}

/// The client a device authorization is for.
pub async fn client_id(ctx: &Context<'_>, user_code: &str) -> Result<Option<String>, StoreError> {
    Ok(ctx
        .store
        .get::<DeviceGrant>(Key::UserCode(user_code))
        .await?
        .map(|g| g.client_id))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{store::Store, test_support::view};

    #[tokio::test]
    async fn codes_expire_polls_slow_down_and_guesses_are_limited() {
        let (view, _) = view(None);
        let store = Store::memory();
        let settings = crate::protocol::Settings::default();
        let ctx = |now| Context {
            view: &view,
            store: &store,
            now,
            settings: &settings,
        };
        let client = view.client("cli").unwrap();
        let a = start(&ctx(1_000), &client, None).await.unwrap();
        let code = normalize(&a.user_code);
        assert!(code.len() == 8 && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)));
        let first = poll(&ctx(1_000), &client, &a.device_code)
            .await
            .unwrap_err();
        assert_eq!(first.code(), "authorization_pending");
        let soon = poll(&ctx(1_002), &client, &a.device_code)
            .await
            .unwrap_err();
        assert_eq!(soon, OAuthError::SlowDown("poll every 10 seconds".into()));
        let late = poll(&ctx(1_000 + EXPIRES_IN), &client, &a.device_code)
            .await
            .unwrap_err();
        assert_eq!(late.code(), "expired_token");

        // Wrong codes from one address: after 20, even the right code is not looked up.
        let b = start(&ctx(2_000), &client, None).await.unwrap();
        for _ in 0..MAX_USER_CODE_FAILURES {
            assert!(
                waiting(&ctx(2_000), "BBBB-BBBB", "10.0.0.1")
                    .await
                    .unwrap()
                    .is_none()
            );
        }
        assert!(
            waiting(&ctx(2_000), &b.user_code, "10.0.0.1")
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            waiting(&ctx(2_000), &b.user_code, "10.0.0.2")
                .await
                .unwrap()
                .is_some()
        );
    }
}
