//! SigningKeyController: generates signing keys into Secrets and rotates them on schedule.
//!
//! Pipeline: dereference (the SigningKey and its labelled Secrets, read fresh from the API) →
//! [`plan`] (pure: what the key set must become at `now`) → build and apply (generate a key into a
//! new Secret) → update_status (server-side apply) → delete Secrets no status entry names.
//!
//! The order makes every step safe to interrupt: a Secret is created before its status entry
//! (an interrupted reconcile leaves an orphan that the next one deletes), and status changes
//! (promotion of Next to Active and retirement of the old Active key) are one atomic write.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use crds::{
    Algorithm, KeyState, REVOKE_KID_ANNOTATION, ROTATE_ANNOTATION, SIGNING_KEY_LABEL, SigningKey,
    SigningKeyStatus, SigningKeyStatusKey, keys,
};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::{ByteString, api::core::v1::Secret, apimachinery::pkg::apis::meta::v1::Time};
use kube::{
    Api, Resource, ResourceExt,
    api::{DeleteParams, ListParams, ObjectMeta, PostParams},
    runtime::{controller::Action, events::EventType},
};

use crate::{
    Context, Error, MANAGED_BY,
    status::{self, Outcome},
};

/// Annotation: prepublish time used by a manual rotation (`kubeoidc.dev/rotate`).
pub const ROTATE_PREPUBLISH_ANNOTATION: &str = "kubeoidc.dev/rotate-prepublish";
/// Annotation on a key Secret: the kid of the key it holds.
pub const KID_ANNOTATION: &str = "kubeoidc.dev/kid";
/// Annotation on a key Secret: the algorithm of the key it holds.
pub const ALG_ANNOTATION: &str = "kubeoidc.dev/algorithm";
pub use crds::keys::PRIVATE_KEY;
/// Condition type: True while an incident with key material (deleted or corrupted Secret) is
/// recent.
pub const DEGRADED: &str = "Degraded";
/// Prepublish time of a manual rotation when the annotation does not set one.
const DEFAULT_MANUAL_PREPUBLISH: Duration = Duration::from_secs(300);

/// What a labelled Secret turned out to hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyMaterial {
    /// A private key whose public key has this kid.
    Valid { kid: String },
    /// Unreadable, or not the key its annotations say.
    Corrupt(String),
}

/// The schedule of a SigningKey, in the units of the plan.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    pub interval: SignedDuration,
    pub prepublish: SignedDuration,
    pub retain: SignedDuration,
}

/// A user request carried by annotations.
#[derive(Clone, Debug, Default)]
pub struct Requests {
    /// A `kubeoidc.dev/rotate` value not yet acted on, and the prepublish to use.
    pub rotate: Option<(String, SignedDuration)>,
    /// `kubeoidc.dev/revoke-kid`.
    pub revoke_kid: Option<String>,
}

/// A key the plan needs generated, with its place in the schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewKey {
    pub state: KeyState,
    pub activated_at: Timestamp,
}

