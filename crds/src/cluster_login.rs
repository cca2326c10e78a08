//! `ClusterLogin`: "this client is how people log in to this cluster with kubectl".
//!
//! The operator renders, and keeps current, what the cluster's side needs: the `jwt` entry of the
//! API server's `AuthenticationConfiguration` (apiserver.config.k8s.io/v1) and kubeconfig user
//! entries for kubelogin, in a ConfigMap next to it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// Makes an OidcClient the way people log in to the cluster: the operator renders the API
/// server's authentication configuration and kubeconfig entries for kubelogin into a ConfigMap.
/// Only read in the provider's namespace (the platform team's).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "kubeoidc.dev",
    version = "v1alpha1",
    kind = "ClusterLogin",
    namespaced,
    doc = "Makes an OidcClient the way people log in to this cluster with kubectl; the operator renders the API server's AuthenticationConfiguration and kubeconfig entries.",
    status = "ClusterLoginStatus",
    shortname = "oidccl",
    category = "kube-oidc",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Client", type_ = "string", json_path = ".spec.clientName"),
    printcolumn(name = "ConfigMap", type_ = "string", json_path = ".status.configMap"),
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
pub struct ClusterLoginSpec {
    /// Name of the OidcClient, in this namespace, that people log in with: `type: public`, with
    /// the `authorization_code` grant and a loopback redirect URI with a port (browser login),
    /// and/or the device grant (headless login).
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = crate::cel::object_name("clientName"))]
    pub client_name: String,

    /// Where the issuer's CA certificate is, to inline it into the configuration. Leave it out
    /// when the issuer's certificate is signed by a CA that the API server and users' machines
    /// already trust.
    #[serde(default, rename = "issuerCA", skip_serializing_if = "Option::is_none")]
    pub issuer_ca: Option<CaReference>,

    /// How the Kubernetes username is taken from the ID token.
    #[serde(default = "default_username")]
    #[schemars(extend("default" = {"claim": "email", "prefix": "oidc:"}))]
    pub username: ClaimMapping,

    /// How Kubernetes groups are taken from the ID token.
    #[serde(default = "default_groups")]
    #[schemars(extend("default" = {"claim": "groups", "prefix": "oidc:"}))]
    pub groups: ClaimMapping,

    /// Name of the ConfigMap the operator writes, in this namespace (default: this object's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = crate::cel::object_name("configMapName"))]
    pub config_map_name: Option<String>,

    /// Name of the user in the rendered kubeconfig entries (default `oidc`; the device variant
    /// adds `-device`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    #[x_kube(validation = crate::cel::object_name("kubeconfigUser"))]
    pub kubeconfig_user: Option<String>,
}

/// Exactly one of a Secret or a ConfigMap key, in the ClusterLogin's namespace, holding PEM
/// certificates.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = crate::cel::exactly_one_ca_source())]
pub struct CaReference {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<KeyReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<KeyReference>,
}

/// A key of a Secret or ConfigMap.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct KeyReference {
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = crate::cel::object_name("name"))]
    pub name: String,
    /// The key (default `ca.crt`).
    #[serde(default = "default_ca_key")]
    #[schemars(length(min = 1, max = 253), extend("default" = "ca.crt"))]
    pub key: String,
}

/// A claim of the ID token and the prefix put before its value.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClaimMapping {
    /// The claim, such as `email`, `preferred_username`, `sub` or `groups`.
    #[schemars(length(min = 1, max = 64))]
    #[x_kube(validation = crate::cel::claim_name())]
    pub claim: String,
    /// Put before every value so that names from the issuer never collide with names of
    /// Kubernetes itself or of other issuers (default `oidc:`; `""` for none).
    #[serde(default = "default_prefix")]
    #[schemars(length(max = 64), extend("default" = "oidc:"))]
    pub prefix: String,
}

fn default_prefix() -> String {
    "oidc:".into()
}

fn default_ca_key() -> String {
    "ca.crt".into()
}

fn default_username() -> ClaimMapping {
    ClaimMapping {
        claim: "email".into(),
        prefix: default_prefix(),
    }
}

fn default_groups() -> ClaimMapping {
    ClaimMapping {
        claim: "groups".into(),
        prefix: default_prefix(),
    }
}

/// What the operator rendered and whether it is current.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterLoginStatus {
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Ready` says whether the ConfigMap holds a configuration current with the client, the
    /// issuer and its CA.
    #[serde(default)]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// The ConfigMap, in this namespace, that holds the rendered files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<String>,

    /// The client ID the API server accepts as the audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,

    /// The files in the ConfigMap.
    #[serde(default)]
    pub files: Vec<String>,

    /// SHA-256 of the rendered files: it changes exactly when they do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,

    /// When the files last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rendered_at: Option<Time>,
}

impl ClusterLogin {
    /// The ConfigMap the operator writes: `spec.configMapName`, else the object's name.
    pub fn config_map_name(&self) -> String {
        self.spec
            .config_map_name
            .clone()
            .unwrap_or_else(|| self.metadata.name.clone().unwrap_or_default())
    }

    /// The user name in the kubeconfig entries.
    pub fn kubeconfig_user(&self) -> String {
        self.spec
            .kubeconfig_user
            .clone()
            .unwrap_or_else(|| "oidc".into())
    }
}

impl CaReference {
    /// (kind, reference) of the source that is set.
    pub fn source(&self) -> Option<(&'static str, &KeyReference)> {
        match (&self.secret, &self.config_map) {
            (Some(s), None) => Some(("Secret", s)),
            (None, Some(c)) => Some(("ConfigMap", c)),
            _ => None,
        }
    }
}
