//! `ClientPolicy`: what application teams may do with their OidcClients, owned by the platform
//! team, and the check the operator (Ready=False, `PolicyViolation`) and the provider (the
//! client is not served) both run.
//!
//! Which policy governs a namespace: the one its label `kubeoidc.dev/client-policy` names (only
//! cluster administrators edit Namespace objects, tenants do not), else the policy named
//! `default`, else the built-in defaults. The provider's own namespace, where the platform team
//! keeps its clients, is trusted unless labelled.

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema, core::Duration};
use serde::{Deserialize, Serialize};

use crate::{ConsentPolicy, GrantType, OidcClient, OidcScope};

/// Namespace label naming the ClientPolicy that governs the namespace's OidcClients.
pub const POLICY_LABEL: &str = "kubeoidc.dev/client-policy";
/// The policy of namespaces without the label.
pub const DEFAULT_POLICY: &str = "default";

/// What OidcClients in the namespaces it governs may do. Cluster-scoped; a namespace is governed
/// by the policy its label `kubeoidc.dev/client-policy` names, else by the policy `default`.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "kubeoidc.dev",
    version = "v1alpha1",
    kind = "ClientPolicy",
    doc = "What OidcClients may do in the namespaces this policy governs (namespace label kubeoidc.dev/client-policy=<name>; unlabelled namespaces: the policy named default).",
    shortname = "oidcpol",
    category = "kube-oidc",
    printcolumn(
        name = "Consent-Skip",
        type_ = "boolean",
        json_path = ".spec.allowConsentSkip"
    ),
    printcolumn(
        name = "Routed-Hosts",
        type_ = "boolean",
        json_path = ".spec.routedRedirectHosts"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ClientPolicySpec {
    /// Client IDs other than `<namespace>.<name>` are allowed only when they match one of these
    /// patterns (`*` matches any run of characters, `{namespace}` the client's namespace, as in
    /// `{namespace}-*`). Empty: every client's ID is `<namespace>.<name>`.
    #[serde(default)]
    #[schemars(length(max = 32), inner(length(min = 1, max = 128)))]
    pub client_id_patterns: Vec<String>,

    /// Hosts that redirect and post-logout redirect URIs may name (`*.team-a.example.com`,
    /// `{namespace}.apps.example.com`). Empty: any host. Loopback hosts are always allowed.
    #[serde(default)]
    #[schemars(length(max = 64), inner(length(min = 1, max = 253)))]
    pub redirect_hosts: Vec<String>,

    /// A redirect host must also be routed to the client's namespace: a host of an Ingress or a
    /// Gateway API HTTPRoute in it. Loopback hosts are exempt.
    #[serde(default)]
    pub routed_redirect_hosts: bool,

    /// Grant types clients may list. Empty: every grant the provider serves.
    #[serde(default)]
    #[schemars(length(max = 8))]
    pub grant_types: Vec<GrantType>,

    /// Scopes clients may list. Empty: any scope (a scope with an audience also needs the
    /// OidcScope's own permission).
    #[serde(default)]
    #[schemars(length(max = 128), inner(length(min = 1, max = 256)))]
    pub scopes: Vec<String>,

    /// Whether clients may set `consent: skip` (sign users in without asking them).
    #[serde(default)]
    pub allow_consent_skip: bool,

    /// Whether clients may list the implicit and hybrid response types (`id_token`,
    /// `id_token token`, `code id_token`, ...), which return tokens from the authorization
    /// endpoint through the browser. Off by default: RFC 9700 §2.1.2 advises the code flow.
    #[serde(default)]
    pub allow_implicit: bool,

    /// Upper bounds of the lifetimes clients may set.
    #[serde(default)]
    pub max_lifetimes: MaxLifetimes,
}

/// Upper bounds of token lifetimes and of a session kept alive by refresh tokens.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MaxLifetimes {
    #[serde(default = "day")]
    #[schemars(length(max = 64), extend("default" = "24h"))]
    #[x_kube(validation = crate::cel::positive_duration("accessToken"))]
    pub access_token: Duration,
    #[serde(default = "day")]
    #[schemars(length(max = 64), extend("default" = "24h"))]
    #[x_kube(validation = crate::cel::positive_duration("idToken"))]
    pub id_token: Duration,
    #[serde(default = "month")]
    #[schemars(length(max = 64), extend("default" = "720h"))]
    #[x_kube(validation = crate::cel::positive_duration("refreshToken"))]
    pub refresh_token: Duration,
    /// How long a sign-in may be kept alive by refreshing, from the moment the user signed in;
    /// then the user signs in again.
    #[serde(default = "month")]
    #[schemars(length(max = 64), extend("default" = "720h"))]
    #[x_kube(validation = crate::cel::positive_duration("session"))]
    pub session: Duration,
}

