//! `IdentityConnector`: where people sign in from. An upstream OpenID Connect provider (Google,
//! Entra ID, Okta, Keycloak, GitLab, Dex, another kube-oidc), an LDAP directory (OpenLDAP,
//! Active Directory), or the local users Secret. Read only in the provider's namespace (the
//! platform team's); credentials come from Secrets there, never from the spec.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// An upstream identity source people sign in with.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "kubeoidc.dev",
    version = "v1alpha1",
    kind = "IdentityConnector",
    namespaced,
    doc = "An identity source people sign in with: an upstream OpenID Connect provider, an LDAP directory, or the local users Secret.",
    status = "IdentityConnectorStatus",
    shortname = "oidcic",
    category = "kube-oidc",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(name = "Name", type_ = "string", json_path = ".spec.displayName"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        priority = 1,
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = crate::cel::connector_settings_match_type())]
pub struct IdentityConnectorSpec {
    /// What kind of source this is; its settings go in the field of that name.
    #[serde(rename = "type")]
    pub type_: ConnectorType,

    /// The button's text on the sign-in page ("Sign in with ...").
    #[schemars(length(min = 1, max = 64))]
    pub display_name: String,

    /// Turned off: not offered, and its users' sessions and refresh tokens stop working.
    #[serde(default)]
    pub disabled: bool,

    /// Settings of an upstream OpenID Connect provider (`type: oidc`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc: Option<OidcConnector>,

    /// Settings of an LDAP directory (`type: ldap`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap: Option<LdapConnector>,

    /// Subjects are derived from this name and the upstream's subject; the connector's own name
    /// when left out, so that one person through two connectors is two subjects. Connectors
    /// that share a value give a person one subject: set it only where their subject claims (or
    /// attributes) name the same person in both, such as an email both verify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub subject_realm: Option<String>,

    /// Groups from this source get this prefix (for example `corp:`), so that they cannot pass
    /// for another source's groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub group_prefix: Option<String>,

    /// Only these groups are taken from the source (before the prefix); all when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub groups_allowed: Vec<String>,
}

/// The kinds of identity sources.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ConnectorType {
    Oidc,
    Ldap,
    Local,
}

/// A key of a Secret in the provider's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = crate::cel::object_name("name"))]
    pub name: String,
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// An upstream OpenID Connect provider: people sign in there (authorization code with PKCE,
/// `state` and `nonce`), and its ID token, checked against its published keys, says who they are.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OidcConnector {
    /// The upstream's issuer; its discovery document is at
    /// `<issuer>/.well-known/openid-configuration`. https, or http on a loopback host.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = crate::cel::uri_rules("issuer")[0].clone())]
    #[x_kube(validation = crate::cel::uri_rules("issuer")[1].clone())]
    #[x_kube(validation = crate::cel::uri_rules("issuer")[2].clone())]
    pub issuer: String,

    /// The client ID kube-oidc has at the upstream.
    #[schemars(length(min = 1, max = 256))]
    pub client_id: String,

    /// The Secret key holding the client secret kube-oidc has at the upstream.
    pub client_secret_ref: SecretKeyRef,

    /// A Secret key with the CA certificates (PEM) the upstream's TLS certificate is checked
    /// against, instead of the system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_ref: Option<SecretKeyRef>,

    /// Scopes asked of the upstream (default: openid, email, profile).
    #[serde(default = "default_oidc_scopes")]
    #[schemars(length(max = 32), extend("default" = ["openid", "email", "profile"]))]
    pub scopes: Vec<String>,

    /// Also read the upstream's userinfo endpoint (for claims its ID token leaves out).
    #[serde(default)]
    pub userinfo: bool,

    /// Which upstream claims become which of ours.
    #[serde(default)]
    pub claims: ClaimNames,

    /// Accept an email the upstream does not say is verified. Only for upstreams that never
    /// send `email_verified` and are trusted for email anyway.
    #[serde(default)]
    pub insecure_skip_email_verified: bool,
}

/// The upstream claim names that become username, email, its verification, name and groups.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClaimNames {
    #[serde(default = "claim_preferred_username")]
    #[schemars(extend("default" = "preferred_username"))]
    pub username: String,
    #[serde(default = "claim_email")]
    #[schemars(extend("default" = "email"))]
    pub email: String,
    #[serde(default = "claim_email_verified")]
    #[schemars(extend("default" = "email_verified"))]
    pub email_verified: String,
    #[serde(default = "claim_name")]
    #[schemars(extend("default" = "name"))]
    pub name: String,
    #[serde(default = "claim_groups")]
    #[schemars(extend("default" = "groups"))]
    pub groups: String,
    /// The upstream claim our `sub` is made from, when not the upstream's `sub`. Subjects are
    /// always scoped to this connector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

impl Default for ClaimNames {
    fn default() -> Self {
        Self {
            username: claim_preferred_username(),
            email: claim_email(),
            email_verified: claim_email_verified(),
            name: claim_name(),
            groups: claim_groups(),
            subject: None,
        }
    }
}

