//! Standalone mode: the same kinds read from a folder of YAML files, validated with the shared
//! `crds` functions; signing keys generated at start.

use std::{collections::HashMap, path::Path, sync::Arc, time::Duration};

use crate::protocol::connectors::{self, Upstreams};
use crds::{ClientPolicy, KeyState, OidcClient, OidcScope, SigningKey};
use k8s_openapi::api::core::v1::{Namespace, Secret};
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
    #[error("{path}: OidcClient {name}: {message}")]
    Client {
        path: String,
        name: String,
        message: String,
    },
}

#[derive(Deserialize)]
struct TypeMeta {
    kind: Option<String>,
}

fn file_err(path: &Path, message: String) -> ManifestError {
    ManifestError::File {
        path: path.display().to_string(),
        message,
    }
}

/// An object of `kind` named `name`, checked by `crds::validation`: every problem in one message.
fn checked(
    kind: &'static str,
    name: &str,
    problems: Vec<crds::validation::Invalid>,
) -> Result<(), ManifestError> {
    if problems.is_empty() {
        return Ok(());
    }
    Err(ManifestError::Invalid {
        kind,
        name: name.to_string(),
        message: problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "),
    })
}

/// Duration fields that do not parse, said as the API server says it (its CEL rule's message)
/// rather than as the deserializer would. Whether a parsed one is positive is
/// `crds::validation`'s to say.
fn durations(value: &serde_yaml::Value) -> Result<(), String> {
    let spec = &value["spec"];
    let fields = [
        ("accessTokenTtl", &spec["accessTokenTtl"]),
        ("idTokenTtl", &spec["idTokenTtl"]),
        ("refreshTokenTtl", &spec["refreshTokenTtl"]),
        ("interval", &spec["rotation"]["interval"]),
        ("prepublish", &spec["rotation"]["prepublish"]),
        ("retain", &spec["rotation"]["retain"]),
    ];
    for (field, v) in fields {
        if v.is_null() {
            continue;
        }
        let text = v
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| format!("{v:?}"));
        if text.parse::<kube::core::Duration>().is_err() {
            return Err(format!(
                "{}, not \"{text}\"",
                crds::validation::duration_message(field)
            ));
        }
    }
    Ok(())
}

/// The objects of a folder, by kind.
#[derive(Default)]
struct Manifests {
    /// Each with the file it came from.
    clients: Vec<(std::path::PathBuf, OidcClient)>,
    scopes: Vec<OidcScope>,
    keys: Vec<SigningKey>,
    secrets: HashMap<String, Secret>,
    /// ClientPolicies and the Namespaces whose labels choose them: checked only when the
    /// folder holds a policy (a folder has one owner).
    policies: Vec<ClientPolicy>,
    namespaces: HashMap<String, Namespace>,
    /// Where people sign in from (issue 15: upstream OpenID Connect providers).
    connectors: Vec<crds::connector::IdentityConnector>,
}

