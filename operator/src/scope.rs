//! OidcScopeController: validates scopes and reports which are served.

use std::sync::Arc;

use crds::{OidcScope, OidcScopeStatus};
use kube::{
    Api, ResourceExt,
    runtime::{controller::Action, events::EventType},
};

use crate::{
    Context, Error,
    status::{self, Outcome},
};

/// Reconciles one OidcScope.
#[tracing::instrument(skip_all, fields(name = %scope.name_any(), namespace = scope.namespace().unwrap_or_default()))]
pub async fn reconcile(scope: Arc<OidcScope>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = scope.namespace().unwrap_or_default();
    let api: Api<OidcScope> = Api::namespaced(ctx.client.clone(), &ns);
    let current = scope.status.clone().unwrap_or_default();
    let value = scope.scope();
    let problems = crds::validation::validate_scope(&scope);

    let outcome = if let Some(first) = problems.first() {
        Outcome::failed(
            first.reason.as_str(),
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        )
    } else if let Some(other) = ctx
        .scopes
        .state()
        .iter()
        .filter_map(|g| g.0.as_ref().ok())
        .filter(|s| {
            s.namespace() == scope.namespace() && s.uid() != scope.uid() && s.scope() == value
        })
        .min_by_key(|s| {
            (
                s.metadata.creation_timestamp.as_ref().map(|t| t.0),
                s.name_any(),
            )
        })
        .filter(|other| {
            (
                other.metadata.creation_timestamp.as_ref().map(|t| t.0),
                other.name_any(),
            ) < (
                scope.metadata.creation_timestamp.as_ref().map(|t| t.0),
                scope.name_any(),
            )
        })
    {
        Outcome::failed(
            "ScopeConflict",
            format!(
                "scope {value} is already defined by OidcScope {}; remove one of them",
                other.name_any()
            ),
        )
    } else if crds::scope::builtin(&value).is_some() {
        Outcome::ready(
            "Accepted",
            format!("overrides the description of the built-in scope {value}"),
        )
    } else {
        Outcome::ready("Accepted", format!("scope {value} may be requested"))
    };
    let was = crds::condition::find(&current.conditions, crds::condition::READY)
        .map(|c| c.reason.clone());
    let status = OidcScopeStatus {
        observed_generation: scope.metadata.generation,
        conditions: status::ready(scope.as_ref(), &current.conditions, outcome),
        scope: Some(value),
    };
    if let Some(c) = crds::condition::find(&status.conditions, crds::condition::READY)
        && c.status == "False"
        && was.as_deref() != Some(c.reason.as_str())
    {
        status::publish(
            &ctx,
            scope.as_ref(),
            EventType::Warning,
            &c.reason,
            &c.message,
        )
        .await;
    }
    status::apply(&api, scope.as_ref(), &status).await?;
    Ok(Action::await_change())
}