fn day() -> Duration {
    std::time::Duration::from_secs(24 * 3600).into()
}

fn month() -> Duration {
    std::time::Duration::from_secs(720 * 3600).into()
}

impl Default for MaxLifetimes {
    fn default() -> Self {
        Self {
            access_token: day(),
            id_token: day(),
            refresh_token: month(),
            session: month(),
        }
    }
}

/// The built-in defaults: what a namespace without a policy gets.
impl Default for ClientPolicySpec {
    fn default() -> Self {
        Self {
            client_id_patterns: Vec::new(),
            redirect_hosts: Vec::new(),
            routed_redirect_hosts: false,
            grant_types: Vec::new(),
            scopes: Vec::new(),
            allow_consent_skip: false,
            allow_implicit: false,
            max_lifetimes: MaxLifetimes::default(),
        }
    }
}

/// Label on the OidcClients that dynamic client registration creates.
pub const REGISTERED_LABEL: &str = "kubeoidc.dev/registered";

/// The rules that govern a namespace.
#[derive(Clone, Copy, Debug)]
pub enum Governing<'a> {
    /// The provider's own namespace: the platform team's clients.
    Trusted,
    /// A ClientPolicy.
    Policy(&'a ClientPolicy),
    /// No policy: [`ClientPolicySpec::default`].
    BuiltIn,
    /// A client made by dynamic registration, in a namespace without a policy label: the
    /// built-in defaults, only the code and refresh grants, only the built-in user scopes.
    Registration,
}

/// The rules of registered clients without a policy of their namespace's own.
pub fn registration_defaults() -> ClientPolicySpec {
    ClientPolicySpec {
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scopes: crate::BUILTIN_SCOPES
            .iter()
            .map(|s| s.name.to_string())
            .collect(),
        ..ClientPolicySpec::default()
    }
}

impl Governing<'_> {
    /// How a message names the rules.
    pub fn name(&self) -> String {
        match self {
            Self::Trusted => "the provider's namespace".into(),
            Self::Policy(p) => format!(
                "ClientPolicy {}",
                p.metadata.name.as_deref().unwrap_or_default()
            ),
            Self::BuiltIn => "the built-in client policy".into(),
            Self::Registration => "the built-in policy of registered clients".into(),
        }
    }

    /// The maximum length of a session kept alive by refresh tokens, if any.
    pub fn max_session(&self) -> Option<std::time::Duration> {
        match self {
            Self::Trusted => None,
            Self::Policy(p) => Some(p.spec.max_lifetimes.session.into()),
            Self::BuiltIn | Self::Registration => Some(MaxLifetimes::default().session.into()),
        }
    }
}

/// The policy that governs `client` in its namespace (with its labels): as [`governing`], but
/// a registered client is never trusted, wherever it was registered.
pub fn governing_client<'a>(
    client: &OidcClient,
    labels: Option<&BTreeMap<String, String>>,
    provider_namespace: &str,
    policies: &'a [ClientPolicy],
) -> Governing<'a> {
    let ns = client.metadata.namespace.as_deref().unwrap_or_default();
    let registered = client
        .metadata
        .labels
        .as_ref()
        .is_some_and(|l| l.contains_key(REGISTERED_LABEL));
    if !registered {
        return governing(ns, labels, provider_namespace, policies);
    }
    match labels.and_then(|l| l.get(POLICY_LABEL)) {
        Some(_) => governing(ns, labels, provider_namespace, policies),
        None => Governing::Registration,
    }
}

