//! Standalone mode: the same kinds read from a folder of YAML files, validated with the shared
//! `crds` functions; signing keys generated at start.

use std::{collections::HashMap, path::Path, time::Duration};

use crds::{KeyState, OidcClient, OidcScope, SigningKey};
use k8s_openapi::api::core::v1::Secret;
use serde::Deserialize;

use crate::{
    config::{self, ClientConfig, KeyInput, View},
    users::Users,
};

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("{kind} {name}: {message}")]
    Invalid {
        kind: &'static str,
        name: String,
        message: String,
    },
}

#[derive(Deserialize)]
struct TypeMeta {
    kind: Option<String>,
}

/// Reads every `*.yaml` / `*.yml` in `dir` and builds the view.
pub fn load(dir: &Path, issuer: &str, users_secret: &str) -> Result<View, ManifestError> {
    let mut clients: Vec<OidcClient> = Vec::new();
    let mut scopes: Vec<OidcScope> = Vec::new();
    let mut keys: Vec<SigningKey> = Vec::new();
    let mut secrets: HashMap<String, Secret> = HashMap::new();

    let file_err = |path: &Path, message: String| ManifestError::File {
        path: path.display().to_string(),
        message,
    };
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| file_err(dir, e.to_string()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path).map_err(|e| file_err(&path, e.to_string()))?;
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value =
                serde_yaml::Value::deserialize(doc).map_err(|e| file_err(&path, e.to_string()))?;
            if value.is_null() {
                continue;
            }
            let kind = serde_yaml::from_value::<TypeMeta>(value.clone())
                .ok()
                .and_then(|t| t.kind)
                .unwrap_or_default();
            let parse = |what: &str| format!("not a valid {what}");
            match kind.as_str() {
                "OidcClient" => clients.push(
                    serde_yaml::from_value(value)
                        .map_err(|e| file_err(&path, format!("{}: {e}", parse("OidcClient"))))?,
                ),
                "OidcScope" => scopes.push(
                    serde_yaml::from_value(value)
                        .map_err(|e| file_err(&path, format!("{}: {e}", parse("OidcScope"))))?,
                ),
                "SigningKey" => keys.push(
                    serde_yaml::from_value(value)
                        .map_err(|e| file_err(&path, format!("{}: {e}", parse("SigningKey"))))?,
                ),
                "Secret" => {
                    let s: Secret = serde_yaml::from_value(value)
                        .map_err(|e| file_err(&path, format!("{}: {e}", parse("Secret"))))?;
                    secrets.insert(s.metadata.name.clone().unwrap_or_default(), s);
                }
                other => {
                    tracing::warn!(path = %path.display(), kind = other, "ignoring a manifest of an unknown kind");
                }
            }
        }
    }

    let secret_value = |name: &str, key: &str| crds::secret::secret_data(secrets.get(name)?, key);

    let mut served = Vec::new();
    let mut ids = HashMap::new();
    for c in &clients {
        let name = c.metadata.name.clone().unwrap_or_default();
        let invalid = |message: String| ManifestError::Invalid {
            kind: "OidcClient",
            name: name.clone(),
            message,
        };
        let problems = crds::validation::validate_client(c);
        if !problems.is_empty() {
            return Err(invalid(
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            ));
        }
        if let Some(other) = ids.insert(c.client_id(), name.clone()) {
            return Err(invalid(format!(
                "clientId {} is also used by {other}",
                c.client_id()
            )));
        }
        let hashes = if c.spec.type_ == crds::ClientType::Confidential {
            let secret = secret_value(&c.secret_name(), crds::secret::KEY_CLIENT_SECRET).ok_or_else(|| {
                invalid(format!(
                    "a confidential client needs its secret: add a Secret named {} with key client-secret",
                    c.secret_name()
                ))
            })?;
            vec![crds::secret::hash_secret(&secret)]
        } else {
            Vec::new()
        };
        served.push(ClientConfig::from_resource(c, hashes));
    }
    for s in &scopes {
        let problems = crds::validation::validate_scope(s);
        if !problems.is_empty() {
            return Err(ManifestError::Invalid {
                kind: "OidcScope",
                name: s.metadata.name.clone().unwrap_or_default(),
                message: problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            });
        }
    }
    let mut key_inputs = Vec::new();
    for k in &keys {
        let name = k.metadata.name.clone().unwrap_or_default();
        let problems = crds::validation::validate_signing_key(&k.spec);
        if !problems.is_empty() {
            return Err(ManifestError::Invalid {
                kind: "SigningKey",
                name,
                message: problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            });
        }
        let generated = crds::keys::generate(k.spec.algorithm, k.spec.rsa_bits().unwrap_or(2048))
            .map_err(|e| ManifestError::Invalid {
            kind: "SigningKey",
            name: name.clone(),
            message: e.to_string(),
        })?;
        tracing::info!(signing_key = %name, kid = %generated.jwk.kid, alg = k.spec.algorithm.as_str(), "generated signing key");
        key_inputs.push(KeyInput {
            jwk: generated.jwk,
            state: KeyState::Active,
            private_pem: Some(generated.pkcs8_pem),
            prepublish: Duration::from(k.spec.rotation.prepublish),
        });
    }
    let users = match secret_value(users_secret, crds::secret::KEY_USERS) {
        Some(yaml) => Users::parse(&yaml).map_err(|e| ManifestError::Invalid {
            kind: "Secret",
            name: users_secret.to_string(),
            message: e.to_string(),
        })?,
        None => {
            tracing::warn!(secret = users_secret, "no users Secret: nobody can sign in");
            Users::default()
        }
    };
    Ok(config::build(
        issuer,
        config::Sources {
            clients: served,
            scopes,
            algorithms: keys.iter().map(|k| k.spec.algorithm).collect(),
            keys: key_inputs,
            users,
            synced: true,
            registration: false,
        },
    ))
}