/// What the key set must become.
#[derive(Clone, Debug)]
pub struct Plan {
    pub keys: Vec<SigningKeyStatusKey>,
    pub generate: Option<NewKey>,
    pub observed_rotate: Option<String>,
    /// When the next transition is due.
    pub next_transition: Option<Timestamp>,
    pub events: Vec<(EventType, &'static str, String)>,
}

fn ts(t: &Time) -> Timestamp {
    t.0
}

/// Decides the key set at `now` (whole seconds: status timestamps have second precision).
pub fn plan(
    now: Timestamp,
    schedule: Schedule,
    algorithm: Algorithm,
    status: &SigningKeyStatus,
    secrets: &BTreeMap<String, KeyMaterial>,
    requests: &Requests,
) -> Plan {
    let mut events = Vec::new();
    let mut observed_rotate = status.observed_rotate.clone();

    // Keys whose private key is gone or damaged can never sign again: rotate them out rather than
    // replacing material under a kid relying parties already trust.
    let mut keys: Vec<SigningKeyStatusKey> = Vec::new();
    for key in &status.keys {
        match secrets.get(&key.secret_name) {
            Some(KeyMaterial::Valid { kid }) if *kid == key.kid => keys.push(key.clone()),
            Some(KeyMaterial::Valid { kid }) => events.push((
                EventType::Warning,
                "KeyMaterialMismatch",
                format!(
                    "Secret {} holds key {kid}, not {}; key {} was removed and is replaced by a new key",
                    key.secret_name, key.kid, key.kid
                ),
            )),
            Some(KeyMaterial::Corrupt(why)) => events.push((
                EventType::Warning,
                "KeyMaterialCorrupt",
                format!(
                    "Secret {} of key {} is unreadable ({why}); the key was removed and is replaced by a new key",
                    key.secret_name, key.kid
                ),
            )),
            None => events.push((
                EventType::Warning,
                "KeyMaterialMissing",
                format!(
                    "Secret {} of key {} was deleted; the key was removed and is replaced by a new key",
                    key.secret_name, key.kid
                ),
            )),
        }
    }

    if let Some(kid) = &requests.revoke_kid
        && let Some(pos) = keys.iter().position(|k| &k.kid == kid)
    {
        let key = keys.remove(pos);
        events.push((
            EventType::Warning,
            "KeyRevoked",
            format!(
                "key {kid} ({:?}) was revoked by the {REVOKE_KID_ANNOTATION} annotation and removed from the JWKS",
                key.state
            ),
        ));
    }

    keys.retain(|k| {
        let expired = k.state == KeyState::Retired
            && k.retired_at
                .as_ref()
                .is_none_or(|t| ts(t) + schedule.retain <= now);
        if expired {
            events.push((
                EventType::Normal,
                "KeyDeleted",
                format!(
                    "retired key {} is past its retain time and was removed",
                    k.kid
                ),
            ));
        }
        !expired
    });

    let active = keys.iter().position(|k| k.state == KeyState::Active);
    let next = keys.iter().position(|k| k.state == KeyState::Next);
    let mut generate = None;
    match (active, next) {
        (None, Some(n)) => {
            keys[n].state = KeyState::Active;
            keys[n].activated_at = Some(Time(now));
            events.push((
                EventType::Warning,
                "KeyActivated",
                format!("no key was active; key {} signs from now on", keys[n].kid),
            ));
        }
        (Some(a), Some(n)) if keys[n].activated_at.as_ref().is_some_and(|t| ts(t) <= now) => {
            keys[a].state = KeyState::Retired;
            keys[a].retired_at = Some(Time(now));
            keys[n].state = KeyState::Active;
            keys[n].activated_at = Some(Time(now));
            events.push((
                EventType::Normal,
                "KeyRotated",
                format!(
                    "key {} signs from now on; key {} is retired and stays published for {}",
                    keys[n].kid, keys[a].kid, schedule.retain
                ),
            ));
        }
        (None, None) => {
            // The first key, or every key was lost: nothing can be published ahead.
            generate = Some(NewKey {
                state: KeyState::Active,
                activated_at: now,
            });
            observed_rotate = requests
                .rotate
                .as_ref()
                .map(|(v, _)| v.clone())
                .or(observed_rotate);
        }
        _ => {}
    }

    if generate.is_none() {
        let active_key = keys.iter().find(|k| k.state == KeyState::Active).cloned();
        let next_pos = keys.iter().position(|k| k.state == KeyState::Next);
        let end = active_key
            .as_ref()
            .and_then(|k| k.activated_at.as_ref())
            .map(|t| ts(t) + schedule.interval)
            .unwrap_or(now);
        match (next_pos, &requests.rotate) {
            (None, Some((value, prepublish))) => {
                generate = Some(NewKey {
                    state: KeyState::Next,
                    activated_at: now + *prepublish,
                });
                observed_rotate = Some(value.clone());
            }
            (Some(n), Some((value, prepublish))) => {
                let earliest = ts(&keys[n].created_at) + *prepublish;
                let at = earliest.max(now);
                if keys[n].activated_at.as_ref().is_none_or(|t| ts(t) > at) {
                    keys[n].activated_at = Some(Time(at));
                }
                observed_rotate = Some(value.clone());
            }
            (None, None) if now >= end - schedule.prepublish => {
                generate = Some(NewKey {
                    state: KeyState::Next,
                    activated_at: end.max(now + schedule.prepublish),
                });
            }
            _ => {}
        }
        if let (Some(active), None) = (active_key, &generate)
            && active.public_jwk.alg.as_deref() != Some(algorithm.as_str())
            && next_pos.is_none()
        {
            // spec.algorithm changed: introduce a key of the new algorithm on the normal
            // prepublish schedule.
            generate = Some(NewKey {
                state: KeyState::Next,
                activated_at: now + schedule.prepublish,
            });
        }
    }

    let mut due: Vec<Timestamp> = Vec::new();
    if generate.is_some() {
        due.push(now);
    }
    for k in &keys {
        match k.state {
            KeyState::Next => due.extend(k.activated_at.as_ref().map(ts)),
            KeyState::Retired => due.extend(k.retired_at.as_ref().map(|t| ts(t) + schedule.retain)),
            KeyState::Active => {
                if !keys.iter().any(|k| k.state == KeyState::Next) {
                    due.extend(
                        k.activated_at
                            .as_ref()
                            .map(|t| ts(t) + schedule.interval - schedule.prepublish),
                    );
                }
            }
        }
    }
    Plan {
        keys,
        generate,
        observed_rotate,
        next_transition: due.into_iter().min(),
        events,
    }
}

/// Secret name for a key: the SigningKey name and a hex prefix of the thumbprint.
fn secret_name(signing_key: &str, kid: &str) -> String {
    let hex: String = kid.bytes().take(6).map(|b| format!("{b:02x}")).collect();
    format!("{signing_key}-{hex}")
}

/// The key a labelled Secret holds: its algorithm and public JWK, checked against the Secret's
/// annotations; why it cannot be read otherwise.
fn material(secret: &Secret) -> Result<(Algorithm, crds::PublicJwk), String> {
    let annotations = secret.annotations();
    let alg = annotations
        .get(ALG_ANNOTATION)
        .and_then(|a| serde_json::from_value::<Algorithm>(a.as_str().into()).ok())
        .ok_or_else(|| format!("annotation {ALG_ANNOTATION} missing or unknown"))?;
    let pem = secret
        .data
        .as_ref()
        .and_then(|d| d.get(PRIVATE_KEY))
        .and_then(|b| String::from_utf8(b.0.clone()).ok())
        .ok_or_else(|| format!("data key {PRIVATE_KEY} missing"))?;
    let jwk = keys::public_jwk(alg, &pem).map_err(|e| e.to_string())?;
    if annotations.get(KID_ANNOTATION) != Some(&jwk.kid) {
        return Err(format!(
            "the key's thumbprint {} does not match annotation {KID_ANNOTATION}",
            jwk.kid
        ));
    }
    Ok((alg, jwk))
}

fn read_material(secret: &Secret) -> KeyMaterial {
    match material(secret) {
        Ok((_, jwk)) => KeyMaterial::Valid { kid: jwk.kid },
        Err(why) => KeyMaterial::Corrupt(why),
    }
}

fn schedule(sk: &SigningKey) -> Schedule {
    let d = |d: kube::core::Duration| {
        SignedDuration::try_from(std::time::Duration::from(d)).unwrap_or(SignedDuration::MAX)
    };
    Schedule {
        interval: d(sk.spec.rotation.interval),
        prepublish: d(sk.spec.rotation.prepublish),
        retain: d(sk.spec.rotation.retain),
    }
}

fn requests(sk: &SigningKey, schedule: &Schedule) -> Requests {
    let annotations = sk.annotations();
    let observed = sk.status.as_ref().and_then(|s| s.observed_rotate.as_ref());
    let rotate = annotations
        .get(ROTATE_ANNOTATION)
        .filter(|v| Some(*v) != observed)
        .map(|v| {
            let prepublish = annotations
                .get(ROTATE_PREPUBLISH_ANNOTATION)
                .and_then(|p| p.parse::<kube::core::Duration>().ok())
                .filter(|p| !p.is_negative())
                .map(std::time::Duration::from)
                .unwrap_or(
                    DEFAULT_MANUAL_PREPUBLISH.min(
                        schedule
                            .prepublish
                            .try_into()
                            .unwrap_or(DEFAULT_MANUAL_PREPUBLISH),
                    ),
                );
            (
                v.clone(),
                SignedDuration::try_from(prepublish).unwrap_or(SignedDuration::ZERO),
            )
        });
    Requests {
        rotate,
        revoke_kid: annotations.get(REVOKE_KID_ANNOTATION).cloned(),
    }
}

/// Reconciles one SigningKey.
#[tracing::instrument(skip_all, fields(name = %sk.name_any(), namespace = sk.namespace().unwrap_or_default()))]
pub async fn reconcile(sk: Arc<SigningKey>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = sk.namespace().unwrap_or_default();
    let name = sk.name_any();
    let keys_api: Api<SigningKey> = Api::namespaced(ctx.client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);

    // Dereference: read fresh, not from the cache, so a Secret created by the previous reconcile
    // is never mistaken for an orphan against a stale status.
    let Some(sk) = keys_api.get_opt(&name).await.map_err(Error::kube("get"))? else {
        return Ok(Action::await_change());
    };
    let selector = format!("{SIGNING_KEY_LABEL}={name}");
    let existing = secrets
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(Error::kube("list key Secrets"))?;
    let materials: BTreeMap<String, KeyMaterial> = existing
        .items
        .iter()
        .map(|s| (s.name_any(), read_material(s)))
        .collect();

    // Validate.
    let problems = crds::validation::validate_signing_key(&sk.spec);
    if let Some(first) = problems.first() {
        let message = problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        status::publish(
            &ctx,
            &sk,
            EventType::Warning,
            first.reason.as_str(),
            &message,
        )
        .await;
        let mut st = sk.status.clone().unwrap_or_default();
        st.conditions = status::ready(
            &sk,
            &st.conditions,
            Outcome::failed(first.reason.as_str(), message),
        );
        st.observed_generation = sk.metadata.generation;
        status::apply::<SigningKey, _>(&keys_api, &sk, &st).await?;
        return Ok(Action::await_change());
    }

    let now = Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or_else(|_| Timestamp::now());
    let schedule = schedule(&sk);
    let current = sk.status.clone().unwrap_or_default();
    let plan = plan(
        now,
        schedule,
        sk.spec.algorithm,
        &current,
        &materials,
        &requests(&sk, &schedule),
    );
    let mut keys = plan.keys.clone();

    // Build and apply: one new key per reconcile, Secret first. A key Secret an earlier
    // reconcile created but could not record in status (its status write failed) is taken up
    // again rather than joined by another one: a persistent error never multiplies Secrets.
    let mut created = Vec::new();
    if let Some(new) = &plan.generate {
        let (secret_name, jwk) = match pending_key(&sk, &current, &existing.items) {
            Some(pending) => pending,
            None => {
                let (secret_name, jwk) = create_key(&sk, &secrets).await?;
                created.push(match new.state {
                    KeyState::Active => (
                        "KeyCreated",
                        format!("key {} generated and signing", jwk.kid),
                    ),
                    _ => (
                        "KeyPublished",
                        format!(
                            "key {} generated and published; it signs from {}",
                            jwk.kid, new.activated_at
                        ),
                    ),
                });
                (secret_name, jwk)
            }
        };
        keys.push(SigningKeyStatusKey {
            kid: jwk.kid.clone(),
            state: new.state,
            created_at: Time(now),
            activated_at: Some(Time(new.activated_at)),
            retired_at: None,
            public_jwk: jwk,
            secret_name,
        });
    }

    // Update status in one write.
    let active = keys.iter().find(|k| k.state == KeyState::Active);
    let next_transition = if plan.generate.is_some() {
        // Recompute with the new key in place for what status shows.
        let with_new = SigningKeyStatus {
            keys: keys.clone(),
            ..current.clone()
        };
        plan_next_transition(now, schedule, sk.spec.algorithm, &with_new, &keys)
    } else {
        plan.next_transition
    };
    let outcome = match active {
        Some(a) => Outcome::ready(
            "KeyActive",
            format!(
                "key {} signs {} tokens; {} key(s) published{}",
                a.kid,
                sk.spec.algorithm.as_str(),
                keys.len(),
                next_transition
                    .map(|t| format!("; next transition at {t}"))
                    .unwrap_or_default()
            ),
        ),
        None => Outcome::failed("NoActiveKey", "no key is active yet".to_string()),
    };
    if let Some(since) = active.and_then(|a| a.activated_at.as_ref()) {
        let labels = crate::metrics::KeyLabels {
            namespace: ns.clone(),
            signing_key: name.clone(),
        };
        ctx.metrics
            .key_active_since
            .get_or_create(&labels)
            .set(since.0.as_second());
        ctx.metrics
            .key_rotation_interval
            .get_or_create(&labels)
            .set(schedule.interval.as_secs());
    }
    let mut conditions = status::ready(&sk, &current.conditions, outcome);
    // Lost or damaged key material stays visible as Degraded until the next regular rotation.
    let incidents: Vec<&str> = plan
        .events
        .iter()
        .filter(|(t, reason, _)| *t == EventType::Warning && reason.starts_with("KeyMaterial"))
        .map(|(_, _, m)| m.as_str())
        .collect();
    if let Some((_, reason, _)) = plan
        .events
        .iter()
        .find(|(t, reason, _)| *t == EventType::Warning && reason.starts_with("KeyMaterial"))
    {
        conditions = status::set(
            &sk,
            &conditions,
            DEGRADED,
            Outcome::ready(
                reason,
                format!(
                    "{}; check what modifies Secrets labelled {SIGNING_KEY_LABEL}={name}",
                    incidents.join("; ")
                ),
            ),
        );
    } else if plan
        .events
        .iter()
        .any(|(_, reason, _)| *reason == "KeyRotated")
        || crds::condition::find(&conditions, DEGRADED).is_none()
    {
        conditions = status::set(
            &sk,
            &conditions,
            DEGRADED,
            Outcome::failed("Healthy", "every published key has its key material".into()),
        );
    }
    let status = SigningKeyStatus {
        observed_generation: sk.metadata.generation,
        conditions,
        active_kid: active.map(|k| k.kid.clone()),
        next_rotation: next_transition.map(Time),
        observed_rotate: plan.observed_rotate.clone(),
        keys: keys.clone(),
    };
    status::apply::<SigningKey, _>(&keys_api, &sk, &status).await?;
    // Events tell what happened: only once the status that records it is written.
    for (reason, message) in &created {
        status::publish(&ctx, &sk, EventType::Normal, reason, message).await;
    }
    for (type_, reason, message) in &plan.events {
        status::publish(&ctx, &sk, *type_, reason, message).await;
    }

    // Delete every labelled Secret that no status entry names (orphans of an interrupted
    // reconcile, removed and revoked keys).
    for secret in &existing.items {
        let secret_name = secret.name_any();
        if !keys.iter().any(|k| k.secret_name == secret_name) {
            match secrets.delete(&secret_name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(Error::kube("delete key Secret")(e)),
            }
        }
    }

    Ok(match next_transition {
        // Another step may be due right away (after the first key, the schedule).
        Some(_) if plan.generate.is_some() => Action::requeue(Duration::from_millis(100)),
        Some(t) => Action::requeue(until(t)),
        None => Action::await_change(),
    })
}

fn plan_next_transition(
    now: Timestamp,
    schedule: Schedule,
    algorithm: Algorithm,
    status: &SigningKeyStatus,
    keys: &[SigningKeyStatusKey],
) -> Option<Timestamp> {
    let materials = keys
        .iter()
        .map(|k| {
            (
                k.secret_name.clone(),
                KeyMaterial::Valid { kid: k.kid.clone() },
            )
        })
        .collect();
    plan(
        now,
        schedule,
        algorithm,
        status,
        &materials,
        &Requests::default(),
    )
    .next_transition
}

/// How long until `t`, plus a little so the reconcile runs after the transition is due.
fn until(t: Timestamp) -> Duration {
    let left = t.duration_since(Timestamp::now());
    Duration::try_from(left).unwrap_or_default() + Duration::from_millis(50)
}

/// Generates a key of the SigningKey's algorithm into a new Secret: (Secret name, public JWK).
async fn create_key(
    sk: &SigningKey,
    secrets: &Api<Secret>,
) -> Result<(String, crds::PublicJwk), Error> {
    let algorithm = sk.spec.algorithm;
    let bits = sk.spec.rsa_bits().unwrap_or(2048);
    let generated = tokio::task::spawn_blocking(move || keys::generate(algorithm, bits))
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
        .map_err(|e| Error::KeyGeneration(e.to_string()))?;
    let secret_name = secret_name(&sk.name_any(), &generated.jwk.kid);
    let secret = key_secret(sk, &secret_name, algorithm, &generated);
    match secrets.create(&PostParams::default(), &secret).await {
        Ok(_) => Ok((secret_name, generated.jwk)),
        Err(kube::Error::Api(e)) if e.code == 409 => Err(Error::Internal(format!(
            "key Secret {secret_name} already exists"
        ))),
        Err(e) => Err(Error::kube("create key Secret")(e)),
    }
}

/// A key Secret created for this SigningKey but never recorded in its status, that may still
/// become its new key: (Secret name, public JWK).
///
/// Only a Secret created after every key the status knows, holding a readable key of the current
/// algorithm and size, and not the kid being revoked: a key that left the status (revoked,
/// retired, replaced) is never brought back.
fn pending_key(
    sk: &SigningKey,
    status: &SigningKeyStatus,
    secrets: &[Secret],
) -> Option<(String, crds::PublicJwk)> {
    let newest_known = status.keys.iter().map(|k| k.created_at.0).max();
    let revoked = sk.annotations().get(REVOKE_KID_ANNOTATION);
    secrets
        .iter()
        .filter(|s| !status.keys.iter().any(|k| k.secret_name == s.name_any()))
        .filter(|s| {
            let created = s.metadata.creation_timestamp.as_ref().map(|t| t.0);
            newest_known.is_none_or(|newest| created.is_some_and(|c| c > newest))
        })
        .filter_map(|s| {
            let (alg, jwk) = material(s).ok()?;
            let size_matches = sk
                .spec
                .rsa_bits()
                .is_none_or(|bits| keys::rsa_modulus_bits(&jwk) == Some(bits));
            (alg == sk.spec.algorithm && size_matches && revoked != Some(&jwk.kid))
                .then(|| (s.name_any(), jwk))
        })
        .max_by_key(|(name, _)| name.clone())
}

fn key_secret(
    sk: &SigningKey,
    name: &str,
    algorithm: Algorithm,
    key: &keys::GeneratedKey,
) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: sk.namespace(),
            labels: Some(BTreeMap::from([
                (SIGNING_KEY_LABEL.to_string(), sk.name_any()),
                (
                    "app.kubernetes.io/managed-by".to_string(),
                    MANAGED_BY.to_string(),
                ),
            ])),
            annotations: Some(BTreeMap::from([
                (KID_ANNOTATION.to_string(), key.jwk.kid.clone()),
                (ALG_ANNOTATION.to_string(), algorithm.as_str().to_string()),
            ])),
            owner_references: sk.controller_owner_ref(&()).map(|o| vec![o]),
            ..Default::default()
        },
        // Key material under a kid never changes: a new key is a new Secret.
        immutable: Some(true),
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([(
            PRIVATE_KEY.to_string(),
            ByteString(key.pkcs8_pem.clone().into_bytes()),
        )])),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crds::PublicJwk;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    const S: Schedule = Schedule {
        interval: SignedDuration::from_secs(6),
        prepublish: SignedDuration::from_secs(2),
        retain: SignedDuration::from_secs(2),
    };

    fn key(
        kid: &str,
        state: KeyState,
        created: i64,
        activated: Option<i64>,
        retired: Option<i64>,
    ) -> SigningKeyStatusKey {
        SigningKeyStatusKey {
            kid: kid.into(),
            state,
            created_at: Time(t(created)),
            activated_at: activated.map(|a| Time(t(a))),
            retired_at: retired.map(|r| Time(t(r))),
            public_jwk: PublicJwk {
                kty: "RSA".into(),
                kid: kid.into(),
                alg: Some("RS256".into()),
                ..Default::default()
            },
            secret_name: format!("sk-{kid}"),
        }
    }

    fn materials(keys: &[SigningKeyStatusKey]) -> BTreeMap<String, KeyMaterial> {
        keys.iter()
            .map(|k| {
                (
                    k.secret_name.clone(),
                    KeyMaterial::Valid { kid: k.kid.clone() },
                )
            })
            .collect()
    }

    fn run(now: i64, keys: Vec<SigningKeyStatusKey>, requests: Requests) -> Plan {
        let m = materials(&keys);
        let status = SigningKeyStatus {
            keys,
            ..Default::default()
        };
        plan(t(now), S, Algorithm::RS256, &status, &m, &requests)
    }

    fn states(p: &Plan) -> Vec<(String, KeyState)> {
        p.keys.iter().map(|k| (k.kid.clone(), k.state)).collect()
    }

    #[test]
    fn first_key_is_active_at_once() {
        let p = run(0, vec![], Requests::default());
        assert_eq!(
            p.generate,
            Some(NewKey {
                state: KeyState::Active,
                activated_at: t(0)
            })
        );
    }

    #[test]
    fn next_key_is_published_prepublish_before_the_interval_ends() {
        let a = key("a", KeyState::Active, 0, Some(0), None);
        let p = run(3, vec![a.clone()], Requests::default());
        assert_eq!(p.generate, None);
        assert_eq!(p.next_transition, Some(t(4)));
        let p = run(4, vec![a], Requests::default());
        assert_eq!(
            p.generate,
            Some(NewKey {
                state: KeyState::Next,
                activated_at: t(6)
            })
        );
    }

    #[test]
    fn next_becomes_active_and_the_old_key_is_retained() {
        let a = key("a", KeyState::Active, 0, Some(0), None);
        let b = key("b", KeyState::Next, 4, Some(6), None);
        let p = run(5, vec![a.clone(), b.clone()], Requests::default());
        assert_eq!(p.next_transition, Some(t(6)));
        let p = run(6, vec![a, b], Requests::default());
        assert_eq!(
            states(&p),
            [
                ("a".into(), KeyState::Retired),
                ("b".into(), KeyState::Active)
            ]
        );
        assert_eq!(p.next_transition, Some(t(8)));
        let p = run(8, p.keys, Requests::default());
        assert_eq!(states(&p), [("b".into(), KeyState::Active)]);
    }

    #[test]
    fn a_late_reconcile_still_publishes_before_signing() {
        // The operator was down past the end of the interval: the next key still gets its
        // prepublish time and the current key keeps signing until then.
        let a = key("a", KeyState::Active, 0, Some(0), None);
        let p = run(20, vec![a], Requests::default());
        assert_eq!(
            p.generate,
            Some(NewKey {
                state: KeyState::Next,
                activated_at: t(22)
            })
        );
    }

    #[test]
    fn manual_rotation_uses_its_prepublish() {
        let a = key("a", KeyState::Active, 0, Some(0), None);
        let r = Requests {
            rotate: Some(("now".into(), SignedDuration::from_secs(1))),
            revoke_kid: None,
        };
        let p = run(1, vec![a], r);
        assert_eq!(
            p.generate,
            Some(NewKey {
                state: KeyState::Next,
                activated_at: t(2)
            })
        );
        assert_eq!(p.observed_rotate.as_deref(), Some("now"));
    }

    #[test]
    fn revoking_the_active_key_promotes_next_at_once() {
        let a = key("a", KeyState::Active, 0, Some(0), None);
        let b = key("b", KeyState::Next, 4, Some(6), None);
        let r = Requests {
            rotate: None,
            revoke_kid: Some("a".into()),
        };
        let p = run(5, vec![a, b], r);
        assert_eq!(states(&p), [("b".into(), KeyState::Active)]);
        assert!(p.events.iter().any(|e| e.1 == "KeyRevoked"));
    }

    #[test]
    fn a_deleted_secret_rotates_its_key_out() {
        let a = key("a", KeyState::Active, 0, Some(0), None);
        let status = SigningKeyStatus {
            keys: vec![a],
            ..Default::default()
        };
        let p = plan(
            t(1),
            S,
            Algorithm::RS256,
            &status,
            &BTreeMap::new(),
            &Requests::default(),
        );
        assert!(p.keys.is_empty());
        assert_eq!(
            p.generate,
            Some(NewKey {
                state: KeyState::Active,
                activated_at: t(1)
            })
        );
        assert!(p.events.iter().any(|e| e.1 == "KeyMaterialMissing"));

        let mut m = BTreeMap::new();
        m.insert("sk-a".to_string(), KeyMaterial::Corrupt("bad PEM".into()));
        let p = plan(t(1), S, Algorithm::RS256, &status, &m, &Requests::default());
        assert!(p.keys.is_empty());
        assert!(p.events.iter().any(|e| e.1 == "KeyMaterialCorrupt"));
    }

    #[test]
    fn exactly_one_active_key_over_many_rotations() {
        let mut keys: Vec<SigningKeyStatusKey> = Vec::new();
        let mut n = 0;
        for now in 0..60 {
            let p = run(now, keys.clone(), Requests::default());
            keys = p.keys;
            if let Some(new) = p.generate {
                n += 1;
                keys.push(key(
                    &format!("k{n}"),
                    new.state,
                    now,
                    Some(new.activated_at.as_second() - 1_700_000_000),
                    None,
                ));
            }
            let active = keys.iter().filter(|k| k.state == KeyState::Active).count();
            assert_eq!(active, 1, "at {now}: {keys:?}");
            for k in &keys {
                if k.state == KeyState::Active {
                    // Published at least prepublish before signing (the first key excepted).
                    let created = k.created_at.0;
                    let activated = k.activated_at.as_ref().unwrap().0;
                    assert!(
                        k.kid == "k1" || activated.duration_since(created) >= S.prepublish,
                        "{k:?}"
                    );
                }
            }
        }
        assert!(n >= 9, "rotated {n} times");
    }
}
