//! `metav1.Condition` helpers shared by every kind.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

/// The condition type every kube-oidc resource reports.
pub const READY: &str = "Ready";

/// Finds a condition by type.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// True when `Ready=True` was written for the given generation: the provider serves an object only
/// then, so an edit is not served until the operator has accepted it.
pub fn is_ready_for(conditions: &[Condition], generation: Option<i64>) -> bool {
    find(conditions, READY)
        .is_some_and(|c| c.status == "True" && c.observed_generation == generation)
}