impl Manifests {
    /// Reads every `*.yaml` / `*.yml` in `dir` (multi-document files allowed).
    fn read(dir: &Path) -> Result<Self, ManifestError> {
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| file_err(dir, e.to_string()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .collect();
        paths.sort();
        let mut out = Self::default();
        for path in paths {
            let text =
                std::fs::read_to_string(&path).map_err(|e| file_err(&path, e.to_string()))?;
            out.add_text(&path, &text)?;
        }
        Ok(out)
    }

    /// Adds the objects of one file's text (multi-document YAML).
    fn add_text(&mut self, path: &Path, text: &str) -> Result<(), ManifestError> {
        for doc in serde_yaml::Deserializer::from_str(text) {
            let value =
                serde_yaml::Value::deserialize(doc).map_err(|e| file_err(path, e.to_string()))?;
            if !value.is_null() {
                self.add(path, value)?;
            }
        }
        Ok(())
    }

    fn add(&mut self, path: &Path, value: serde_yaml::Value) -> Result<(), ManifestError> {
        let kind = serde_yaml::from_value::<TypeMeta>(value.clone())
            .ok()
            .and_then(|t| t.kind)
            .unwrap_or_default();
        fn parse<T: serde::de::DeserializeOwned>(
            path: &Path,
            kind: &str,
            value: serde_yaml::Value,
        ) -> Result<T, ManifestError> {
            durations(&value).map_err(|m| file_err(path, format!("{kind}: {m}")))?;
            serde_yaml::from_value(value)
                .map_err(|e| file_err(path, format!("not a valid {kind}: {e}")))
        }
        match kind.as_str() {
            "OidcClient" => self
                .clients
                .push((path.to_path_buf(), parse(path, &kind, value)?)),
            "OidcScope" => self.scopes.push(parse(path, &kind, value)?),
            "SigningKey" => self.keys.push(parse(path, &kind, value)?),
            "ClientPolicy" => self.policies.push(parse(path, &kind, value)?),
            "IdentityConnector" => self.connectors.push(parse(path, &kind, value)?),
            "Namespace" => {
                let n: Namespace = parse(path, &kind, value)?;
                self.namespaces
                    .insert(n.metadata.name.clone().unwrap_or_default(), n);
            }
            "Secret" => {
                let s: Secret = parse(path, &kind, value)?;
                self.secrets
                    .insert(s.metadata.name.clone().unwrap_or_default(), s);
            }
            other => {
                tracing::warn!(path = %path.display(), kind = other, "ignoring a manifest of an unknown kind");
            }
        }
        Ok(())
    }

    /// The key upstream refresh tokens are sealed with in the store: the folder's Secret
    /// `kube-oidc-sealing-key` (32 bytes under `key`), so that a store kept across restarts
    /// (Redis) stays readable; else a new one for this run.
    fn sealing_key(&self) -> Result<crds::sealed::SealingKey, ManifestError> {
        use crds::sealed::{SEALING_KEY_SECRET, SealingKey, generate_key};
        match self.secrets.get(SEALING_KEY_SECRET) {
            Some(s) => SealingKey::from_secret(s).ok_or_else(|| ManifestError::Invalid {
                kind: "Secret",
                name: SEALING_KEY_SECRET.into(),
                message: "data.key must be 32 bytes (base64)".into(),
            }),
            None => SealingKey::from_bytes(&generate_key()).ok_or_else(|| ManifestError::Invalid {
                kind: "Secret",
                name: SEALING_KEY_SECRET.into(),
                message: "a sealing key could not be made".into(),
            }),
        }
    }

    fn secret_value(&self, name: &str, key: &str) -> Option<String> {
        crds::secret::secret_data(self.secrets.get(name)?, key)
    }

    /// The upstreams of the folder's enabled connectors, with their credentials and CAs from
    /// the folder's Secrets; and whether the password form checks local users (no connector, or
    /// a `local` one). A connector that cannot be served stops the start, saying why.
    fn upstreams(&self) -> Result<(Upstreams, Option<bool>), ManifestError> {
        let built = connectors::build(
            &self.connectors,
            &|name, key| self.secret_value(name, key),
            &mut connectors::Cache::default(),
        );
        if let Some((name, message)) = built.problems.into_iter().next() {
            return Err(ManifestError::Invalid {
                kind: "IdentityConnector",
                name,
                message,
            });
        }
        Ok((built.upstreams, Some(built.local)))
    }

    /// The policy a client of the folder follows: only when the folder holds one, except for a
    /// registered client, which is never trusted (the registration defaults without a policy).
    fn governing(&self, c: &OidcClient) -> Option<crds::policy::Governing<'_>> {
        let registered = c
            .metadata
            .labels
            .as_ref()
            .is_some_and(|l| l.contains_key(crds::policy::REGISTERED_LABEL));
        if self.policies.is_empty() && !registered {
            return None;
        }
        let ns = c.metadata.namespace.as_deref().unwrap_or("default");
        let labels = self
            .namespaces
            .get(ns)
            .and_then(|n| n.metadata.labels.as_ref());
        // No namespace is trusted here: the folder's policies apply to every client.
        Some(crds::policy::governing_client(
            c,
            labels,
            "",
            &self.policies,
        ))
    }

