//! Signing in with an LDAP directory (OpenLDAP, Active Directory): over LDAPS or StartTLS
//! only, the service account searches the user, the password is checked by binding as them, and
//! their groups are searched (`member` of group entries, or the user's `memberOf`).
//!
//! A wrong password and an unknown user are one answer, and take the same steps: an unknown
//! user's password is still tried, against a DN that does not exist.

use std::sync::Arc;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use crds::ldap::LDAP_TIMEOUT;
use ldap3::{Ldap, Scope, SearchEntry, ldap_escape};
use serde_json::{Map, Value};

use super::{upstream, upstream_flow::UpstreamError};
use crate::{identity::UpstreamIdentity, users::User};
use crds::connector::{IdentityConnectorSpec, LdapConnector};

/// Entries under `base` matching `filter`, with attribute `attr`.
async fn search(
    ldap: &mut Ldap,
    base: &str,
    scope: Scope,
    filter: &str,
    attr: &str,
) -> Result<Vec<ldap3::ResultEntry>, UpstreamError> {
    let found = ldap
        .with_timeout(LDAP_TIMEOUT)
        .search(base, scope, filter, vec![attr])
        .await
        .map_err(unreachable)?;
    // noSuchObject: a group a user still names is gone; nothing to read.
    if found.1.rc == 32 {
        return Ok(Vec::new());
    }
    found
        .success()
        .map(|(entries, _)| entries)
        .map_err(unreachable)
}

/// The most groups read for one person through `memberOf`.
const MAX_GROUPS: usize = 256;

/// One LDAP directory, ready to check passwords.
pub struct LdapUpstream {
    pub name: String,
    pub spec: IdentityConnectorSpec,
    pub settings: LdapConnector,
    bind_password: String,
    /// With a `caRef`: TLS checked against its CAs; else the system's (ldap3's default).
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for LdapUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapUpstream")
            .field("name", &self.name)
            .field("url", &self.settings.url)
            .finish_non_exhaustive()
    }
}

/// An LDAP failure: the directory could not be asked (a refused service bind is also this: the
/// person cannot be helped by typing again).
fn unreachable(e: impl std::fmt::Display) -> UpstreamError {
    UpstreamError::Unreachable(e.to_string())
}

impl LdapUpstream {
    /// `ca_pem`: the CA certificates the directory's certificate is checked against, instead of
    /// the system's.
    pub fn new(
        name: &str,
        spec: IdentityConnectorSpec,
        settings: LdapConnector,
        bind_password: String,
        ca_pem: Option<&str>,
    ) -> Result<Self, String> {
        let tls = crds::ldap::tls_config(ca_pem)?;
        Ok(Self {
            name: name.to_string(),
            spec,
            settings,
            bind_password,
            tls,
        })
    }

    /// A connection bound as the service account, over TLS.
    async fn connect(&self) -> Result<Ldap, UpstreamError> {
        crds::ldap::connect(&self.settings, &self.bind_password, self.tls.clone())
            .await
            .map_err(unreachable)
    }

    /// The entry of `username`, when exactly one matches.
    async fn find(
        &self,
        ldap: &mut Ldap,
        username: &str,
    ) -> Result<Option<SearchEntry>, UpstreamError> {
        let s = &self.settings.user_search;
        let filter = format!(
            "(&{}({}={}))",
            s.filter,
            s.username_attribute,
            ldap_escape(username)
        );
        let attrs = vec![
            s.username_attribute.as_str(),
            s.subject_attribute.as_str(),
            s.email_attribute.as_str(),
            s.name_attribute.as_str(),
        ]
        .into_iter()
        .chain(
            self.settings
                .group_search
                .as_ref()
                .and_then(|g| g.user_attribute.as_deref()),
        )
        .collect::<Vec<_>>();
        let (entries, _) = ldap
            .with_timeout(LDAP_TIMEOUT)
            .search(&s.base_dn, Scope::Subtree, &filter, attrs)
            .await
            .and_then(ldap3::SearchResult::success)
            .map_err(unreachable)?;
        Ok(match entries.len() {
            1 => entries.into_iter().next().map(SearchEntry::construct),
            _ => None,
        })
    }

    /// The names of the groups of the user `entry`.
    async fn groups(
        &self,
        ldap: &mut Ldap,
        entry: &SearchEntry,
    ) -> Result<Vec<String>, UpstreamError> {
        let Some(g) = &self.settings.group_search else {
            return Ok(Vec::new());
        };
        let entries = match &g.user_attribute {
            // memberOf (Active Directory): the group DNs are on the user; each group under
            // baseDN that matches the filter is read for its name (a base search: no
            // server-specific filter on DNs).
            Some(attr) => {
                let base = g.base_dn.to_ascii_lowercase();
                let dns: Vec<String> = entry
                    .attrs
                    .get(attr)
                    .into_iter()
                    .flatten()
                    .filter(|dn| dn.to_ascii_lowercase().ends_with(&base))
                    .take(MAX_GROUPS)
                    .cloned()
                    .collect();
                let mut all = Vec::new();
                for dn in dns {
                    all.extend(search(ldap, &dn, Scope::Base, &g.filter, &g.name_attribute).await?);
                }
                all
            }
            None => {
                let filter = format!(
                    "(&{}({}={}))",
                    g.filter,
                    g.member_attribute,
                    ldap_escape(entry.dn.as_str())
                );
                search(ldap, &g.base_dn, Scope::Subtree, &filter, &g.name_attribute).await?
            }
        };
        let mut names: Vec<String> = entries
            .into_iter()
            .map(SearchEntry::construct)
            .filter_map(|e| e.attrs.get(&g.name_attribute)?.first().cloned())
            .collect();
        names.sort();
        Ok(names)
    }