/// The policy that governs `namespace` (with its labels).
pub fn governing<'a>(
    namespace: &str,
    labels: Option<&BTreeMap<String, String>>,
    provider_namespace: &str,
    policies: &'a [ClientPolicy],
) -> Governing<'a> {
    let by_name = |name: &str| {
        policies
            .iter()
            .find(|p| p.metadata.name.as_deref() == Some(name))
    };
    if let Some(name) = labels.and_then(|l| l.get(POLICY_LABEL)) {
        // A label naming a missing policy falls back to the built-in defaults, never to trust.
        return by_name(name).map_or(Governing::BuiltIn, Governing::Policy);
    }
    if namespace == provider_namespace {
        return Governing::Trusted;
    }
    by_name(DEFAULT_POLICY).map_or(Governing::BuiltIn, Governing::Policy)
}

/// One rule a client breaks, and the fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub field: &'static str,
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// `*` matches any run of characters; `{namespace}` stands for the client's namespace.
pub fn glob_matches(pattern: &str, namespace: &str, value: &str) -> bool {
    let pattern = pattern.replace("{namespace}", namespace);
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, rest) = match parts.split_first() {
        Some(p) => p,
        None => return value.is_empty(),
    };
    let Some(mut remaining) = value.strip_prefix(first) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return remaining.is_empty();
    };
    for part in middle {
        match remaining.find(part) {
            Some(at) => remaining = &remaining[at + part.len()..],
            None => return false,
        }
    }
    remaining.len() >= last.len() && remaining.ends_with(last)
}

fn is_loopback(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "[::1]" | "::1")
}

