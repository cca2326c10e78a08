//! Cluster mode: reflectors over OidcClient, OidcScope, SigningKey, the labelled key Secrets and
//! the users Secret feed one view, rebuilt (and the documents re-rendered) after each change.

use std::{collections::HashMap, sync::Arc, time::Duration};

use crds::{
    ClientPolicy, KeyState, OidcClient, OidcScope, SIGNING_KEY_LABEL, SigningKey,
    connector::IdentityConnector,
};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::{
    Api, Client, Resource, ResourceExt,
    core::DeserializeGuard,
    runtime::{
        WatchStreamExt,
        reflector::{self, Store},
        watcher,
    },
};
use tokio::sync::mpsc;

pub mod registry;

use crate::{
    config::{self, ClientConfig, KeyInput, SharedView},
    metrics::Metrics,
    protocol::connectors,
    users::Users,
};

pub struct Settings {
    pub issuer: String,
    pub namespace: String,
    pub client_namespaces: Vec<String>,
    pub users_secret: String,
    /// Whether dynamic client registration is open (advertised in discovery).
    pub registration: bool,
}

struct Watched<K: Resource + 'static>
where
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    store: Store<K>,
    synced: Arc<std::sync::atomic::AtomicBool>,
}

impl<K: Resource + Clone + 'static> Watched<K>
where
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    fn is_ready(&self) -> bool {
        self.synced.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn state(&self) -> Vec<Arc<K>> {
        self.store.state()
    }

    /// Nothing to watch (the kind is not served): synced and empty.
    fn empty() -> Self
    where
        K::DynamicType: Default,
    {
        let (store, _writer) = reflector::store::<K>();
        Self {
            store,
            synced: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        }
    }
}

fn watch<K>(api: Api<K>, config: watcher::Config, changed: mpsc::Sender<()>) -> Watched<K>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let (store, writer) = reflector::store::<K>();
    let stream = reflector::reflector(writer, watcher(api, config).default_backoff());
    follow(store, stream, changed)
}

/// Drives `stream` (which keeps `store` current), notes when it has listed everything, and
/// signals `changed` after each event.
fn follow<K>(
    store: Store<K>,
    stream: impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
    changed: mpsc::Sender<()>,
) -> Watched<K>
where
    K: Resource + Clone + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    let synced = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = synced.clone();
    tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            match &event {
                Err(e) => tracing::warn!(error = %e, "watch"),
                Ok(watcher::Event::InitDone) => {
                    flag.store(true, std::sync::atomic::Ordering::Relaxed)
                }
                Ok(_) => {}
            }
            if changed.send(()).await.is_err() {
                return;
            }
        }
    });
    Watched { store, synced }
}

/// Watches the cluster and keeps `view` current. Runs until the process ends.
pub async fn run(client: Client, settings: Settings, view: SharedView, metrics: Arc<Metrics>) {
    let (tx, mut rx) = mpsc::channel::<()>(1024);
    // OidcClients in every accepted namespace: one watch cluster-wide, or one per namespace
    // (merged) when the provider is only granted those namespaces.
    let (client_store, client_events) = crds::watch::reflect::<DeserializeGuard<OidcClient>>(
        &client,
        &settings.client_namespaces,
        watcher::Config::default(),
    );
    let ns = settings.namespace.as_str();
    let watches = Watches {
        clients: follow(client_store, client_events, tx.clone()),
        scopes: watch(
            Api::<DeserializeGuard<OidcScope>>::namespaced(client.clone(), ns),
            watcher::Config::default(),
            tx.clone(),
        ),
        keys: watch(
            Api::<DeserializeGuard<SigningKey>>::namespaced(client.clone(), ns),
            watcher::Config::default(),
            tx.clone(),
        ),
        key_secrets: watch(
            Api::<Secret>::namespaced(client.clone(), ns),
            watcher::Config::default().labels(SIGNING_KEY_LABEL),
            tx.clone(),
        ),
        policies: if crds::watch::is_served(&Api::<ClientPolicy>::all(client.clone()))
            .await
            .unwrap_or(true)
        {
            watch(
                Api::<DeserializeGuard<ClientPolicy>>::all(client.clone()),
                watcher::Config::default(),
                tx.clone(),
            )
        } else {
            tracing::warn!(
                "the ClientPolicy CRD is not installed: the built-in client policy applies; apply crds/yaml/ to use ClientPolicies"
            );
            Watched::empty()
        },
        namespaces: watch(
            Api::<Namespace>::all(client.clone()),
            watcher::Config::default(),
            tx.clone(),
        ),
        connectors: if crds::watch::is_served(&Api::<IdentityConnector>::namespaced(
            client.clone(),
            ns,
        ))
        .await
        .unwrap_or(true)
        {
            watch(
                Api::<DeserializeGuard<IdentityConnector>>::namespaced(client.clone(), ns),
                watcher::Config::default(),
                tx.clone(),
            )
        } else {
            tracing::warn!(
                "the IdentityConnector CRD is not installed: only the users Secret signs people in; apply crds/yaml/ to use connectors"
            );
            Watched::empty()
        },
        // The connectors' credentials and CAs: any Secret of this namespace (they are named by
        // the connectors), but Helm's release records, which are large and never referenced.
        connector_secrets: watch(
            Api::<Secret>::namespaced(client.clone(), ns),
            watcher::Config::default().fields("type!=helm.sh/release.v1"),
            tx.clone(),
        ),
        sealing_key: watch(
            Api::<Secret>::namespaced(client.clone(), ns),
            watcher::Config::default().fields(&format!(
                "metadata.name={}",
                crds::sealed::SEALING_KEY_SECRET
            )),
            tx.clone(),
        ),
    };
    let users_secret = watch(
        Api::<Secret>::namespaced(client.clone(), ns),
        watcher::Config::default().fields(&format!("metadata.name={}", settings.users_secret)),
        tx,
    );
    let mut users = Users::default();
    let mut last_good_keys = HashMap::new();
    let mut upstreams = connectors::Cache::default();
    while rx.recv().await.is_some() {
        // Coalesce a burst of events (a resync, a rotation touching several objects).
        tokio::time::sleep(Duration::from_millis(20)).await;
        while rx.try_recv().is_ok() {}
        let synced = watches.synced() && users_secret.is_ready();
        if let Some(secret) = users_secret.state().first() {
            let yaml =
                crds::secret::secret_data(secret, crds::secret::KEY_USERS).unwrap_or_default();
            match Users::parse(&yaml) {
                Ok(u) => users = u,
                Err(e) => {
                    tracing::error!(error = %e, secret = %settings.users_secret, "users Secret rejected; keeping the previous users")
                }
            }
        } else if users_secret.is_ready() {
            users = Users::default();
        }
        let next = build(
            &settings,
            &watches,
            users.clone(),
            synced,
            &mut last_good_keys,
            &mut upstreams,
        );
        metrics
            .clients
            .set(i64::try_from(next.clients.len()).unwrap_or(i64::MAX));
        metrics.config_reloads.inc();
        view.store(Arc::new(next));
    }
}

