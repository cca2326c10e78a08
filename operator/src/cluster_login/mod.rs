//! ClusterLoginController: renders, and keeps current, the API server's authentication
//! configuration and kubeconfig entries for the client people log in to the cluster with.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use crds::{
    CLUSTER_LOGIN_LABEL, ClusterLogin, ClusterLoginStatus, OidcClient, OidcScope, SIGNING_KEY_LABEL,
};
use k8s_openapi::{
    ByteString,
    api::core::v1::{ConfigMap, Secret},
    apimachinery::pkg::apis::meta::v1::Time,
};
use kube::{
    Api, Resource, ResourceExt,
    api::{Patch, PatchParams},
    core::DeserializeGuard,
    runtime::{controller::Action, events::EventType, reflector::ObjectRef, reflector::Store},
};

use crate::{
    Context, Error, MANAGED_BY, MANAGER,
    status::{self, Outcome},
};

pub mod render;

use render::{Inputs, Problem};

/// Inputs outside the watched objects (a CA in a ConfigMap or Secret that changes) are
/// re-read at least this often.
const RECHECK: Duration = Duration::from_secs(600);

/// Reconciles one ClusterLogin.
#[tracing::instrument(skip_all, fields(name = %login.name_any(), namespace = login.namespace().unwrap_or_default()))]
pub async fn reconcile(login: Arc<ClusterLogin>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = login.namespace().unwrap_or_default();
    let current = login.status.clone().unwrap_or_default();
    let mut status = ClusterLoginStatus {
        observed_generation: login.metadata.generation,
        config_map: Some(login.config_map_name()),
        ..Default::default()
    };
    let outcome = match files(&login, &ctx, &ns).await? {
        Ok((client_id, files)) => write_config_map(&login, &ctx, &ns, &files)
            .await?
            .map(|()| {
                let digest = render::digest(&files);
                let changed = current.digest.as_deref() != Some(digest.as_str());
                status.rendered_at = if changed {
                    Some(Time(jiff::Timestamp::now()))
                } else {
                    current.rendered_at.clone()
                };
                status.client_id = Some(client_id.clone());
                status.files = files.keys().cloned().collect();
                status.digest = Some(digest);
                (changed, client_id)
            }),
        Err(problem) => Err(problem),
    };
    let outcome = match outcome {
        Ok((changed, client_id)) => {
            let message = format!(
                "ConfigMap {ns}/{} holds {}, current with OidcClient {} (client ID {client_id}), the issuer {} and its CA",
                login.config_map_name(),
                status.files.join(", "),
                login.spec.client_name,
                ctx.args.issuer
            );
            if changed {
                status::publish(
                    &ctx,
                    login.as_ref(),
                    EventType::Normal,
                    "Rendered",
                    &message,
                )
                .await;
            }
            Outcome::ready("Rendered", message)
        }
        Err(p) => {
            let was = crds::condition::find(&current.conditions, crds::condition::READY)
                .map(|c| c.reason.clone());
            if was.as_deref() != Some(p.reason) {
                status::publish(
                    &ctx,
                    login.as_ref(),
                    EventType::Warning,
                    p.reason,
                    &p.message,
                )
                .await;
            }
            // Whatever was rendered before stays: a broken input never empties a working
            // configuration.
            status.files = current.files.clone();
            status.digest = current.digest.clone();
            status.rendered_at = current.rendered_at.clone();
            status.client_id = current.client_id.clone();
            Outcome::failed(p.reason, p.message)
        }
    };
    status.conditions = status::ready(login.as_ref(), &current.conditions, outcome);
    let api: Api<ClusterLogin> = Api::namespaced(ctx.client.clone(), &ns);
    status::apply(&api, login.as_ref(), &status).await?;
    Ok(Action::requeue(RECHECK))
}

