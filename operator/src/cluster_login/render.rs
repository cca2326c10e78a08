//! What a ClusterLogin renders, as a pure function of its inputs: the API server's
//! `AuthenticationConfiguration` and kubeconfig user entries for kubelogin.

use std::collections::BTreeMap;

use base64::{Engine, engine::general_purpose::STANDARD};
use crds::{ClaimMapping, ClientType, GrantType, OidcClient};
use serde_json::{Value, json};

/// A reason the files cannot be rendered, with the fix.
#[derive(Debug, PartialEq)]
pub struct Problem {
    pub reason: &'static str,
    pub message: String,
}

impl Problem {
    pub fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

/// Everything the files depend on.
pub struct Inputs<'a> {
    pub issuer: &'a str,
    /// PEM certificates of the issuer's CA, when it is not publicly trusted.
    pub ca_pem: Option<&'a str>,
    pub client: &'a OidcClient,
    /// The claims each scope releases (built-in scopes and OidcScopes).
    pub scope_claims: &'a dyn Fn(&str) -> Vec<String>,
    pub username: &'a ClaimMapping,
    pub groups: &'a ClaimMapping,
    pub kubeconfig_user: &'a str,
}

/// The file names of the ConfigMap.
pub const AUTHENTICATION_CONFIG: &str = "authentication-config.yaml";
pub const KUBECONFIG_BROWSER: &str = "kubeconfig-browser.yaml";
pub const KUBECONFIG_DEVICE: &str = "kubeconfig-device.yaml";

/// The files, by name.
pub fn render(i: &Inputs<'_>) -> Result<BTreeMap<String, String>, Problem> {
    if !i.issuer.starts_with("https://") {
        return Err(Problem::new(
            "IssuerNotHttps",
            format!(
                "the API server accepts only https issuers, and the operator's issuer is {}; set the issuer (chart value `issuer`, operator flag --issuer) to the provider's https URL",
                i.issuer
            ),
        ));
    }
    let client = i.client;
    let name = client.metadata.name.as_deref().unwrap_or_default();
    if client.spec.type_ != ClientType::Public {
        return Err(Problem::new(
            "ClientNotPublic",
            format!(
                "OidcClient {name} is confidential; kubectl runs on people's machines and cannot keep a client secret: use a client with type: public"
            ),
        ));
    }
    let scopes = requested_scopes(i)?;
    let loopback = browser_redirect(client);
    let grants = &client.spec.grant_types;
    let browser = grants.contains(&GrantType::AuthorizationCode) && loopback.is_some();
    let device = grants.contains(&GrantType::DeviceCode);
    if !browser && !device {
        return Err(Problem::new(
            "NoLoginFlow",
            format!(
                "OidcClient {name} allows neither a browser login (the authorization_code grant with a loopback redirect URI with a port, such as http://localhost:8000) nor a headless one (grant urn:ietf:params:oauth:grant-type:device_code); add one of them"
            ),
        ));
    }

    let client_id = client.client_id();
    let mut args = vec![
        "oidc-login".to_string(),
        "get-token".into(),
        format!("--oidc-issuer-url={}", i.issuer),
        format!("--oidc-client-id={client_id}"),
    ];
    args.extend(scopes.iter().map(|s| format!("--oidc-extra-scope={s}")));
    if let Some(ca) = i.ca_pem {
        args.push(format!(
            "--certificate-authority-data={}",
            STANDARD.encode(ca)
        ));
    }

    let mut files = BTreeMap::new();
    files.insert(
        AUTHENTICATION_CONFIG.to_string(),
        authentication_config(i, &client_id),
    );
    if let (true, Some((redirect, listen))) = (browser, loopback) {
        let mut a = args.clone();
        a.push("--grant-type=authcode".into());
        a.push(format!("--oidc-redirect-url={redirect}"));
        a.push(format!("--listen-address={listen}"));
        files.insert(
            KUBECONFIG_BROWSER.to_string(),
            kubeconfig(i.kubeconfig_user, &a, "a browser on this machine"),
        );
    }
    if device {
        let mut a = args;
        a.push("--grant-type=device-code".into());
        // The browser is on another device: print the URL and the code.
        a.push("--skip-open-browser".into());
        files.insert(
            KUBECONFIG_DEVICE.to_string(),
            kubeconfig(
                &format!("{}-device", i.kubeconfig_user),
                &a,
                "a code entered in a browser on any device (SSH sessions, CI runners)",
            ),
        );
    }
    Ok(files)
}