    /// Everything wrong with a client of the folder, one message per problem, in the words the
    /// operator uses. `ids` holds the client IDs seen so far.
    fn client_problems(&self, c: &OidcClient, ids: &mut HashMap<String, String>) -> Vec<String> {
        let name = c.metadata.name.clone().unwrap_or_default();
        let mut out: Vec<String> = crds::validation::validate_client(c)
            .iter()
            .map(ToString::to_string)
            .collect();
        if let Some(governing) = self.governing(c) {
            out.extend(
                crds::policy::check_client(c, &governing, &self.scopes, None)
                    .iter()
                    .map(ToString::to_string),
            );
        }
        // Every token request of a client without a key for its algorithm would fail. (A folder
        // without keys, such as a GitOps folder of clients, is checked as the operator checks a
        // cluster without them: not at all.)
        let alg = c.spec.signing_algorithm;
        if !self.keys.is_empty() && !self.keys.iter().any(|k| k.spec.algorithm == alg) {
            out.push(format!(
                "spec.signingAlgorithm: no SigningKey in the folder has algorithm {}; add one (see examples/signing-key) or set spec.signingAlgorithm to {}",
                alg.as_str(),
                self.keys
                    .first()
                    .map_or("the algorithm of a SigningKey you add", |k| k.spec.algorithm.as_str())
            ));
        }
        if let Some(other) = ids.insert(c.client_id(), name) {
            out.push(format!(
                "spec.clientId: {} is also used by OidcClient {other}",
                c.client_id()
            ));
        }
        out
    }

    /// The clients, validated, each with its secret's hash.
    fn served_clients(&self) -> Result<Vec<ClientConfig>, ManifestError> {
        let mut served = Vec::new();
        let mut ids = HashMap::new();
        for (path, c) in &self.clients {
            let name = c.metadata.name.clone().unwrap_or_default();
            let mut problems = self.client_problems(c, &mut ids);
            // In a cluster the operator generates it; here it comes with the folder.
            let secret = self.secret_value(&c.secret_name(), crds::secret::KEY_CLIENT_SECRET);
            if c.spec.uses_secret() && secret.is_none() {
                problems.push(format!(
                    "a confidential client needs its secret: add a Secret named {} with key client-secret",
                    c.secret_name()
                ));
            }
            if c.spec.needs_recoverable_secret()
                && let Some(problem) = secret
                    .as_deref()
                    .and_then(crds::secret::hmac_secret_problem)
            {
                problems.push(format!("Secret {}: {problem}", c.secret_name()));
            }
            if !problems.is_empty() {
                return Err(ManifestError::Client {
                    path: path.display().to_string(),
                    name,
                    message: problems.join("; "),
                });
            }
            served.push(self.served(c, secret.as_deref()));
        }
        Ok(served)
    }

    /// A checked client as served, with its secret's hash and its policy's session limit.
    fn served(&self, c: &OidcClient, secret: Option<&str>) -> ClientConfig {
        let max_session = self.governing(c).and_then(|g| g.max_session());
        let secret = secret.filter(|_| c.spec.uses_secret());
        let hashes = secret
            .map(|secret| vec![crds::secret::hash_secret(secret)])
            .unwrap_or_default();
        let hmac = secret
            .filter(|_| c.spec.needs_recoverable_secret())
            .map(|s| vec![crate::config::HmacSecret(s.to_string())])
            .unwrap_or_default();
        ClientConfig::from_resource(c, hashes)
            .with_hmac_secrets(hmac)
            .with_max_session(max_session)
    }

