//! The grants' edge cases as plain calls, no router: single use, PKCE, redirect URI, scope
//! narrowing, reuse detection, machine tokens.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;

use super::{TokenRequest, code::CodeGrant, exchange};
use crate::{
    config::View,
    protocol::{
        Context, OAuthError, Settings, client_assertion, client_auth, params::Params,
        token::code::issue_code,
    },
    store::Store,
    test_support::{CHALLENGE, VERIFIER, view},
};

fn params(pairs: &[(&str, &str)]) -> Params {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

struct Fixture {
    view: View,
    store: Store,
    settings: Settings,
}

impl Fixture {
    fn new() -> Self {
        Self {
            view: view(None).0,
            store: Store::memory(),
            settings: Settings::default(),
        }
    }

    fn ctx(&self) -> Context<'_> {
        self.ctx_at(crate::protocol::now())
    }

    fn ctx_at(&self, now: u64) -> Context<'_> {
        Context {
            view: &self.view,
            store: &self.store,
            now,
            settings: &self.settings,
        }
    }

    /// A code for alice at `client`, as the authorization endpoint stores it.
    async fn code(&self, client: &str, redirect: &str, challenge: Option<&str>) -> String {
        let sub = self.view.users.by_name("alice").unwrap().subject();
        self.code_for(&sub, client, redirect, challenge).await
    }

    /// A code for the person `sub` at `client`.
    async fn code_for(
        &self,
        sub: &str,
        client: &str,
        redirect: &str,
        challenge: Option<&str>,
    ) -> String {
        let sub = sub.to_string();
        let grant = CodeGrant {
            client_id: client.into(),
            redirect_uri: redirect.into(),
            scopes: vec!["openid".into(), "offline_access".into()],
            nonce: None,
            sub,
            auth_time: 1,
            code_challenge: challenge.map(String::from),
            claims: None,
            sid: "sid".into(),
        };
        issue_code(&self.ctx(), &grant).await.unwrap()
    }

    async fn token(&self, client: &str, form: &[(&str, &str)]) -> Result<Value, OAuthError> {
        let client = self.view.client(client).unwrap();
        exchange(&self.ctx(), &client, TokenRequest::parse(&params(form))?).await
    }

    async fn refresh(&self, token: &str, scope: Option<&str>) -> Result<Value, OAuthError> {
        let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", token)];
        form.extend(scope.map(|s| ("scope", s)));
        self.token("spa", &form).await
    }

    async fn redeem(&self, code: &str, verifier: Option<&str>) -> Result<Value, OAuthError> {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", "https://spa.example/cb"),
        ];
        form.extend(verifier.map(|v| ("code_verifier", v)));
        self.token("spa", &form).await
    }
}

