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
pub struct ResultLabels {
    pub result: &'static str,
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
    sign_ins: Family<ResultLabels, Counter>,
    /// Failed store operations (the store counts them).
    pub store_errors: Counter,
    /// 1 when ready to serve (synced, a key signs, the store answers), set at each scrape.
    pub ready: Gauge,
}

/// The results a password sign-in is counted under.
pub const SIGN_IN_RESULTS: [&str; 4] = ["success", "refused", "throttled", "busy"];

impl Default for Metrics {
    fn default() -> Self {
        Self::with_store_errors(Counter::default())
    }
}

impl Metrics {
    /// With the store's error counter.
    pub fn with_store_errors(store_errors: Counter) -> Self {
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
        let sign_ins = Family::<ResultLabels, Counter>::default();
        registry.register(
            "sign_ins",
            "Password sign-ins by result: success, refused (wrong password or unknown user), throttled (too many failures), busy",
            sign_ins.clone(),
        );
        registry.register(
            "store_errors",
            "Store operations that failed (Redis unreachable, timed out or refusing)",
            store_errors.clone(),
        );
        let ready = Gauge::default();
        registry.register(
            "ready",
            "1 when ready to serve: synced, a key signs, the store answers",
            ready.clone(),
        );
        // Every known series from the start, at zero: a rate over a series that appears only
        // at its first event misses that event, and alerts comparing results see them all.
        for grant in GrantType::served() {
            let _ = tokens.get_or_create(&GrantLabels {
                grant_type: grant.as_str().to_string(),
            });
        }
        for result in SIGN_IN_RESULTS {
            let _ = sign_ins.get_or_create(&ResultLabels { result });
        }
        Self {
            registry,
            tokens,
            client_auth_failures,
            clients,
            config_reloads,
            sign_ins,
            store_errors,
            ready,
        }
    }

    /// Counts a password sign-in by its result.
    pub fn sign_in(&self, result: &'static str) {
        self.sign_ins.get_or_create(&ResultLabels { result }).inc();
    }

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
