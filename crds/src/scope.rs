//! `OidcScope`: a scope clients may request, the claims it releases and its audience.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// A scope that clients may request. Lives in the provider's namespace. An OidcScope named like
/// a built-in scope (openid, profile, email, address, phone, offline_access, groups) overrides its
/// description.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "kubeoidc.dev",
    version = "v1alpha1",
    kind = "OidcScope",
    namespaced,
    doc = "A scope that OpenID Connect clients may request, with the claims it releases.",
    status = "OidcScopeStatus",
    shortname = "oidcs",
    category = "kube-oidc",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Scope", type_ = "string", json_path = ".status.scope"),
    printcolumn(name = "Audience", type_ = "string", json_path = ".spec.audience"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct OidcScopeSpec {
    /// The scope value clients send, when it differs from metadata.name (for example
    /// `api:read`, which is not a valid object name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    #[x_kube(validation = crate::cel::scope_token("name"))]
    pub name: Option<String>,

    /// What granting this scope allows, shown to the user on the consent page.
    #[serde(default)]
    #[schemars(length(max = 1024))]
    pub description: String,

    /// User claims released in the ID token and at userinfo when this scope is granted.
    #[serde(default)]
    #[schemars(length(max = 64), inner(length(min = 1, max = 256)))]
    #[x_kube(merge_strategy = kube::core::ListMerge::Set)]
    pub claims: Vec<String>,

    /// Added to the `aud` of access tokens that carry this scope: the resource server (API) the
    /// scope is for. Such a resource server may introspect those tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    pub audience: Option<String>,

    /// With an audience: the namespaces whose clients may request this scope (besides the
    /// provider's own). Everyone else gets `invalid_scope`, and a condition on their client.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(min = 1, max = 63)))]
    #[x_kube(merge_strategy = kube::core::ListMerge::Set)]
    pub allowed_namespaces: Vec<String>,

    /// With an audience: single clients (`<namespace>/<name>`) that may request this scope.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(min = 3, max = 317)))]
    #[x_kube(merge_strategy = kube::core::ListMerge::Set)]
    pub allowed_clients: Vec<String>,
}

/// What the operator observed and decided about an OidcScope.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OidcScopeStatus {
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Current state; `Ready` says whether clients may request the scope.
    #[serde(default)]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// The effective scope value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl OidcScope {
    /// The scope value: `spec.name`, else `metadata.name`.
    pub fn scope(&self) -> String {
        self.spec
            .name
            .clone()
            .unwrap_or_else(|| self.metadata.name.clone().unwrap_or_default())
    }
}

/// A scope every installation has (OpenID Connect Core §5.4, §11 and common practice).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BuiltinScope {
    pub name: &'static str,
    pub description: &'static str,
    pub claims: &'static [&'static str],
}

/// The built-in scopes.
/// The scopes whose claims OpenID Connect Core §5.4 returns at userinfo, not in the ID token,
/// when an access token is issued too.
pub const USERINFO_SCOPES: [&str; 4] = ["profile", "email", "address", "phone"];

pub const BUILTIN_SCOPES: &[BuiltinScope] = &[
    BuiltinScope {
        name: "openid",
        description: "Sign you in with your account",
        claims: &["sub"],
    },
    BuiltinScope {
        name: "profile",
        description: "See your name and basic profile information",
        claims: &[
            "name",
            "family_name",
            "given_name",
            "middle_name",
            "nickname",
            "preferred_username",
            "profile",
            "picture",
            "website",
            "gender",
            "birthdate",
            "zoneinfo",
            "locale",
            "updated_at",
        ],
    },
    BuiltinScope {
        name: "email",
        description: "See your email address",
        claims: &["email", "email_verified"],
    },
    BuiltinScope {
        name: "address",
        description: "See your postal address",
        claims: &["address"],
    },
    BuiltinScope {
        name: "phone",
        description: "See your phone number",
        claims: &["phone_number", "phone_number_verified"],
    },
    BuiltinScope {
        name: "offline_access",
        description: "Stay signed in to this application when you are not using it",
        claims: &[],
    },
    BuiltinScope {
        name: "groups",
        description: "See the groups you belong to",
        claims: &["groups"],
    },
];

/// Looks up a built-in scope by name.
pub fn builtin(name: &str) -> Option<&'static BuiltinScope> {
    BUILTIN_SCOPES.iter().find(|s| s.name == name)
}