#[tokio::test]
async fn a_code_is_redeemed_once_and_its_reuse_revokes_what_it_issued() {
    let f = Fixture::new();
    let code = f
        .code("spa", "https://spa.example/cb", Some(CHALLENGE))
        .await;
    let tokens = f.redeem(&code, Some(VERIFIER)).await.unwrap();
    assert!(tokens["id_token"].is_string() && tokens["refresh_token"].is_string());
    let again = f.redeem(&code, Some(VERIFIER)).await.unwrap_err();
    assert_eq!(again.code(), "invalid_grant");
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let r = f
        .token(
            "spa",
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await
        .unwrap_err();
    assert_eq!(
        r,
        OAuthError::InvalidGrant("the refresh token was revoked".into())
    );
}

#[tokio::test]
async fn pkce_and_the_redirect_uri_bind_a_code() {
    let f = Fixture::new();
    let cases: [(Option<&str>, Option<&str>, &str); 3] = [
        (
            Some(CHALLENGE),
            Some("x".repeat(43).leak()),
            "code_verifier does not match",
        ),
        (Some(CHALLENGE), None, "code_verifier is required"),
        (
            None,
            Some(VERIFIER),
            "code_verifier sent but no code_challenge was",
        ),
    ];
    for (challenge, verifier, why) in cases {
        let code = f.code("spa", "https://spa.example/cb", challenge).await;
        let e = f.redeem(&code, verifier).await.unwrap_err();
        assert_eq!(e, OAuthError::InvalidGrant(why.into()));
    }
    let code = f
        .code("spa", "https://spa.example/other", Some(CHALLENGE))
        .await;
    let e = f.redeem(&code, Some(VERIFIER)).await.unwrap_err();
    assert_eq!(e.code(), "invalid_grant");
    assert!(e.description().contains("redirect_uri"));
    // A code issued to another client.
    let code = f
        .code("web", "https://spa.example/cb", Some(CHALLENGE))
        .await;
    let e = f.redeem(&code, Some(VERIFIER)).await.unwrap_err();
    assert_eq!(e.description(), "the code was issued to another client");
}

#[tokio::test]
async fn refresh_narrows_never_widens_and_reuse_revokes_the_family() {
    let f = Fixture::new();
    let code = f
        .code("spa", "https://spa.example/cb", Some(CHALLENGE))
        .await;
    let first = f.redeem(&code, Some(VERIFIER)).await.unwrap();
    let r1 = first["refresh_token"].as_str().unwrap();
    let wide = f.refresh(r1, Some("openid email")).await.unwrap_err();
    assert_eq!(
        wide,
        OAuthError::InvalidScope("scope email was not granted".into())
    );
    let code = f
        .code("spa", "https://spa.example/cb", Some(CHALLENGE))
        .await;
    let fresh = f.redeem(&code, Some(VERIFIER)).await.unwrap();
    let r1 = fresh["refresh_token"].as_str().unwrap().to_string();
    let narrow = f.refresh(&r1, Some("openid offline_access")).await.unwrap();
    let r2 = narrow["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(r1, r2);
    assert_eq!(
        f.refresh(&r1, None).await.unwrap_err().code(),
        "invalid_grant"
    );
    assert_eq!(
        f.refresh(&r2, None).await.unwrap_err().code(),
        "invalid_grant"
    );
}

#[tokio::test]
async fn machine_tokens_carry_no_user_scope_and_need_a_confidential_client() {
    let f = Fixture::new();
    let ok = f
        .token(
            "svc:a b",
            &[("grant_type", "client_credentials"), ("scope", "api")],
        )
        .await
        .unwrap();
    assert!(ok.get("refresh_token").is_none() && ok.get("id_token").is_none());
    let e = f
        .token(
            "svc:a b",
            &[("grant_type", "client_credentials"), ("scope", "openid")],
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), "invalid_scope");
    for client in ["spa", "web"] {
        let e = f
            .token(client, &[("grant_type", "client_credentials")])
            .await
            .unwrap_err();
        assert_eq!(e.code(), "unauthorized_client", "{client}");
    }
}

#[tokio::test]
async fn client_authentication_decodes_basic_and_refuses_two_methods() {
    use base64::{Engine, engine::general_purpose::STANDARD};
    let f = Fixture::new();
    let ctx = f.ctx();
    let auth = async |basic: Option<&str>, form: &[(&str, &str)]| {
        client_auth::authenticate(&ctx, basic, &params(form)).await
    };
    // RFC 6749 §2.3.1: both parts form-urlencoded.
    let basic = STANDARD.encode("svc%3Aa+b:s%26c%3Dr%25t%2B");
    let c = auth(Some(&basic), &[]).await.unwrap();
    assert_eq!(c.id, "svc:a b");
    let two = auth(Some(&basic), &[("client_secret", "x")]).await;
    assert_eq!(two.unwrap_err().code(), "invalid_request");
    let wrong = STANDARD.encode("web:wrong");
    let e = auth(Some(&wrong), &[]).await.unwrap_err();
    assert_eq!(
        e,
        OAuthError::InvalidClient("unknown client or wrong credentials".into())
    );
    let public = auth(None, &[("client_id", "spa")]).await;
    assert!(public.unwrap().public);
    let missing = auth(None, &[]).await.unwrap_err();
    assert_eq!(missing.code(), "invalid_client");
}

/// RFC 7523 §3 and OpenID Connect Core §9: a client assertion is accepted once, from the client
/// it names, signed by one of its keys, for this provider, and short-lived.
#[tokio::test]
async fn private_key_jwt_accepts_one_fresh_assertion_signed_by_the_clients_key() {
    use crate::{signing::Signer, test_support::client};
    let mut f = Fixture::new();
    let key = crds::keys::generate(crds::Algorithm::ES256, 2048).unwrap();
    let other = crds::keys::generate(crds::Algorithm::ES256, 2048).unwrap();
    let jwks = serde_json::json!({"keys": [key.jwk]});
    let spec = format!(
        "  clientId: signer\n  grantTypes: [client_credentials]\n  tokenEndpointAuthMethod: private_key_jwt\n  jwks: {jwks}\n"
    );
    f.view.clients.insert(
        "signer".into(),
        std::sync::Arc::new(crate::config::ClientConfig::from_resource(
            &client(&spec),
            vec![],
        )),
    );
    let signer = Signer::from_pem(crds::Algorithm::ES256, &key.jwk.kid, &key.pkcs8_pem).unwrap();
    let stranger =
        Signer::from_pem(crds::Algorithm::ES256, &key.jwk.kid, &other.pkcs8_pem).unwrap();
    let now = crate::protocol::now();
    let claims = |jti: &str, aud: &str, exp: u64| serde_json::json!({"iss": "signer", "sub": "signer", "aud": aud, "jti": jti, "exp": exp, "iat": now});
    let token_endpoint = format!("{}/token", crate::test_support::ISSUER);
    let good = signer
        .sign(None, &claims("one", &token_endpoint, now + 60))
        .unwrap();
    let ctx = f.ctx();
    let auth = async |assertion: &str, extra: &[(&str, &str)]| {
        let mut form = vec![
            ("client_assertion_type", client_assertion::JWT_BEARER),
            ("client_assertion", assertion),
        ];
        form.extend_from_slice(extra);
        client_auth::authenticate(&ctx, None, &params(&form)).await
    };
    // The client is found by the assertion's sub.
    assert_eq!(auth(&good, &[]).await.unwrap().id, "signer");
    let refused = async |assertion: &str, extra: &[(&str, &str)], why: &str| {
        let e = auth(assertion, extra).await.unwrap_err();
        assert_eq!(e.code(), "invalid_client", "{why}");
        assert!(e.to_string().contains(why), "{e} does not say {why}");
    };
    refused(&good, &[], "used before").await;
    let issuer_aud = signer
        .sign(None, &claims("two", crate::test_support::ISSUER, now + 60))
        .unwrap();
    assert!(auth(&issuer_aud, &[("client_id", "signer")]).await.is_ok());
    for (assertion, why) in [
        (
            signer.sign(None, &claims("3", "https://elsewhere", now + 60)),
            "InvalidAudience",
        ),
        (
            signer.sign(None, &claims("4", &token_endpoint, now + 7200)),
            "more than 3600 seconds",
        ),
        (
            signer.sign(None, &claims("5", &token_endpoint, now - 120)),
            "ExpiredSignature",
        ),
        (
            stranger.sign(None, &claims("6", &token_endpoint, now + 60)),
            "InvalidSignature",
        ),
        (
            signer.sign(
                None,
                &serde_json::json!({"iss": "signer", "sub": "signer", "aud": token_endpoint, "exp": now + 60}),
            ),
            "jti is missing",
        ),
    ] {
        refused(&assertion.unwrap(), &[], why).await;
    }
    let fresh = signer
        .sign(None, &claims("7", &token_endpoint, now + 60))
        .unwrap();
    refused(&fresh, &[("client_id", "web")], "does not match").await;
    // HS256 keyed with the public key is not an algorithm of that key.
    let header = serde_json::json!({"alg": "HS256", "kid": key.jwk.kid});
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header {
            alg: jsonwebtoken::Algorithm::HS256,
            kid: header["kid"].as_str().map(String::from),
            ..Default::default()
        },
        &claims("8", &token_endpoint, now + 60),
        &jsonwebtoken::EncodingKey::from_secret(key.jwk.x.as_deref().unwrap().as_bytes()),
    )
    .unwrap();
    refused(&hs, &[], "not an algorithm of that key").await;
    // A client registered for a secret cannot switch to assertions, and the type must be right.
    let web = signer
        .sign(None, &serde_json::json!({"iss": "web", "sub": "web", "aud": token_endpoint, "jti": "9", "exp": now + 60}))
        .unwrap();
    refused(&web, &[], "authenticates with client_secret_basic").await;
    let e = client_auth::authenticate(
        &ctx,
        None,
        &params(&[("client_assertion_type", "x"), ("client_assertion", &fresh)]),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), "invalid_client");
}

