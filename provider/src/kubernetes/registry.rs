//! Registered clients as OidcClients (with their credentials Secrets) in the registration
//! namespace: the provider's only Kubernetes writes.

use std::collections::BTreeMap;

use crds::{OidcClient, OidcClientSpec};
use k8s_openapi::{api::core::v1::Secret, apimachinery::pkg::apis::meta::v1::OwnerReference};
use kube::{
    Api, Resource, ResourceExt,
    api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams},
};
use serde_json::json;

pub use crate::registry::{REGISTERED_LABEL, RegistryError, TOKEN_ANNOTATION};

fn refused(e: kube::Error) -> RegistryError {
    match e {
        kube::Error::Api(s) if s.code == 422 => RegistryError::Invalid(s.message),
        other => RegistryError::Api(other),
    }
}

/// The registered clients of one namespace.
pub struct ClusterRegistry {
    client: kube::Client,
    pub namespace: String,
}

impl ClusterRegistry {
    pub fn new(client: kube::Client, namespace: String) -> Self {
        Self { client, namespace }
    }

    fn clients(&self) -> Api<OidcClient> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Creates a registered client named `name` (also its client ID), whose registration access
    /// token hashes to `token_hash`, with its credentials Secret when it has a secret.
    pub async fn create(
        &self,
        name: &str,
        spec: OidcClientSpec,
        token_hash: String,
        secret: Option<(&str, &str)>,
    ) -> Result<OidcClient, RegistryError> {
        let mut client = OidcClient::new(name, spec);
        client.metadata.namespace = Some(self.namespace.clone());
        client.metadata.labels = Some(BTreeMap::from([(
            REGISTERED_LABEL.to_string(),
            "true".to_string(),
        )]));
        client.metadata.annotations =
            Some(BTreeMap::from([(TOKEN_ANNOTATION.to_string(), token_hash)]));
        let created = self
            .clients()
            .create(&PostParams::default(), &client)
            .await
            .map_err(refused)?;
        if let Some((value, issuer)) = secret {
            let secret = credentials_secret(&created, value, issuer);
            if let Err(e) = self.secrets().create(&PostParams::default(), &secret).await {
                let _ = self.delete(name).await;
                return Err(e.into());
            }
        }
        Ok(created)
    }

    /// How many registered clients the namespace holds.
    pub async fn count(&self) -> Result<usize, RegistryError> {
        let list = self
            .clients()
            .list_metadata(&kube::api::ListParams::default().labels(REGISTERED_LABEL))
            .await?;
        Ok(list.items.len())
    }

    pub async fn get(&self, name: &str) -> Result<Option<OidcClient>, RegistryError> {
        Ok(self.clients().get_opt(name).await?)
    }

    /// The client's current secret, from its credentials Secret.
    pub async fn secret(&self, client: &OidcClient) -> Option<String> {
        let secret = self.secrets().get_opt(&client.secret_name()).await.ok()??;
        crds::secret::secret_data(&secret, crds::secret::KEY_CLIENT_SECRET)
    }

    pub async fn update_spec(
        &self,
        name: &str,
        spec: &OidcClientSpec,
    ) -> Result<OidcClient, RegistryError> {
        let patch = json!({ "spec": spec });
        self.clients()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(refused)
    }

    pub async fn delete(&self, name: &str) -> Result<(), RegistryError> {
        self.clients()
            .delete(name, &DeleteParams::default())
            .await?;
        Ok(())
    }

    /// The operator's refusal of a client: its Ready=False message for the current generation.
    pub async fn refusal(&self, name: &str) -> Option<String> {
        let c = self.clients().get_opt(name).await.ok()??;
        let generation = c.metadata.generation;
        let status = c.status?;
        let ready = crds::condition::find(&status.conditions, "Ready")?;
        (ready.status == "False" && ready.observed_generation == generation)
            .then(|| ready.message.clone())
    }
}

/// The credentials Secret of a registered client: owned for garbage collection, not as
/// controller, so the operator treats it as a Secret made outside and never rewrites it.
fn credentials_secret(client: &OidcClient, value: &str, issuer: &str) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(client.secret_name()),
            labels: Some(BTreeMap::from([(
                REGISTERED_LABEL.to_string(),
                "true".to_string(),
            )])),
            owner_references: Some(vec![OwnerReference {
                api_version: OidcClient::api_version(&()).into(),
                kind: OidcClient::kind(&()).into(),
                name: client.name_any(),
                uid: client.uid().unwrap_or_default(),
                controller: Some(false),
                block_owner_deletion: None,
            }]),
            ..Default::default()
        },
        data: Some(crds::secret::client_secret_data(
            &client.client_id(),
            value,
            issuer,
        )),
        ..Default::default()
    }
}