    /// The person the directory knows as `username` with `password`; `None` for a wrong
    /// username or password (one answer for both).
    pub async fn sign_in(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<UpstreamIdentity>, UpstreamError> {
        // An empty password would be an unauthenticated bind (RFC 4513 §5.1.2): it "succeeds".
        if username.is_empty() || password.is_empty() {
            return Ok(None);
        }
        let mut ldap = self.connect().await?;
        let entry = self.find(&mut ldap, username).await?;
        // Unknown users bind too, to a DN that does not exist: the same steps either way.
        let dn = entry.as_ref().map_or_else(
            || format!("cn=no-such-user,{}", self.settings.user_search.base_dn),
            |e| e.dn.clone(),
        );
        let bound = ldap
            .with_timeout(LDAP_TIMEOUT)
            .simple_bind(&dn, password)
            .await
            .map_err(unreachable)?;
        let (Some(entry), 0) = (entry, bound.rc) else {
            let _ = ldap.unbind().await;
            return Ok(None);
        };
        // Groups are searched as the service account again.
        ldap.with_timeout(LDAP_TIMEOUT)
            .simple_bind(&self.settings.bind_dn, &self.bind_password)
            .await
            .and_then(ldap3::LdapResult::success)
            .map_err(unreachable)?;
        let groups = self.groups(&mut ldap, &entry).await?;
        let _ = ldap.unbind().await;
        Ok(Some(self.identity(&entry, groups)?))
    }

    /// `identity` looked up again (at a refresh): the same person with their groups now, or
    /// `Refused` when the directory no longer has them.
    pub async fn lookup(
        &self,
        identity: &UpstreamIdentity,
    ) -> Result<UpstreamIdentity, UpstreamError> {
        let username = identity
            .upstream_claims
            .get("username")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let mut ldap = self.connect().await?;
        let entry = self.find(&mut ldap, username).await?;
        let Some(entry) = entry else {
            let _ = ldap.unbind().await;
            return Err(UpstreamError::Refused("no longer in the directory".into()));
        };
        let groups = self.groups(&mut ldap, &entry).await?;
        let _ = ldap.unbind().await;
        let fresh = self.identity(&entry, groups)?;
        if fresh.user.subject() != identity.user.subject() {
            return Err(UpstreamError::Refused(
                "the username now names someone else".into(),
            ));
        }
        Ok(fresh)
    }

    /// The person of a directory entry.
    fn identity(
        &self,
        entry: &SearchEntry,
        groups: Vec<String>,
    ) -> Result<UpstreamIdentity, UpstreamError> {
        let s = &self.settings.user_search;
        let first = |attr: &str| {
            entry
                .attrs
                .get(attr)
                .and_then(|v| v.first())
                .filter(|v| !v.is_empty())
                .cloned()
        };
        // A binary subject (Active Directory's objectGUID) is encoded.
        let subject = first(&s.subject_attribute)
            .or_else(|| {
                entry
                    .bin_attrs
                    .get(&s.subject_attribute)
                    .and_then(|v| v.first())
                    .map(|b| B64.encode(b))
            })
            .ok_or_else(|| {
                UpstreamError::Invalid(format!(
                    "the entry has no {} (userSearch.subjectAttribute)",
                    s.subject_attribute
                ))
            })?;
        let username = first(&s.username_attribute).unwrap_or_default();
        let email = first(&s.email_attribute);
        let groups = upstream::scoped_groups(&self.spec, groups);
        let mut upstream_claims = Map::new();
        upstream_claims.insert("username".into(), Value::String(username.clone()));
        upstream_claims.insert("dn".into(), Value::String(entry.dn.clone()));
        Ok(UpstreamIdentity {
            connector: self.name.clone(),
            user: User {
                preferred_username: Some(username.clone()),
                username,
                password_hash: String::new(),
                sub: Some(upstream::subject(
                    upstream::realm(&self.name, &self.spec),
                    &subject,
                )),
                // The directory is the platform team's own record of the address.
                email_verified: email.as_ref().map(|_| true),
                email,
                name: first(&s.name_attribute),
                given_name: first("givenName"),
                family_name: first("sn"),
                phone_number: None,
                phone_number_verified: None,
                address: None,
                groups,
                claims: Map::new(),
                connector: Some(self.name.clone()),
            },
            upstream_claims,
            sealed_refresh: None,
            kept_until: 0,
        })
    }
}
