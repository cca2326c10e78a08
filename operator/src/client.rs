//! OidcClientController: validates clients, keeps their credentials in a Secret next to them and
//! publishes the secret's salted hash in status for the provider.
//!
//! Pipeline: dereference (the client, other clients and scopes from the caches, its Secret from
//! the API) → validate → build (the Secret) → apply → update_status.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use crds::{
    ClientType, OidcClient, OidcClientStatus, OidcScope, PreviousSecret, ROTATE_SECRET_ANNOTATION,
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
    Context, Error, MANAGED_BY,
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

enum Check {
    Failed(&'static str, String),
}

fn checks(client: &OidcClient, ctx: &Context) -> Result<(), Check> {
    let ns = client.namespace().unwrap_or_default();
    if !ctx.args.accepts_namespace(&ns) {
        return Err(Check::Failed(
            "NamespaceNotAllowed",
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
        return Err(Check::Failed(first.reason.as_str(), message));
    }
    let id = client.client_id();
    if let Some(owner) = id_owner(&valid_clients(&ctx.clients), &id)
        && owner.uid() != client.uid()
    {
        return Err(Check::Failed(
            "ClientIdConflict",
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
        return Err(Check::Failed(
            "UnknownScope",
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
    Ok(())
}

/// Reconciles one OidcClient.
pub async fn reconcile(client: Arc<OidcClient>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = client.namespace().unwrap_or_default();
    let api: Api<OidcClient> = Api::namespaced(ctx.client.clone(), &ns);
    let current = client.status.clone().unwrap_or_default();
    let mut status = OidcClientStatus {
        observed_generation: client.metadata.generation,
        client_id: Some(client.client_id()),
        ..current.clone()
    };

    if let Err(Check::Failed(reason, message)) = checks(&client, &ctx) {
        let changed = crds::condition::find(&current.conditions, crds::condition::READY)
            .is_none_or(|c| c.reason != reason || c.message != message);
        if changed {
            status::publish(&ctx, client.as_ref(), EventType::Warning, reason, &message).await;
        }
        status.conditions = status::ready(
            client.as_ref(),
            &current.conditions,
            Outcome::failed(reason, message),
        );
        status::apply(&api, client.as_ref(), &status).await?;
        return Ok(Action::await_change());
    }

    let mut requeue: Option<Duration> = None;
    let now = Timestamp::now();
    let outcome = if client.spec.type_ == ClientType::Public {
        status.secret_name = None;
        status.secret_hash = None;
        status.previous_secret = None;
        Outcome::ready(
            "Accepted",
            format!("served as public client {}", client.client_id()),
        )
    } else {
        match reconcile_secret(&client, &ctx, &mut status, now).await? {
            Ok(()) => {
                if let Some(prev) = &status.previous_secret {
                    requeue = Some(
                        Duration::try_from(prev.expires_at.0.duration_since(now))
                            .unwrap_or_default()
                            + Duration::from_millis(50),
                    );
                }
                Outcome::ready(
                    "Accepted",
                    format!(
                        "served as confidential client {}; credentials in Secret {}",
                        client.client_id(),
                        client.secret_name()
                    ),
                )
            }
            Err((reason, message)) => {
                status::publish(&ctx, client.as_ref(), EventType::Warning, reason, &message).await;
                Outcome::failed(reason, message)
            }
        }
    };
    let was_ready = crds::condition::is_ready_for(&current.conditions, client.metadata.generation);
    status.conditions = status::ready(client.as_ref(), &current.conditions, outcome);
    let now_ready = crds::condition::is_ready_for(&status.conditions, client.metadata.generation);
    if now_ready && !was_ready {
        status::publish(
            &ctx,
            client.as_ref(),
            EventType::Normal,
            "Accepted",
            &format!("client {} is served", client.client_id()),
        )
        .await;
    }
    status::apply(&api, client.as_ref(), &status).await?;
    Ok(requeue
        .map(Action::requeue)
        .unwrap_or_else(Action::await_change))
}

type SecretOutcome = Result<(), (&'static str, String)>;

/// Makes sure the client's Secret exists and status carries the hash of its secret.
async fn reconcile_secret(
    client: &OidcClient,
    ctx: &Context,
    status: &mut OidcClientStatus,
    now: Timestamp,
) -> Result<SecretOutcome, Error> {
    let ns = client.namespace().unwrap_or_default();
    let name = client.secret_name();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    status.secret_name = Some(name.clone());
    let rotate = client
        .annotations()
        .get(ROTATE_SECRET_ANNOTATION)
        .filter(|v| Some(*v) != status.observed_rotate_secret.as_ref())
        .cloned();
    let grace: Duration = ctx.args.secret_grace_period.into();

    // Drop an expired previous secret.
    if status
        .previous_secret
        .as_ref()
        .is_some_and(|p| p.expires_at.0 <= now)
    {
        status.previous_secret = None;
    }

    let existing = secrets
        .get_opt(&name)
        .await
        .map_err(Error::kube("get client Secret"))?;
    let value = match existing {
        None if client.spec.external_secret => {
            return Ok(Err((
                "SecretMissing",
                format!(
                    "waiting for Secret {name} with key {KEY_CLIENT_SECRET} (spec.externalSecret: true, so it is provided outside kube-oidc)"
                ),
            )));
        }
        None => {
            let value = generate_secret();
            let secret = client_secret(client, &ctx.args.issuer, &value);
            match secrets.create(&PostParams::default(), &secret).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    return Err(Error::Internal(format!("Secret {name} appeared meanwhile")));
                }
                Err(e) => return Err(Error::kube("create client Secret")(e)),
            }
            let (reason, note) = if status.secret_hash.is_some() {
                (
                    "SecretRecreated",
                    format!("Secret {name} was deleted; a new client secret was generated into it"),
                )
            } else {
                (
                    "SecretCreated",
                    format!("client secret generated into Secret {name}"),
                )
            };
            status::publish(ctx, client, EventType::Normal, reason, &note).await;
            value
        }
        Some(secret) => {
            if let Some(other) = owned_by_other_client(&secret, client) {
                return Ok(Err((
                    "SecretConflict",
                    format!(
                        "Secret {name} belongs to OidcClient {other}; set a different spec.secretName"
                    ),
                )));
            }
            if is_ours(&secret, client) {
                let mut value = data(&secret, KEY_CLIENT_SECRET);
                let mut note = None;
                if value.is_none() {
                    value = Some(generate_secret());
                    note = Some((
                        EventType::Warning,
                        "SecretRepaired",
                        format!(
                            "Secret {name} had no {KEY_CLIENT_SECRET}; a new client secret was generated"
                        ),
                    ));
                } else if rotate.is_some()
                    && status
                        .secret_hash
                        .as_ref()
                        .is_some_and(|h| value.as_deref().is_some_and(|v| verify_secret(v, h)))
                {
                    value = Some(generate_secret());
                    note = Some((
                        EventType::Normal,
                        "SecretRotated",
                        format!(
                            "a new client secret was written to Secret {name}; the previous one is accepted for {}",
                            ctx.args.secret_grace_period
                        ),
                    ));
                }
                let value = value.unwrap_or_default();
                let desired = client_secret(client, &ctx.args.issuer, &value);
                if secret.data != desired.data {
                    let mut updated = secret.clone();
                    updated.data = desired.data;
                    secrets
                        .replace(&name, &PostParams::default(), &updated)
                        .await
                        .map_err(Error::kube("update client Secret"))?;
                }
                if let Some((t, reason, note)) = note {
                    status::publish(ctx, client, t, reason, &note).await;
                }
                value
            } else {
                // Bring your own (External Secrets, sealed secrets, ...): read, never write.
                match data(&secret, KEY_CLIENT_SECRET) {
                    Some(v) => {
                        if rotate.is_some() {
                            status::publish(
                                ctx,
                                client,
                                EventType::Warning,
                                "SecretNotManaged",
                                &format!("Secret {name} is managed outside kube-oidc; rotate the secret where it is made"),
                            )
                            .await;
                        }
                        v
                    }
                    None => {
                        return Ok(Err((
                            "SecretInvalid",
                            format!(
                                "Secret {name} has no non-empty key {KEY_CLIENT_SECRET}; add it"
                            ),
                        )));
                    }
                }
            }
        }
    };
    if let Some(r) = rotate {
        status.observed_rotate_secret = Some(r);
    }

    // A new value (generated, rotated, edited by hand or by an external tool): the old one stays
    // valid for the grace period so running applications can pick up the new one.
    let matches = status
        .secret_hash
        .as_ref()
        .is_some_and(|h| verify_secret(&value, h));
    if !matches {
        if let Some(old) = status.secret_hash.take() {
            let expires = now
                .checked_add(jiff::SignedDuration::try_from(grace).unwrap_or_default())
                .unwrap_or(now);
            status.previous_secret = Some(PreviousSecret {
                hash: old,
                expires_at: Time(expires),
            });
        }
        status.secret_hash = Some(hash_secret(&value));
    }
    Ok(Ok(()))
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
}