/// Every rule `client` breaks under `governing`. `scopes` are the OidcScopes (an audience scope
/// names who may request it); `routed_hosts` are the hosts routed to the client's namespace
/// (Ingress, HTTPRoute), when known.
pub fn check_client(
    client: &OidcClient,
    governing: &Governing<'_>,
    scopes: &[OidcScope],
    routed_hosts: Option<&[String]>,
) -> Vec<Violation> {
    let mut out = audience_violations(client, governing, scopes);
    let builtin = ClientPolicySpec::default();
    let registration = registration_defaults();
    let policy = match governing {
        Governing::Trusted => return out,
        Governing::Policy(p) => &p.spec,
        Governing::BuiltIn => &builtin,
        Governing::Registration => &registration,
    };
    let name = governing.name();
    let ns = client.metadata.namespace.as_deref().unwrap_or_default();
    let own_id = format!(
        "{ns}.{}",
        client.metadata.name.as_deref().unwrap_or_default()
    );
    let spec = &client.spec;
    let mut push = |field, message: String| {
        out.push(Violation {
            field,
            message: format!("{name}: {message}"),
        })
    };

    // Registration names a client and its ID alike, at random (`dcr-...`).
    let registered_id = matches!(governing, Governing::Registration)
        && spec.client_id.as_deref() == client.metadata.name.as_deref()
        && client
            .metadata
            .name
            .as_deref()
            .is_some_and(|n| n.starts_with("dcr-"));
    if let Some(id) = spec
        .client_id
        .as_deref()
        .filter(|id| *id != own_id && !registered_id)
        && !policy
            .client_id_patterns
            .iter()
            .any(|p| glob_matches(p, ns, id))
    {
        push(
            "spec.clientId",
            if policy.client_id_patterns.is_empty() {
                format!(
                    "clientId {id} is not allowed: a client's ID here is {own_id}; remove spec.clientId"
                )
            } else {
                format!(
                    "clientId {id} is not allowed: remove spec.clientId (the ID is then {own_id}) or use an ID matching {}",
                    policy.client_id_patterns.join(", ")
                )
            },
        );
    }
    for (field, uris) in [
        ("spec.redirectUris", &spec.redirect_uris),
        (
            "spec.postLogoutRedirectUris",
            &spec.post_logout_redirect_uris,
        ),
    ] {
        for uri in uris {
            let Some(host) = url::Url::parse(uri)
                .ok()
                .and_then(|u| u.host_str().map(String::from))
            else {
                continue;
            };
            if is_loopback(&host) {
                continue;
            }
            if !policy.redirect_hosts.is_empty()
                && !policy
                    .redirect_hosts
                    .iter()
                    .any(|p| glob_matches(p, ns, &host))
            {
                push(
                    field,
                    format!(
                        "{uri}: host {host} is not allowed; allowed hosts: {}",
                        policy.redirect_hosts.join(", ")
                    ),
                );
            } else if policy.routed_redirect_hosts
                && let Some(routed) = routed_hosts
                && !routed.iter().any(|r| r == &host)
            {
                push(
                    field,
                    format!(
                        "{uri}: host {host} is not routed to namespace {ns}; redirect hosts must be hosts of an Ingress or HTTPRoute in it"
                    ),
                );
            }
        }
    }
    for g in &spec.grant_types {
        if !policy.grant_types.is_empty() && !policy.grant_types.contains(g) {
            push(
                "spec.grantTypes",
                format!(
                    "grant type {} is not allowed; allowed: {}",
                    g.as_str(),
                    policy
                        .grant_types
                        .iter()
                        .map(|g| g.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
    }
    if !policy.allow_implicit
        && let Some(t) = spec.response_types.iter().find(|t| t.is_implicit())
    {
        push(
            "spec.responseTypes",
            format!(
                "response type {} returns tokens through the browser (implicit or hybrid flow), which this namespace's policy does not allow; use code (or ask the platform team for a ClientPolicy with allowImplicit)",
                t.as_str()
            ),
        );
    }
    for s in &spec.scopes {
        if !policy.scopes.is_empty() && !policy.scopes.contains(s) {
            push(
                "spec.scopes",
                format!(
                    "scope {s} is not allowed; allowed: {}",
                    policy.scopes.join(", ")
                ),
            );
        }
    }
    if spec.consent == ConsentPolicy::Skip && !policy.allow_consent_skip {
        push(
            "spec.consent",
            "consent: skip is not allowed (users must be asked); use once or always".into(),
        );
    }
    let max = &policy.max_lifetimes;
    for (field, ttl, limit) in [
        (
            "spec.accessTokenTtl",
            &spec.access_token_ttl,
            &max.access_token,
        ),
        ("spec.idTokenTtl", &spec.id_token_ttl, &max.id_token),
        (
            "spec.refreshTokenTtl",
            &spec.refresh_token_ttl,
            &max.refresh_token,
        ),
    ] {
        let (t, l): (std::time::Duration, std::time::Duration) = ((*ttl).into(), (*limit).into());
        if t > l {
            push(
                field,
                format!("{t:?} is longer than the maximum {l:?}; shorten it"),
            );
        }
    }
    out
}

/// Scopes with an audience name who may request them: the provider's namespace always, and the
/// namespaces and clients the OidcScope lists.
fn audience_violations(
    client: &OidcClient,
    governing: &Governing<'_>,
    scopes: &[OidcScope],
) -> Vec<Violation> {
    if matches!(governing, Governing::Trusted) {
        return Vec::new();
    }
    let ns = client.metadata.namespace.as_deref().unwrap_or_default();
    let me = format!(
        "{ns}/{}",
        client.metadata.name.as_deref().unwrap_or_default()
    );
    client
        .spec
        .scopes
        .iter()
        .filter_map(|requested| {
            let scope = scopes.iter().find(|s| s.scope() == *requested)?;
            scope.spec.audience.as_ref()?;
            let allowed = scope.spec.allowed_namespaces.iter().any(|n| n == ns)
                || scope.spec.allowed_clients.contains(&me);
            (!allowed).then(|| Violation {
                field: "spec.scopes",
                message: format!(
                    "scope {requested} is for the audience {} and OidcScope {} does not allow {me}; ask the platform team to add the namespace to its allowedNamespaces or the client to its allowedClients",
                    scope.spec.audience.as_deref().unwrap_or_default(),
                    scope.metadata.name.as_deref().unwrap_or_default()
                ),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn client(ns: &str, spec: &str) -> OidcClient {
        serde_yaml::from_str(&format!(
            "apiVersion: kubeoidc.dev/v1alpha1\nkind: OidcClient\nmetadata: {{name: web, namespace: {ns}}}\nspec:\n{spec}"
        ))
        .unwrap()
    }

    fn policy(name: &str, spec: &str) -> ClientPolicy {
        serde_yaml::from_str(&format!(
            "apiVersion: kubeoidc.dev/v1alpha1\nkind: ClientPolicy\nmetadata: {{name: {name}}}\nspec:\n{spec}"
        ))
        .unwrap()
    }

    fn fields(v: &[Violation]) -> Vec<&str> {
        v.iter().map(|v| v.field).collect()
    }

    #[test]
    fn globs() {
        assert!(glob_matches(
            "*.team-a.example.com",
            "x",
            "app.team-a.example.com"
        ));
        assert!(!glob_matches(
            "*.team-a.example.com",
            "x",
            "team-a.example.com.evil"
        ));
        assert!(glob_matches("{namespace}-*", "team-a", "team-a-web"));
        assert!(!glob_matches("{namespace}-*", "team-a", "team-b-web"));
        assert!(glob_matches("exact", "x", "exact") && !glob_matches("exact", "x", "exact2"));
        assert!(glob_matches("a*b*c", "x", "aXbYc") && !glob_matches("a*b*c", "x", "aXcYb"));
    }

    #[test]
    fn the_label_picks_the_policy_and_the_provider_namespace_is_trusted() {
        let policies = vec![
            policy("default", "  allowConsentSkip: false\n"),
            policy("team-a", "  allowConsentSkip: true\n"),
        ];
        let labels: BTreeMap<String, String> =
            [(POLICY_LABEL.to_string(), "team-a".to_string())].into();
        let missing: BTreeMap<String, String> =
            [(POLICY_LABEL.to_string(), "nope".to_string())].into();
        assert!(
            matches!(governing("a", Some(&labels), "kube-oidc", &policies), Governing::Policy(p) if p.metadata.name.as_deref() == Some("team-a"))
        );
        assert!(
            matches!(governing("b", None, "kube-oidc", &policies), Governing::Policy(p) if p.metadata.name.as_deref() == Some("default"))
        );
        assert!(matches!(
            governing("kube-oidc", None, "kube-oidc", &policies),
            Governing::Trusted
        ));
        assert!(matches!(
            governing("b", Some(&missing), "kube-oidc", &policies),
            Governing::BuiltIn
        ));
        assert!(matches!(
            governing("b", None, "kube-oidc", &[]),
            Governing::BuiltIn
        ));
    }

    #[test]
    fn built_in_defaults_refuse_squatting_skip_and_long_lifetimes() {
        let squat = client(
            "team-b",
            "  clientId: team-a.web\n  redirectUris: [https://b.example/cb]\n  consent: skip\n  refreshTokenTtl: 9000h\n",
        );
        let v = check_client(&squat, &Governing::BuiltIn, &[], None);
        assert_eq!(
            fields(&v),
            ["spec.clientId", "spec.consent", "spec.refreshTokenTtl"],
            "{v:?}"
        );
        assert!(v[0].message.contains("team-b.web"), "{v:?}");
        // Its own ID, spelled out, is fine; the provider's namespace is trusted.
        let own = client(
            "team-b",
            "  clientId: team-b.web\n  redirectUris: [https://b.example/cb]\n",
        );
        assert!(check_client(&own, &Governing::BuiltIn, &[], None).is_empty());
        assert!(check_client(&squat, &Governing::Trusted, &[], None).is_empty());
    }

    #[test]
    fn a_policy_allows_patterns_hosts_grants_and_scopes() {
        let p = policy(
            "team-a",
            "  clientIdPatterns: ['{namespace}-*']\n  redirectHosts: ['*.a.example.com']\n  routedRedirectHosts: true\n  grantTypes: [authorization_code, refresh_token]\n  scopes: [openid, email]\n",
        );
        let g = Governing::Policy(&p);
        let ok = client(
            "team-a",
            "  clientId: team-a-web\n  redirectUris: [https://app.a.example.com/cb, http://localhost:8000/cb]\n  scopes: [openid]\n",
        );
        let routed = vec!["app.a.example.com".to_string()];
        assert!(check_client(&ok, &g, &[], Some(&routed)).is_empty());
        let v = check_client(&ok, &g, &[], Some(&[]));
        assert_eq!(fields(&v), ["spec.redirectUris"], "not routed here: {v:?}");
        let bad = client(
            "team-a",
            "  clientId: other\n  redirectUris: [https://evil.example/cb]\n  grantTypes: [client_credentials]\n  scopes: [openid, groups]\n",
        );
        let v = check_client(&bad, &g, &[], Some(&routed));
        assert_eq!(
            fields(&v),
            [
                "spec.clientId",
                "spec.redirectUris",
                "spec.grantTypes",
                "spec.scopes"
            ],
            "{v:?}"
        );
        assert!(
            v.iter()
                .all(|v| v.message.starts_with("ClientPolicy team-a: "))
        );
    }

    /// RFC 9700 §2.1.2: tokens through the browser only where the platform team allows them.
    #[test]
    fn implicit_and_hybrid_response_types_need_allow_implicit() {
        let hybrid = client(
            "team-a",
            "  redirectUris: [https://a.example/cb]\n  responseTypes: [code, code id_token]\n",
        );
        let v = check_client(&hybrid, &Governing::BuiltIn, &[], None);
        assert_eq!(fields(&v), ["spec.responseTypes"], "{v:?}");
        assert!(v[0].message.contains("allowImplicit"), "{v:?}");
        assert_eq!(
            fields(&check_client(&hybrid, &Governing::Registration, &[], None)),
            ["spec.responseTypes"]
        );
        let allowing = policy("team-a", "  allowImplicit: true\n");
        assert!(check_client(&hybrid, &Governing::Policy(&allowing), &[], None).is_empty());
        assert!(check_client(&hybrid, &Governing::Trusted, &[], None).is_empty());
        let code = client("team-a", "  redirectUris: [https://a.example/cb]\n");
        assert!(check_client(&code, &Governing::BuiltIn, &[], None).is_empty());
    }

    #[test]
    fn an_audience_scope_names_who_may_request_it() {
        let scope: OidcScope = serde_yaml::from_str(
            "apiVersion: kubeoidc.dev/v1alpha1\nkind: OidcScope\nmetadata: {name: payments, namespace: kube-oidc}\nspec:\n  audience: payments-api\n  allowedNamespaces: [payments]\n  allowedClients: [shop/web]\n",
        )
        .unwrap();
        let scopes = [scope];
        let asks = |ns: &str| {
            client(
                ns,
                "  grantTypes: [client_credentials]\n  scopes: [payments]\n",
            )
        };
        assert!(check_client(&asks("payments"), &Governing::BuiltIn, &scopes, None).is_empty());
        assert!(check_client(&asks("shop"), &Governing::BuiltIn, &scopes, None).is_empty());
        assert!(check_client(&asks("kube-oidc"), &Governing::Trusted, &scopes, None).is_empty());
        let v = check_client(&asks("tenant"), &Governing::BuiltIn, &scopes, None);
        assert_eq!(fields(&v), ["spec.scopes"]);
        assert!(v[0].message.contains("payments-api"), "{v:?}");
    }
}