/// RFC 7523 with HMAC (client_secret_jwt): the assertion verifies with the client's current or
/// previous secret, an algorithm its secret is long enough for, once; a secret it never had, an
/// asymmetric algorithm, or the secret sent in the clear are refused.
#[tokio::test]
async fn client_secret_jwt_accepts_an_assertion_keyed_by_the_current_or_previous_secret() {
    use crate::{config::HmacSecret, test_support::client};
    let mut f = Fixture::new();
    let current = "c".repeat(43);
    let previous = "p".repeat(64);
    let spec = "  clientId: hmac\n  grantTypes: [client_credentials]\n  tokenEndpointAuthMethod: client_secret_jwt\n";
    f.view.clients.insert(
        "hmac".into(),
        std::sync::Arc::new(
            crate::config::ClientConfig::from_resource(
                &client(spec),
                vec![crds::secret::hash_secret(&current)],
            )
            .with_hmac_secrets(vec![
                HmacSecret(current.clone()),
                HmacSecret(previous.clone()),
            ]),
        ),
    );
    let now = crate::protocol::now();
    let token_endpoint = format!("{}/token", crate::test_support::ISSUER);
    let sign = |alg: jsonwebtoken::Algorithm, secret: &str, jti: &str| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(alg),
            &serde_json::json!({"iss": "hmac", "sub": "hmac", "aud": token_endpoint, "jti": jti, "exp": now + 60}),
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    };
    let ctx = f.ctx();
    let auth = async |assertion: &str| {
        let form = [
            ("client_assertion_type", client_assertion::JWT_BEARER),
            ("client_assertion", assertion),
        ];
        client_auth::authenticate(&ctx, None, &params(&form)).await
    };
    use jsonwebtoken::Algorithm::{HS256, HS512};
    let good = sign(HS256, &current, "1");
    assert_eq!(auth(&good).await.unwrap().id, "hmac");
    assert_eq!(auth(&sign(HS512, &previous, "2")).await.unwrap().id, "hmac");
    let refused = async |assertion: &str, why: &str| {
        let e = auth(assertion).await.unwrap_err();
        assert_eq!(e.code(), "invalid_client", "{why}");
        assert!(e.to_string().contains(why), "{e} does not say {why}");
    };
    refused(&good, "used before").await;
    refused(&sign(HS256, &"x".repeat(43), "3"), "InvalidSignature").await;
    // HS512 needs a 64-byte key: the 43-byte current secret is not tried.
    refused(&sign(HS512, &current, "4"), "InvalidSignature").await;
    let es = crds::keys::generate(crds::Algorithm::ES256, 2048).unwrap();
    let signer =
        crate::signing::Signer::from_pem(crds::Algorithm::ES256, &es.jwk.kid, &es.pkcs8_pem)
            .unwrap();
    let asymmetric = signer
        .sign(None, &serde_json::json!({"iss": "hmac", "sub": "hmac", "aud": token_endpoint, "jti": "5", "exp": now + 60}))
        .unwrap();
    refused(&asymmetric, "HS256, HS384 or HS512").await;
    // The secret itself is not a way in for this client.
    use base64::{Engine, engine::general_purpose::STANDARD};
    let basic = STANDARD.encode(format!("hmac:{current}"));
    let e = client_auth::authenticate(&ctx, Some(&basic), &params(&[]))
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("authenticates with client_secret_jwt"),
        "{e}"
    );
    assert_eq!(
        client_auth::Attempt::of(None, &params(&[("client_assertion", &good)])).method,
        "client_secret_jwt"
    );
}