    fn check_scopes(&self) -> Result<(), ManifestError> {
        for s in &self.scopes {
            let name = s.metadata.name.clone().unwrap_or_default();
            checked("OidcScope", &name, crds::validation::validate_scope(s))?;
        }
        Ok(())
    }

    /// The SigningKeys, checked, with a new key for each, active at once.
    fn key_ring(&self) -> Result<KeyRing, ManifestError> {
        let keys = Self::generate_keys(&self.keys)?;
        Ok(KeyRing {
            specs: self.keys.clone(),
            keys: std::sync::Mutex::new(keys),
        })
    }

    /// A new key for every SigningKey (checked), active at once.
    fn generate_keys(specs: &[SigningKey]) -> Result<Vec<KeyInput>, ManifestError> {
        let mut key_inputs = Vec::new();
        for k in specs {
            let name = k.metadata.name.clone().unwrap_or_default();
            checked(
                "SigningKey",
                &name,
                crds::validation::validate_signing_key(&k.spec),
            )?;
            let generated =
                crds::keys::generate(k.spec.algorithm, k.spec.rsa_bits().unwrap_or(2048)).map_err(
                    |e| ManifestError::Invalid {
                        kind: "SigningKey",
                        name: name.clone(),
                        message: e.to_string(),
                    },
                )?;
            tracing::info!(signing_key = %name, kid = %generated.jwk.kid, alg = k.spec.algorithm.as_str(), "generated signing key");
            key_inputs.push(KeyInput {
                jwk: generated.jwk,
                state: KeyState::Active,
                private_pem: Some(generated.pkcs8_pem),
                prepublish: Duration::from(k.spec.rotation.prepublish),
            });
        }
        Ok(key_inputs)
    }

    fn users(&self, users_secret: &str) -> Result<Users, ManifestError> {
        match self.secret_value(users_secret, crds::secret::KEY_USERS) {
            Some(yaml) => Users::parse(&yaml).map_err(|e| ManifestError::Invalid {
                kind: "Secret",
                name: users_secret.to_string(),
                message: e.to_string(),
            }),
            None => {
                tracing::warn!(secret = users_secret, "no users Secret: nobody can sign in");
                Ok(Users::default())
            }
        }
    }
}

/// `kube-oidc-provider check DIR`: every problem of the folder, one line each
/// (`file: OidcClient name: field: message`, in the words the operator uses); empty when the
/// provider would start from it.
pub fn check(dir: &Path, users_secret: &str) -> Vec<String> {
    match Manifests::read(dir) {
        Ok(m) => problems(&m, users_secret),
        Err(e) => vec![e.to_string()],
    }
}

/// [`check`] of one file's text, named `name` in the messages (fuzzing, editors).
pub fn check_text(name: &str, text: &str, users_secret: &str) -> Vec<String> {
    let mut m = Manifests::default();
    match m.add_text(Path::new(name), text) {
        Ok(()) => problems(&m, users_secret),
        Err(e) => vec![e.to_string()],
    }
}

fn problems(m: &Manifests, users_secret: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut ids = HashMap::new();
    for (path, c) in &m.clients {
        let name = c.metadata.name.clone().unwrap_or_default();
        for problem in m.client_problems(c, &mut ids) {
            out.push(format!("{}: OidcClient {name}: {problem}", path.display()));
        }
    }
    let named = |kind: &str, name: &Option<String>, problems: Vec<crds::validation::Invalid>| {
        problems
            .into_iter()
            .map(|p| format!("{kind} {}: {p}", name.as_deref().unwrap_or_default()))
            .collect::<Vec<_>>()
    };
    for s in &m.scopes {
        out.extend(named(
            "OidcScope",
            &s.metadata.name,
            crds::validation::validate_scope(s),
        ));
    }
    for k in &m.keys {
        out.extend(named(
            "SigningKey",
            &k.metadata.name,
            crds::validation::validate_signing_key(&k.spec),
        ));
    }
    if let Err(e) = m.users(users_secret) {
        out.push(e.to_string());
    }
    out
}

