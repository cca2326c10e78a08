//! IdentityConnectorController: checks that each connector can be used and says what to fix.
//!
//! OIDC: the client secret's Secret key exists, the CA (if any) parses, and the upstream's
//! discovery document answers for the configured issuer with the endpoints a sign-in needs.
//! LDAP: the Secrets exist, and the service account binds over TLS and reads the user search's
//! base. Local: always usable. Re-checked every [`RECHECK`], and when a referenced
//! Secret changes.

use std::{sync::Arc, time::Duration};

use crds::connector::{ConnectorType, IdentityConnector, IdentityConnectorStatus, SecretKeyRef};
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, ResourceExt,
    runtime::{controller::Action, events::EventType, reflector::ObjectRef, reflector::Store},
};

use crate::{
    Context, Error,
    status::{self, Outcome},
};

/// An upstream that was fine may stop answering: checked again this often.
const RECHECK: Duration = Duration::from_secs(300);
/// The longest a discovery fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest discovery document read.
const MAX_DISCOVERY_BYTES: usize = 256 * 1024;

/// Connectors that reference `secret` (so a Secret made or fixed later is noticed).
pub fn connectors_using_secret(
    store: &Store<kube::core::DeserializeGuard<IdentityConnector>>,
    secret: &Secret,
) -> Vec<ObjectRef<kube::core::DeserializeGuard<IdentityConnector>>> {
    let (ns, name) = (secret.namespace(), secret.name_any());
    store
        .state()
        .iter()
        .filter_map(|g| g.0.as_ref().ok())
        .filter(|c| c.namespace() == ns && secret_refs(c).any(|r| r.name == name))
        .map(|c| {
            let r = ObjectRef::new(&c.name_any());
            match c.namespace() {
                Some(ns) => r.within(&ns),
                None => r,
            }
        })
        .collect()
}

fn secret_refs(c: &IdentityConnector) -> impl Iterator<Item = &SecretKeyRef> {
    let oidc = c
        .spec
        .oidc
        .iter()
        .flat_map(|o| std::iter::once(&o.client_secret_ref).chain(o.ca_ref.as_ref()));
    let ldap = c
        .spec
        .ldap
        .iter()
        .flat_map(|l| std::iter::once(&l.bind_password_ref).chain(l.ca_ref.as_ref()));
    oidc.chain(ldap)
}

/// Reconciles one IdentityConnector.
#[tracing::instrument(skip_all, fields(name = %connector.name_any(), namespace = connector.namespace().unwrap_or_default()))]
pub async fn reconcile(
    connector: Arc<IdentityConnector>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let ns = connector.namespace().unwrap_or_default();
    let api: Api<IdentityConnector> = Api::namespaced(ctx.client.clone(), &ns);
    let current = connector.status.clone().unwrap_or_default();
    let outcome = match check(&connector, &ctx, &ns).await? {
        Ok(message) => Outcome::ready("Accepted", message),
        Err((reason, message)) => Outcome::failed(reason, message),
    };
    let was = crds::condition::find(&current.conditions, crds::condition::READY)
        .map(|c| (c.reason.clone(), c.message.clone()));
    let status = IdentityConnectorStatus {
        observed_generation: connector.metadata.generation,
        conditions: status::ready(connector.as_ref(), &current.conditions, outcome),
    };
    if let Some(c) = crds::condition::find(&status.conditions, crds::condition::READY)
        && was.as_ref().map(|(r, m)| (r.as_str(), m.as_str())) != Some((&c.reason, &c.message))
    {
        let kind = if c.status == "True" {
            EventType::Normal
        } else {
            EventType::Warning
        };
        status::publish(&ctx, connector.as_ref(), kind, &c.reason, &c.message).await;
    }
    status::apply(&api, connector.as_ref(), &status).await?;
    Ok(Action::requeue(RECHECK))
}

