//! In-process tests of the protocol rules through the router (`tower::ServiceExt::oneshot`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{collections::HashMap, sync::Arc};

use arc_swap::ArcSwap;
use axum::{
    Router,
    body::Body,
    http::{HeaderMap, Request, StatusCode, header},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use crds::{KeyState, OidcClient, OidcScope};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use crate::{
    config::{self, ClientConfig, KeyInput},
    http::{AppState, router},
    metrics::Metrics,
    store::Store,
    users::{Users, hash_password},
};

const ISSUER: &str = "https://issuer.test";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const PASSWORD: &str = "correct horse";

static PASSWORD_HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn client(yaml: &str) -> OidcClient {
    serde_yaml::from_str(&format!(
        "apiVersion: kubeoidc.dev/v1alpha1\nkind: OidcClient\nmetadata: {{name: x, namespace: ns}}\nspec:\n{yaml}"
    ))
    .unwrap()
}

struct Harness {
    app: Router,
    kid: String,
}

fn harness_with(store: Store) -> Harness {
    harness_full(store, None)
}

fn harness_full(store: Store, backchannel: Option<&str>) -> Harness {
    let hash = PASSWORD_HASH.get_or_init(|| hash_password(PASSWORD).unwrap());
    let users = Users::parse(&format!(
        "- username: alice\n  passwordHash: \"{hash}\"\n  email: alice@example.com\n  emailVerified: true\n  name: Alice\n  groups: [admins]\n- username: bob\n  passwordHash: \"{hash}\"\n"
    ))
    .unwrap();
    let clients = vec![
        ClientConfig::from_resource(
            &client(&format!(
                "  clientId: web\n  displayName: \"<script>alert(1)</script> Web\"\n  redirectUris: [https://web.example/cb]\n  postLogoutRedirectUris: [https://web.example/bye]\n  scopes: [openid, profile, email, offline_access, api]\n  consent: once\n{}",
                backchannel
                    .map(|b| format!("  backchannelLogoutUri: {b}\n"))
                    .unwrap_or_default()
            )),
            vec![crds::secret::hash_secret("web-secret")],
        ),
        ClientConfig::from_resource(
            &client(
                "  clientId: spa\n  type: public\n  redirectUris: [https://spa.example/cb]\n  scopes: [openid, email, offline_access]\n  consent: skip\n",
            ),
            vec![],
        ),
        ClientConfig::from_resource(
            &client(
                "  clientId: always\n  redirectUris: [https://always.example/cb]\n  consent: always\n  accessTokenFormat: opaque\n",
            ),
            vec![crds::secret::hash_secret("always-secret")],
        ),
        ClientConfig::from_resource(
            &client(
                "  clientId: \"svc:a b\"\n  grantTypes: [client_credentials]\n  scopes: [api, openid]\n",
            ),
            vec![crds::secret::hash_secret("s&c=r%t+")],
        ),
        ClientConfig::from_resource(
            &client("  clientId: api-server\n  grantTypes: [client_credentials]\n"),
            vec![crds::secret::hash_secret("api-secret")],
        ),
    ];
    let scope: OidcScope = serde_yaml::from_str(
        "apiVersion: kubeoidc.dev/v1alpha1\nkind: OidcScope\nmetadata: {name: api}\nspec:\n  description: Use the API\n  audience: api-server\n",
    )
    .unwrap();
    let key = crds::keys::generate(crds::Algorithm::RS256, 2048).unwrap();
    let kid = key.jwk.kid.clone();
    let view = config::build(
        ISSUER,
        config::Sources {
            clients,
            scopes: vec![scope],
            keys: vec![KeyInput {
                jwk: key.jwk,
                state: KeyState::Active,
                private_pem: Some(key.pkcs8_pem),
                prepublish: std::time::Duration::from_secs(86400),
            }],
            algorithms: vec![crds::Algorithm::RS256],
            users,
            synced: true,
            registration: false,
        },
    );
    let state = Arc::new(AppState {
        view: Arc::new(ArcSwap::from_pointee(view)),
        store,
        metrics: Arc::new(Metrics::default()),
        http: {
            crate::install_crypto_provider();
            reqwest::Client::new()
        },
        registration: None,
    });
    Harness {
        app: router(state),
        kid,
    }
}

fn harness() -> Harness {
    harness_with(Store::memory())
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    fn location(&self) -> url::Url {
        url::Url::parse(self.headers[header::LOCATION].to_str().unwrap()).unwrap()
    }

    fn query(&self) -> HashMap<String, String> {
        self.location().query_pairs().into_owned().collect()
    }

    /// The value of a hidden form field on the page.
    fn field(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no field {name} in {}", self.body))
            + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_string()
    }
}

/// A browser: keeps cookies across requests.
#[derive(Default)]
struct Browser {
    cookies: HashMap<String, String>,
}

impl Browser {
    async fn send(&mut self, h: &Harness, mut req: Request<Body>) -> Reply {
        if !self.cookies.is_empty() {
            let c: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            req.headers_mut()
                .insert(header::COOKIE, c.join("; ").parse().unwrap());
        }
        let res = h.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        for v in headers.get_all(header::SET_COOKIE) {
            let v = v.to_str().unwrap();
            let (kv, _) = v.split_once(';').unwrap_or((v, ""));
            let (k, val) = kv.split_once('=').unwrap();
            self.cookies.insert(k.into(), val.into());
        }
        let body = String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec())
            .unwrap();
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn get(&mut self, h: &Harness, uri: &str) -> Reply {
        self.send(h, Request::get(uri).body(Body::empty()).unwrap())
            .await
    }

    async fn post(&mut self, h: &Harness, uri: &str, form: &[(&str, &str)]) -> Reply {
        let body = serde_urlencoded::to_string(form).unwrap();
        self.send(
            h,
            Request::post(uri)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
    }
}

async fn call(h: &Harness, req: Request<Body>) -> Reply {
    Browser::default().send(h, req).await
}

async fn token(h: &Harness, auth: Option<(&str, &str)>, form: &[(&str, &str)]) -> Reply {
    let mut req =
        Request::post("/token").header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some((id, secret)) = auth {
        let enc = |s: &str| serde_urlencoded::to_string([("v", s)]).unwrap()[2..].to_string();
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            enc(id),
            enc(secret)
        ));
        req = req.header(header::AUTHORIZATION, format!("Basic {basic}"));
    }
    call(
        h,
        req.body(Body::from(serde_urlencoded::to_string(form).unwrap()))
            .unwrap(),
    )
    .await
}