/// A folder as loaded and checked, with the keys generated for it: what the view is built
/// from, kept so that clients registered at run time join the folder's.
pub struct Folder {
    /// The folder's policies, namespaces, scopes and keys; its clients and Secrets are dropped
    /// once served (10,000 clients would otherwise be held twice).
    manifests: Manifests,
    /// The folder's client IDs, by the OidcClient that has each.
    client_ids: HashMap<String, String>,
    clients: Vec<ClientConfig>,
    keys: Arc<KeyRing>,
    users: Users,
    upstreams: Upstreams,
    local_sign_in: Option<bool>,
    sealing: Arc<crds::sealed::SealingKey>,
}

/// The standalone signing keys: one generated per SigningKey at start, and again at each
/// rotation (SIGHUP), when the new key signs and the one before stays published until the next
/// rotation, so that tokens it signed keep verifying.
pub struct KeyRing {
    /// The folder's SigningKeys, checked.
    specs: Vec<SigningKey>,
    keys: std::sync::Mutex<Vec<KeyInput>>,
}

impl KeyRing {
    /// The keys as published now.
    pub fn keys(&self) -> Vec<KeyInput> {
        self.keys.lock().map(|k| k.clone()).unwrap_or_default()
    }

    /// A new key for every SigningKey, active at once; the keys active until now retired (still
    /// published), the ones retired before dropped. The new key IDs.
    pub fn rotate(&self) -> Result<Vec<String>, ManifestError> {
        let fresh = Manifests::generate_keys(&self.specs)?;
        let kids = fresh.iter().map(|k| k.jwk.kid.clone()).collect();
        if let Ok(mut keys) = self.keys.lock() {
            let retired: Vec<KeyInput> = keys
                .iter()
                .filter(|k| k.state == KeyState::Active)
                .map(|k| KeyInput {
                    state: KeyState::Retired,
                    private_pem: None,
                    ..k.clone()
                })
                .collect();
            *keys = fresh.into_iter().chain(retired).collect();
        }
        Ok(kids)
    }
}

impl Folder {
    /// The signing keys, shared with whoever rotates them.
    pub fn key_ring(&self) -> Arc<KeyRing> {
        self.keys.clone()
    }

    /// How many clients the folder holds.
    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// The view of the folder alone, when nothing is registered at run time: its clients are
    /// moved into the view, never held twice.
    pub fn into_view(self, issuer: &str) -> View {
        config::build(
            issuer,
            config::Sources {
                clients: self.clients,
                algorithms: self
                    .manifests
                    .keys
                    .iter()
                    .map(|k| k.spec.algorithm)
                    .collect(),
                scopes: self.manifests.scopes,
                keys: self.keys.keys(),
                users: self.users,
                synced: true,
                registration: false,
                upstreams: self.upstreams,
                local_sign_in: self.local_sign_in,
                sealing: Some(self.sealing),
            },
        )
    }

    /// The view of the folder's objects and the `registered` clients.
    pub fn view(&self, issuer: &str, registered: Vec<ClientConfig>, registration: bool) -> View {
        config::build(
            issuer,
            config::Sources {
                clients: self.clients.iter().cloned().chain(registered).collect(),
                algorithms: self
                    .manifests
                    .keys
                    .iter()
                    .map(|k| k.spec.algorithm)
                    .collect(),
                scopes: self.manifests.scopes.clone(),
                keys: self.keys.keys(),
                users: self.users.clone(),
                synced: true,
                registration,
                upstreams: self.upstreams.clone(),
                local_sign_in: self.local_sign_in,
                sealing: Some(self.sealing.clone()),
            },
        )
    }

    /// A registered client checked as the operator checks one in a cluster (its fields, the
    /// policy of registered clients or the folder's, a key for its algorithm, an unused client
    /// ID), and as served; every problem otherwise.
    pub fn registered_client(
        &self,
        c: &OidcClient,
        secret: Option<&str>,
    ) -> Result<ClientConfig, Vec<String>> {
        let mut ids = self.client_ids.clone();
        let problems = self.manifests.client_problems(c, &mut ids);
        if problems.is_empty() {
            Ok(self.manifests.served(c, secret))
        } else {
            Err(problems)
        }
    }
}