/// An LDAP directory: a service account searches the user, the user's password is checked by
/// binding as them, and their groups are searched.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = crate::cel::ldap_over_tls())]
pub struct LdapConnector {
    /// `ldaps://host:636`, or `ldap://host:389` with `startTLS: true`. Plain LDAP is refused.
    #[schemars(length(min = 1, max = 2048))]
    pub url: String,

    /// Upgrade an `ldap://` connection with StartTLS.
    #[serde(default, rename = "startTLS")]
    pub start_tls: bool,

    /// A Secret key with the CA certificates (PEM) the directory's certificate is checked
    /// against, instead of the system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_ref: Option<SecretKeyRef>,

    /// The service account's DN.
    #[serde(rename = "bindDN")]
    #[schemars(length(min = 1, max = 1024))]
    pub bind_dn: String,

    /// The Secret key holding the service account's password.
    pub bind_password_ref: SecretKeyRef,

    /// How a user is found.
    pub user_search: LdapUserSearch,

    /// How a user's groups are found; none when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_search: Option<LdapGroupSearch>,
}

/// Finding a user: `(&<filter>(<usernameAttribute>=<escaped username>))` under `baseDN`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LdapUserSearch {
    #[serde(rename = "baseDN")]
    #[schemars(length(min = 1, max = 1024))]
    pub base_dn: String,
    /// An extra filter, such as `(objectClass=person)`.
    #[serde(default = "default_user_filter")]
    #[schemars(length(max = 1024), extend("default" = "(objectClass=person)"))]
    pub filter: String,
    /// The attribute people type as their username (`uid`; `sAMAccountName` in Active Directory).
    #[serde(default = "attr_uid")]
    #[schemars(length(min = 1, max = 128), extend("default" = "uid"))]
    pub username_attribute: String,
    /// The attribute our `sub` is made from: stable across renames (`entryUUID`;
    /// `objectGUID` in Active Directory).
    #[serde(default = "attr_entry_uuid")]
    #[schemars(length(min = 1, max = 128), extend("default" = "entryUUID"))]
    pub subject_attribute: String,
    #[serde(default = "attr_mail")]
    #[schemars(length(min = 1, max = 128), extend("default" = "mail"))]
    pub email_attribute: String,
    #[serde(default = "attr_cn")]
    #[schemars(length(min = 1, max = 128), extend("default" = "cn"))]
    pub name_attribute: String,
}

/// Finding a user's groups: entries under `baseDN` matching `filter` whose `memberAttribute`
/// holds the user's DN (`member`, `uniqueMember`), or, with `userAttribute`, the groups named
/// by that attribute of the user (`memberOf`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LdapGroupSearch {
    #[serde(rename = "baseDN")]
    #[schemars(length(min = 1, max = 1024))]
    pub base_dn: String,
    #[serde(default = "default_group_filter")]
    #[schemars(length(max = 1024), extend("default" = "(objectClass=groupOfNames)"))]
    pub filter: String,
    #[serde(default = "attr_member")]
    #[schemars(length(min = 1, max = 128), extend("default" = "member"))]
    pub member_attribute: String,
    /// Read the groups from this attribute of the user instead (`memberOf`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_attribute: Option<String>,
    #[serde(default = "attr_cn")]
    #[schemars(length(min = 1, max = 128), extend("default" = "cn"))]
    pub name_attribute: String,
}

/// Whether the connector can be used, and what to fix otherwise.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IdentityConnectorStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`: the upstream's discovery answered (OIDC), the service account bound (LDAP).
    #[serde(default)]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

fn default_oidc_scopes() -> Vec<String> {
    ["openid", "email", "profile"].map(String::from).to_vec()
}
fn claim_preferred_username() -> String {
    "preferred_username".into()
}
fn claim_email() -> String {
    "email".into()
}
fn claim_email_verified() -> String {
    "email_verified".into()
}
fn claim_name() -> String {
    "name".into()
}
fn claim_groups() -> String {
    "groups".into()
}
fn default_user_filter() -> String {
    "(objectClass=person)".into()
}
fn default_group_filter() -> String {
    "(objectClass=groupOfNames)".into()
}
fn attr_uid() -> String {
    "uid".into()
}
fn attr_entry_uuid() -> String {
    "entryUUID".into()
}
fn attr_mail() -> String {
    "mail".into()
}
fn attr_cn() -> String {
    "cn".into()
}
fn attr_member() -> String {
    "member".into()
}

impl IdentityConnectorSpec {
    /// The settings of its type are there, and only those.
    pub fn settings_match_type(&self) -> bool {
        match self.type_ {
            ConnectorType::Oidc => self.oidc.is_some() && self.ldap.is_none(),
            ConnectorType::Ldap => self.ldap.is_some() && self.oidc.is_none(),
            ConnectorType::Local => self.oidc.is_none() && self.ldap.is_none(),
        }
    }
}
