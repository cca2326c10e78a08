//! OidcClientController: validates clients, keeps their credentials in a Secret next to them and
//! publishes the secret's salted hash in status for the provider.
//!
//! Pipeline: dereference (the client, other clients and scopes from the caches, its Secret from
//! the API) → validate → build (the Secret) → apply → update_status.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use crds::{
    ClientType, OidcClient, OidcClientStatus, OidcScope, PreviousSecret, ROTATE_SECRET_ANNOTATION,
    sealed::SealingKey,
    secret::{generate_secret, hash_secret, verify_secret},
};
use jiff::Timestamp;
use k8s_openapi::{api::core::v1::Secret, apimachinery::pkg::apis::meta::v1::Time};
use kube::{
    Api, Resource, ResourceExt,
    api::{ObjectMeta, PostParams},
    core::DeserializeGuard,
    runtime::{
        controller::Action,
        events::EventType,
        reflector::{ObjectRef, Store},
    },
};

use crate::{
    Context, Error, MANAGED_BY, policy,
    status::{self, Outcome},
};

/// Label on the Secrets the operator writes for a client.
pub const CLIENT_LABEL: &str = "kubeoidc.dev/client";
pub use crds::secret::KEY_CLIENT_SECRET;

type ClientRef = ObjectRef<DeserializeGuard<OidcClient>>;

fn reference(c: &OidcClient) -> ClientRef {
    let r = ObjectRef::new(&c.name_any());
    match c.namespace() {
        Some(ns) => r.within(&ns),
        None => r,
    }
}

fn valid_clients(store: &Store<DeserializeGuard<OidcClient>>) -> Vec<OidcClient> {
    store
        .state()
        .iter()
        .filter_map(|g| g.0.as_ref().ok().cloned())
        .collect()
}

/// Clients whose credentials live in this Secret (so an edit or deletion is noticed).
pub fn clients_using_secret(
    store: &Store<DeserializeGuard<OidcClient>>,
    secret: &Secret,
) -> Vec<ClientRef> {
    let (ns, name) = (secret.namespace(), secret.name_any());
    valid_clients(store)
        .iter()
        .filter(|c| c.namespace() == ns && c.secret_name() == name)
        .map(reference)
        .collect()
}

/// Every client (re-checked when a ClientPolicy changes).
pub fn all_clients(store: &Store<DeserializeGuard<OidcClient>>) -> Vec<ClientRef> {
    valid_clients(store).iter().map(reference).collect()
}

/// The clients of one namespace (re-checked when its labels or routes change).
pub fn clients_in(store: &Store<DeserializeGuard<OidcClient>>, namespace: &str) -> Vec<ClientRef> {
    valid_clients(store)
        .iter()
        .filter(|c| c.namespace().as_deref() == Some(namespace))
        .map(reference)
        .collect()
}

/// Clients that request a scope (re-checked when the scope appears or goes).
pub fn clients_using_scope(
    store: &Store<DeserializeGuard<OidcClient>>,
    scope: &DeserializeGuard<OidcScope>,
) -> Vec<ClientRef> {
    let Ok(scope) = &scope.0 else {
        return Vec::new();
    };
    let value = scope.scope();
    valid_clients(store)
        .iter()
        .filter(|c| c.spec.scopes.contains(&value))
        .map(reference)
        .collect()
}

/// Other clients with the same clientId (re-checked when one of them changes or goes, so the
/// later one takes over when the earlier is deleted).
pub fn clients_sharing_id(
    store: &Store<DeserializeGuard<OidcClient>>,
    changed: &DeserializeGuard<OidcClient>,
) -> Vec<ClientRef> {
    let Ok(changed) = &changed.0 else {
        return Vec::new();
    };
    let id = changed.client_id();
    valid_clients(store)
        .iter()
        .filter(|c| c.client_id() == id && c.uid() != changed.uid())
        .map(reference)
        .collect()
}

/// The client that owns a clientId: the oldest, then by namespace/name.
fn id_owner(clients: &[OidcClient], id: &str) -> Option<OidcClient> {
    clients
        .iter()
        .filter(|c| c.client_id() == id && c.metadata.deletion_timestamp.is_none())
        .min_by_key(|c| {
            (
                c.metadata.creation_timestamp.as_ref().map(|t| t.0),
                c.namespace(),
                c.name_any(),
            )
        })
        .cloned()
}