/// Reads the inputs and renders: (client ID, files), or the problem that stops it.
async fn files(
    login: &ClusterLogin,
    ctx: &Context,
    ns: &str,
) -> Result<Result<(String, BTreeMap<String, String>), Problem>, Error> {
    if ns != ctx.args.namespace {
        return Ok(Err(Problem::new(
            "WrongNamespace",
            format!(
                "ClusterLogins are read only in the provider's namespace {}; create it there",
                ctx.args.namespace
            ),
        )));
    }
    let name = &login.spec.client_name;
    let clients: Api<OidcClient> = Api::namespaced(ctx.client.clone(), ns);
    let Some(client) = clients
        .get_opt(name)
        .await
        .map_err(Error::kube("read the OidcClient"))?
    else {
        return Ok(Err(Problem::new(
            "ClientNotFound",
            format!(
                "OidcClient {name} does not exist in namespace {ns}; create it or fix spec.clientName"
            ),
        )));
    };
    let client_status = client.status.clone().unwrap_or_default();
    if !crds::condition::is_ready_for(&client_status.conditions, client.metadata.generation) {
        let why = crds::condition::find(&client_status.conditions, crds::condition::READY)
            .map_or_else(|| "not reconciled yet".to_string(), |c| c.message.clone());
        return Ok(Err(Problem::new(
            "ClientNotReady",
            format!("OidcClient {name} is not Ready: {why}"),
        )));
    }
    let ca = match &login.spec.issuer_ca {
        None => None,
        Some(reference) => match read_ca(ctx, ns, reference).await? {
            Ok(pem) => Some(pem),
            Err(p) => return Ok(Err(p)),
        },
    };
    let scopes = ctx.scopes.clone();
    let scope_claims = move |scope: &str| scope_claims(&scopes, scope);
    let inputs = Inputs {
        issuer: &ctx.args.issuer,
        ca_pem: ca.as_deref(),
        client: &client,
        scope_claims: &scope_claims,
        username: &login.spec.username,
        groups: &login.spec.groups,
        kubeconfig_user: &login.kubeconfig_user(),
    };
    Ok(render::render(&inputs).map(|files| (client.client_id(), files)))
}

/// The claims a scope releases: a built-in scope's, or those of the OidcScope defining it.
fn scope_claims(scopes: &Store<DeserializeGuard<OidcScope>>, scope: &str) -> Vec<String> {
    if let Some(b) = crds::scope::builtin(scope) {
        return b.claims.iter().map(ToString::to_string).collect();
    }
    scopes
        .state()
        .iter()
        .filter_map(|g| g.0.as_ref().ok())
        .find(|s| s.scope() == scope)
        .map(|s| s.spec.claims.clone())
        .unwrap_or_default()
}

/// The CA bundle the reference points at.
async fn read_ca(
    ctx: &Context,
    ns: &str,
    reference: &crds::CaReference,
) -> Result<Result<String, Problem>, Error> {
    let Some((kind, r)) = reference.source() else {
        return Ok(Err(Problem::new(
            "InvalidCA",
            "set exactly one of issuerCA.secret and issuerCA.configMap",
        )));
    };
    let source = format!("{kind} {ns}/{} key {}", r.name, r.key);
    let bytes: Option<Vec<u8>> = if kind == "Secret" {
        let api: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
        let secret = api
            .get_opt(&r.name)
            .await
            .map_err(Error::kube("read the issuer CA Secret"))?;
        if secret
            .as_ref()
            .is_some_and(|s| s.labels().contains_key(SIGNING_KEY_LABEL))
        {
            return Ok(Err(Problem::new(
                "InvalidCA",
                format!(
                    "{source} holds signing key material, not a CA certificate; point issuerCA at the issuer's CA certificate"
                ),
            )));
        }
        secret
            .and_then(|s| s.data?.remove(&r.key))
            .map(|ByteString(b)| b)
    } else {
        let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), ns);
        api.get_opt(&r.name)
            .await
            .map_err(Error::kube("read the issuer CA ConfigMap"))?
            .and_then(|c| c.data?.remove(&r.key))
            .map(String::into_bytes)
    };
    Ok(match bytes {
        None => Err(Problem::new(
            "CANotFound",
            format!("{source} does not exist; create it or fix spec.issuerCA"),
        )),
        Some(b) => render::ca_bundle(&b, &source),
    })
}