#[tokio::test]
async fn a_refresh_token_used_twice_at_once_succeeds_later_reuse_revokes_the_family() {
    let mut f = Fixture::new();
    f.settings.refresh_reuse_interval = 5;
    let code = f
        .code("spa", "https://spa.example/cb", Some(CHALLENGE))
        .await;
    let first = f.redeem(&code, Some(VERIFIER)).await.unwrap();
    let r1 = first["refresh_token"].as_str().unwrap().to_string();
    let refresh = |now: u64, token: String| {
        let f = &f;
        async move {
            let client = f.view.client("spa").unwrap();
            let form = params(&[("grant_type", "refresh_token"), ("refresh_token", &token)]);
            exchange(&f.ctx_at(now), &client, TokenRequest::parse(&form).unwrap()).await
        }
    };
    let now = crate::protocol::now();
    // An invalid request does not consume the token.
    let client = f.view.client("spa").unwrap();
    let wide = params(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", &r1),
        ("scope", "openid email"),
    ]);
    let e = exchange(&f.ctx_at(now), &client, TokenRequest::parse(&wide).unwrap())
        .await
        .unwrap_err();
    assert_eq!(e.code(), "invalid_scope");
    // Two refreshes at once: both succeed, in one family.
    let (a, b) = tokio::join!(refresh(now, r1.clone()), refresh(now, r1.clone()));
    let (a, b) = (a.unwrap(), b.unwrap());
    let (ra, rb) = (
        a["refresh_token"].as_str().unwrap(),
        b["refresh_token"].as_str().unwrap(),
    );
    assert_ne!(ra, rb);
    assert!(
        refresh(now + 1, ra.to_string()).await.is_ok(),
        "the family is alive"
    );
    // After the interval, a reuse is theft: the family goes.
    let e = refresh(now + 10, r1.clone()).await.unwrap_err();
    assert_eq!(e.code(), "invalid_grant");
    let e = refresh(now + 10, rb.to_string()).await.unwrap_err();
    assert_eq!(
        e,
        OAuthError::InvalidGrant("the refresh token was revoked".into())
    );
}