/// The watched objects a view is built from.
struct Watches {
    clients: Watched<DeserializeGuard<OidcClient>>,
    scopes: Watched<DeserializeGuard<OidcScope>>,
    keys: Watched<DeserializeGuard<SigningKey>>,
    key_secrets: Watched<Secret>,
    policies: Watched<DeserializeGuard<ClientPolicy>>,
    namespaces: Watched<Namespace>,
    /// The key client_secret_jwt clients' secrets are sealed with in their status (and upstream
    /// refresh tokens in the store).
    sealing_key: Watched<Secret>,
    connectors: Watched<DeserializeGuard<IdentityConnector>>,
    connector_secrets: Watched<Secret>,
}

impl Watches {
    fn synced(&self) -> bool {
        self.clients.is_ready()
            && self.scopes.is_ready()
            && self.keys.is_ready()
            && self.key_secrets.is_ready()
            && self.policies.is_ready()
            && self.namespaces.is_ready()
            && self.sealing_key.is_ready()
            && self.connectors.is_ready()
            && self.connector_secrets.is_ready()
    }
}

/// The view of the watched objects. `last_good` holds the keys each SigningKey published last
/// time: what is served again when its status turns out malformed.
fn build(
    settings: &Settings,
    watches: &Watches,
    users: Users,
    synced: bool,
    last_good: &mut HashMap<String, Vec<KeyInput>>,
    upstreams: &mut connectors::Cache,
) -> config::View {
    let Watches {
        clients,
        scopes,
        keys,
        key_secrets,
        policies,
        namespaces,
        sealing_key,
        connectors,
        connector_secrets,
    } = watches;
    let sealing_key = sealing_key
        .state()
        .first()
        .and_then(|s| crds::sealed::SealingKey::from_secret(s));
    let secrets = connector_secrets.state();
    let built = connectors::build(
        connectors.state().iter().filter_map(|g| g.0.as_ref().ok()),
        &|name, key| {
            secrets
                .iter()
                .find(|s| s.metadata.name.as_deref() == Some(name))
                .and_then(|s| crds::secret::secret_data(s, key))
        },
        upstreams,
    );
    for (name, problem) in &built.problems {
        // The operator says it in the connector's status; the provider only skips it.
        tracing::debug!(connector = %name, problem, "connector not served");
    }
    let now = jiff::Timestamp::now();
    let oidc_scopes: Vec<OidcScope> = scopes
        .state()
        .iter()
        .filter_map(|g| g.0.as_ref().ok())
        .filter(|s| {
            s.status.as_ref().is_some_and(|st| {
                crds::condition::is_ready_for(&st.conditions, s.metadata.generation)
            })
        })
        .cloned()
        .collect();
    let policies: Vec<ClientPolicy> = policies
        .state()
        .iter()
        .filter_map(|g| g.0.as_ref().ok().cloned())
        .collect();
    let labels: HashMap<String, std::collections::BTreeMap<String, String>> = namespaces
        .state()
        .iter()
        .map(|n| (n.name_any(), n.labels().clone()))
        .collect();
    let served: Vec<ClientConfig> = clients
        .state()
        .iter()
        .filter_map(|g| g.0.as_ref().ok())
        .filter_map(|c| {
            let status = c.status.as_ref()?;
            // Only what the operator accepted, for the current generation.
            if !crds::condition::is_ready_for(&status.conditions, c.metadata.generation) {
                return None;
            }
            let mut hashes: Vec<String> = status.secret_hash.iter().cloned().collect();
            let previous = status
                .previous_secret
                .as_ref()
                .filter(|prev| prev.expires_at.0 > now);
            if let Some(prev) = previous {
                hashes.push(prev.hash.clone());
            }
            if c.spec.uses_secret() && hashes.is_empty() {
                return None;
            }
            let hmac_secrets = if c.spec.needs_recoverable_secret() {
                let secrets = unsealed_secrets(c, status, previous, sealing_key.as_ref());
                if secrets.is_empty() {
                    tracing::warn!(client = %c.client_id(), "not served: its sealed secret does not open with the sealing key (the operator seals it again)");
                    return None;
                }
                secrets
            } else {
                Vec::new()
            };
            // The policy as it is now, even when the operator is not running to say so.
            let ns = c.namespace().unwrap_or_default();
            let governing = crds::policy::governing_client(
                c,
                labels.get(&ns),
                &settings.namespace,
                &policies,
            );
            let violations = crds::policy::check_client(c, &governing, &oidc_scopes, None);
            if let Some(v) = violations.first() {
                tracing::debug!(client = %c.client_id(), violation = %v, "not served: policy violation");
                return None;
            }
            Some(
                ClientConfig::from_resource(c, hashes)
                    .with_hmac_secrets(hmac_secrets)
                    .with_max_session(governing.max_session()),
            )
        })
        .collect();
    let mut inputs = Vec::new();
    let mut algorithms = Vec::new();
    let mut still_published = HashMap::new();
    for sk in keys.state().iter().filter_map(|g| g.0.as_ref().ok()) {
        algorithms.push(sk.spec.algorithm);
        let Some(status) = &sk.status else { continue };
        let name = format!("{}/{}", sk.namespace().unwrap_or_default(), sk.name_any());
        let published = match key_inputs(sk, status, key_secrets) {
            Ok(published) => published,
            Err(e) => {
                // A relying party cannot verify with a broken key: keep what was served.
                tracing::error!(signing_key = %name, error = %e, "malformed key material refused; serving the previous keys");
                last_good.get(&name).cloned().unwrap_or_default()
            }
        };
        inputs.extend(published.iter().cloned());
        still_published.insert(name, published);
    }
    *last_good = still_published;
    config::build(
        &settings.issuer,
        config::Sources {
            clients: served,
            scopes: oidc_scopes,
            keys: inputs,
            algorithms,
            users,
            synced,
            registration: settings.registration,
            // Connectors in a cluster: next (issue 15 plan, step 2 on the provider side).
            upstreams: built.upstreams,
            local_sign_in: Some(built.local),
            sealing: sealing_key.map(Arc::new),
        },
    )
}