use crds::secret::secret_data as data;

fn is_ours(secret: &Secret, client: &OidcClient) -> bool {
    secret
        .owner_references()
        .iter()
        .any(|o| o.controller == Some(true) && Some(&o.uid) == client.uid().as_ref())
}

fn owned_by_other_client(secret: &Secret, client: &OidcClient) -> Option<String> {
    secret
        .owner_references()
        .iter()
        .find(|o| {
            o.controller == Some(true)
                && o.kind == "OidcClient"
                && Some(&o.uid) != client.uid().as_ref()
        })
        .map(|o| o.name.clone())
}

fn client_secret(client: &OidcClient, issuer: &str, secret_value: &str) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(client.secret_name()),
            namespace: client.namespace(),
            labels: Some(BTreeMap::from([
                (CLIENT_LABEL.to_string(), client.name_any()),
                (
                    "app.kubernetes.io/managed-by".to_string(),
                    MANAGED_BY.to_string(),
                ),
            ])),
            owner_references: client.controller_owner_ref(&()).map(|o| vec![o]),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        data: Some(crds::secret::client_secret_data(
            &client.client_id(),
            secret_value,
            issuer,
        )),
        ..Default::default()
    }
}

/// Why an OidcClient is or is not Ready, and what happened to its Secret: the reasons of its
/// conditions and Events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Accepted,
    NamespaceNotAllowed,
    /// The spec breaks a rule of `crds::validation`.
    Invalid(crds::validation::Reason),
    ClientIdConflict,
    UnknownScope,
    NoSigningKey,
    PolicyViolation,
    SecretMissing,
    SecretConflict,
    SecretInvalid,
    SecretCreated,
    SecretRecreated,
    SecretRepaired,
    SecretRotated,
    SecretNotManaged,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "Accepted",
            Self::NamespaceNotAllowed => "NamespaceNotAllowed",
            Self::Invalid(r) => r.as_str(),
            Self::ClientIdConflict => "ClientIdConflict",
            Self::UnknownScope => "UnknownScope",
            Self::NoSigningKey => "NoSigningKey",
            Self::PolicyViolation => "PolicyViolation",
            Self::SecretMissing => "SecretMissing",
            Self::SecretConflict => "SecretConflict",
            Self::SecretInvalid => "SecretInvalid",
            Self::SecretCreated => "SecretCreated",
            Self::SecretRecreated => "SecretRecreated",
            Self::SecretRepaired => "SecretRepaired",
            Self::SecretRotated => "SecretRotated",
            Self::SecretNotManaged => "SecretNotManaged",
        }
    }
}

/// A reason and what to do about it.
pub type Refusal = (Reason, String);

/// Validate, first part: the namespace is accepted and the spec is valid.
fn checks(client: &OidcClient, ctx: &Context) -> Result<(), Refusal> {
    let ns = client.namespace().unwrap_or_default();
    if !ctx.args.accepts_namespace(&ns) {
        return Err((
            Reason::NamespaceNotAllowed,
            format!(
                "OidcClients in namespace {ns} are not accepted by this installation (accepted: {}); move the client or ask the platform team to add the namespace",
                ctx.args.client_namespaces.join(", ")
            ),
        ));
    }
    let problems = crds::validation::validate_client(client);
    if let Some(first) = problems.first() {
        let message = problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        return Err((Reason::Invalid(first.reason), message));
    }
    Ok(())
}