/// Reads every `*.yaml` / `*.yml` in `dir`, checks it and generates its keys.
pub fn load(dir: &Path, users_secret: &str) -> Result<Folder, ManifestError> {
    let manifests = Manifests::read(dir)?;
    let clients = manifests.served_clients()?;
    manifests.check_scopes()?;
    let keys = Arc::new(manifests.key_ring()?);
    let users = manifests.users(users_secret)?;
    let (upstreams, local_sign_in) = manifests.upstreams()?;
    let sealing = Arc::new(manifests.sealing_key()?);
    let mut manifests = manifests;
    let client_ids = manifests
        .clients
        .drain(..)
        .map(|(_, c)| (c.client_id(), c.metadata.name.clone().unwrap_or_default()))
        .collect();
    manifests.secrets.clear();
    Ok(Folder {
        manifests,
        client_ids,
        clients,
        keys,
        users,
        upstreams,
        local_sign_in,
        sealing,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    const CLIENT: &str = "apiVersion: kubeoidc.dev/v1alpha1
kind: OidcClient
metadata: {name: app, namespace: team-b}
spec:
  type: public
  redirectUris: [https://app.example/cb]
  consent: skip
";

    fn load(files: &[(&str, &str)]) -> Result<crate::config::View, super::ManifestError> {
        let dir = tempfile::tempdir().unwrap();
        for (name, body) in files {
            std::fs::write(dir.path().join(name), body).unwrap();
        }
        super::load(dir.path(), "kube-oidc-users")
            .map(|f| f.view("http://127.0.0.1:8080", Vec::new(), false))
    }

    /// A folder has one owner: its policies apply only where it holds one, and then as in a
    /// cluster (the namespace's label, else the policy `default`).
    #[test]
    fn a_folder_policy_applies_to_its_clients() {
        let key = "apiVersion: kubeoidc.dev/v1alpha1\nkind: SigningKey\nmetadata: {name: main}\nspec: {}\n";
        assert!(
            load(&[("client.yaml", CLIENT), ("key.yaml", key)]).is_ok(),
            "no policy: no checks"
        );
        let default = "apiVersion: kubeoidc.dev/v1alpha1\nkind: ClientPolicy\nmetadata: {name: default}\nspec: {}\n";
        let e = load(&[
            ("client.yaml", CLIENT),
            ("key.yaml", key),
            ("policy.yaml", default),
        ])
        .err()
        .unwrap()
        .to_string();
        assert!(
            e.contains("client.yaml: OidcClient app") && e.contains("consent: skip is not allowed"),
            "{e}"
        );
        let lenient = "apiVersion: kubeoidc.dev/v1alpha1\nkind: ClientPolicy\nmetadata: {name: lenient}\nspec: {allowConsentSkip: true}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: team-b, labels: {kubeoidc.dev/client-policy: lenient}}\n";
        assert!(
            load(&[
                ("client.yaml", CLIENT),
                ("key.yaml", key),
                ("policy.yaml", default),
                ("team-b.yaml", lenient)
            ])
            .is_ok()
        );
    }

    /// A client whose algorithm no SigningKey has is refused at start, naming file and field.
    #[test]
    fn a_client_without_a_key_for_its_algorithm_is_refused_at_start() {
        let es256 = "apiVersion: kubeoidc.dev/v1alpha1\nkind: SigningKey\nmetadata: {name: ec}\nspec: {algorithm: ES256}\n";
        let e = load(&[("client.yaml", CLIENT), ("key.yaml", es256)])
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("client.yaml: OidcClient app: spec.signingAlgorithm: no SigningKey in the folder has algorithm RS256")
                && e.contains("ES256"),
            "{e}"
        );
    }
}
