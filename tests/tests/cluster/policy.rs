//! Self-service with guardrails, tried as a tenant would: each attack of the guardrails issue
//! against the real control plane, refused by the operator (`Ready=False`, `PolicyViolation`
//! naming the rule and the fix) and by the provider even when the operator is not running.

use std::time::Duration;

use crds::OidcClient;
use kube_oidc_tests::{
    ControlPlane, Operator, Provider, TestNamespace, control_plane, controlplane::binary_dir,
};

use crate::{
    operator::eventually,
    provider::{client_credentials, create_signing_key},
};

fn kubectl(cp: &ControlPlane, args: &[&str]) {
    let out = cp.kubectl().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The client's Ready condition once it describes the current generation: (status, reason,
/// message).
async fn ready(ns: &TestNamespace, name: &str) -> Option<(String, String, String)> {
    let c = ns.api::<OidcClient>().get(name).await.ok()?;
    let s = c.status?;
    let r = crds::condition::find(&s.conditions, crds::condition::READY)?;
    (r.observed_generation == c.metadata.generation)
        .then(|| (r.status.clone(), r.reason.clone(), r.message.clone()))
}

async fn wait_reason(ns: &TestNamespace, name: &str, reason: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let seen = ready(ns, name).await;
        if let Some((_, r, message)) = &seen
            && r == reason
        {
            return message.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "OidcClient {}/{name} never got reason {reason}; last: {seen:?}",
            ns.name
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A platform namespace (the operator's) and two tenants, with the operator accepting clients in
/// the tenants' namespaces.
struct Tenants {
    platform: TestNamespace,
    a: TestNamespace,
    b: TestNamespace,
    operator: Operator,
}

async fn tenants(prefix: &str) -> Tenants {
    let cp = control_plane();
    let platform = cp.namespace(&format!("{prefix}-p")).await;
    let a = cp.namespace(&format!("{prefix}-a")).await;
    let b = cp.namespace(&format!("{prefix}-b")).await;
    let operator = Operator::start_for(
        cp,
        &platform.name,
        &format!("{},{},{}", platform.name, a.name, b.name),
        "a",
        &[],
    );
    Tenants {
        platform,
        a,
        b,
        operator,
    }
}

impl Tenants {
    async fn delete(self) {
        drop(self.operator);
        self.a.delete().await;
        self.b.delete().await;
        self.platform.delete().await;
    }
}

const WEB: &str = "apiVersion: kubeoidc.dev/v1alpha1
kind: OidcClient
metadata: {name: web}
spec:
  redirectUris: [https://web.example/cb]
";

/// Client ID squatting: team-b claims team-a's client ID, before and after team-a's client is
/// deleted, and with a policy that allows team-b custom IDs of its own.
#[tokio::test]
async fn a_tenant_cannot_squat_another_tenants_client_id() {
    let cp = control_plane();
    let t = tenants("squat").await;
    cp.apply(Some(&t.a.name), WEB);
    wait_reason(&t.a, "web", "Accepted").await;
    let squat = format!(
        "apiVersion: kubeoidc.dev/v1alpha1
kind: OidcClient
metadata: {{name: squatter}}
spec:
  clientId: {}.web
  redirectUris: [https://evil.example/cb]
",
        t.a.name
    );
    cp.apply(Some(&t.b.name), &squat);
    let message = wait_reason(&t.b, "squatter", "PolicyViolation").await;
    assert!(
        message.contains("built-in client policy")
            && message.contains(&format!("{}.squatter", t.b.name)),
        "{message}"
    );
    // The owner leaves: the ID is still not team-b's to take.
    kubectl(cp, &["delete", "oidcclient", "web", "-n", &t.a.name]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        ready(&t.b, "squatter").await.unwrap().1,
        "PolicyViolation",
        "the squatter took over a deleted client's ID"
    );
    // A policy of its own lets team-b choose IDs, only its own kind.
    let policy = format!("{}-custom-ids", t.b.name);
    cp.apply(
        None,
        &format!(
            "apiVersion: kubeoidc.dev/v1alpha1
kind: ClientPolicy
metadata: {{name: {policy}}}
spec:
  clientIdPatterns: ['{{namespace}}-*']
"
        ),
    );
    kubectl(
        cp,
        &[
            "label",
            "namespace",
            &t.b.name,
            &format!("kubeoidc.dev/client-policy={policy}"),
        ],
    );
    let named = format!("spec.clientId: ClientPolicy {policy}: ");
    eventually(
        "the squatter judged by team-b's own policy",
        Duration::from_secs(30),
        || async {
            let (_, r, message) = ready(&t.b, "squatter").await?;
            (r == "PolicyViolation" && message.contains(&named)).then_some(())
        },
    )
    .await;
    let own = format!(
        "apiVersion: kubeoidc.dev/v1alpha1
kind: OidcClient
metadata: {{name: mine}}
spec:
  clientId: {}-mine
  redirectUris: [https://b.example/cb]
",
        t.b.name
    );
    cp.apply(Some(&t.b.name), &own);
    wait_reason(&t.b, "mine", "Accepted").await;
    kubectl(cp, &["delete", "clientpolicy", &policy]);
    t.delete().await;
}

/// Audience theft: team-b lists another team's API scope to mint tokens for it; consent skip
/// and long lifetimes it chose itself. With no policy, the built-in defaults refuse all three.
#[tokio::test]
async fn a_tenant_cannot_take_another_teams_audience_skip_consent_or_live_forever() {
    let cp = control_plane();
    let t = tenants("audience").await;
    cp.apply(
        Some(&t.platform.name),
        &format!(
            "apiVersion: kubeoidc.dev/v1alpha1
kind: OidcScope
metadata: {{name: payments-write}}
spec:
  name: payments:write
  audience: payments-api
  allowedNamespaces: [{}]
",
            t.a.name
        ),
    );
    let machine = "apiVersion: kubeoidc.dev/v1alpha1
kind: OidcClient
metadata: {name: pay}
spec:
  grantTypes: [client_credentials]
  scopes: ['payments:write']
";
    cp.apply(Some(&t.a.name), machine);
    wait_reason(&t.a, "pay", "Accepted").await;
    cp.apply(Some(&t.b.name), machine);
    let message = wait_reason(&t.b, "pay", "PolicyViolation").await;
    assert!(
        message.contains("payments-api") && message.contains("allowedNamespaces"),
        "{message}"
    );
    cp.apply(
        Some(&t.b.name),
        "apiVersion: kubeoidc.dev/v1alpha1
kind: OidcClient
metadata: {name: silent}
spec:
  redirectUris: [https://b.example/cb]
  consent: skip
  refreshTokenTtl: 100000h
",
    );
    let message = wait_reason(&t.b, "silent", "PolicyViolation").await;
    assert!(
        message.contains("consent: skip is not allowed") && message.contains("refreshTokenTtl"),
        "{message}"
    );
    t.delete().await;
}

/// The provider checks the policy itself: a policy tightened while the operator is down takes
/// effect at the token endpoint at once, although the client's status still says Ready.
#[tokio::test]
async fn the_provider_refuses_what_the_policy_forbids_even_with_the_operator_stopped() {
    let cp = control_plane();
    let mut t = tenants("provider").await;
    create_signing_key(&t.platform).await;
    cp.apply(
        Some(&t.a.name),
        "apiVersion: kubeoidc.dev/v1alpha1
kind: OidcClient
metadata: {name: svc}
spec:
  grantTypes: [client_credentials]
",
    );
    wait_reason(&t.a, "svc", "Accepted").await;
    let mut p = Provider::in_cluster(
        cp,
        &t.platform.name,
        "memory",
        &["--client-namespaces", &t.a.name],
    );
    p.wait_ready(Duration::from_secs(30));
    let secret = eventually("the client's Secret", Duration::from_secs(10), || async {
        t.a.api::<k8s_openapi::api::core::v1::Secret>()
            .get_opt("svc-oidc")
            .await
            .ok()?
    })
    .await;
    let data = secret.data.unwrap();
    let id = String::from_utf8(data["client-id"].0.clone()).unwrap();
    let value = String::from_utf8(data["client-secret"].0.clone()).unwrap();
    eventually("a machine token", Duration::from_secs(10), || async {
        (client_credentials(&p.issuer, &id, &value).await.status() == 200).then_some(())
    })
    .await;

    t.operator.kill();
    let policy = format!("{}-no-machines", t.a.name);
    cp.apply(
        None,
        &format!(
            "apiVersion: kubeoidc.dev/v1alpha1
kind: ClientPolicy
metadata: {{name: {policy}}}
spec:
  grantTypes: [authorization_code, refresh_token]
"
        ),
    );
    kubectl(
        cp,
        &[
            "label",
            "namespace",
            &t.a.name,
            &format!("kubeoidc.dev/client-policy={policy}"),
        ],
    );
    eventually(
        "the provider to stop serving the client",
        Duration::from_secs(10),
        || async {
            (client_credentials(&p.issuer, &id, &value).await.status() == 401).then_some(())
        },
    )
    .await;
    assert_eq!(
        ready(&t.a, "svc").await.unwrap().0,
        "True",
        "the status was never updated: the operator is down"
    );
    kubectl(cp, &["delete", "clientpolicy", &policy]);
    t.delete().await;
}

/// The routes mode: a redirect host must be routed to the client's own namespace by an Ingress
/// or a Gateway API HTTPRoute; team-b cannot redirect to a host routed to team-a.
#[tokio::test]
async fn a_tenant_cannot_redirect_to_a_host_routed_to_another_tenant() {
    let cp = control_plane();
    let httproutes = binary_dir().join(format!(
        "gateway-api-httproutes-{}.yaml",
        kube_oidc_tests::controlplane::version("GATEWAY_API_VERSION")
    ));
    assert!(
        httproutes.is_file(),
        "{} is missing: run tests/controlplane/build.sh",
        httproutes.display()
    );
    let out = cp
        .kubectl()
        .args(["apply", "--server-side", "-f"])
        .arg(&httproutes)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    crate::fresh::established(cp, "httproutes.gateway.networking.k8s.io").await;

    let t = tenants("routes").await;
    let policy = format!("{}-routed", t.platform.name);
    cp.apply(
        None,
        &format!(
            "apiVersion: kubeoidc.dev/v1alpha1
kind: ClientPolicy
metadata: {{name: {policy}}}
spec:
  routedRedirectHosts: true
"
        ),
    );
    for ns in [&t.a.name, &t.b.name] {
        kubectl(
            cp,
            &[
                "label",
                "namespace",
                ns,
                &format!("kubeoidc.dev/client-policy={policy}"),
            ],
        );
    }
    cp.apply(
        Some(&t.a.name),
        "apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web}
spec:
  rules:
    - host: web.team-a.test
      http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: api}
spec:
  hostnames: [api.team-a.test]
  rules:
    - backendRefs: [{name: api, port: 80}]
",
    );
    let client = |host: &str| {
        format!(
            "apiVersion: kubeoidc.dev/v1alpha1
kind: OidcClient
metadata: {{name: app}}
spec:
  redirectUris: [https://{host}/cb, http://127.0.0.1:8000/cb]
"
        )
    };
    cp.apply(Some(&t.a.name), &client("web.team-a.test"));
    wait_reason(&t.a, "app", "Accepted").await;
    cp.apply(Some(&t.b.name), &client("web.team-a.test"));
    let message = wait_reason(&t.b, "app", "PolicyViolation").await;
    assert!(message.contains("is not routed to namespace"), "{message}");
    cp.apply(Some(&t.b.name), &client("api.team-a.test"));
    wait_reason(&t.b, "app", "PolicyViolation").await;
    // Through the HTTPRoute, the host is team-a's.
    cp.apply(Some(&t.a.name), &client("api.team-a.test"));
    wait_reason(&t.a, "app", "Accepted").await;
    // A route of its own in team-b makes the host team-b's.
    cp.apply(
        Some(&t.b.name),
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: own}
spec:
  hostnames: [own.team-b.test]
",
    );
    cp.apply(Some(&t.b.name), &client("own.team-b.test"));
    wait_reason(&t.b, "app", "Accepted").await;
    kubectl(cp, &["delete", "clientpolicy", &policy]);
    t.delete().await;
}

/// Anonymous registration (policy open) in the provider's own namespace: a registrant never
/// inherits that namespace's trust. No machine tokens, no other team's API, and no more clients
/// than the quota.
#[tokio::test]
async fn anonymous_registration_cannot_mint_machine_tokens_take_audiences_or_exceed_its_quota() {
    let cp = control_plane();
    let ns = cp.namespace("dcr-policy").await;
    let _op = Operator::start(cp, &ns.name, "a", &[]);
    create_signing_key(&ns).await;
    cp.apply(
        Some(&ns.name),
        "apiVersion: kubeoidc.dev/v1alpha1
kind: OidcScope
metadata: {name: payments-write}
spec:
  name: payments:write
  audience: payments-api
",
    );
    let mut p = Provider::in_cluster(
        cp,
        &ns.name,
        "memory",
        &["--registration", "open", "--registration-quota", "2"],
    );
    p.wait_ready(Duration::from_secs(30));
    let c = crate::provider::http();
    let register = |metadata: serde_json::Value| {
        let c = c.clone();
        let url = p.url("/register");
        async move {
            let r = c.post(url).json(&metadata).send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (status, e) = register(serde_json::json!({
        "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "client_secret_basic",
    }))
    .await;
    assert!(
        status == 400
            && e["error_description"]
                .as_str()
                .unwrap_or_default()
                .contains("grant type client_credentials is not allowed"),
        "a registrant got machine tokens: {status} {e}"
    );
    let (status, e) = register(serde_json::json!({
        "redirect_uris": ["http://127.0.0.1:8000/cb"],
        "scope": "openid payments:write",
    }))
    .await;
    assert!(
        status == 400 && e.to_string().contains("payments"),
        "a registrant got another team's audience: {status} {e}"
    );
    let ok =
        serde_json::json!({"redirect_uris": ["http://127.0.0.1:8000/cb"], "scope": "openid email"});
    for _ in 0..2 {
        let (status, e) = register(ok.clone()).await;
        assert_eq!(status, 201, "{e}");
    }
    let (status, e) = register(ok).await;
    assert!(
        status >= 400 && e.to_string().contains("quota"),
        "registration beyond the quota: {status} {e}"
    );
    ns.delete().await;
}

/// The client secret of a client, from the Secret the operator wrote next to it.
async fn credentials(ns: &TestNamespace, client: &str) -> (String, String) {
    let secret = eventually("the client's Secret", Duration::from_secs(20), || async {
        ns.api::<k8s_openapi::api::core::v1::Secret>()
            .get_opt(&format!("{client}-oidc"))
            .await
            .ok()?
    })
    .await;
    let data = secret.data.unwrap();
    let get = |k: &str| String::from_utf8(data[k].0.clone()).unwrap();
    (get("client-id"), get("client-secret"))
}

/// The attacks a tenant makes at the provider itself, on the real control plane: a client
/// whose ID is a user's subject (impersonation), a secret replayed with another authentication
/// method, and the claims parameter asking for what no granted scope releases.
#[tokio::test]
async fn a_tenant_cannot_impersonate_a_user_switch_auth_methods_or_take_claims_without_consent() {
    let cp = control_plane();
    let t = tenants("provider-attacks").await;
    create_signing_key(&t.platform).await;
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$MxEOWQvRq72CCcDaAkwOJg$9H+XUKV4SmiAcDmyWAfnQZ2xlItMdqlSLJCbvEyF2k4";
    cp.apply(Some(&t.platform.name),
        &format!(
            "apiVersion: v1
kind: Secret
metadata: {{name: kube-oidc-users}}
stringData:
  users.yaml: |
    - {{username: alice, passwordHash: \"{hash}\", email: alice@example.com, emailVerified: true, groups: [admins]}}
    - {{username: mallory, sub: {}.svc, passwordHash: \"{hash}\"}}
",
            t.a.name
        ),
    );
    cp.apply(
        Some(&t.a.name),
        "apiVersion: kubeoidc.dev/v1alpha1
kind: OidcClient
metadata: {name: svc}
spec:
  grantTypes: [client_credentials]
---
apiVersion: kubeoidc.dev/v1alpha1
kind: OidcClient
metadata: {name: poster}
spec:
  grantTypes: [client_credentials]
  tokenEndpointAuthMethod: client_secret_post
---
apiVersion: kubeoidc.dev/v1alpha1
kind: OidcClient
metadata: {name: web}
spec:
  type: public
  redirectUris: [http://127.0.0.1:9/cb]
  scopes: [openid]
",
    );
    for c in ["svc", "poster", "web"] {
        wait_reason(&t.a, c, "Accepted").await;
    }
    let mut p = Provider::in_cluster(
        cp,
        &t.platform.name,
        "memory",
        &["--client-namespaces", &t.a.name],
    );
    p.wait_ready(Duration::from_secs(30));
    let http = crate::provider::http();

    // Impersonation: the client's ID is mallory's subject.
    let (id, secret) = credentials(&t.a, "svc").await;
    let r = eventually(
        "the provider to know svc",
        Duration::from_secs(10),
        || async {
            let r = client_credentials(&p.issuer, &id, &secret).await;
            (r.status() != 401).then_some(r)
        },
    )
    .await;
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        e["error"], "unauthorized_client",
        "a machine token with a user's subject: {e}"
    );

    // The poster's secret, replayed with Basic.
    let (id, secret) = credentials(&t.a, "poster").await;
    let r = client_credentials(&p.issuer, &id, &secret).await;
    assert_eq!(r.status(), 401);
    let e: serde_json::Value = r.json().await.unwrap();
    assert!(
        e["error_description"]
            .as_str()
            .unwrap()
            .contains("client_secret_post"),
        "{e}"
    );
    let ok = http
        .post(p.url("/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id.as_str()),
            ("client_secret", secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200, "with its own method");

    // Claims without consent: scope openid, the claims parameter asking for email and groups,
    // which no scope this client may request releases (a standard scope it may request would
    // be added to the request, and so to the consent page).
    let claims = url::form_urlencoded::byte_serialize(
        br#"{"id_token":{"email":null,"groups":null},"userinfo":{"email":null}}"#,
    )
    .collect::<String>();
    let tokens = crate::provider::code_flow(
        &http,
        &p.issuer,
        &format!("{}.web", t.a.name),
        "http://127.0.0.1:9/cb",
        "openid",
        &format!("&claims={claims}"),
        "alice",
    )
    .await;
    let id_token = crate::provider::verify(
        &p.issuer,
        tokens["id_token"].as_str().unwrap(),
        &format!("{}.web", t.a.name),
    )
    .await;
    assert!(
        id_token.get("email").is_none() && id_token.get("groups").is_none(),
        "claims released without consent: {id_token}"
    );
    let userinfo: serde_json::Value = http
        .get(p.url("/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(userinfo.get("email").is_none(), "{userinfo}");
    t.delete().await;
}

/// A client whose signing algorithm no SigningKey has would fail every token request: it is
/// not Ready, and says which algorithms there are.
#[tokio::test]
async fn a_client_without_a_key_for_its_algorithm_is_not_ready() {
    let cp = control_plane();
    let ns = cp.namespace("no-key").await;
    let _op = Operator::start(cp, &ns.name, "a", &[]);
    cp.apply(
        Some(&ns.name),
        "apiVersion: kubeoidc.dev/v1alpha1
kind: SigningKey
metadata: {name: ec}
spec: {algorithm: ES256}
---
apiVersion: kubeoidc.dev/v1alpha1
kind: OidcClient
metadata: {name: app}
spec:
  redirectUris: [https://app.example/cb]
",
    );
    let message = wait_reason(&ns, "app", "NoSigningKey").await;
    assert!(
        message.contains("algorithm RS256") && message.contains("ES256"),
        "{message}"
    );
    kubectl(
        cp,
        &[
            "patch",
            "oidcclient",
            "app",
            "-n",
            &ns.name,
            "--type=merge",
            "-p",
            r#"{"spec":{"signingAlgorithm":"ES256"}}"#,
        ],
    );
    wait_reason(&ns, "app", "Accepted").await;
    ns.delete().await;
}
