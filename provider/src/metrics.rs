//! Prometheus metrics of the provider.

use crds::GrantType;
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrantLabels {
    pub grant_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    pub method: String,
}

pub struct Metrics {
    registry: Registry,
    tokens: Family<GrantLabels, Counter>,
    client_auth_failures: Family<MethodLabels, Counter>,
    pub clients: Gauge,
    pub config_reloads: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("kube_oidc_provider");
        let tokens = Family::<GrantLabels, Counter>::default();
        let client_auth_failures = Family::<MethodLabels, Counter>::default();
        let clients = Gauge::default();
        let config_reloads = Counter::default();
        registry.register(
            "tokens_issued",
            "Token responses by grant type",
            tokens.clone(),
        );
        registry.register(
            "client_authentication_failures",
            "Failed client authentications at /token, /introspect, /revoke and /device_authorization, by the method tried",
            client_auth_failures.clone(),
        );
        registry.register("clients", "Clients served", clients.clone());
        registry.register(
            "config_reloads",
            "Times the served configuration changed",
            config_reloads.clone(),
        );
        Self {
            registry,
            tokens,
            client_auth_failures,
            clients,
            config_reloads,
        }
    }
}

impl Metrics {
    /// Counts a token response, labelled by its grant type.
    pub fn token_issued(&self, grant: GrantType) {
        self.tokens
            .get_or_create(&GrantLabels {
                grant_type: grant.as_str().to_string(),
            })
            .inc();
    }

    /// Counts a failed client authentication, labelled by the method tried.
    pub fn client_auth_failed(&self, method: &str) {
        self.client_auth_failures
            .get_or_create(&MethodLabels {
                method: method.to_string(),
            })
            .inc();
    }

    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}
