//! The provider as a real process: standalone from examples/local, against the real control
//! plane with the operator, and two replicas sharing one real Redis.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use crds::{OidcClient, SigningKey};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube_oidc_tests::{Operator, Provider, RedisServer, control_plane};
use serde_json::Value;

use crate::operator::eventually;

fn examples_local() -> std::path::PathBuf {
    crds::workspace_root().join("examples/local")
}

pub(crate) fn http() -> reqwest::Client {
    kube_oidc_tests::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

pub(crate) fn field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].to_string()
}

pub(crate) fn pkce() -> (String, String) {
    let verifier = B64.encode(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            .to_be_bytes(),
    ) + "-verifier-of-enough-length-0123456789";
    let challenge = B64.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        verifier.as_bytes(),
    ));
    (verifier, challenge)
}

pub(crate) fn query(location: &str) -> HashMap<String, String> {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

pub(crate) async fn jwks(base: &str) -> Vec<Value> {
    let v: Value = reqwest::get(format!("{base}/jwks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["keys"].as_array().unwrap().clone()
}

/// Verifies a JWT against the provider's published JWKS, independently of the provider's code.
pub(crate) async fn verify(base: &str, token: &str, audience: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    let keys = jwks(base).await;
    let jwk = keys
        .iter()
        .find(|k| k["kid"].as_str() == header.kid.as_deref())
        .unwrap_or_else(|| panic!("kid {:?} not in JWKS", header.kid));
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[base]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap_or_else(|e| panic!("token does not verify: {e}"))
        .claims
}

/// Sign-in and consent as a browser would, without a browser; returns the redirect Location.
pub(crate) async fn browser_sign_in(
    c: &reqwest::Client,
    authorize: &str,
    user: &str,
    password: &str,
) -> String {
    let page = c.get(authorize).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let base = authorize.split("/authorize").next().unwrap().to_string();
    let html = page.text().await.unwrap();
    let r = c
        .post(format!("{base}/login"))
        .form(&[
            ("request", field(&html, "request")),
            ("csrf", field(&html, "csrf")),
            ("username", user.into()),
            ("password", password.into()),
        ])
        .send()
        .await
        .unwrap();
    let r = if r.status() == 200 {
        let html = r.text().await.unwrap();
        assert!(
            html.contains("name=\"decision\""),
            "expected the consent page: {html}"
        );
        c.post(format!("{base}/consent"))
            .form(&[
                ("request", field(&html, "request")),
                ("csrf", field(&html, "csrf")),
                ("decision", "approve".into()),
            ])
            .send()
            .await
            .unwrap()
    } else {
        r
    };
    assert_eq!(r.status(), 303);
    r.headers()["location"].to_str().unwrap().to_string()
}

/// A code flow with PKCE as a relying party runs it, through `c` (which trusts the issuer):
/// `user` signs in and allows, the code is redeemed; the token response. `extra` is appended
/// to the authorization request (`&claims=...`).
pub(crate) async fn code_flow(
    c: &reqwest::Client,
    issuer: &str,
    client_id: &str,
    redirect: &str,
    scope: &str,
    extra: &str,
    user: &str,
) -> Value {
    let (verifier, challenge) = pkce();
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let authorize = format!(
        "{issuer}/authorize?response_type=code&client_id={}&redirect_uri={}&scope={}&state=s&code_challenge={challenge}&code_challenge_method=S256{extra}",
        enc(client_id),
        enc(redirect),
        enc(scope)
    );
    let location = browser_sign_in(c, &authorize, user, "demo-password").await;
    let code = query(&location)
        .remove("code")
        .unwrap_or_else(|| panic!("no code in {location}"));
    c.post(format!("{issuer}/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect),
            ("client_id", client_id),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn standalone_code_flow_with_pkce_from_examples_local() {
    let mut p = Provider::standalone(&examples_local(), "memory");
    p.wait_ready(Duration::from_secs(30));
    let base = p.issuer.clone();
    let c = http();
    let discovery: Value = c
        .get(p.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], base.as_str());

    let (verifier, challenge) = pkce();
    let authorize = format!(
        "{base}/authorize?response_type=code&client_id=demo&redirect_uri=http%3A%2F%2F127.0.0.1%3A8000%2Fcallback&scope=openid%20email%20profile%20offline_access&state=xyz&nonce=abc&code_challenge={challenge}&code_challenge_method=S256"
    );
    let location = browser_sign_in(&c, &authorize, "alice", "demo-password").await;
    assert!(location.starts_with("http://127.0.0.1:8000/callback?"));
    let q = query(&location);
    assert_eq!(q["state"], "xyz");
    assert_eq!(q["iss"], base);
    let t: Value = c
        .post(p.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &q["code"]),
            ("redirect_uri", "http://127.0.0.1:8000/callback"),
            ("client_id", "demo"),
            ("code_verifier", &verifier),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = verify(&base, t["id_token"].as_str().unwrap(), "demo").await;
    assert_eq!(id["nonce"], "abc");
    // OpenID Connect Core §5.4: with an access token, email and profile claims are at userinfo.
    assert!(
        id.get("email").is_none() && id.get("name").is_none(),
        "{id}"
    );
    let ui: Value = c
        .get(p.url("/userinfo"))
        .bearer_auth(t["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ui["sub"], id["sub"]);
    assert_eq!(ui["email_verified"], true);
    assert_eq!(ui["email"], "alice@example.com");
    assert_eq!(ui["name"], "Alice Example");
    let r: Value = c
        .post(p.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
            ("client_id", "demo"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(r["access_token"].is_string(), "{r}");

    // The service client of the example.
    let cc: Value = c
        .post(p.url("/token"))
        .basic_auth("reports", Some("reports-demo-secret-change-me"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let at = verify(
        &base,
        cc["access_token"].as_str().unwrap(),
        "https://orders.example.com",
    )
    .await;
    assert_eq!(at["scope"], "orders:read");
}

/// Standalone key rotation, the admin action the README names (`kill -HUP`): a new key signs at
/// once, the previous one stays published so its tokens still verify, and the rotation before
/// that is dropped at the next. With registration on (the registry rebuilds the view) too.
#[tokio::test]
async fn standalone_keys_rotate_on_sighup_and_the_previous_key_stays_published() {
    kube_oidc_tests::install_crypto_provider();
    let folder = crds::workspace_root().join("examples/local");
    for flags in [&[][..], &["--registration", "open"][..]] {
        let mut p = Provider::standalone_with(&folder, "memory", flags);
        p.wait_ready(Duration::from_secs(30));
        let base = p.issuer.clone();
        let kids = async || -> Vec<String> {
            jwks(&base)
                .await
                .iter()
                .map(|k| k["kid"].as_str().unwrap().to_string())
                .collect()
        };
        let token = async || -> String {
            let r: Value = client_credentials(&base, "reports", "reports-demo-secret-change-me")
                .await
                .json()
                .await
                .unwrap();
            r["access_token"].as_str().unwrap().to_string()
        };
        let kid_of = |jwt: &str| jsonwebtoken::decode_header(jwt).unwrap().kid.unwrap();
        let first = kids().await;
        assert_eq!(first.len(), 1, "{first:?}");
        let before = token().await;
        assert_eq!(kid_of(&before), first[0]);
        let hup = |pid: u32| {
            let ok = std::process::Command::new("kill")
                .args(["-HUP", &pid.to_string()])
                .status()
                .unwrap()
                .success();
            assert!(ok, "kill -HUP");
        };
        hup(p.pid());
        let second = eventually(
            "a new key after SIGHUP",
            Duration::from_secs(10),
            || async {
                let k = kids().await;
                (k.len() == 2).then_some(k)
            },
        )
        .await;
        assert!(second.contains(&first[0]), "{second:?}");
        let after = token().await;
        assert_ne!(kid_of(&after), first[0], "the new key signs");
        // The token signed before still verifies against the published keys.
        verify(&base, &before, "https://orders.example.com").await;
        verify(&base, &after, "https://orders.example.com").await;
        hup(p.pid());
        let third = eventually("another key", Duration::from_secs(10), || async {
            let k = kids().await;
            (!k.contains(&first[0])).then_some(k)
        })
        .await;
        assert_eq!(third.len(), 2, "{third:?}");
        assert!(third.contains(&kid_of(&after)), "{third:?}");
        p.wait_ready(Duration::from_secs(5));
    }
}

pub(crate) async fn client_credentials(base: &str, id: &str, secret: &str) -> reqwest::Response {
    http()
        .post(format!("{base}/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn provider_serves_what_the_operator_accepts_and_follows_key_rotation() {
    let cp = control_plane();
    let ns = cp.namespace("provider").await;
    let _op = Operator::start(cp, &ns.name, "a", &[]);
    let key: SigningKey = serde_yaml::from_str(
        "apiVersion: kubeoidc.dev/v1alpha1\nkind: SigningKey\nmetadata: {name: main}\nspec:\n  rotation: {interval: 1h, prepublish: 4s, retain: 30m}\n",
    )
    .unwrap();
    ns.api::<SigningKey>()
        .create(&PostParams::default(), &key)
        .await
        .unwrap();
    let mut p = Provider::in_cluster(cp, &ns.name, "memory", &[]);
    p.wait_ready(Duration::from_secs(30));
    let base = p.issuer.clone();

    let applied = Instant::now();
    let client: OidcClient = serde_yaml::from_str(
        "apiVersion: kubeoidc.dev/v1alpha1\nkind: OidcClient\nmetadata: {name: svc}\nspec:\n  grantTypes: [client_credentials]\n  scopes: [groups]\n",
    )
    .unwrap();
    ns.api::<OidcClient>()
        .create(&PostParams::default(), &client)
        .await
        .unwrap();
    let secret = eventually("the client's Secret", Duration::from_secs(10), || async {
        ns.api::<Secret>().get_opt("svc-oidc").await.ok()?
    })
    .await;
    let data = secret.data.unwrap();
    let id = String::from_utf8(data["client-id"].0.clone()).unwrap();
    let value = String::from_utf8(data["client-secret"].0.clone()).unwrap();
    let token = eventually(
        "a token for the new client",
        Duration::from_secs(10),
        || async {
            let r = client_credentials(&base, &id, &value).await;
            if r.status() == 200 {
                r.json::<Value>().await.ok()
            } else {
                None
            }
        },
    )
    .await;
    eprintln!(
        "new OidcClient usable {:?} after it was created",
        applied.elapsed()
    );
    let old_token = token["access_token"].as_str().unwrap().to_string();
    verify(&base, &old_token, &base).await;
    let old_kid = jsonwebtoken::decode_header(&old_token)
        .unwrap()
        .kid
        .unwrap();

    // Rotate: the new key is in the JWKS before anything is signed with it.
    ns.api::<SigningKey>()
        .patch(
            "main",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"annotations": {"kubeoidc.dev/rotate": "now", "kubeoidc.dev/rotate-prepublish": "4s"}}})),
        )
        .await
        .unwrap();
    let started = Instant::now();
    let mut published: Option<(String, Instant)> = None;
    let mut signed: Option<Instant> = None;
    while started.elapsed() < Duration::from_secs(20) && signed.is_none() {
        let kids: Vec<String> = jwks(&base)
            .await
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_string())
            .collect();
        if published.is_none()
            && let Some(new) = kids.iter().find(|k| **k != old_kid)
        {
            published = Some((new.clone(), Instant::now()));
        }
        let t: Value = client_credentials(&base, &id, &value)
            .await
            .json()
            .await
            .unwrap();
        let kid = jsonwebtoken::decode_header(t["access_token"].as_str().unwrap())
            .unwrap()
            .kid
            .unwrap();
        if kid != old_kid {
            let (new, at) = published
                .clone()
                .expect("a token signed by a key that was never published");
            assert_eq!(kid, new);
            signed = Some(Instant::now());
            let gap = Instant::now().duration_since(at);
            assert!(
                gap >= Duration::from_millis(2500),
                "new key signed {gap:?} after it was published"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(signed.is_some(), "the new key never signed");
    // Tokens signed by the retired key still verify.
    verify(&base, &old_token, &base).await;

    // Deleted: the token endpoint rejects the client.
    ns.api::<OidcClient>()
        .delete("svc", &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        "the deleted client to be rejected",
        Duration::from_secs(10),
        || async { (client_credentials(&base, &id, &value).await.status() == 401).then_some(()) },
    )
    .await;
    // Tokens, key rotation and client changes: the provider never wrote to the Kubernetes API
    // (its identity is its own; the writes of this test's admin are in the same audit log).
    let writes = cp.api_writes_by(p.kube_user.as_deref().unwrap());
    assert!(
        writes.is_empty(),
        "the provider wrote to the API: {writes:?}"
    );
    assert!(
        cp.api_writes_by("kube-oidc-test-admin")
            .iter()
            .any(|w| w.starts_with(&format!("create oidcclients {}/svc ", ns.name))),
        "the audit log misses the test's own writes"
    );
    ns.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_providers_share_codes_through_redis_and_a_raced_code_wins_once() {
    let redis = RedisServer::start();
    let mut a = Provider::standalone(&examples_local(), &redis.url);
    let mut b = Provider::standalone(&examples_local(), &redis.url);
    a.wait_ready(Duration::from_secs(30));
    b.wait_ready(Duration::from_secs(30));
    let c = http();
    let (verifier, challenge) = pkce();
    let authorize = |prompt: &str| {
        format!(
            "{}/authorize?response_type=code&client_id=demo&redirect_uri=http%3A%2F%2F127.0.0.1%3A8000%2Fcallback&scope=openid&code_challenge={challenge}&code_challenge_method=S256{prompt}",
            a.issuer
        )
    };
    // Issued by A, redeemed at B.
    let location = browser_sign_in(&c, &authorize(""), "bob", "demo-password").await;
    let code = query(&location)["code"].clone();
    let redeem = |base: String, code: String| {
        let c = http();
        let verifier = verifier.clone();
        async move {
            c.post(format!("{base}/token"))
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", "http://127.0.0.1:8000/callback"),
                    ("client_id", "demo"),
                    ("code_verifier", &verifier),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(redeem(b.issuer.clone(), code).await, 200);

    // The same code raced at both: exactly one wins, 200 times over.
    for trial in 0..200 {
        let r = c.get(authorize("&prompt=none")).send().await.unwrap();
        assert_eq!(r.status(), 302, "trial {trial}");
        let code = query(r.headers()["location"].to_str().unwrap())["code"].clone();
        let (x, y) = tokio::join!(
            tokio::spawn(redeem(a.issuer.clone(), code.clone())),
            tokio::spawn(redeem(b.issuer.clone(), code))
        );
        let mut results = [x.unwrap(), y.unwrap()];
        results.sort_unstable();
        assert_eq!(results, [200, 400], "trial {trial}");
    }
}

/// The demo users of examples/local, as the users Secret of a namespace.
pub(crate) async fn install_demo_users(ns: &kube_oidc_tests::TestNamespace) {
    let mut secret: Secret = serde_yaml::from_str(
        &std::fs::read_to_string(examples_local().join("users.yaml")).unwrap(),
    )
    .unwrap();
    secret.metadata.namespace = None;
    ns.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
}

pub(crate) async fn create_signing_key(ns: &kube_oidc_tests::TestNamespace) {
    let key: SigningKey = serde_yaml::from_str(
        "apiVersion: kubeoidc.dev/v1alpha1\nkind: SigningKey\nmetadata: {name: main}\nspec: {}\n",
    )
    .unwrap();
    ns.api::<SigningKey>()
        .create(&PostParams::default(), &key)
        .await
        .unwrap();
}

/// A client's registration (RFC 7591 §3.2.1), from a 201 answer.
pub(crate) struct Registered {
    pub client_id: String,
    pub secret: String,
    /// The registration access token (RFC 7592).
    pub rat: String,
    /// The registration client URI, checked to be `<base>/register/<client_id>`.
    pub uri: String,
}

pub(crate) async fn registered(r: reqwest::Response, base: &str) -> Registered {
    assert_eq!(r.status(), 201);
    let reg: Value = r.json().await.unwrap();
    let field = |name: &str| {
        reg[name]
            .as_str()
            .unwrap_or_else(|| panic!("no {name}: {reg}"))
            .to_string()
    };
    let client_id = field("client_id");
    let uri = field("registration_client_uri");
    assert_eq!(uri, format!("{base}/register/{client_id}"));
    Registered {
        secret: field("client_secret"),
        rat: field("registration_access_token"),
        client_id,
        uri,
    }
}

#[tokio::test]
async fn dynamic_client_registration_creates_an_oidc_client() {
    let cp = control_plane();
    let ns = cp.namespace("dcr").await;
    let _op = Operator::start(cp, &ns.name, "a", &[]);
    create_signing_key(&ns).await;
    install_demo_users(&ns).await;
    let mut p = Provider::in_cluster(
        cp,
        &ns.name,
        "memory",
        &[
            "--registration",
            "token",
            "--registration-token",
            "initial-123",
        ],
    );
    p.wait_ready(Duration::from_secs(30));
    // Another replica, which learns of registered clients through its watch.
    let mut replica = Provider::in_cluster(cp, &ns.name, "memory", &[]);
    replica.wait_ready(Duration::from_secs(30));
    let base = p.issuer.clone();
    let c = http();
    let discovery: Value = c
        .get(p.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        discovery["registration_endpoint"],
        format!("{base}/register")
    );

    let metadata = serde_json::json!({
        "client_name": "Registered app",
        "redirect_uris": ["http://127.0.0.1:8000/cb"],
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid email offline_access",
    });
    let r = c
        .post(p.url("/register"))
        .json(&metadata)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        401,
        "registration without the initial access token"
    );
    let mut ssrf = metadata.clone();
    ssrf["logo_uri"] = serde_json::json!("http://127.0.0.1:9/logo.png");
    let r = c
        .post(p.url("/register"))
        .bearer_auth("initial-123")
        .json(&ssrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "invalid_client_metadata");
    assert!(
        e["error_description"]
            .as_str()
            .unwrap()
            .contains("private or loopback"),
        "{e}"
    );
    let mut bad = metadata.clone();
    bad["redirect_uris"] = serde_json::json!(["http://evil.example/cb"]);
    let r = c
        .post(p.url("/register"))
        .bearer_auth("initial-123")
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "invalid_redirect_uri"
    );

    let r = c
        .post(p.url("/register"))
        .bearer_auth("initial-123")
        .json(&metadata)
        .send()
        .await
        .unwrap();
    let Registered {
        client_id,
        secret,
        rat,
        uri,
    } = registered(r, &base).await;
    let registered = Instant::now();

    // Served at once by the replica that answered: a relying party redirects right after the
    // 201 (Flask-pyoidc does).
    let (verifier, challenge) = pkce();
    let authorize = format!(
        "{base}/authorize?response_type=code&client_id={client_id}&redirect_uri=http%3A%2F%2F127.0.0.1%3A8000%2Fcb&scope=openid%20email&code_challenge={challenge}&code_challenge_method=S256"
    );
    assert_eq!(c.get(&authorize).send().await.unwrap().status(), 200);
    // The other replica within its watch delay.
    let elsewhere = authorize.replace(&base, &replica.issuer);
    eventually(
        "the other replica to serve the registered client",
        Duration::from_secs(5),
        || async { (c.get(&elsewhere).send().await.ok()?.status() == 200).then_some(()) },
    )
    .await;
    eprintln!(
        "registered client served by another replica {:?} after the 201",
        registered.elapsed()
    );

    // An OidcClient, accepted by the operator like any other.
    let clients = ns.api::<OidcClient>();
    eventually(
        "the registered OidcClient to be Ready",
        Duration::from_secs(15),
        || async {
            let oc = clients.get_opt(&client_id).await.ok()??;
            let st = oc.status?;
            st.conditions
                .iter()
                .find(|c| c.type_ == "Ready" && c.status == "True")
                .map(|_| ())
        },
    )
    .await;

    // The registration was the provider's write (as its own user, in the audit log) ...
    let user = p.kube_user.clone().unwrap();
    let registration_writes = cp.api_writes_by(&user);
    assert!(
        registration_writes
            .iter()
            .any(|w| w.starts_with("create oidcclients ")),
        "{registration_writes:?}"
    );

    // Registered clients ask for consent once (--registration-consent's default).
    let oc = clients.get(&client_id).await.unwrap();
    assert_eq!(oc.spec.consent, crds::ConsentPolicy::Once);

    // A code flow with the returned credentials.
    let browser = http();
    let location = browser_sign_in(&browser, &authorize, "alice", "demo-password").await;
    let code = query(&location)["code"].clone();
    // A session check of the relying party: no consent_required once consent was given.
    let r = browser
        .get(format!("{authorize}&prompt=none&state=check"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let check = query(r.headers()["location"].to_str().unwrap());
    assert!(
        check.contains_key("code") && !check.contains_key("error"),
        "{check:?}"
    );
    let t: Value = c
        .post(p.url("/token"))
        .basic_auth(&client_id, Some(&secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:8000/cb"),
            ("code_verifier", &verifier),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = verify(&base, t["id_token"].as_str().unwrap(), &client_id).await;
    assert_eq!(id["aud"], client_id.as_str());
    // ... and a login, a code and its tokens wrote nothing to the Kubernetes API.
    assert_eq!(cp.api_writes_by(&user), registration_writes);

    // RFC 7592: read, update, delete through the registration client URI.
    let r = c.get(&uri).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(r.status(), 401);
    let read: Value = c
        .get(&uri)
        .bearer_auth(&rat)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read["client_secret"], secret.as_str());
    assert_eq!(
        read["redirect_uris"],
        serde_json::json!(["http://127.0.0.1:8000/cb"])
    );
    let mut update = metadata.clone();
    update["client_id"] = serde_json::json!(client_id);
    update["redirect_uris"] =
        serde_json::json!(["http://127.0.0.1:8000/cb", "http://127.0.0.1:8000/other"]);
    let r = c
        .put(&uri)
        .bearer_auth(&rat)
        .json(&update)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let oc = clients.get(&client_id).await.unwrap();
    assert_eq!(
        oc.spec.redirect_uris,
        ["http://127.0.0.1:8000/cb", "http://127.0.0.1:8000/other"]
    );
    let r = c.delete(&uri).bearer_auth(&rat).send().await.unwrap();
    assert_eq!(r.status(), 204);
    eventually(
        "the OidcClient to be gone",
        Duration::from_secs(10),
        || async {
            clients
                .get_opt(&client_id)
                .await
                .ok()?
                .is_none()
                .then_some(())
        },
    )
    .await;
    ns.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_jwt_is_inactive_at_another_provider_sharing_redis() {
    let cp = control_plane();
    let ns = cp.namespace("revoke").await;
    let _op = Operator::start(cp, &ns.name, "a", &[]);
    create_signing_key(&ns).await;
    let redis = RedisServer::start();
    // Two replicas behind one issuer URL.
    let issuer = "https://oidc.example.test";
    let mut a = Provider::replica(cp, &ns.name, &redis.url, issuer);
    let mut b = Provider::replica(cp, &ns.name, &redis.url, issuer);
    a.wait_ready(Duration::from_secs(30));
    b.wait_ready(Duration::from_secs(30));
    let client: OidcClient = serde_yaml::from_str(
        "apiVersion: kubeoidc.dev/v1alpha1\nkind: OidcClient\nmetadata: {name: svc}\nspec:\n  grantTypes: [client_credentials]\n",
    )
    .unwrap();
    ns.api::<OidcClient>()
        .create(&PostParams::default(), &client)
        .await
        .unwrap();
    let secret = eventually("the client's Secret", Duration::from_secs(10), || async {
        ns.api::<Secret>().get_opt("svc-oidc").await.ok()?
    })
    .await;
    let data = secret.data.unwrap();
    let id = String::from_utf8(data["client-id"].0.clone()).unwrap();
    let value = String::from_utf8(data["client-secret"].0.clone()).unwrap();
    let token = eventually("a token from A", Duration::from_secs(10), || async {
        let r = client_credentials(&a.url(""), &id, &value).await;
        if r.status() == 200 {
            r.json::<Value>().await.ok()
        } else {
            None
        }
    })
    .await;
    let at = token["access_token"].as_str().unwrap().to_string();
    let introspect = |base: String| {
        let (id, value, at) = (id.clone(), value.clone(), at.clone());
        async move {
            http()
                .post(format!("{base}/introspect"))
                .basic_auth(&id, Some(&value))
                .form(&[("token", at.as_str())])
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let before = eventually("B to know the client", Duration::from_secs(10), || async {
        let v = introspect(b.url("")).await;
        (v["active"] == true).then_some(v)
    })
    .await;
    assert_eq!(before["client_id"], id.as_str());
    let r = http()
        .post(a.url("/revoke"))
        .basic_auth(&id, Some(&value))
        .form(&[("token", at.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        introspect(b.url("")).await,
        serde_json::json!({"active": false})
    );
    ns.delete().await;
}

/// `kube-oidc-provider hash-password`, as the README and examples/local use it: the hash it
/// prints signs a user in.
#[tokio::test]
async fn hash_password_prints_a_hash_that_signs_in() {
    use std::io::Write;
    let mut child = std::process::Command::new(kube_oidc_tests::operator::workspace_binary(
        "kube-oidc-provider",
    ))
    .arg("hash-password")
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"s3cret-Pa55")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let hash = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(hash.starts_with("$argon2id$"), "{hash}");

    // A standalone folder whose only user has that hash.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        examples_local().join("clients.yaml"),
        dir.path().join("clients.yaml"),
    )
    .unwrap();
    std::fs::copy(
        examples_local().join("signing-key.yaml"),
        dir.path().join("signing-key.yaml"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("users.yaml"),
        format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: kube-oidc-users}}\nstringData:\n  users.yaml: |\n    - username: carol\n      passwordHash: \"{hash}\"\n"),
    )
    .unwrap();
    let mut p = Provider::standalone(dir.path(), "memory");
    p.wait_ready(Duration::from_secs(30));
    let (_, challenge) = pkce();
    let authorize = format!(
        "{}/authorize?response_type=code&client_id=demo&redirect_uri=http%3A%2F%2F127.0.0.1%3A8000%2Fcallback&scope=openid&code_challenge={challenge}&code_challenge_method=S256",
        p.issuer
    );
    let location = browser_sign_in(&http(), &authorize, "carol", "s3cret-Pa55").await;
    assert!(query(&location).contains_key("code"));
}

/// A browser (cookies kept, redirects not followed) that trusts the CA `ca_pem`.
pub(crate) fn browser_trusting(ca_pem: &str) -> reqwest::Client {
    kube_oidc_tests::install_crypto_provider();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap()
}

/// A self-signed certificate for 127.0.0.1 written to `dir` as tls.crt and tls.key: its PEM
/// (what clients trust), and the two paths.
pub(crate) fn self_signed_tls(
    dir: &std::path::Path,
) -> (String, std::path::PathBuf, std::path::PathBuf) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let (cert_path, key_path) = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (cert.pem(), cert_path, key_path)
}

/// `--tls-cert` / `--tls-key`: https end to end, with HSTS and Secure cookies.
#[tokio::test]
async fn serves_https_with_hsts_and_secure_cookies() {
    let dir = tempfile::tempdir().unwrap();
    let (cert_pem, cert_path, key_path) = self_signed_tls(dir.path());
    let p = Provider::standalone_tls(&examples_local(), &cert_path, &key_path);
    assert!(p.issuer.starts_with("https://"));
    kube_oidc_tests::install_crypto_provider();
    let c = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let discovery: reqwest::Response =
        eventually("the https endpoint", Duration::from_secs(30), || async {
            c.get(format!("{}/.well-known/openid-configuration", p.issuer))
                .send()
                .await
                .ok()
        })
        .await;
    assert_eq!(discovery.status(), 200);
    assert!(
        discovery
            .headers()
            .contains_key("strict-transport-security")
    );
    let d: Value = discovery.json().await.unwrap();
    assert_eq!(d["issuer"], p.issuer.as_str());
    let (_, challenge) = pkce();
    let page = c
        .get(format!(
            "{}/authorize?response_type=code&client_id=demo&redirect_uri=http%3A%2F%2F127.0.0.1%3A8000%2Fcallback&scope=openid&code_challenge={challenge}&code_challenge_method=S256",
            p.issuer
        ))
        .send()
        .await
        .unwrap();
    let cookie = page.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
}

/// A SigningKey status whose JWK lacks a required member (as a CRD read by a YAML 1.1 reader
/// made it) is refused with a log line, and the keys served before stay served; discovery lists
/// the configured algorithms even before their keys exist.
#[tokio::test]
async fn malformed_key_material_is_refused_and_the_previous_keys_keep_serving() {
    let cp = control_plane();
    let ns = cp.namespace("badjwk").await;
    // No operator: this test writes the status the provider reads.
    let key = crds::keys::generate(crds::Algorithm::RS256, 2048).unwrap();
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "main-1", "labels": {crds::SIGNING_KEY_LABEL: "main"}},
        "data": {crds::keys::PRIVATE_KEY: base64::engine::general_purpose::STANDARD.encode(&key.pkcs8_pem)},
    }))
    .unwrap();
    ns.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    for (name, alg) in [("main", "RS256"), ("es", "ES256")] {
        let sk: SigningKey = serde_yaml::from_str(&format!(
            "apiVersion: kubeoidc.dev/v1alpha1\nkind: SigningKey\nmetadata: {{name: {name}}}\nspec: {{algorithm: {alg}}}\n"
        ))
        .unwrap();
        ns.api::<SigningKey>()
            .create(&PostParams::default(), &sk)
            .await
            .unwrap();
    }
    let entry = |jwk: &crds::PublicJwk, state: &str, secret: &str| {
        serde_json::json!({
            "kid": jwk.kid, "state": state, "createdAt": "2026-01-01T00:00:00Z",
            "activatedAt": "2026-01-01T00:00:00Z", "publicJwk": jwk, "secretName": secret,
        })
    };
    let set_keys = |keys: Vec<Value>| {
        let api = ns.api::<SigningKey>();
        async move {
            api.patch_status(
                "main",
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"status": {"keys": keys}})),
            )
            .await
            .unwrap();
        }
    };
    set_keys(vec![entry(&key.jwk, "Active", "main-1")]).await;

    let mut p = Provider::in_cluster(cp, &ns.name, "memory", &[]);
    p.wait_ready(Duration::from_secs(30));
    let base = p.issuer.clone();
    let discovery: Value = reqwest::get(p.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        discovery["id_token_signing_alg_values_supported"],
        serde_json::json!(["ES256", "RS256"]),
        "the ES256 SigningKey has no key yet, and is listed"
    );
    let modulus = |keys: &[Value]| {
        keys.iter()
            .find(|k| k["kid"] == key.jwk.kid.as_str())
            .and_then(|k| k["n"].as_str().map(String::from))
    };
    assert_eq!(modulus(&jwks(&base).await), key.jwk.n);

    // The modulus goes missing from the status.
    let mut broken = key.jwk.clone();
    broken.n = None;
    set_keys(vec![entry(&broken, "Active", "main-1")]).await;
    eventually(
        "the provider to refuse the malformed key",
        Duration::from_secs(10),
        || async {
            p.log_text()
                .contains("malformed key material refused")
                .then_some(())
        },
    )
    .await;
    assert!(
        p.log_text().contains("member n is missing"),
        "{}",
        p.log_text()
    );
    assert_eq!(modulus(&jwks(&base).await), key.jwk.n);
    assert_eq!(http_status(&p.url("/readyz")).await, 200);

    // A good status again, with a second key: served as written.
    let next = crds::keys::generate(crds::Algorithm::RS256, 2048).unwrap();
    set_keys(vec![
        entry(&key.jwk, "Active", "main-1"),
        entry(&next.jwk, "Next", "main-2"),
    ])
    .await;
    eventually("both keys in the JWKS", Duration::from_secs(10), || async {
        (jwks(&base).await.len() == 2).then_some(())
    })
    .await;
    ns.delete().await;
}

async fn http_status(url: &str) -> u16 {
    reqwest::get(url).await.unwrap().status().as_u16()
}

/// Slowloris: a client that opens a connection and never finishes its headers is cut off after
/// `--header-read-timeout`, while other requests are served.
#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    use std::io::{Read, Write};
    let mut p = Provider::standalone_with(
        &examples_local(),
        "memory",
        &["--header-read-timeout", "1s"],
    );
    p.wait_ready(Duration::from_secs(20));
    let port = p.port;
    let (elapsed, answer) = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
        let started = Instant::now();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        (
            started.elapsed(),
            String::from_utf8_lossy(&buf).into_owned(),
        )
    })
    .await
    .unwrap();
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(5),
        "the half-sent request held its connection for {elapsed:?}"
    );
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    assert_eq!(http_status(&p.url("/healthz")).await, 200);
}