/// Validate, second part: the client's ID is its own among the others, and its scopes exist.
fn references(client: &OidcClient, ctx: &Context) -> Result<(), Refusal> {
    let id = client.client_id();
    if let Some(owner) = id_owner(&valid_clients(&ctx.clients), &id)
        && owner.uid() != client.uid()
    {
        return Err((
            Reason::ClientIdConflict,
            format!(
                "clientId {id} is already used by OidcClient {}/{}, created earlier; set a different spec.clientId",
                owner.namespace().unwrap_or_default(),
                owner.name_any()
            ),
        ));
    }
    let defined: Vec<String> = ctx
        .scopes
        .state()
        .iter()
        .filter_map(|g| g.0.as_ref().ok())
        .filter(|s| s.namespace().as_deref() == Some(ctx.args.namespace.as_str()))
        .map(|s| s.scope())
        .collect();
    let unknown: Vec<&String> = client
        .spec
        .scopes
        .iter()
        .filter(|s| crds::scope::builtin(s).is_none() && !defined.contains(s))
        .collect();
    if !unknown.is_empty() {
        return Err((
            Reason::UnknownScope,
            format!(
                "scope(s) {} are neither built in nor defined by an OidcScope in namespace {}; create the OidcScope or remove them from spec.scopes",
                unknown
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                ctx.args.namespace
            ),
        ));
    }
    // With signing keys configured, one must have the client's algorithm: otherwise every
    // token request would fail. (With none at all, the provider is not ready anyway.)
    let algorithms: Vec<crds::Algorithm> = ctx
        .signing_keys
        .state()
        .iter()
        .filter_map(|g| g.0.as_ref().ok())
        .map(|k| k.spec.algorithm)
        .collect();
    let alg = client.spec.signing_algorithm;
    if !algorithms.is_empty() && !algorithms.contains(&alg) {
        return Err((
            Reason::NoSigningKey,
            format!(
                "spec.signingAlgorithm: no SigningKey in namespace {} has algorithm {}; create one or set spec.signingAlgorithm to one of {}",
                ctx.args.namespace,
                alg.as_str(),
                algorithms
                    .iter()
                    .map(|a| a.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    Ok(())
}

/// Reconciles one OidcClient: validate → (confidential clients) dereference its Secret → plan →
/// apply → status.
#[tracing::instrument(skip_all, fields(client = %client.name_any(), namespace = client.namespace().unwrap_or_default()))]
pub async fn reconcile(client: Arc<OidcClient>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = client.namespace().unwrap_or_default();
    let api: Api<OidcClient> = Api::namespaced(ctx.client.clone(), &ns);
    let current = client.status.clone().unwrap_or_default();
    let mut status = OidcClientStatus {
        observed_generation: client.metadata.generation,
        client_id: Some(client.client_id()),
        ..current.clone()
    };

    // What the namespace's policy says comes before conflicts with other clients: a squatter
    // is told the ID is not its own, whether or not its owner still exists.
    let refusal = match checks(&client, &ctx) {
        Err(r) => Some(r),
        Ok(()) => match policy::check(&client, &ctx).await? {
            Err(r) => Some(r),
            Ok(()) => references(&client, &ctx).err(),
        },
    };
    if let Some((reason, message)) = refusal {
        let changed = crds::condition::find(&current.conditions, crds::condition::READY)
            .is_none_or(|c| c.reason != reason.as_str() || c.message != message);
        if changed {
            warn(&ctx, &client, reason, &message).await;
        }
        status.conditions = status::ready(
            client.as_ref(),
            &current.conditions,
            Outcome::failed(reason.as_str(), message),
        );
        status::apply(&api, client.as_ref(), &status).await?;
        return Ok(Action::await_change());
    }

    let now = Timestamp::now();
    let outcome = if client.spec.type_ == ClientType::Public {
        status.secret_name = None;
        status.secret_hash = None;
        status.sealed_secret = None;
        status.previous_secret = None;
        Ok(format!("served as public client {}", client.client_id()))
    } else {
        reconcile_secret(&client, &ctx, &mut status, now)
            .await?
            .map(|()| {
                format!(
                    "served as confidential client {}; credentials in Secret {}",
                    client.client_id(),
                    client.secret_name()
                )
            })
    };
    let outcome = match outcome {
        Ok(message) => Outcome::ready(Reason::Accepted.as_str(), message),
        Err((reason, message)) => {
            warn(&ctx, &client, reason, &message).await;
            Outcome::failed(reason.as_str(), message)
        }
    };
    let was_ready = crds::condition::is_ready_for(&current.conditions, client.metadata.generation);
    status.conditions = status::ready(client.as_ref(), &current.conditions, outcome);
    let now_ready = crds::condition::is_ready_for(&status.conditions, client.metadata.generation);
    status::apply(&api, client.as_ref(), &status).await?;
    if now_ready && !was_ready {
        let note = format!("client {} is served", client.client_id());
        status::publish(&ctx, client.as_ref(), EventType::Normal, "Accepted", &note).await;
    }
    // Come back when the previous secret's grace period ends, to drop it.
    let requeue = status.previous_secret.as_ref().map(|prev| {
        Duration::try_from(prev.expires_at.0.duration_since(now)).unwrap_or_default()
            + Duration::from_millis(50)
    });
    Ok(requeue
        .map(Action::requeue)
        .unwrap_or_else(Action::await_change))
}

async fn warn(ctx: &Context, client: &OidcClient, reason: Reason, message: &str) {
    status::publish(ctx, client, EventType::Warning, reason.as_str(), message).await;
}

/// An Event to publish once the plan is applied.
type Note = (EventType, Reason, String);

/// What the client's Secret needs, decided from what exists.
#[derive(Debug, PartialEq)]
enum SecretPlan {
    /// The client cannot be served yet.
    Blocked(Refusal),
    /// Create the Secret with a new value.
    Create { value: String, note: Note },
    /// The Secret is the operator's: keep it holding `value` (write it when its data differs).
    Managed {
        value: String,
        write: Option<Box<Secret>>,
        note: Option<Note>,
    },
    /// Brought by the user (External Secrets, sealed secrets, ...): read, never written.
    External { value: String, note: Option<Note> },
}

/// Plan: what to do with the client's Secret (`existing`), given its status and whether a
/// rotation was asked for. Pure.
fn plan_secret(
    client: &OidcClient,
    issuer: &str,
    existing: Option<&Secret>,
    status: &OidcClientStatus,
    rotate: bool,
    grace: &str,
) -> SecretPlan {
    let name = client.secret_name();
    let Some(secret) = existing else {
        if client.spec.external_secret {
            return SecretPlan::Blocked((
                Reason::SecretMissing,
                format!(
                    "waiting for Secret {name} with key {KEY_CLIENT_SECRET} (spec.externalSecret: true, so it is provided outside kube-oidc)"
                ),
            ));
        }
        let note = if status.secret_hash.is_some() {
            let m = format!("Secret {name} was deleted; a new client secret was generated into it");
            (EventType::Normal, Reason::SecretRecreated, m)
        } else {
            let m = format!("client secret generated into Secret {name}");
            (EventType::Normal, Reason::SecretCreated, m)
        };
        return SecretPlan::Create {
            value: generate_secret(),
            note,
        };
    };
    if let Some(other) = owned_by_other_client(secret, client) {
        return SecretPlan::Blocked((
            Reason::SecretConflict,
            format!("Secret {name} belongs to OidcClient {other}; set a different spec.secretName"),
        ));
    }
    let current = data(secret, KEY_CLIENT_SECRET);
    if !is_ours(secret, client) {
        let Some(value) = current else {
            return SecretPlan::Blocked((
                Reason::SecretInvalid,
                format!("Secret {name} has no non-empty key {KEY_CLIENT_SECRET}; add it"),
            ));
        };
        let note = rotate.then(|| {
            let m = format!(
                "Secret {name} is managed outside kube-oidc; rotate the secret where it is made"
            );
            (EventType::Warning, Reason::SecretNotManaged, m)
        });
        return SecretPlan::External { value, note };
    }
    let (value, note) = match current {
        None => {
            let m = format!(
                "Secret {name} had no {KEY_CLIENT_SECRET}; a new client secret was generated"
            );
            (
                generate_secret(),
                Some((EventType::Warning, Reason::SecretRepaired, m)),
            )
        }
        Some(v)
            if rotate
                && status
                    .secret_hash
                    .as_ref()
                    .is_some_and(|h| verify_secret(&v, h)) =>
        {
            let m = format!(
                "a new client secret was written to Secret {name}; the previous one is accepted for {grace}"
            );
            (
                generate_secret(),
                Some((EventType::Normal, Reason::SecretRotated, m)),
            )
        }
        Some(v) => (v, None),
    };
    let desired = client_secret(client, issuer, &value);
    let write = (secret.data != desired.data).then(|| {
        Box::new(Secret {
            data: desired.data,
            ..secret.clone()
        })
    });
    SecretPlan::Managed { value, write, note }
}

/// Status: the hash of the secret in use. A new value (generated, rotated, edited by hand or by
/// an external tool) keeps the old one valid for the grace period, so running applications can
/// pick up the new one. Pure.
fn record_secret(status: &mut OidcClientStatus, value: &str, now: Timestamp, grace: Duration) {
    if status
        .secret_hash
        .as_ref()
        .is_some_and(|h| verify_secret(value, h))
    {
        return;
    }
    if let Some(old) = status.secret_hash.take() {
        let expires = now
            .checked_add(jiff::SignedDuration::try_from(grace).unwrap_or_default())
            .unwrap_or(now);
        status.previous_secret = Some(PreviousSecret {
            hash: old,
            sealed: status.sealed_secret.take(),
            expires_at: Time(expires),
        });
    }
    status.secret_hash = Some(hash_secret(value));
}

/// Makes sure the client's Secret exists and status carries the hash of its secret:
/// dereference → plan → apply → status.
async fn reconcile_secret(
    client: &OidcClient,
    ctx: &Context,
    status: &mut OidcClientStatus,
    now: Timestamp,
) -> Result<Result<(), Refusal>, Error> {
    let name = client.secret_name();
    let secrets: Api<Secret> =
        Api::namespaced(ctx.client.clone(), &client.namespace().unwrap_or_default());
    status.secret_name = Some(name.clone());
    // Drop an expired previous secret.
    if status
        .previous_secret
        .as_ref()
        .is_some_and(|p| p.expires_at.0 <= now)
    {
        status.previous_secret = None;
    }
    let rotate = client
        .annotations()
        .get(ROTATE_SECRET_ANNOTATION)
        .filter(|v| Some(*v) != status.observed_rotate_secret.as_ref())
        .cloned();
    let existing = secrets
        .get_opt(&name)
        .await
        .map_err(Error::kube("get client Secret"))?;
    let plan = plan_secret(
        client,
        &ctx.args.issuer,
        existing.as_ref(),
        status,
        rotate.is_some(),
        &ctx.args.secret_grace_period.to_string(),
    );
    let (value, note) = match plan {
        SecretPlan::Blocked(refusal) => return Ok(Err(refusal)),
        SecretPlan::Create { value, note } => {
            let secret = client_secret(client, &ctx.args.issuer, &value);
            match secrets.create(&PostParams::default(), &secret).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    return Err(Error::Internal(format!("Secret {name} appeared meanwhile")));
                }
                Err(e) => return Err(Error::kube("create client Secret")(e)),
            }
            (value, Some(note))
        }
        SecretPlan::Managed { value, write, note } => {
            if let Some(updated) = write {
                secrets
                    .replace(&name, &PostParams::default(), &updated)
                    .await
                    .map_err(Error::kube("update client Secret"))?;
            }
            (value, note)
        }
        SecretPlan::External { value, note } => (value, note),
    };
    if let Some((type_, reason, message)) = note {
        status::publish(ctx, client, type_, reason.as_str(), &message).await;
    }
    if client.spec.needs_recoverable_secret()
        && let Some(problem) = crds::secret::hmac_secret_problem(&value)
    {
        return Ok(Err((
            Reason::SecretInvalid,
            format!("Secret {name}: {problem}"),
        )));
    }
    if let Some(r) = rotate {
        status.observed_rotate_secret = Some(r);
    }
    record_secret(status, &value, now, ctx.args.secret_grace_period.into());
    let key = if client.spec.needs_recoverable_secret() {
        Some(sealing_key(ctx).await?)
    } else {
        None
    };
    let owner =
        crds::sealed::client_owner(&client.namespace().unwrap_or_default(), &client.name_any());
    record_sealed(status, &value, key.as_ref(), &owner);
    Ok(Ok(()))
}

/// Status of a client_secret_jwt client: its secret sealed for the provider, sealed again only
/// when the value (or the sealing key) changed, so a reconcile writes nothing new. Other clients
/// carry no sealed secret. Pure.
fn record_sealed(
    status: &mut OidcClientStatus,
    value: &str,
    key: Option<&SealingKey>,
    owner: &str,
) {
    let Some(key) = key else {
        status.sealed_secret = None;
        if let Some(prev) = status.previous_secret.as_mut() {
            prev.sealed = None;
        }
        return;
    };
    let current = status
        .sealed_secret
        .as_deref()
        .and_then(|s| key.open(owner, s));
    if current.as_deref() != Some(value) {
        status.sealed_secret = Some(key.seal(owner, value));
    }
}

/// The provider's sealing key, made (32 random bytes into a Secret in the provider's namespace)
/// the first time a client (client_secret_jwt) or an OIDC connector (its people's upstream
/// refresh tokens, sealed in the provider's store) needs it.
pub(crate) async fn sealing_key(ctx: &Context) -> Result<SealingKey, Error> {
    use crds::sealed::{KEY_SEALING_KEY, SEALING_KEY_SECRET};
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.args.namespace);
    let invalid = || {
        Error::Internal(format!(
            "Secret {}/{SEALING_KEY_SECRET} has no 32-byte key {KEY_SEALING_KEY}; delete it and a new one is made (client_secret_jwt clients then need a new sealed secret, which follows)",
            ctx.args.namespace
        ))
    };
    if let Some(existing) = secrets
        .get_opt(SEALING_KEY_SECRET)
        .await
        .map_err(Error::kube("get sealing key Secret"))?
    {
        return SealingKey::from_secret(&existing).ok_or_else(invalid);
    }
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(SEALING_KEY_SECRET.into()),
            namespace: Some(ctx.args.namespace.clone()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_string(),
                MANAGED_BY.to_string(),
            )])),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            KEY_SEALING_KEY.to_string(),
            k8s_openapi::ByteString(crds::sealed::generate_key()),
        )])),
        type_: Some("Opaque".into()),
        ..Default::default()
    };
    match secrets.create(&PostParams::default(), &secret).await {
        Ok(made) => SealingKey::from_secret(&made).ok_or_else(invalid),
        Err(kube::Error::Api(e)) if e.code == 409 => Err(Error::Internal(format!(
            "Secret {SEALING_KEY_SECRET} appeared meanwhile"
        ))),
        Err(e) => Err(Error::kube("create sealing key Secret")(e)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn client(ns: &str, name: &str, id: Option<&str>, created: i64) -> OidcClient {
        let mut c: OidcClient = serde_yaml::from_str(&format!(
            "apiVersion: kubeoidc.dev/v1alpha1\nkind: OidcClient\nmetadata: {{name: {name}, namespace: {ns}, uid: {ns}-{name}}}\nspec:\n  redirectUris: [https://a.example.com/cb]\n{}",
            id.map(|i| format!("  clientId: {i}\n")).unwrap_or_default()
        ))
        .unwrap();
        c.metadata.creation_timestamp = Some(Time(Timestamp::from_second(created).unwrap()));
        c
    }

    #[test]
    fn the_oldest_client_owns_a_client_id() {
        let a = client("a", "app", Some("shared"), 10);
        let b = client("b", "app", Some("shared"), 5);
        let c = client("c", "other", None, 1);
        let all = vec![a.clone(), b.clone(), c];
        assert_eq!(id_owner(&all, "shared").unwrap().uid(), b.uid());
        assert_eq!(id_owner(&all, "c.other").unwrap().name_any(), "other");
    }

    fn secret_of(owner: Option<&OidcClient>, value: Option<&str>) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some("app-oidc".into()),
                owner_references: owner
                    .and_then(|o| o.controller_owner_ref(&()))
                    .map(|o| vec![o]),
                ..Default::default()
            },
            data: value.map(|v| crds::secret::client_secret_data("a.app", v, "https://i")),
            ..Default::default()
        }
    }

    #[test]
    fn the_secret_plan_follows_what_exists() {
        let mut c = client("a", "app", None, 1);
        c.metadata.uid = Some("uid-app".into());
        let other = client("b", "other", None, 1);
        let fresh = OidcClientStatus::default();
        let plan = |existing: Option<&Secret>, status: &OidcClientStatus, rotate: bool| {
            plan_secret(&c, "https://i", existing, status, rotate, "24h")
        };
        assert!(matches!(
            plan(None, &fresh, false),
            SecretPlan::Create {
                note: (_, Reason::SecretCreated, _),
                ..
            }
        ));
        let conflict = secret_of(Some(&other), Some("v"));
        assert!(matches!(
            plan(Some(&conflict), &fresh, false),
            SecretPlan::Blocked((Reason::SecretConflict, _))
        ));
        let external_empty = secret_of(None, None);
        assert!(matches!(
            plan(Some(&external_empty), &fresh, false),
            SecretPlan::Blocked((Reason::SecretInvalid, _))
        ));
        let external = secret_of(None, Some("theirs"));
        assert_eq!(
            plan(Some(&external), &fresh, false),
            SecretPlan::External {
                value: "theirs".into(),
                note: None
            }
        );

        let ours = secret_of(Some(&c), Some("ours"));
        let known = OidcClientStatus {
            secret_hash: Some(hash_secret("ours")),
            ..Default::default()
        };
        assert_eq!(
            plan(Some(&ours), &known, false),
            SecretPlan::Managed {
                value: "ours".into(),
                write: None,
                note: None
            }
        );
        let SecretPlan::Managed { value, write, note } = plan(Some(&ours), &known, true) else {
            panic!("a rotation of our own Secret");
        };
        assert_ne!(value, "ours");
        assert!(write.is_some());
        assert_eq!(note.map(|n| n.1), Some(Reason::SecretRotated));

        let mut external_key = c.clone();
        external_key.spec.external_secret = true;
        assert!(matches!(
            plan_secret(&external_key, "https://i", None, &fresh, false, "24h"),
            SecretPlan::Blocked((Reason::SecretMissing, _))
        ));
    }

    #[test]
    fn a_new_secret_keeps_the_previous_one_for_the_grace_period() {
        let now = Timestamp::from_second(1_000).unwrap();
        let mut status = OidcClientStatus::default();
        record_secret(&mut status, "one", now, Duration::from_secs(60));
        assert!(status.previous_secret.is_none());
        record_secret(&mut status, "one", now, Duration::from_secs(60));
        assert!(
            status.previous_secret.is_none(),
            "the same value changes nothing"
        );
        record_secret(&mut status, "two", now, Duration::from_secs(60));
        let prev = status.previous_secret.clone().unwrap();
        assert!(verify_secret("one", &prev.hash));
        assert_eq!(prev.expires_at.0.as_second(), 1_060);
        assert!(verify_secret("two", status.secret_hash.as_ref().unwrap()));
    }

    /// client_secret_jwt: the secret sealed once (a reconcile with the same value writes the same
    /// status), sealed again for a new value with the old one kept beside the previous hash, and
    /// none for clients that use only the hash.
    #[test]
    fn a_client_secret_jwt_secret_is_sealed_once_and_follows_rotation() {
        let key = SealingKey::from_bytes(&crds::sealed::generate_key()).unwrap();
        let owner = crds::sealed::client_owner("team", "web");
        let now = Timestamp::from_second(1_000).unwrap();
        let grace = Duration::from_secs(60);
        let mut status = OidcClientStatus::default();
        record_secret(&mut status, "one", now, grace);
        record_sealed(&mut status, "one", Some(&key), &owner);
        let sealed = status.sealed_secret.clone().unwrap();
        assert_eq!(key.open(&owner, &sealed).as_deref(), Some("one"));
        record_secret(&mut status, "one", now, grace);
        record_sealed(&mut status, "one", Some(&key), &owner);
        assert_eq!(status.sealed_secret.as_ref(), Some(&sealed), "unchanged");
        record_secret(&mut status, "two", now, grace);
        record_sealed(&mut status, "two", Some(&key), &owner);
        let prev = status.previous_secret.clone().unwrap();
        assert_eq!(prev.sealed.as_ref(), Some(&sealed));
        let current = status.sealed_secret.clone().unwrap();
        assert_eq!(key.open(&owner, &current).as_deref(), Some("two"));
        // A new sealing key: sealed again with it.
        let other = SealingKey::from_bytes(&crds::sealed::generate_key()).unwrap();
        record_sealed(&mut status, "two", Some(&other), &owner);
        let resealed = status.sealed_secret.clone().unwrap();
        assert_eq!(other.open(&owner, &resealed).as_deref(), Some("two"));
        // Switched to client_secret_basic: nothing sealed is kept.
        record_sealed(&mut status, "two", None, &owner);
        assert!(status.sealed_secret.is_none());
        assert!(status.previous_secret.unwrap().sealed.is_none());
    }
}
