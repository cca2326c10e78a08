//! Conditions, status writes (server-side apply under the operator's field manager) and Events.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{
    Api, Resource, ResourceExt,
    api::{Patch, PatchParams},
    runtime::events::{Event, EventType},
};
use serde::{Serialize, de::DeserializeOwned};

use crate::{Context, Error, MANAGER};

/// The result of a reconcile as the `Ready` condition says it.
pub struct Outcome {
    ready: bool,
    reason: String,
    message: String,
}

impl Outcome {
    pub fn ready(reason: &str, message: String) -> Self {
        Self {
            ready: true,
            reason: reason.into(),
            message,
        }
    }

    pub fn failed(reason: &str, message: String) -> Self {
        Self {
            ready: false,
            reason: reason.into(),
            message,
        }
    }
}

pub fn condition(status: &str, reason: &str, message: &str, generation: Option<i64>) -> Condition {
    typed_condition(crds::condition::READY, status, reason, message, generation)
}

fn typed_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) -> Condition {
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message: message.chars().take(32_000).collect(),
        observed_generation: generation,
        last_transition_time: Time(jiff::Timestamp::now()),
    }
}

/// The conditions with `Ready` set to the outcome; `lastTransitionTime` only moves when the
/// status flips.
pub fn ready<K: Resource>(obj: &K, existing: &[Condition], outcome: Outcome) -> Vec<Condition> {
    set(obj, existing, crds::condition::READY, outcome)
}

/// The conditions with `type_` set to the outcome (`ready` maps to status True).
pub fn set<K: Resource>(
    obj: &K,
    existing: &[Condition],
    type_: &str,
    outcome: Outcome,
) -> Vec<Condition> {
    let status = if outcome.ready { "True" } else { "False" };
    let mut next = typed_condition(
        type_,
        status,
        &outcome.reason,
        &outcome.message,
        obj.meta().generation,
    );
    let mut out: Vec<Condition> = existing
        .iter()
        .filter(|c| c.type_ != type_)
        .cloned()
        .collect();
    if let Some(old) = crds::condition::find(existing, type_)
        && old.status == status
    {
        next.last_transition_time = old.last_transition_time.clone();
    }
    out.push(next);
    out
}

/// Writes `status` with server-side apply as `kube-oidc-operator`, conditional on the
/// resourceVersion that was read: a write based on a stale read fails and is retried.
pub async fn apply<K, S>(api: &Api<K>, obj: &K, status: &S) -> Result<(), Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    S: Serialize,
{
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "metadata": {
            "name": obj.name_any(),
            "resourceVersion": obj.resource_version(),
        },
        "status": status,
    });
    api.patch_status(
        &obj.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(Error::kube("write status"))?;
    Ok(())
}

/// Publishes an Event about `obj`; failures are logged, never fatal.
pub async fn publish<K>(ctx: &Context, obj: &K, type_: EventType, reason: &str, note: &str)
where
    K: Resource<DynamicType = ()>,
{
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note.chars().take(1024).collect()),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &obj.object_ref(&())).await {
        tracing::warn!(error = %e, reason, "could not publish event");
    }
}
