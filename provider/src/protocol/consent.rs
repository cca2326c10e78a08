//! Consent given on the consent page, remembered for clients with `consent: once`.

use std::time::Duration;

use crds::ConsentPolicy;

use super::Context;
use crate::store::StoreError;

const CONSENT_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

/// Records that `sub` approved `scopes` for `client_id`, when the client remembers consent.
pub async fn record(
    ctx: &Context<'_>,
    client_id: &str,
    sub: &str,
    scopes: &[String],
) -> Result<(), StoreError> {
    if let Some(client) = ctx.view.client(client_id)
        && client.consent == ConsentPolicy::Once
    {
        ctx.store
            .add_consent(sub, &client.uid, scopes, CONSENT_TTL)
            .await?;
    }
    Ok(())
}