/// A client_secret_jwt client's secrets (current, and the previous one in its grace period),
/// opened from its status with the sealing key.
fn unsealed_secrets(
    c: &OidcClient,
    status: &crds::OidcClientStatus,
    previous: Option<&crds::PreviousSecret>,
    key: Option<&crds::sealed::SealingKey>,
) -> Vec<config::HmacSecret> {
    let Some(key) = key else { return Vec::new() };
    let owner = crds::sealed::client_owner(&c.namespace().unwrap_or_default(), &c.name_any());
    status
        .sealed_secret
        .iter()
        .chain(previous.and_then(|p| p.sealed.as_ref()))
        .filter_map(|sealed| key.open(&owner, sealed))
        .map(config::HmacSecret)
        .collect()
}

/// The keys a SigningKey's status publishes, each checked as a relying party will use it.
fn key_inputs(
    sk: &SigningKey,
    status: &crds::SigningKeyStatus,
    key_secrets: &Watched<Secret>,
) -> Result<Vec<KeyInput>, crds::keys::MalformedJwk> {
    status
        .keys
        .iter()
        .map(|k| {
            crds::keys::check_public_jwk(&k.public_jwk)?;
            let private_pem = (k.state == KeyState::Active)
                .then(|| {
                    key_secrets
                        .state()
                        .iter()
                        .find(|s| s.name_any() == k.secret_name)
                        .and_then(|s| s.data.as_ref()?.get(crds::keys::PRIVATE_KEY).cloned())
                        .and_then(|b| String::from_utf8(b.0).ok())
                })
                .flatten();
            Ok(KeyInput {
                jwk: k.public_jwk.clone(),
                state: k.state,
                private_pem,
                prepublish: Duration::from(sk.spec.rotation.prepublish),
            })
        })
        .collect()
}
