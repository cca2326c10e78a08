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

pub struct Metrics {
    registry: Registry,
    tokens: Family<GrantLabels, Counter>,
    pub clients: Gauge,
    pub config_reloads: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("kube_oidc_provider");
        let tokens = Family::<GrantLabels, Counter>::default();
        let clients = Gauge::default();
        let config_reloads = Counter::default();
        registry.register(
            "tokens_issued",
            "Token responses by grant type",
            tokens.clone(),
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

    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}
