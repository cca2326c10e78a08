//! The ClientPolicy check of an OidcClient: the policy that governs its namespace, the audience
//! scopes it may request, and (in the routes mode) the hosts routed to its namespace.

use crds::{
    ClientPolicy, OidcClient, OidcScope,
    policy::{self as rules, Governing},
};
use k8s_openapi::api::{core::v1::Namespace, networking::v1::Ingress};
use kube::{
    Api, ResourceExt,
    api::{ApiResource, DynamicObject, GroupVersionKind, ListParams},
    runtime::reflector::ObjectRef,
};

use crate::{
    Context, Error,
    client::{Reason, Refusal},
};

/// Ok, or the violations as one refusal naming the policy and the fixes.
pub async fn check(client: &OidcClient, ctx: &Context) -> Result<Result<(), Refusal>, Error> {
    let ns = client.namespace().unwrap_or_default();
    let labels = ctx
        .namespaces
        .get(&ObjectRef::<Namespace>::new(&ns))
        .map(|n| n.labels().clone());
    let policies: Vec<ClientPolicy> = ctx
        .policies
        .state()
        .iter()
        .filter_map(|g| g.0.as_ref().ok().cloned())
        .collect();
    let governing =
        rules::governing_client(client, labels.as_ref(), &ctx.args.namespace, &policies);
    let scopes: Vec<OidcScope> = ctx
        .scopes
        .state()
        .iter()
        .filter_map(|g| g.0.as_ref().ok().cloned())
        .filter(|s| s.namespace().as_deref() == Some(ctx.args.namespace.as_str()))
        .collect();
    let routed = match governing {
        Governing::Policy(p) if p.spec.routed_redirect_hosts => Some(routed_hosts(ctx, &ns).await?),
        _ => None,
    };
    let violations = rules::check_client(client, &governing, &scopes, routed.as_deref());
    if violations.is_empty() {
        return Ok(Ok(()));
    }
    Ok(Err((
        Reason::PolicyViolation,
        violations
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "),
    )))
}

/// The hosts Ingresses and Gateway API HTTPRoutes route to `namespace`.
async fn routed_hosts(ctx: &Context, namespace: &str) -> Result<Vec<String>, Error> {
    let mut hosts = Vec::new();
    let ingresses: Api<Ingress> = Api::namespaced(ctx.client.clone(), namespace);
    for ing in ingresses
        .list(&ListParams::default())
        .await
        .map_err(Error::kube("list Ingresses"))?
    {
        let Some(spec) = ing.spec else { continue };
        hosts.extend(
            spec.rules
                .unwrap_or_default()
                .into_iter()
                .filter_map(|r| r.host),
        );
    }
    let gvk = GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute");
    let routes: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), namespace, &ApiResource::from_gvk(&gvk));
    match routes.list(&ListParams::default()).await {
        Ok(list) => {
            for route in list {
                if let Some(names) = route.data["spec"]["hostnames"].as_array() {
                    hosts.extend(names.iter().filter_map(|h| h.as_str().map(String::from)));
                }
            }
        }
        // The Gateway API is not installed: no HTTPRoutes.
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => return Err(Error::kube("list HTTPRoutes")(e)),
    }
    Ok(hosts)
}
