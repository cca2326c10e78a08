//! Where registered clients live: OidcClients in the cluster (accepted by the operator like any
//! other), or, in standalone mode, records in the store checked as the operator would check
//! them and served next to the folder's clients.

use std::{sync::Arc, time::Duration};

use crds::{OidcClient, OidcClientSpec};
use kube::ResourceExt;
use serde::{Deserialize, Serialize};

use crate::{
    config::SharedView,
    kubernetes::registry::ClusterRegistry,
    manifests::Folder,
    metrics::Metrics,
    store::{Key, Store, StoreError},
};

/// Annotation holding the hash of a registered client's registration access token.
pub const TOKEN_ANNOTATION: &str = "kubeoidc.dev/registration-token-hash";
/// Label on registered clients and their Secrets.
pub use crds::policy::REGISTERED_LABEL;

/// Why the registry could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The client breaks a rule (the API server's schema or CEL rules, or in standalone mode
    /// the operator's checks): the message says why.
    #[error("{0}")]
    Invalid(String),
    #[error("Kubernetes API: {0}")]
    Api(#[from] kube::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The registered clients.
pub enum Registry {
    Cluster(ClusterRegistry),
    Store(Arc<StoreRegistry>),
}

impl Registry {
    /// The namespace registered clients are put in.
    pub fn namespace(&self) -> &str {
        match self {
            Self::Cluster(r) => &r.namespace,
            Self::Store(r) => &r.namespace,
        }
    }

    /// Creates a registered client named `name` (also its client ID), whose registration access
    /// token hashes to `token_hash`, with its secret (and the issuer) when it has one.
    pub async fn create(
        &self,
        name: &str,
        spec: OidcClientSpec,
        token_hash: String,
        secret: Option<(&str, &str)>,
    ) -> Result<OidcClient, RegistryError> {
        match self {
            Self::Cluster(r) => r.create(name, spec, token_hash, secret).await,
            Self::Store(r) => r.create(name, spec, token_hash, secret.map(|s| s.0)).await,
        }
    }

    /// How many registered clients there are.
    pub async fn count(&self) -> Result<usize, RegistryError> {
        match self {
            Self::Cluster(r) => r.count().await,
            Self::Store(r) => Ok(r.store.entry_count(Key::RegisteredClients).await?),
        }
    }

    pub async fn get(&self, name: &str) -> Result<Option<OidcClient>, RegistryError> {
        match self {
            Self::Cluster(r) => r.get(name).await,
            Self::Store(r) => Ok(r.record(name).await?.map(|r| r.client)),
        }
    }

    /// The hash of the client's registration access token.
    pub fn token_hash(client: &OidcClient) -> String {
        client
            .annotations()
            .get(TOKEN_ANNOTATION)
            .cloned()
            .unwrap_or_default()
    }

    /// The client's current secret.
    pub async fn secret(&self, client: &OidcClient) -> Option<String> {
        match self {
            Self::Cluster(r) => r.secret(client).await,
            Self::Store(r) => r.record(&client.name_any()).await.ok()??.secret,
        }
    }

    pub async fn update_spec(
        &self,
        name: &str,
        spec: &OidcClientSpec,
    ) -> Result<OidcClient, RegistryError> {
        match self {
            Self::Cluster(r) => r.update_spec(name, spec).await,
            Self::Store(r) => r.update_spec(name, spec).await,
        }
    }

    pub async fn delete(&self, name: &str) -> Result<(), RegistryError> {
        match self {
            Self::Cluster(r) => r.delete(name).await,
            Self::Store(r) => {
                r.store.delete_entry(Key::RegisteredClients, name).await?;
                r.refresh().await
            }
        }
    }

    /// Why a created client is not served, when its checks refused it after creation (the
    /// operator's Ready=False message). The store's registry checks before it stores.
    pub async fn refusal(&self, name: &str) -> Option<String> {
        match self {
            Self::Cluster(r) => r.refusal(name).await,
            Self::Store(_) => None,
        }
    }
}

/// A client registered in standalone mode, as stored.
#[derive(Serialize, Deserialize)]
struct Record {
    client: OidcClient,
    /// A confidential client's secret (returned on RFC 7592 reads, as a cluster's credentials
    /// Secret returns it).
    secret: Option<String>,
}

/// Registered clients in the store, served next to a folder's clients: kept across restarts
/// with Redis (and shared by the replicas using it), lost with the memory store.
pub struct StoreRegistry {
    store: Store,
    folder: Arc<Folder>,
    view: SharedView,
    metrics: Arc<Metrics>,
    issuer: String,
    pub namespace: String,
    /// The records the view was last built from: the view is rebuilt only when they change.
    built: tokio::sync::Mutex<Option<Vec<String>>>,
}

/// How often a replica reads the registered clients others may have added (Redis only).
pub const RESYNC: Duration = Duration::from_secs(2);

impl StoreRegistry {
    pub fn new(
        store: Store,
        folder: Arc<Folder>,
        view: SharedView,
        metrics: Arc<Metrics>,
        issuer: &str,
        namespace: String,
    ) -> Self {
        Self {
            store,
            folder,
            view,
            metrics,
            issuer: issuer.to_string(),
            namespace,
            built: tokio::sync::Mutex::new(None),
        }
    }

    async fn record(&self, name: &str) -> Result<Option<Record>, StoreError> {
        self.store.entry(Key::RegisteredClients, name).await
    }

    /// Checks the client as the operator would and stores it.
    async fn put(&self, client: OidcClient, secret: Option<String>) -> Result<(), RegistryError> {
        self.folder
            .registered_client(&client, secret.as_deref())
            .map_err(|problems| RegistryError::Invalid(problems.join("; ")))?;
        let name = client.name_any();
        self.store
            .put_entry(Key::RegisteredClients, &name, &Record { client, secret })
            .await?;
        self.refresh().await
    }

    async fn create(
        &self,
        name: &str,
        spec: OidcClientSpec,
        token_hash: String,
        secret: Option<&str>,
    ) -> Result<OidcClient, RegistryError> {
        let mut client = OidcClient::new(name, spec);
        let meta = &mut client.metadata;
        meta.namespace = Some(self.namespace.clone());
        meta.labels = Some([(REGISTERED_LABEL.to_string(), "true".to_string())].into());
        meta.annotations = Some([(TOKEN_ANNOTATION.to_string(), token_hash)].into());
        // Remembered consent belongs to the object: a client registered again under a reused
        // ID starts with none.
        meta.uid = Some(format!(
            "{name}-{}",
            crate::protocol::params::random_token()
        ));
        meta.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            jiff::Timestamp::now(),
        ));
        self.put(client.clone(), secret.map(String::from)).await?;
        Ok(client)
    }

    async fn update_spec(
        &self,
        name: &str,
        spec: &OidcClientSpec,
    ) -> Result<OidcClient, RegistryError> {
        let Some(Record { mut client, secret }) = self.record(name).await? else {
            return Err(RegistryError::Invalid(format!(
                "client {name} is not registered"
            )));
        };
        client.spec = spec.clone();
        self.put(client.clone(), secret).await?;
        Ok(client)
    }

    /// Rebuilds the view whether or not the registered clients changed (the folder's keys did).
    pub async fn rebuild(&self) -> Result<(), RegistryError> {
        *self.built.lock().await = None;
        self.refresh().await
    }

    /// Rebuilds the view from the folder and the stored registered clients, when these changed.
    /// A record that no longer passes the checks (the folder changed since) is not served.
    pub async fn refresh(&self) -> Result<(), RegistryError> {
        let mut built = self.built.lock().await;
        let mut records: Vec<(String, Record)> = self.store.entries(Key::RegisteredClients).await?;
        records.sort_by(|a, b| a.0.cmp(&b.0));
        let fingerprint: Vec<String> = records
            .iter()
            .map(|(_, r)| serde_json::to_string(r).unwrap_or_default())
            .collect();
        if built.as_ref() == Some(&fingerprint) {
            return Ok(());
        }
        let served: Vec<_> = records
            .iter()
            .filter_map(|(name, r)| {
                match self.folder.registered_client(&r.client, r.secret.as_deref()) {
                    Ok(c) => Some(c),
                    Err(problems) => {
                        tracing::warn!(client = %name, problems = %problems.join("; "), "registered client not served");
                        None
                    }
                }
            })
            .collect();
        let ids: Vec<&str> = served.iter().map(|c| c.id.as_str()).collect();
        tracing::info!(registered = served.len(), clients = ?ids, "registered clients");
        let count = self.folder.client_count() + served.len();
        self.view
            .store(Arc::new(self.folder.view(&self.issuer, served, true)));
        self.metrics
            .clients
            .set(i64::try_from(count).unwrap_or(i64::MAX));
        *built = Some(fingerprint);
        Ok(())
    }
}