/// The scopes kubelogin asks for besides `openid`: those releasing the mapped claims, and
/// `offline_access` when the client may refresh.
fn requested_scopes(i: &Inputs<'_>) -> Result<Vec<String>, Problem> {
    let spec = &i.client.spec;
    let name = i.client.metadata.name.as_deref().unwrap_or_default();
    if !spec.scopes.iter().any(|s| s == "openid") {
        return Err(Problem::new(
            "ClaimNotReleased",
            format!("OidcClient {name} does not allow the openid scope; add it to spec.scopes"),
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for (field, mapping) in [("username", i.username), ("groups", i.groups)] {
        if mapping.claim == "sub" {
            continue;
        }
        let Some(scope) = spec
            .scopes
            .iter()
            .find(|s| (i.scope_claims)(s).contains(&mapping.claim))
        else {
            return Err(Problem::new(
                "ClaimNotReleased",
                format!(
                    "no scope allowed to OidcClient {name} releases the claim {} that spec.{field} maps; add such a scope to the client's spec.scopes (for example {})",
                    mapping.claim,
                    crds::BUILTIN_SCOPES
                        .iter()
                        .find(|b| b.claims.contains(&mapping.claim.as_str()))
                        .map_or("an OidcScope listing the claim", |b| b.name)
                ),
            ));
        };
        if !out.contains(scope) {
            out.push(scope.clone());
        }
        if crds::scope::USERINFO_SCOPES.contains(&scope.as_str()) {
            // kube-apiserver reads only the ID token (OpenID Connect Core §5.4).
            let mut needed = vec![mapping.claim.as_str()];
            if mapping.claim == "email" && field == "username" {
                needed.push("email_verified");
            }
            let missing: Vec<&str> = needed
                .into_iter()
                .filter(|c| !spec.id_token_claims.iter().any(|l| l == c))
                .collect();
            if !missing.is_empty() {
                return Err(Problem::new(
                    "ClaimNotInIdToken",
                    format!(
                        "the API server reads spec.{field}'s claim {} from the ID token, which carries the claims of the {scope} scope only when the client lists them (OpenID Connect Core §5.4); add {} to OidcClient {name}'s spec.idTokenClaims",
                        mapping.claim,
                        missing.join(", ")
                    ),
                ));
            }
        }
    }
    if spec.grant_types.contains(&GrantType::RefreshToken)
        && spec.scopes.iter().any(|s| s == "offline_access")
    {
        out.push("offline_access".into());
    }
    Ok(out)
}

/// The client's first loopback redirect URI with an explicit port, and the address kubelogin
/// listens on for it.
fn browser_redirect(client: &OidcClient) -> Option<(String, String)> {
    client.spec.redirect_uris.iter().find_map(|u| {
        let url = url::Url::parse(u).ok()?;
        let port = url.port()?;
        let host = match url.host()? {
            url::Host::Domain("localhost") => "127.0.0.1".to_string(),
            url::Host::Ipv4(a) if a.is_loopback() => a.to_string(),
            url::Host::Ipv6(a) if a.is_loopback() => format!("[{a}]"),
            _ => return None,
        };
        (url.scheme() == "http").then(|| (u.clone(), format!("{host}:{port}")))
    })
}

/// The `jwt` entry: the issuer and its CA, the audience, the claim mappings, and rules that
/// refuse access tokens, unverified emails and `system:` names.
fn jwt_authenticator(i: &Inputs<'_>, client_id: &str) -> Value {
    let mut issuer = json!({"url": i.issuer, "audiences": [client_id]});
    if let Some(ca) = i.ca_pem {
        issuer["certificateAuthority"] = json!(ca);
    }
    let user_claim = &i.username.claim;
    let group_claim = &i.groups.claim;
    let mut claim_rules = vec![json!({
        // RFC 9068 access tokens carry client_id and scope; ID tokens never do.
        "expression": "!has(claims.client_id) && !has(claims.scope)",
        "message": "access tokens are refused: kubectl sends the ID token",
    })];
    if user_claim == "email" {
        claim_rules.push(json!({
            "expression": "has(claims.email_verified) && claims.email_verified == true",
            "message": "the email address is not verified",
        }));
    }
    claim_rules.push(json!({
        "expression": format!("!has(claims.{user_claim}) || !string(claims.{user_claim}).startsWith('system:')"),
        "message": "usernames starting with system: are reserved for Kubernetes",
    }));
    claim_rules.push(json!({
        "expression": format!("!has(claims.{group_claim}) || dyn(claims.{group_claim}).all(g, !string(g).startsWith('system:'))"),
        "message": "group names starting with system: are reserved for Kubernetes",
    }));
    json!({
        "issuer": issuer,
        "claimValidationRules": claim_rules,
        "claimMappings": {
            "username": {"claim": user_claim, "prefix": i.username.prefix},
            "groups": {"claim": group_claim, "prefix": i.groups.prefix},
        },
        "userValidationRules": [
            {
                "expression": "!user.username.startsWith('system:')",
                "message": "usernames starting with system: are reserved for Kubernetes",
            },
            {
                "expression": "user.groups.all(g, !g.startsWith('system:'))",
                "message": "group names starting with system: are reserved for Kubernetes",
            },
        ],
    })
}

fn authentication_config(i: &Inputs<'_>, client_id: &str) -> String {
    let doc = json!({
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AuthenticationConfiguration",
        "jwt": [jwt_authenticator(i, client_id)],
    });
    format!(
        "# Rendered by kube-oidc-operator; do not edit (changes are overwritten).\n# kube-apiserver --authentication-config=<this file>; with other authenticators, copy the\n# entry under jwt: into your file. The API server reloads the file when it changes.\n{}",
        yaml(&doc)
    )
}

fn kubeconfig(user: &str, args: &[String], how: &str) -> String {
    let doc = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "users": [{
            "name": user,
            "user": {"exec": {
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": "kubectl",
                "args": args,
                "interactiveMode": "IfAvailable",
                "provideClusterInfo": false,
            }},
        }],
    });
    format!(
        "# Rendered by kube-oidc-operator: the kubeconfig user {user}, who logs in with {how}.\n# Needs kubelogin (kubectl oidc-login). Merge it: KUBECONFIG=~/.kube/config:<this file>\n# kubectl config view --flatten > new-config; then set a context's user to {user}.\n{}",
        yaml(&doc)
    )
}

fn yaml(doc: &Value) -> String {
    // A Value always serializes.
    crds::yaml::to_string(doc).unwrap_or_default()
}

/// SHA-256 of the files, hex: changes exactly when one of them does.
pub fn digest(files: &BTreeMap<String, String>) -> String {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for (name, body) in files {
        ctx.update(name.as_bytes());
        ctx.update(&[0]);
        ctx.update(body.as_bytes());
        ctx.update(&[0]);
    }
    ctx.finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The PEM certificates in `text`, re-encoded, or why it is not a CA bundle. Anything but
/// CERTIFICATE blocks is refused, so a reference to the wrong key never copies a private key
/// into a ConfigMap.
pub fn ca_bundle(text: &[u8], source: &str) -> Result<String, Problem> {
    let refuse = || {
        Problem::new(
            "InvalidCA",
            format!(
                "{source} does not hold PEM certificates (-----BEGIN CERTIFICATE-----) only; point issuerCA at the issuer's CA certificate"
            ),
        )
    };
    let blocks = pem::parse_many(text).map_err(|_| refuse())?;
    if blocks.is_empty() || blocks.iter().any(|b| b.tag() != "CERTIFICATE") {
        return Err(refuse());
    }
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    Ok(pem::encode_many_config(&blocks, config))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use crds::ClaimMapping;
    use serde_json::Value;

    use super::*;

    const CA: &str = "-----BEGIN CERTIFICATE-----\nMIIBCgKCAQEAtest\n-----END CERTIFICATE-----\n";

    fn client(yaml: &str) -> OidcClient {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn kubectl() -> OidcClient {
        client(
            "apiVersion: kubeoidc.dev/v1alpha1
kind: OidcClient
metadata: {name: kubectl, namespace: kube-oidc}
spec:
  clientId: kubectl
  type: public
  redirectUris: [http://localhost:8000/callback, https://app.example/cb]
  grantTypes: [authorization_code, refresh_token, urn:ietf:params:oauth:grant-type:device_code]
  scopes: [openid, email, groups, offline_access]
  idTokenClaims: [email, email_verified]
",
        )
    }

    fn mapping(claim: &str) -> ClaimMapping {
        ClaimMapping {
            claim: claim.into(),
            prefix: "oidc:".into(),
        }
    }

    fn rendered(client: &OidcClient, issuer: &str) -> Result<BTreeMap<String, String>, Problem> {
        let claims = |s: &str| {
            crds::scope::builtin(s)
                .map(|b| b.claims.iter().map(ToString::to_string).collect())
                .unwrap_or_default()
        };
        render(&Inputs {
            issuer,
            ca_pem: Some(CA),
            client,
            scope_claims: &claims,
            username: &mapping("email"),
            groups: &mapping("groups"),
            kubeconfig_user: "oidc",
        })
    }

    fn parse(text: &str) -> Value {
        serde_yaml::from_str(text).unwrap()
    }

    #[test]
    fn renders_the_authenticator_with_safe_rules_and_both_kubeconfig_variants() {
        let files = rendered(&kubectl(), "https://login.example").unwrap();
        let config = parse(&files[AUTHENTICATION_CONFIG]);
        let jwt = &config["jwt"][0];
        assert_eq!(config["kind"], "AuthenticationConfiguration");
        assert_eq!(jwt["issuer"]["url"], "https://login.example");
        assert_eq!(jwt["issuer"]["audiences"], serde_json::json!(["kubectl"]));
        assert_eq!(jwt["issuer"]["certificateAuthority"], CA);
        assert_eq!(jwt["claimMappings"]["username"]["claim"], "email");
        assert_eq!(jwt["claimMappings"]["groups"]["prefix"], "oidc:");
        let rules = jwt["claimValidationRules"].to_string();
        for needle in [
            "client_id",
            "email_verified",
            "claims.email).startsWith('system:')",
            "dyn(claims.groups).all",
        ] {
            assert!(rules.contains(needle), "{needle} not in {rules}");
        }
        assert_eq!(jwt["userValidationRules"].as_array().unwrap().len(), 2);
        // The CA is written as a literal block, readable in the ConfigMap.
        assert!(files[AUTHENTICATION_CONFIG].contains("certificateAuthority: |\n"));

        let browser = parse(&files[KUBECONFIG_BROWSER]);
        let args: Vec<String> =
            serde_json::from_value(browser["users"][0]["user"]["exec"]["args"].clone()).unwrap();
        assert_eq!(browser["users"][0]["name"], "oidc");
        for a in [
            "--oidc-client-id=kubectl",
            "--oidc-extra-scope=email",
            "--oidc-extra-scope=groups",
            "--oidc-extra-scope=offline_access",
            "--oidc-redirect-url=http://localhost:8000/callback",
            "--listen-address=127.0.0.1:8000",
            "--grant-type=authcode",
        ] {
            assert!(args.contains(&a.to_string()), "{a} not in {args:?}");
        }
        let device = parse(&files[KUBECONFIG_DEVICE]);
        assert_eq!(device["users"][0]["name"], "oidc-device");
        assert!(device.to_string().contains("--grant-type=device-code"));
    }

    #[test]
    fn refuses_what_cannot_log_in_to_a_cluster_with_the_fix() {
        let reason = |c: &OidcClient, issuer: &str| rendered(c, issuer).unwrap_err().reason;
        assert_eq!(reason(&kubectl(), "http://login.example"), "IssuerNotHttps");
        let mut confidential = kubectl();
        confidential.spec.type_ = crds::ClientType::Confidential;
        assert_eq!(reason(&confidential, "https://x"), "ClientNotPublic");
        let mut no_groups = kubectl();
        no_groups.spec.scopes.retain(|s| s != "groups");
        let p = rendered(&no_groups, "https://x").unwrap_err();
        assert_eq!(p.reason, "ClaimNotReleased");
        assert!(p.message.contains("groups"), "{}", p.message);
        // The username's email is a userinfo claim unless the client lists it (§5.4).
        let mut userinfo_email = kubectl();
        userinfo_email.spec.id_token_claims = vec!["email".into()];
        let p = rendered(&userinfo_email, "https://x").unwrap_err();
        assert_eq!(p.reason, "ClaimNotInIdToken");
        assert!(
            p.message.contains("add email_verified to OidcClient"),
            "{}",
            p.message
        );
        let mut no_flow = kubectl();
        no_flow.spec.grant_types = vec![crds::GrantType::AuthorizationCode];
        no_flow.spec.redirect_uris = vec!["https://app.example/cb".into()];
        assert_eq!(reason(&no_flow, "https://x"), "NoLoginFlow");
        // Device only: one kubeconfig variant.
        no_flow.spec.grant_types.push(crds::GrantType::DeviceCode);
        let files = rendered(&no_flow, "https://x").unwrap();
        assert!(!files.contains_key(KUBECONFIG_BROWSER));
        assert!(files.contains_key(KUBECONFIG_DEVICE));
    }

    #[test]
    fn only_certificates_are_inlined() {
        assert_eq!(ca_bundle(CA.as_bytes(), "s").unwrap(), CA);
        let key = "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n";
        let p = ca_bundle(format!("{CA}{key}").as_bytes(), "Secret x key ca.crt").unwrap_err();
        assert_eq!(p.reason, "InvalidCA");
        assert!(!p.message.contains("MIIB"));
        assert!(ca_bundle(b"not pem", "s").is_err());
        assert!(ca_bundle(b"", "s").is_err());
    }

    #[test]
    fn digest_changes_with_any_file() {
        let mut files = rendered(&kubectl(), "https://x").unwrap();
        let before = digest(&files);
        assert_eq!(before, digest(&files));
        files.insert(KUBECONFIG_DEVICE.into(), "changed".into());
        assert_ne!(before, digest(&files));
    }
}
