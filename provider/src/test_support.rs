//! What the in-process tests share: a view of clients, scopes, a key and users.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crds::{KeyState, OidcClient, OidcScope};

use crate::{
    config::{self, ClientConfig, KeyInput, View},
    users::{Users, hash_password},
};

pub const ISSUER: &str = "https://issuer.test";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
pub const PASSWORD: &str = "correct horse";

pub static PASSWORD_HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();

static CLIENT_KEY: std::sync::OnceLock<crds::keys::GeneratedKey> = std::sync::OnceLock::new();

/// The key of the `objects` client (private_key_jwt, signed request objects), made once.
pub fn client_key() -> &'static crds::keys::GeneratedKey {
    CLIENT_KEY.get_or_init(|| crds::keys::generate(crds::Algorithm::RS256, 2048).unwrap())
}

/// The Argon2 hash of [`PASSWORD`], computed once.
pub fn password_hash() -> &'static str {
    PASSWORD_HASH.get_or_init(|| hash_password(PASSWORD).unwrap())
}

pub fn client(yaml: &str) -> OidcClient {
    serde_yaml::from_str(&format!(
        "apiVersion: kubeoidc.dev/v1alpha1\nkind: OidcClient\nmetadata: {{name: x, namespace: ns}}\nspec:\n{yaml}"
    ))
    .unwrap()
}

/// The view the in-process tests serve: five clients, an API scope, one RS256 key, two users.
/// Returns it with the key's kid.
pub fn view(backchannel: Option<&str>) -> (View, String) {
    let hash = password_hash();
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
        ClientConfig::from_resource(
            &client(
                "  clientId: poster\n  grantTypes: [client_credentials]\n  tokenEndpointAuthMethod: client_secret_post\n",
            ),
            vec![crds::secret::hash_secret("poster-secret")],
        ),
        ClientConfig::from_resource(
            &client(
                "  clientId: asserter\n  grantTypes: [client_credentials]\n  tokenEndpointAuthMethod: private_key_jwt\n",
            ),
            vec![crds::secret::hash_secret("asserter-secret")],
        ),
        ClientConfig::from_resource(
            &client(
                "  clientId: hybrid\n  redirectUris: [https://hybrid.example/cb]\n  responseTypes: [code, id_token, id_token token, code id_token, code token, code id_token token]\n  scopes: [openid, email]\n  consent: skip\n  userinfoSignedResponseAlg: RS256\n",
            ),
            vec![crds::secret::hash_secret("hybrid-secret")],
        ),
        ClientConfig::from_resource(
            &client(&format!(
                "  clientId: objects\n  redirectUris: [https://objects.example/cb]\n  scopes: [openid, email]\n  consent: skip\n  tokenEndpointAuthMethod: private_key_jwt\n  jwks: {}\n",
                serde_json::json!({"keys": [client_key().jwk]})
            )),
            vec![],
        ),
        ClientConfig::from_resource(
            &client(
                "  clientId: cli\n  displayName: Command line\n  type: public\n  grantTypes: [urn:ietf:params:oauth:grant-type:device_code, refresh_token]\n  scopes: [openid, email, offline_access]\n",
            ),
            vec![],
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
            upstreams: Default::default(),
            local_sign_in: None,
            sealing: None,
        },
    );
    (view, kid)
}