/// The attack: a tenant names its client like a user's subject, and its machine tokens would
/// carry that user's `sub`. Refused; introspection never maps a machine token to a username.
#[tokio::test]
async fn a_client_named_like_a_user_gets_no_machine_token() {
    let mut f = Fixture::new();
    let hash = crate::test_support::password_hash();
    f.view.users = crate::users::Users::parse(&format!(
        "- username: mallory\n  sub: api-server\n  passwordHash: \"{hash}\"\n"
    ))
    .unwrap();
    let e = f
        .token("api-server", &[("grant_type", "client_credentials")])
        .await
        .unwrap_err();
    assert_eq!(e.code(), "unauthorized_client");
}

/// Refresh tokens no longer slide forever: a session ends at its policy's maximum length.
#[tokio::test]
async fn refreshing_stops_at_the_policys_maximum_session() {
    let mut f = Fixture::new();
    let spa = f.view.client("spa").unwrap();
    let limited = (*spa)
        .clone()
        .with_max_session(Some(std::time::Duration::from_secs(3600)));
    f.view
        .clients
        .insert("spa".into(), std::sync::Arc::new(limited));
    let now = crate::protocol::now();
    let grant = CodeGrant {
        client_id: "spa".into(),
        redirect_uri: "https://spa.example/cb".into(),
        scopes: vec!["openid".into(), "offline_access".into()],
        nonce: None,
        sub: f.view.users.by_name("alice").unwrap().subject(),
        auth_time: now - 10,
        code_challenge: Some(CHALLENGE.into()),
        claims: None,
        sid: "sid".into(),
    };
    let code = issue_code(&f.ctx(), &grant).await.unwrap();
    let tokens = f.redeem(&code, Some(VERIFIER)).await.unwrap();
    let r1 = f
        .refresh(tokens["refresh_token"].as_str().unwrap(), None)
        .await
        .unwrap();
    let later = f.ctx_at(now + 3600);
    let spa = f.view.client("spa").unwrap();
    let form = params(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", r1["refresh_token"].as_str().unwrap()),
    ]);
    let e = exchange(&later, &spa, TokenRequest::parse(&form).unwrap())
        .await
        .unwrap_err();
    assert_eq!(
        e,
        OAuthError::InvalidGrant("the session reached its maximum length; sign in again".into())
    );
}

