//! The IdentityConnectors a view serves, built from their specs and Secrets: the same in a
//! cluster (watched) and standalone (the folder).

use std::{collections::HashMap, sync::Arc};

use crds::connector::{ConnectorType, IdentityConnector, IdentityConnectorSpec, SecretKeyRef};

use super::{ldap::LdapUpstream, upstream_flow::OidcUpstream};

/// One upstream identity source people may sign in with.
#[derive(Debug)]
pub enum Upstream {
    /// An OpenID Connect provider: a button to it.
    Oidc(OidcUpstream),
    /// An LDAP directory: the password form checks with it.
    Ldap(LdapUpstream),
}

impl Upstream {
    /// The OpenID Connect provider, if this is one.
    pub fn oidc(&self) -> Option<&OidcUpstream> {
        match self {
            Self::Oidc(u) => Some(u),
            Self::Ldap(_) => None,
        }
    }

    pub fn spec(&self) -> &IdentityConnectorSpec {
        match self {
            Self::Oidc(u) => &u.spec,
            Self::Ldap(u) => &u.spec,
        }
    }
}

/// The upstreams of a view, by connector name.
pub type Upstreams = HashMap<String, Arc<Upstream>>;

/// What the connectors give a view.
#[derive(Debug, Default)]
pub struct Built {
    pub upstreams: Upstreams,
    /// Whether the local users sign in (no enabled connector, or a `local` one).
    pub local: bool,
    /// Connectors not served, with what to fix (by name).
    pub problems: Vec<(String, String)>,
}

/// Built upstreams kept across rebuilds while their spec and Secrets stay the same, so that
/// their caches (discovery, keys) live on.
#[derive(Default)]
pub struct Cache(HashMap<String, (String, Arc<Upstream>)>);

/// The enabled connectors served; `secret` reads a Secret's key in the connectors' namespace.
pub fn build<'a>(
    connectors: impl IntoIterator<Item = &'a IdentityConnector>,
    secret: &dyn Fn(&str, &str) -> Option<String>,
    cache: &mut Cache,
) -> Built {
    let mut built = Built::default();
    let mut any = false;
    let mut kept = HashMap::new();
    for c in connectors.into_iter().filter(|c| !c.spec.disabled) {
        any = true;
        let name = c.metadata.name.clone().unwrap_or_default();
        match upstream(&name, &c.spec, secret, cache) {
            Ok(None) => built.local = true,
            Ok(Some((fingerprint, up))) => {
                built.upstreams.insert(name.clone(), up.clone());
                kept.insert(name, (fingerprint, up));
            }
            Err(problem) => built.problems.push((name, problem)),
        }
    }
    built.local |= !any;
    cache.0 = kept;
    built
}

/// One connector's upstream (`None` for `local`), from the cache when nothing changed.
fn upstream(
    name: &str,
    spec: &IdentityConnectorSpec,
    secret: &dyn Fn(&str, &str) -> Option<String>,
    cache: &Cache,
) -> Result<Option<(String, Arc<Upstream>)>, String> {
    if let Some(p) = crds::validation::validate_connector(spec).first() {
        return Err(p.to_string());
    }
    let read = |field: &str, r: &SecretKeyRef| {
        secret(&r.name, &r.key).ok_or_else(|| {
            format!(
                "{field}: add a Secret named {} with key {} in the provider's namespace",
                r.name, r.key
            )
        })
    };
    let (credential, ca) = match (&spec.type_, &spec.oidc, &spec.ldap) {
        (ConnectorType::Local, _, _) => return Ok(None),
        (ConnectorType::Oidc, Some(o), _) => (
            read("spec.oidc.clientSecretRef", &o.client_secret_ref)?,
            o.ca_ref
                .as_ref()
                .map(|r| read("spec.oidc.caRef", r))
                .transpose()?,
        ),
        (ConnectorType::Ldap, _, Some(l)) => (
            read("spec.ldap.bindPasswordRef", &l.bind_password_ref)?,
            l.ca_ref
                .as_ref()
                .map(|r| read("spec.ldap.caRef", r))
                .transpose()?,
        ),
        _ => return Err(format!("spec.{:?}: missing", spec.type_).to_lowercase()),
    };
    // What the upstream is made of; the credential is hashed, never kept in the clear twice.
    let fingerprint = format!(
        "{}\n{}\n{}",
        serde_json::to_string(spec).unwrap_or_default(),
        hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, credential.as_bytes()).as_ref()),
        ca.as_deref().unwrap_or_default()
    );
    if let Some((f, up)) = cache.0.get(name)
        && *f == fingerprint
    {
        return Ok(Some((fingerprint, up.clone())));
    }
    let up = match (&spec.oidc, &spec.ldap) {
        (Some(o), _) if spec.type_ == ConnectorType::Oidc => Upstream::Oidc(OidcUpstream::new(
            name,
            spec.clone(),
            o.clone(),
            credential,
            ca.as_deref(),
        )?),
        (_, Some(l)) => Upstream::Ldap(LdapUpstream::new(
            name,
            spec.clone(),
            l.clone(),
            credential,
            ca.as_deref(),
        )?),
        _ => return Err("the connector's settings are missing".into()),
    };
    Ok(Some((fingerprint, Arc::new(up))))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