type Refusal = (&'static str, String);

/// Whether the connector can be used: what it found, or (reason, what to fix).
async fn check(
    c: &IdentityConnector,
    ctx: &Context,
    ns: &str,
) -> Result<Result<String, Refusal>, Error> {
    if let Some(problem) = crds::validation::validate_connector(&c.spec).first() {
        return Ok(Err(("InvalidSpec", problem.to_string())));
    }
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    for r in secret_refs(c) {
        let secret = secrets
            .get_opt(&r.name)
            .await
            .map_err(Error::kube("get connector Secret"))?;
        if secret
            .as_ref()
            .and_then(|s| crds::secret::secret_data(s, &r.key))
            .is_none()
        {
            return Ok(Err((
                "SecretMissing",
                format!(
                    "Secret {ns}/{} has no non-empty key {}; create it (kubectl create secret generic {} --from-literal={}=...)",
                    r.name, r.key, r.name, r.key
                ),
            )));
        }
    }
    match c.spec.type_ {
        ConnectorType::Local => Ok(Ok("signs in the users of the users Secret".into())),
        ConnectorType::Ldap => {
            let Some(ldap) = &c.spec.ldap else {
                return Ok(Err(("InvalidSpec", "spec.ldap is missing".into())));
            };
            let read = |r: &SecretKeyRef| {
                let secrets = secrets.clone();
                let r = r.clone();
                async move {
                    secrets
                        .get_opt(&r.name)
                        .await
                        .map(|s| s.and_then(|s| crds::secret::secret_data(&s, &r.key)))
                        .map_err(Error::kube("get connector Secret"))
                }
            };
            let password = read(&ldap.bind_password_ref).await?.unwrap_or_default();
            let ca = match &ldap.ca_ref {
                Some(r) => read(r).await?,
                None => None,
            };
            let tls = match crds::ldap::tls_config(ca.as_deref()) {
                Ok(tls) => tls,
                Err(e) => return Ok(Err(("InvalidCA", format!("spec.ldap.{e}")))),
            };
            Ok(crds::ldap::test_bind(ldap, &password, tls)
                .await
                .map_err(|e| {
                    (
                        "BindFailed",
                        format!(
                            "{e}; check spec.ldap.url, bindDN, bindPasswordRef, userSearch.baseDN (and caRef for a private CA)"
                        ),
                    )
                }))
        }
        ConnectorType::Oidc => {
            let Some(oidc) = &c.spec.oidc else {
                return Ok(Err(("InvalidSpec", "spec.oidc is missing".into())));
            };
            // The provider seals the upstream's refresh tokens with it.
            crate::client::sealing_key(ctx).await?;
            let ca = match &oidc.ca_ref {
                Some(r) => secrets
                    .get_opt(&r.name)
                    .await
                    .map_err(Error::kube("get connector CA"))?
                    .and_then(|s| crds::secret::secret_data(&s, &r.key)),
                None => None,
            };
            Ok(discover(&oidc.issuer, ca.as_deref()).await)
        }
    }
}

/// The upstream's discovery document, checked as a sign-in will use it.
async fn discover(issuer: &str, ca_pem: Option<&str>) -> Result<String, Refusal> {
    let issuer = issuer.trim_end_matches('/');
    let url = format!("{issuer}/.well-known/openid-configuration");
    let mut builder = reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none());
    if let Some(pem) = ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(|e| {
            (
                "InvalidCA",
                format!("spec.oidc.caRef does not hold PEM certificates: {e}"),
            )
        })?;
        builder = builder.tls_built_in_root_certs(false);
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    let http = builder
        .build()
        .map_err(|e| ("DiscoveryFailed", format!("no HTTP client: {e}")))?;
    let unreachable = |e: String| {
        (
            "DiscoveryFailed",
            format!(
                "{url} cannot be read: {e}; check spec.oidc.issuer (and spec.oidc.caRef for a private CA)"
            ),
        )
    };
    let response = http
        .get(&url)
        .send()
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    if !response.status().is_success() {
        return Err(unreachable(format!("HTTP {}", response.status())));
    }
    let body = response
        .bytes()
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    if body.len() > MAX_DISCOVERY_BYTES {
        return Err(unreachable("the document is too large".into()));
    }
    let doc: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| unreachable(format!("not JSON: {e}")))?;
    let found = doc["issuer"].as_str().unwrap_or_default();
    if found.trim_end_matches('/') != issuer {
        return Err((
            "IssuerMismatch",
            format!("{url} names the issuer \"{found}\"; set spec.oidc.issuer to it exactly"),
        ));
    }
    for field in ["authorization_endpoint", "token_endpoint", "jwks_uri"] {
        if doc[field].as_str().is_none() {
            return Err((
                "DiscoveryFailed",
                format!(
                    "{url} has no {field}: this upstream cannot sign people in with the code flow"
                ),
            ));
        }
    }
    Ok(format!("the upstream at {issuer} answers discovery"))
}