/// Writes the files into the ConfigMap (server-side apply, owned by the ClusterLogin), unless a
/// ConfigMap of that name belongs to someone else.
async fn write_config_map(
    login: &ClusterLogin,
    ctx: &Context,
    ns: &str,
    files: &BTreeMap<String, String>,
) -> Result<Result<(), Problem>, Error> {
    let name = login.config_map_name();
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), ns);
    let existing = api
        .get_opt(&name)
        .await
        .map_err(Error::kube("read the ConfigMap"))?;
    if let Some(cm) = existing
        && cm.labels().get(CLUSTER_LOGIN_LABEL) != Some(&login.name_any())
    {
        return Ok(Err(Problem::new(
            "ConfigMapTaken",
            format!(
                "ConfigMap {ns}/{name} exists and was not rendered for this ClusterLogin; it is left alone: set spec.configMapName to another name"
            ),
        )));
    }
    let owner = login
        .controller_owner_ref(&())
        .ok_or_else(|| Error::Internal("the ClusterLogin has no uid".into()))?;
    let cm = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": {
                CLUSTER_LOGIN_LABEL: login.name_any(),
                "app.kubernetes.io/managed-by": MANAGED_BY,
            },
            "ownerReferences": [owner],
        },
        "data": files,
    });
    api.patch(
        &name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&cm),
    )
    .await
    .map_err(Error::kube("write the ConfigMap"))?;
    Ok(Ok(()))
}

/// The ClusterLogins to reconcile when a ConfigMap changes: the one it was rendered for, and
/// those whose CA it holds.
pub fn logins_using_config_map(
    logins: &Store<DeserializeGuard<ClusterLogin>>,
    cm: &ConfigMap,
) -> Vec<LoginRef> {
    let rendered_for = cm.labels().get(CLUSTER_LOGIN_LABEL).cloned();
    referencing(logins, &cm.metadata, |l| {
        rendered_for.as_deref() == Some(l.name_any().as_str())
            || l.spec
                .issuer_ca
                .as_ref()
                .and_then(|c| c.config_map.as_ref())
                .is_some_and(|r| r.name == cm.name_any())
    })
}

/// The ClusterLogins whose CA a Secret holds.
pub fn logins_using_secret(
    logins: &Store<DeserializeGuard<ClusterLogin>>,
    secret: &Secret,
) -> Vec<LoginRef> {
    referencing(logins, &secret.metadata, |l| {
        l.spec
            .issuer_ca
            .as_ref()
            .and_then(|c| c.secret.as_ref())
            .is_some_and(|r| r.name == secret.name_any())
    })
}

/// The ClusterLogins that name an OidcClient.
pub fn logins_using_client(
    logins: &Store<DeserializeGuard<ClusterLogin>>,
    client: &DeserializeGuard<OidcClient>,
) -> Vec<LoginRef> {
    let meta = match &client.0 {
        Ok(c) => c.metadata.clone(),
        Err(invalid) => invalid.metadata.clone(),
    };
    let name = meta.name.clone().unwrap_or_default();
    referencing(logins, &meta, |l| l.spec.client_name == name)
}

type LoginRef = ObjectRef<DeserializeGuard<ClusterLogin>>;

/// The ClusterLogins in the object's namespace that use it.
fn referencing(
    logins: &Store<DeserializeGuard<ClusterLogin>>,
    meta: &kube::api::ObjectMeta,
    uses: impl Fn(&ClusterLogin) -> bool,
) -> Vec<LoginRef> {
    logins
        .state()
        .iter()
        .filter_map(|g| g.0.as_ref().ok())
        .filter(|l| l.namespace().as_deref() == meta.namespace.as_deref() && uses(l))
        .map(|l| ObjectRef::new(&l.name_any()).within(&l.namespace().unwrap_or_default()))
        .collect()
}