fn authorize_uri(client: &str, redirect: &str, extra: &str) -> String {
    format!(
        "/authorize?response_type=code&client_id={client}&redirect_uri={}&scope=openid%20email%20offline_access&state=st%20ate&nonce=n-0S6&code_challenge={CHALLENGE}&code_challenge_method=S256{extra}",
        urlencode(redirect)
    )
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("v", s)]).unwrap()[2..].to_string()
}

/// Signs in (and consents if asked) and returns the authorization response.
async fn sign_in(h: &Harness, b: &mut Browser, uri: &str, user: &str) -> Reply {
    let page = b.get(h, uri).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("name=\"password\""),
        "not a login page: {}",
        page.body
    );
    let mut reply = b
        .post(
            h,
            "/login",
            &[
                ("request", &page.field("request")),
                ("csrf", &page.field("csrf")),
                ("username", user),
                ("password", PASSWORD),
            ],
        )
        .await;
    if reply.status == StatusCode::OK && reply.body.contains("name=\"decision\"") {
        reply = b
            .post(
                h,
                "/consent",
                &[
                    ("request", &reply.field("request")),
                    ("csrf", &reply.field("csrf")),
                    ("decision", "approve"),
                ],
            )
            .await;
    }
    reply
}

fn decode_jwt(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let header = serde_json::from_slice(&B64.decode(parts.next().unwrap()).unwrap()).unwrap();
    let claims = serde_json::from_slice(&B64.decode(parts.next().unwrap()).unwrap()).unwrap();
    (header, claims)
}