/// A person an identity connector vouched for is served like a local user while the store keeps
/// them: their claims in the ID token, their refresh tokens working; once forgotten (their
/// sign-in over, or removed upstream), refreshing fails.
#[tokio::test]
async fn an_upstream_identity_in_the_store_is_served_like_a_local_user() {
    use crate::identity::UpstreamIdentity;
    // (reqwest's TLS needs the process's crypto provider, as main installs it.)
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut f = Fixture::new();
    // The connector that vouched for carol (its upstream is never called: it gave no refresh
    // token, so refreshes do not go back to it).
    let spec: crds::connector::IdentityConnectorSpec = serde_yaml::from_str(
        "type: oidc\ndisplayName: Corp\noidc:\n  issuer: https://idp.example\n  clientId: k\n  clientSecretRef: {name: s, key: k}\n",
    )
    .unwrap();
    let up = crate::protocol::upstream_flow::OidcUpstream::new(
        "corp",
        spec.clone(),
        spec.oidc.clone().unwrap(),
        "secret".into(),
        None,
    )
    .unwrap();
    f.view.upstreams.insert(
        "corp".into(),
        std::sync::Arc::new(crate::protocol::connectors::Upstream::Oidc(up)),
    );
    let mut user = f.view.users.by_name("bob").unwrap().as_ref().clone();
    user.username = "carol".into();
    user.sub = Some("upstream-carol".into());
    user.email = Some("carol@corp.example".into());
    user.password_hash = String::new();
    let mut identity = UpstreamIdentity {
        connector: "corp".into(),
        user,
        upstream_claims: Default::default(),
        sealed_refresh: None,
        kept_until: 0,
    };
    let ctx = f.ctx();
    assert!(ctx.user("upstream-carol").await.unwrap().is_none());
    ctx.remember(&mut identity, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        ctx.user("upstream-carol").await.unwrap().unwrap().username,
        "carol"
    );
    let code = f
        .code_for(
            "upstream-carol",
            "spa",
            "https://spa.example/cb",
            Some(CHALLENGE),
        )
        .await;
    let tokens = f.redeem(&code, Some(VERIFIER)).await.unwrap();
    let id_token = tokens["id_token"].as_str().unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            id_token.split('.').nth(1).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["sub"], "upstream-carol");
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let refreshed = f.refresh(refresh, None).await.unwrap();
    f.store
        .delete(crate::store::Key::Identity("upstream-carol"))
        .await
        .unwrap();
    let gone = f
        .refresh(refreshed["refresh_token"].as_str().unwrap(), None)
        .await
        .unwrap_err();
    assert_eq!(gone.code(), "invalid_grant");
}

/// allowedGroups: a refresh for someone outside the client's groups is refused (as a removal
/// from the group upstream would make it), for a member it works.
#[tokio::test]
async fn a_refresh_outside_the_clients_allowed_groups_is_refused() {
    let mut f = Fixture::new();
    let mut spa = f.view.client("spa").unwrap().as_ref().clone();
    spa.allowed_groups = vec!["admins".into()];
    f.view
        .clients
        .insert("spa".into(), std::sync::Arc::new(spa));
    for (user, admitted) in [("alice", true), ("bob", false)] {
        let sub = f.view.users.by_name(user).unwrap().subject();
        let code = f
            .code_for(&sub, "spa", "https://spa.example/cb", Some(CHALLENGE))
            .await;
        let tokens = f.redeem(&code, Some(VERIFIER)).await.unwrap();
        let refreshed = f
            .refresh(tokens["refresh_token"].as_str().unwrap(), None)
            .await;
        match admitted {
            true => assert!(refreshed.is_ok(), "{user}: {refreshed:?}"),
            false => assert_eq!(refreshed.unwrap_err().code(), "invalid_grant", "{user}"),
        }
    }
}