#[tokio::test]
async fn discovery_and_jwks() {
    let h = harness();
    let d = call(
        &h,
        Request::get("/.well-known/openid-configuration")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(d.status, StatusCode::OK);
    let d = d.json();
    assert_eq!(d["issuer"], ISSUER);
    assert_eq!(d["token_endpoint"], format!("{ISSUER}/token"));
    assert_eq!(
        d["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        d["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );
    assert_eq!(d["request_parameter_supported"], false);
    assert_eq!(d["authorization_response_iss_parameter_supported"], true);
    for endpoint in [
        "introspection_endpoint",
        "revocation_endpoint",
        "end_session_endpoint",
    ] {
        assert!(
            d[endpoint].as_str().unwrap().starts_with(ISSUER),
            "{endpoint}"
        );
    }
    assert_eq!(d["backchannel_logout_supported"], true);
    assert!(
        d.get("registration_endpoint").is_none(),
        "registration is closed"
    );
    assert!(
        d["scopes_supported"]
            .as_array()
            .unwrap()
            .contains(&Value::from("api"))
    );
    let j = call(&h, Request::get("/jwks").body(Body::empty()).unwrap()).await;
    assert_eq!(j.headers[header::CACHE_CONTROL], "public, max-age=3600");
    let keys = j.json()["keys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kid"], h.kid.as_str());
    for private in ["d", "p", "q", "dp", "dq", "qi"] {
        assert!(
            keys[0].get(private).is_none(),
            "private member {private} published"
        );
    }
}

#[tokio::test]
async fn bad_client_or_redirect_uri_gets_a_page_never_a_redirect() {
    let h = harness();
    for uri in [
        "/authorize?response_type=code&client_id=nobody&redirect_uri=https%3A%2F%2Fweb.example%2Fcb",
        "/authorize?response_type=code&client_id=web&redirect_uri=https%3A%2F%2Fevil.example%2Fcb",
        "/authorize?response_type=code&client_id=web&redirect_uri=https%3A%2F%2Fweb.example%2Fcb%2F",
        "/authorize?response_type=code&client_id=web",
        "/authorize?response_type=code&redirect_uri=https%3A%2F%2Fweb.example%2Fcb",
        "/authorize?client_id=web&client_id=spa",
    ] {
        let r = call(&h, Request::get(uri).body(Body::empty()).unwrap()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(
            r.headers.get(header::LOCATION).is_none(),
            "{uri} redirected"
        );
        assert!(r.body.contains("<h1>"), "{uri}: {}", r.body);
    }
}

#[tokio::test]
async fn authorization_errors_are_redirected_with_state_and_iss() {
    let h = harness();
    let cases = [
        ("&request=eyJ", "request_not_supported"),
        ("&request_uri=https%3A%2F%2Fx", "request_uri_not_supported"),
        ("&prompt=none", "login_required"),
        ("&prompt=none%20login", "invalid_request"),
        ("&prompt=bogus", "invalid_request"),
        ("&max_age=soon", "invalid_request"),
        ("&claims=notjson", "invalid_request"),
        ("&id_token_hint=not.a.token", "invalid_request"),
        ("&response_mode=fragment", "invalid_request"),
    ];
    for (extra, error) in cases {
        let r = call(
            &h,
            Request::get(authorize_uri("web", "https://web.example/cb", extra))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, StatusCode::FOUND, "{extra}: {}", r.body);
        let q = r.query();
        assert_eq!(q["error"], error, "{extra}");
        assert!(!q["error_description"].is_empty());
        assert_eq!(q["state"], "st ate");
        assert_eq!(q["iss"], ISSUER);
        assert!(r.location().as_str().starts_with("https://web.example/cb?"));
    }
    let base = "/authorize?client_id=spa&redirect_uri=https%3A%2F%2Fspa.example%2Fcb&state=s";
    for (extra, error) in [
        ("&response_type=token", "unsupported_response_type"),
        ("", "invalid_request"),
        ("&response_type=code&scope=openid", "invalid_request"), // public client without PKCE
        (
            "&response_type=code&scope=openid&code_challenge=abc&code_challenge_method=plain",
            "invalid_request",
        ),
        (
            "&response_type=code&scope=openid&code_challenge=short&code_challenge_method=S256",
            "invalid_request",
        ),
        (
            "&response_type=code&scope=openid%20admin&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
            "invalid_scope",
        ),
    ] {
        let r = call(
            &h,
            Request::get(format!("{base}{extra}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, StatusCode::FOUND, "{extra}");
        assert_eq!(r.query()["error"], error, "{extra}");
    }
    // Unknown parameters, ui_locales, display, acr_values and login_hint do not fail.
    let r = call(
        &h,
        Request::get(authorize_uri(
            "web",
            "https://web.example/cb",
            "&ui_locales=de&display=popup&acr_values=x&foo=bar&login_hint=alice",
        ))
        .body(Body::empty())
        .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body.contains("value=\"alice\""),
        "login_hint prefills the username"
    );
}

#[tokio::test]
async fn code_flow_with_pkce_issues_complete_tokens() {
    let h = harness();
    let mut b = Browser::default();
    let page = b
        .get(&h, &authorize_uri("web", "https://web.example/cb", ""))
        .await;
    // Pages escape what they show and carry the security headers.
    assert!(
        !page.body.contains("<script>alert"),
        "unescaped display name"
    );
    assert!(page.body.contains("&lt;script&gt;"));
    assert!(
        page.headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(page.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert!(page.headers.contains_key(header::STRICT_TRANSPORT_SECURITY));
    let binding = page.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        binding.contains("HttpOnly")
            && binding.contains("SameSite=Lax")
            && binding.contains("Secure")
    );

    // Wrong password: the form again, with an error.
    let wrong = b
        .post(
            &h,
            "/login",
            &[
                ("request", &page.field("request")),
                ("csrf", &page.field("csrf")),
                ("username", "alice"),
                ("password", "nope"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("Wrong username or password"));

    let consent = b
        .post(
            &h,
            "/login",
            &[
                ("request", &page.field("request")),
                ("csrf", &page.field("csrf")),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(consent.status, StatusCode::OK);
    assert!(
        consent.body.contains("See your email address"),
        "scope descriptions: {}",
        consent.body
    );
    let session = b
        .cookies
        .get("kube_oidc_session")
        .cloned()
        .expect("SSO session cookie");
    let done = b
        .post(
            &h,
            "/consent",
            &[
                ("request", &consent.field("request")),
                ("csrf", &consent.field("csrf")),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let q = done.query();
    assert_eq!(q["state"], "st ate");
    assert_eq!(q["iss"], ISSUER);
    let code = q["code"].clone();

    let t = token(
        &h,
        Some(("web", "web-secret")),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://web.example/cb"),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.body);
    assert_eq!(t.headers[header::CACHE_CONTROL], "no-store");
    let t = t.json();
    assert_eq!(t["token_type"], "Bearer");
    let (header, id) = decode_jwt(t["id_token"].as_str().unwrap());
    assert_eq!(header["kid"], h.kid.as_str());
    assert_eq!(header["alg"], "RS256");
    assert_eq!(id["iss"], ISSUER);
    assert_eq!(id["aud"], "web");
    assert_eq!(id["azp"], "web");
    assert_eq!(id["nonce"], "n-0S6");
    assert_eq!(id["email"], "alice@example.com");
    assert!(id.get("groups").is_none(), "groups not granted");
    assert!(id["exp"].as_u64().unwrap() > id["iat"].as_u64().unwrap());
    assert!(id["auth_time"].as_u64().is_some());
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(
        id["at_hash"],
        crate::protocol::claims::at_hash(crds::Algorithm::RS256, access)
    );
    let (aheader, aclaims) = decode_jwt(access);
    assert_eq!(aheader["typ"], "at+jwt");
    assert_eq!(aclaims["client_id"], "web");
    assert_eq!(aclaims["sub"], id["sub"]);
    assert!(
        t["refresh_token"].is_string(),
        "offline_access grants a refresh token"
    );

    // userinfo, header and body.
    let u = call(
        &h,
        Request::get("/userinfo")
            .header(header::AUTHORIZATION, format!("Bearer {access}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(u.status, StatusCode::OK, "{}", u.body);
    assert_eq!(u.json()["sub"], id["sub"]);
    assert_eq!(u.json()["email"], "alice@example.com");
    let u = call(
        &h,
        Request::post("/userinfo")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("access_token={access}")))
            .unwrap(),
    )
    .await;
    assert_eq!(u.status, StatusCode::OK);

    // SSO: the next request from this browser needs no sign-in and, consent given once, no page.
    assert_eq!(b.cookies["kube_oidc_session"], session);
    let again = b
        .get(
            &h,
            &authorize_uri("web", "https://web.example/cb", "&prompt=none"),
        )
        .await;
    assert_eq!(again.status, StatusCode::FOUND);
    assert!(again.query().contains_key("code"));
    // prompt=login, prompt=select_account and max_age=0 ask again.
    for extra in ["&prompt=login", "&prompt=select_account", "&max_age=0"] {
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let r = b
            .get(&h, &authorize_uri("web", "https://web.example/cb", extra))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{extra}");
        assert!(r.body.contains("name=\"password\""), "{extra}");
    }
    // prompt=consent shows the consent page again; prompt=none with consent needed fails.
    let r = b
        .get(
            &h,
            &authorize_uri("web", "https://web.example/cb", "&prompt=consent"),
        )
        .await;
    assert!(r.body.contains("name=\"decision\""));
    let r = b
        .get(&h, "/authorize?response_type=code&client_id=web&redirect_uri=https%3A%2F%2Fweb.example%2Fcb&scope=openid%20profile&prompt=none")
        .await;
    assert_eq!(r.query()["error"], "consent_required");
}

async fn code_for(h: &Harness, client: &str, redirect: &str, extra: &str) -> String {
    let mut b = Browser::default();
    let r = sign_in(h, &mut b, &authorize_uri(client, redirect, extra), "alice").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    r.query()["code"].clone()
}

#[tokio::test]
async fn code_single_use_pkce_and_redirect_uri_are_enforced() {
    let h = harness();
    let redeem = |code: String, verifier: Option<&'static str>, redirect: &'static str| {
        let h = &h;
        async move {
            let mut form = vec![
                ("grant_type", "authorization_code".to_string()),
                ("code", code),
                ("redirect_uri", redirect.to_string()),
            ];
            if let Some(v) = verifier {
                form.push(("code_verifier", v.to_string()));
            }
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            token(h, Some(("web", "web-secret")), &form).await
        }
    };
    let code = code_for(&h, "web", "https://web.example/cb", "").await;
    let wrong = redeem(code, Some("x".repeat(43).leak()), "https://web.example/cb").await;
    assert_eq!(wrong.json()["error"], "invalid_grant");

    let code = code_for(&h, "web", "https://web.example/cb", "").await;
    let missing = redeem(code, None, "https://web.example/cb").await;
    assert_eq!(missing.json()["error"], "invalid_grant");
    assert!(
        missing.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("code_verifier is required")
    );

    let code = code_for(&h, "web", "https://web.example/cb", "").await;
    let other_uri = redeem(code, Some(VERIFIER), "https://web.example/other").await;
    assert_eq!(other_uri.json()["error"], "invalid_grant");

    // A confidential client may skip PKCE; then a verifier is refused.
    let mut b = Browser::default();
    let r = sign_in(&h, &mut b, "/authorize?response_type=code&client_id=web&redirect_uri=https%3A%2F%2Fweb.example%2Fcb&scope=openid%20offline_access", "alice").await;
    let code = r.query()["code"].clone();
    let r = redeem(code, Some(VERIFIER), "https://web.example/cb").await;
    assert_eq!(r.json()["error"], "invalid_grant");

    // Reuse: invalid_grant, and the tokens of the first redemption are revoked.
    let code = code_for(&h, "web", "https://web.example/cb", "").await;
    let first = redeem(code.clone(), Some(VERIFIER), "https://web.example/cb").await;
    assert_eq!(first.status, StatusCode::OK);
    let refresh = first.json()["refresh_token"].as_str().unwrap().to_string();
    let second = redeem(code, Some(VERIFIER), "https://web.example/cb").await;
    assert_eq!(second.status, StatusCode::BAD_REQUEST);
    assert_eq!(second.json()["error"], "invalid_grant");
    let r = token(
        &h,
        Some(("web", "web-secret")),
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(
        r.json()["error"],
        "invalid_grant",
        "refresh token of a reused code still works"
    );

    // A code is bound to its client.
    let code = code_for(&h, "web", "https://web.example/cb", "").await;
    let r = token(
        &h,
        Some(("always", "always-secret")),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://web.example/cb"),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(r.json()["error"], "invalid_grant");
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let h = harness();
    let code = code_for(&h, "spa", "https://spa.example/cb", "").await;
    let t = token(
        &h,
        None,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://spa.example/cb"),
            ("code_verifier", VERIFIER),
            ("client_id", "spa"),
        ],
    )
    .await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.body);
    let r1 = t.json()["refresh_token"].as_str().unwrap().to_string();

    // Narrowing is allowed, widening is not.
    let wide = token(
        &h,
        None,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &r1),
            ("client_id", "spa"),
            ("scope", "openid profile"),
        ],
    )
    .await;
    assert_eq!(wide.json()["error"], "invalid_scope");
    // (A failed refresh consumed r1 only if it got that far; use a fresh flow.)
    let code = code_for(&h, "spa", "https://spa.example/cb", "").await;
    let t = token(
        &h,
        None,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://spa.example/cb"),
            ("code_verifier", VERIFIER),
            ("client_id", "spa"),
        ],
    )
    .await;
    let r1 = t.json()["refresh_token"].as_str().unwrap().to_string();
    let n = token(
        &h,
        None,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &r1),
            ("client_id", "spa"),
            ("scope", "openid offline_access"),
        ],
    )
    .await;
    assert_eq!(n.status, StatusCode::OK, "{}", n.body);
    assert_eq!(n.json()["scope"], "openid offline_access");
    let r2 = n.json()["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(r1, r2, "rotated");
    assert!(n.json()["id_token"].is_string());

    // Reusing r1 fails and revokes r2 with it.
    let reuse = token(
        &h,
        None,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &r1),
            ("client_id", "spa"),
        ],
    )
    .await;
    assert_eq!(reuse.json()["error"], "invalid_grant");
    let r = token(
        &h,
        None,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &r2),
            ("client_id", "spa"),
        ],
    )
    .await;
    assert_eq!(r.json()["error"], "invalid_grant");

    // Another client cannot use it.
    let code = code_for(&h, "spa", "https://spa.example/cb", "").await;
    let t = token(
        &h,
        None,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://spa.example/cb"),
            ("code_verifier", VERIFIER),
            ("client_id", "spa"),
        ],
    )
    .await;
    let r3 = t.json()["refresh_token"].as_str().unwrap().to_string();
    let r = token(
        &h,
        Some(("web", "web-secret")),
        &[("grant_type", "refresh_token"), ("refresh_token", &r3)],
    )
    .await;
    assert_eq!(r.json()["error"], "invalid_grant");
}

#[tokio::test]
async fn client_authentication_and_client_credentials() {
    let h = harness();
    // Basic with form-urlencoded id and secret (RFC 6749 §2.3.1).
    let ok = token(
        &h,
        Some(("svc:a b", "s&c=r%t+")),
        &[("grant_type", "client_credentials"), ("scope", "api")],
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    let (_, claims) = decode_jwt(ok.json()["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], "svc:a b");
    assert_eq!(claims["aud"], serde_json::json!(["svc:a b", "api-server"]));
    assert_eq!(claims["scope"], "api");
    assert!(ok.json().get("refresh_token").is_none() && ok.json().get("id_token").is_none());
    // client_secret_post.
    let post = token(
        &h,
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "svc:a b"),
            ("client_secret", "s&c=r%t+"),
            ("scope", "api"),
        ],
    )
    .await;
    assert_eq!(post.status, StatusCode::OK);

    for (auth, form) in [
        (
            Some(("svc:a b", "wrong")),
            vec![("grant_type", "client_credentials")],
        ),
        (
            None,
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "svc:a b"),
            ],
        ),
        (
            None,
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "nobody"),
                ("client_secret", "x"),
            ],
        ),
        (None, vec![("grant_type", "client_credentials")]),
    ] {
        let r = token(&h, auth, &form).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{form:?}");
        assert_eq!(r.json()["error"], "invalid_client");
        assert!(
            r.headers[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .starts_with("Basic")
        );
    }
    let r = token(
        &h,
        Some(("svc:a b", "s&c=r%t+")),
        &[("grant_type", "client_credentials"), ("scope", "openid")],
    )
    .await;
    assert_eq!(r.json()["error"], "invalid_scope");
    let r = token(
        &h,
        None,
        &[("grant_type", "client_credentials"), ("client_id", "spa")],
    )
    .await;
    assert_eq!(r.json()["error"], "unauthorized_client");
    let r = token(
        &h,
        Some(("web", "web-secret")),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(r.json()["error"], "unauthorized_client");
    let r = token(
        &h,
        Some(("web", "web-secret")),
        &[("grant_type", "password")],
    )
    .await;
    assert_eq!(r.json()["error"], "unsupported_grant_type");
    let r = token(&h, Some(("web", "web-secret")), &[]).await;
    assert_eq!(r.json()["error"], "invalid_request");
    let r = token(
        &h,
        Some(("web", "web-secret")),
        &[
            ("grant_type", "client_credentials"),
            ("client_secret", "web-secret"),
        ],
    )
    .await;
    assert_eq!(
        r.json()["error"],
        "invalid_request",
        "two authentication methods"
    );
    let r = call(
        &h,
        Request::post("/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from("grant_type=a&grant_type=b&client_id=spa"))
            .unwrap(),
    )
    .await;
    assert_eq!(r.json()["error"], "invalid_request");
    // Body size limit.
    let big = "x".repeat(100 * 1024);
    let r = call(&h, Request::post("/token").body(Body::from(big)).unwrap()).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn userinfo_errors_follow_rfc6750() {
    let h = harness();
    let r = call(&h, Request::get("/userinfo").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.headers[header::WWW_AUTHENTICATE],
        "Bearer realm=\"kube-oidc\""
    );
    let r = call(
        &h,
        Request::get("/userinfo")
            .header(header::AUTHORIZATION, "Bearer garbage")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        r.headers[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
    let cc = token(
        &h,
        Some(("svc:a b", "s&c=r%t+")),
        &[("grant_type", "client_credentials")],
    )
    .await;
    let at = cc.json()["access_token"].as_str().unwrap().to_string();
    let r = call(
        &h,
        Request::get("/userinfo")
            .header(header::AUTHORIZATION, format!("Bearer {at}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        r.headers[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );
    let r = call(
        &h,
        Request::post("/userinfo")
            .header(header::AUTHORIZATION, format!("Bearer {at}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("access_token={at}")))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"], "invalid_request");
}

#[tokio::test]
async fn opaque_tokens_consent_always_deny_and_claims_parameter() {
    let h = harness();
    let mut b = Browser::default();
    // consent: always asks every time; deny sends access_denied.
    let uri = "/authorize?response_type=code&client_id=always&redirect_uri=https%3A%2F%2Falways.example%2Fcb&scope=openid&state=x&claims=%7B%22userinfo%22%3A%7B%22email%22%3Anull%7D%7D";
    let page = b.get(&h, uri).await;
    let consent = b
        .post(
            &h,
            "/login",
            &[
                ("request", &page.field("request")),
                ("csrf", &page.field("csrf")),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    let denied = b
        .post(
            &h,
            "/consent",
            &[
                ("request", &consent.field("request")),
                ("csrf", &consent.field("csrf")),
                ("decision", "deny"),
            ],
        )
        .await;
    assert_eq!(denied.query()["error"], "access_denied");
    assert_eq!(denied.query()["state"], "x");
    let consent = b.get(&h, uri).await;
    assert!(consent.body.contains("name=\"decision\""), "asked again");
    let ok = b
        .post(
            &h,
            "/consent",
            &[
                ("request", &consent.field("request")),
                ("csrf", &consent.field("csrf")),
                ("decision", "approve"),
            ],
        )
        .await;
    let code = ok.query()["code"].clone();
    let t = token(
        &h,
        Some(("always", "always-secret")),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://always.example/cb"),
        ],
    )
    .await;
    let at = t.json()["access_token"].as_str().unwrap().to_string();
    assert_eq!(at.matches('.').count(), 0, "opaque");
    let u = call(
        &h,
        Request::get("/userinfo")
            .header(header::AUTHORIZATION, format!("Bearer {at}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(u.status, StatusCode::OK, "{}", u.body);
    assert_eq!(
        u.json()["email"],
        "alice@example.com",
        "claims parameter asked for email at userinfo"
    );
    assert!(u.json().get("name").is_none(), "profile was not granted");
}

#[tokio::test]
async fn login_is_csrf_protected_and_throttled() {
    let h = harness();
    let mut b = Browser::default();
    let page = b
        .get(&h, &authorize_uri("web", "https://web.example/cb", ""))
        .await;
    // Wrong CSRF token.
    let r = b
        .post(
            &h,
            "/login",
            &[
                ("request", &page.field("request")),
                ("csrf", "forged"),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Another browser (no binding cookie) cannot complete this browser's request.
    let mut other = Browser::default();
    let r = other
        .post(
            &h,
            "/login",
            &[
                ("request", &page.field("request")),
                ("csrf", &page.field("csrf")),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(!other.cookies.contains_key("kube_oidc_session"));
    // Five failures for a user, then even the right password is refused for a while.
    for _ in 0..5 {
        let r = b
            .post(
                &h,
                "/login",
                &[
                    ("request", &page.field("request")),
                    ("csrf", &page.field("csrf")),
                    ("username", "bob"),
                    ("password", "guess"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = b
        .post(
            &h,
            "/login",
            &[
                ("request", &page.field("request")),
                ("csrf", &page.field("csrf")),
                ("username", "bob"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.body.contains("Too many failed attempts"));
    // Unknown users fail the same way as wrong passwords.
    let r = b
        .post(
            &h,
            "/login",
            &[
                ("request", &page.field("request")),
                ("csrf", &page.field("csrf")),
                ("username", "mallory"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains("Wrong username or password"));
}

#[tokio::test]
async fn a_dead_redis_gets_a_protocol_error() {
    let mut redis = kube_oidc_tests::RedisServer::start();
    let store = Store::redis(&redis.url).await.unwrap();
    let h = harness_with(store);
    redis.stop();
    let r = token(
        &h,
        Some(("web", "web-secret")),
        &[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("redirect_uri", "https://web.example/cb"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json()["error"], "temporarily_unavailable");
    let r = call(
        &h,
        Request::get(authorize_uri("web", "https://web.example/cb", ""))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.body.contains("Temporarily unavailable"));
    let r = call(&h, Request::get("/readyz").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
}

async fn introspect(h: &Harness, auth: (&str, &str), tok: &str) -> Value {
    let r = token_like(h, "/introspect", Some(auth), &[("token", tok)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
    r.json()
}

async fn token_like(
    h: &Harness,
    path: &str,
    auth: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> Reply {
    let mut req =
        Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some((id, secret)) = auth {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            urlencode(id),
            urlencode(secret)
        ));
        req = req.header(header::AUTHORIZATION, format!("Basic {basic}"));
    }
    call(
        h,
        req.body(Body::from(serde_urlencoded::to_string(form).unwrap()))
            .unwrap(),
    )
    .await
}

async fn web_tokens(h: &Harness) -> Value {
    let code = code_for(h, "web", "https://web.example/cb", "").await;
    let t = token(
        h,
        Some(("web", "web-secret")),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://web.example/cb"),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.body);
    t.json()
}

#[tokio::test]
async fn introspection_answers_only_the_token_owner_or_its_resource_server() {
    let h = harness();
    let t = web_tokens(&h).await;
    let at = t["access_token"].as_str().unwrap();
    let rt = t["refresh_token"].as_str().unwrap();

    let own = introspect(&h, ("web", "web-secret"), at).await;
    assert_eq!(own["active"], true);
    assert_eq!(own["client_id"], "web");
    assert_eq!(own["username"], "alice");
    assert!(own["exp"].as_u64().is_some() && own["sub"].is_string());
    let refresh = introspect(&h, ("web", "web-secret"), rt).await;
    assert_eq!(refresh["active"], true);
    assert_eq!(refresh["token_type"], "refresh_token");

    // Foreign: another client learns nothing.
    assert_eq!(
        introspect(&h, ("always", "always-secret"), at).await,
        serde_json::json!({"active": false})
    );
    assert_eq!(
        introspect(&h, ("always", "always-secret"), rt).await["active"],
        false
    );
    // A resource server named by a scope audience may introspect tokens meant for it.
    let cc = token(
        &h,
        Some(("svc:a b", "s&c=r%t+")),
        &[("grant_type", "client_credentials"), ("scope", "api")],
    )
    .await;
    let api_token = cc.json()["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        introspect(&h, ("api-server", "api-secret"), &api_token).await["active"],
        true
    );
    assert_eq!(
        introspect(&h, ("api-server", "api-secret"), at).await["active"],
        false
    );
    // Unknown and malformed tokens.
    assert_eq!(
        introspect(&h, ("web", "web-secret"), "nope").await["active"],
        false
    );
    assert_eq!(
        introspect(&h, ("web", "web-secret"), "a.b.c").await["active"],
        false
    );
    // Authentication is required; public clients have none.
    let r = token_like(
        &h,
        "/introspect",
        None,
        &[("token", at), ("client_id", "spa")],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = token_like(&h, "/introspect", None, &[("token", at)]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json()["error"], "invalid_client");
    let r = token_like(&h, "/introspect", Some(("web", "web-secret")), &[]).await;
    assert_eq!(r.json()["error"], "invalid_request");
}

#[tokio::test]
async fn revocation_of_access_and_refresh_tokens() {
    let h = harness();
    // A JWT access token: denied by jti until it expires.
    let t = web_tokens(&h).await;
    let at = t["access_token"].as_str().unwrap();
    let r = token_like(
        &h,
        "/revoke",
        Some(("always", "always-secret")),
        &[("token", at)],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "foreign tokens get 200");
    assert_eq!(
        introspect(&h, ("web", "web-secret"), at).await["active"],
        true,
        "a foreign client revoked it"
    );
    let r = token_like(
        &h,
        "/revoke",
        Some(("web", "web-secret")),
        &[("token", at), ("token_type_hint", "access_token")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        introspect(&h, ("web", "web-secret"), at).await["active"],
        false
    );
    let u = call(
        &h,
        Request::get("/userinfo")
            .header(header::AUTHORIZATION, format!("Bearer {at}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(u.status, StatusCode::UNAUTHORIZED);
    // The refresh token of that grant still works.
    let rt = t["refresh_token"].as_str().unwrap();
    assert_eq!(
        introspect(&h, ("web", "web-secret"), rt).await["active"],
        true
    );

    // Revoking a refresh token revokes its family and the access tokens issued from it.
    let t = web_tokens(&h).await;
    let (at, rt) = (
        t["access_token"].as_str().unwrap(),
        t["refresh_token"].as_str().unwrap(),
    );
    let r = token_like(&h, "/revoke", Some(("web", "web-secret")), &[("token", rt)]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        introspect(&h, ("web", "web-secret"), rt).await["active"],
        false
    );
    assert_eq!(
        introspect(&h, ("web", "web-secret"), at).await["active"],
        false
    );
    let r = token(
        &h,
        Some(("web", "web-secret")),
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
    )
    .await;
    assert_eq!(r.json()["error"], "invalid_grant");

    // Unknown tokens: 200. Public clients identify with client_id.
    let r = token_like(
        &h,
        "/revoke",
        Some(("web", "web-secret")),
        &[("token", "never-issued")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = token_like(&h, "/revoke", None, &[("token", "x"), ("client_id", "spa")]).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = token_like(&h, "/revoke", Some(("web", "wrong")), &[("token", "x")]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Opaque access tokens are deleted.
    let mut b = Browser::default();
    let r = sign_in(&h, &mut b, "/authorize?response_type=code&client_id=always&redirect_uri=https%3A%2F%2Falways.example%2Fcb&scope=openid", "alice").await;
    let code = r.query()["code"].clone();
    let t = token(
        &h,
        Some(("always", "always-secret")),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://always.example/cb"),
        ],
    )
    .await;
    let opaque = t.json()["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        introspect(&h, ("always", "always-secret"), &opaque).await["active"],
        true
    );
    token_like(
        &h,
        "/revoke",
        Some(("always", "always-secret")),
        &[("token", &opaque)],
    )
    .await;
    assert_eq!(
        introspect(&h, ("always", "always-secret"), &opaque).await["active"],
        false
    );
}

#[tokio::test]
async fn rp_initiated_logout_and_back_channel_logout() {
    // A relying party's back-channel endpoint, on loopback.
    let received: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let sink = received.clone();
    let rp = axum::Router::new().route(
        "/backchannel",
        axum::routing::post(move |body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                let form: HashMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap();
                sink.lock().unwrap().push(form["logout_token"].clone());
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, rp).await });
    let h = harness_full(
        Store::memory(),
        Some(&format!("http://127.0.0.1:{port}/backchannel")),
    );

    let mut b = Browser::default();
    let done = sign_in(
        &h,
        &mut b,
        &authorize_uri("web", "https://web.example/cb", ""),
        "alice",
    )
    .await;
    let code = done.query()["code"].clone();
    let t = token(
        &h,
        Some(("web", "web-secret")),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://web.example/cb"),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    let id_token = t.json()["id_token"].as_str().unwrap().to_string();
    let (_, id) = decode_jwt(&id_token);

    // An unregistered post-logout URI: a page, never a redirect.
    let r = b.get(&h, &format!("/end_session?id_token_hint={id_token}&post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.headers.get(header::LOCATION).is_none());

    // Tied to the session by the hint: ends at once and redirects with state.
    let old_cookie = b.cookies["kube_oidc_session"].clone();
    let r = b.get(&h, &format!("/end_session?id_token_hint={id_token}&post_logout_redirect_uri=https%3A%2F%2Fweb.example%2Fbye&state=bye1")).await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.body);
    assert_eq!(r.location().as_str(), "https://web.example/bye?state=bye1");
    assert!(
        r.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    // The session ended on the server, not just in this browser's cookie jar.
    b.cookies.insert("kube_oidc_session".into(), old_cookie);
    let again = b
        .get(
            &h,
            &authorize_uri("web", "https://web.example/cb", "&prompt=none"),
        )
        .await;
    assert_eq!(
        again.query()["error"],
        "login_required",
        "the session ended"
    );

    // The logout token reached the relying party: verify it as the RP would.
    let token = {
        let mut waited = 0;
        loop {
            if let Some(t) = received.lock().unwrap().first().cloned() {
                break t;
            }
            assert!(waited < 100, "no back-channel logout within 5 s");
            waited += 1;
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    let (header, claims) = decode_jwt(&token);
    assert_eq!(header["typ"], "logout+jwt");
    assert_eq!(header["kid"], h.kid.as_str());
    let jwks = call(&h, Request::get("/jwks").body(Body::empty()).unwrap())
        .await
        .json();
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwks["keys"][0].clone()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&["web"]);
    validation.set_issuer(&[ISSUER]);
    let verified = jsonwebtoken::decode::<Value>(
        &token,
        &jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap(),
        &validation,
    )
    .unwrap()
    .claims;
    assert_eq!(verified, claims);
    assert!(claims["iat"].as_u64().is_some() && claims["jti"].is_string());
    assert_eq!(claims["sub"], id["sub"]);
    assert_eq!(claims["sid"], id["sid"]);
    assert!(claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    assert!(claims.get("nonce").is_none());

    // Not tied to the session (no hint): the user confirms.
    let mut b = Browser::default();
    sign_in(
        &h,
        &mut b,
        &authorize_uri("web", "https://web.example/cb", ""),
        "alice",
    )
    .await;
    let confirm = b
        .get(
            &h,
            "/end_session?client_id=web&post_logout_redirect_uri=https%3A%2F%2Fweb.example%2Fbye",
        )
        .await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.body.contains("Sign out?"));
    let forged = b
        .post(
            &h,
            "/end_session/confirm",
            &[
                ("request", &confirm.field("request")),
                ("csrf", "x"),
                ("decision", "logout"),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::BAD_REQUEST);
    let out = b
        .post(
            &h,
            "/end_session/confirm",
            &[
                ("request", &confirm.field("request")),
                ("csrf", &confirm.field("csrf")),
                ("decision", "logout"),
            ],
        )
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location().as_str(), "https://web.example/bye");
    let again = b
        .get(
            &h,
            &authorize_uri("web", "https://web.example/cb", "&prompt=none"),
        )
        .await;
    assert_eq!(again.query()["error"], "login_required");
}
