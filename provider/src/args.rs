//! The command line (DESIGN "Command-line contract"): every flag with an environment fallback,
//! every value parsed into its type here, not checked later.

use std::{net::SocketAddr, path::PathBuf};

use clap::{Parser, Subcommand, ValueEnum};

/// Serves the OpenID Connect endpoints for the clients, scopes and signing keys defined as
/// kube-oidc resources, watched in a cluster or read from a folder of manifests.
#[derive(Parser, Debug)]
#[command(name = "kube-oidc-provider", version, about)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Issuer URL; defaults to `http://<listen>`.
    #[arg(long, env = "KUBE_OIDC_ISSUER")]
    pub issuer: Option<String>,

    /// Address the OpenID Connect endpoints listen on.
    #[arg(long, env = "KUBE_OIDC_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Read OidcClient, OidcScope, SigningKey and Secret manifests from this folder instead of a
    /// cluster (standalone mode).
    #[arg(long, env = "KUBE_OIDC_MANIFESTS")]
    pub manifests: Option<PathBuf>,

    /// Where codes, refresh tokens and sessions live: `memory` (one replica) or
    /// `redis://HOST:PORT` (many).
    #[arg(long, env = "KUBE_OIDC_STORE", default_value = "memory", value_parser = StoreUrl::parse)]
    pub store: StoreUrl,

    /// Prefix of every key this installation keeps in Redis: installations sharing one Redis set
    /// different ones.
    #[arg(long, env = "KUBE_OIDC_STORE_PREFIX", default_value = crate::store::DEFAULT_PREFIX)]
    pub store_prefix: String,

    /// PEM CA certificates that sign a `rediss://` store's certificate (default: the system's
    /// trusted roots).
    #[arg(long, env = "KUBE_OIDC_STORE_CA")]
    pub store_ca: Option<PathBuf>,

    /// The provider's namespace: SigningKeys, OidcScopes and the users Secret.
    #[arg(long, env = "KUBE_OIDC_NAMESPACE", default_value = "kube-oidc")]
    pub namespace: String,

    /// Namespaces whose OidcClients are served: a comma-separated list, or `*` for all.
    #[arg(
        long,
        env = "KUBE_OIDC_CLIENT_NAMESPACES",
        default_value = "*",
        value_delimiter = ','
    )]
    pub client_namespaces: Vec<String>,

    /// The Secret (key `users.yaml`) that holds the users directory.
    #[arg(
        long,
        env = "KUBE_OIDC_USERS_SECRET",
        default_value = "kube-oidc-users"
    )]
    pub users_secret: String,

    /// TLS certificate (PEM) to serve https.
    #[arg(long, env = "KUBE_OIDC_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key (PEM) to serve https.
    #[arg(long, env = "KUBE_OIDC_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Serve /metrics (and /healthz, /readyz) on this address, and /metrics no longer on the
    /// public one.
    #[arg(long, env = "KUBE_OIDC_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Dynamic client registration: `closed`, `open`, or `token` (callers present
    /// --registration-token as a Bearer initial access token). In a cluster registered clients
    /// are OidcClients; with --manifests they live in the store (kept with Redis).
    #[arg(long, env = "KUBE_OIDC_REGISTRATION", value_enum, default_value_t = RegistrationPolicy::Closed)]
    pub registration: RegistrationPolicy,

    /// The initial access token for `--registration token`.
    #[arg(long, env = "KUBE_OIDC_REGISTRATION_TOKEN", hide_env_values = true)]
    pub registration_token: Option<String>,

    /// Namespace in which registered clients are created (default: the only client namespace,
    /// else --namespace).
    #[arg(long, env = "KUBE_OIDC_REGISTRATION_NAMESPACE")]
    pub registration_namespace: Option<String>,

    /// Consent policy of registered clients: `once` (users are asked the first time) or
    /// `always`. Registered clients are third parties: they never skip consent.
    #[arg(long, env = "KUBE_OIDC_REGISTRATION_CONSENT", default_value = "once", value_parser = registration_consent)]
    pub registration_consent: crds::ConsentPolicy,

    /// Seconds after a refresh token's use in which a second use of it succeeds (two refreshes
    /// at once, as two kubectl commands with kubelogin make); later reuse revokes its family.
    #[arg(long, env = "KUBE_OIDC_REFRESH_REUSE_INTERVAL", default_value_t = 3)]
    pub refresh_reuse_interval: u64,

    /// MiB that password checks may take at once (each Argon2 check takes its hash's memory
    /// cost, 19 MiB by default); sign-ins beyond it wait up to 2 s, then are asked to retry.
    #[arg(long, env = "KUBE_OIDC_PASSWORD_HASH_MEMORY", default_value_t = 48)]
    pub password_hash_memory: u32,

    /// Proxies in front of the provider (ingress controllers, load balancers) whose
    /// `X-Forwarded-For` is believed, as address ranges: `10.0.0.0/8,fd00::/8`. From anyone else
    /// the header is ignored, so a client cannot choose the address it is throttled by.
    #[arg(long, env = "KUBE_OIDC_TRUSTED_PROXIES", value_delimiter = ',', value_parser = crate::http::extract::Cidr::parse)]
    pub trusted_proxies: Vec<crate::http::extract::Cidr>,

    /// Requests served at once; more are answered 503 with Retry-After at once, never queued
    /// without bound.
    #[arg(long, env = "KUBE_OIDC_MAX_CONCURRENT_REQUESTS", default_value_t = 512)]
    pub max_concurrent_requests: usize,

    /// How long a client may take to send a request's headers (slow clients holding
    /// connections open are cut off), and to have a request answered.
    #[arg(long, env = "KUBE_OIDC_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = duration)]
    pub header_read_timeout: std::time::Duration,
    #[arg(long, env = "KUBE_OIDC_REQUEST_TIMEOUT", default_value = "30s", value_parser = duration)]
    pub request_timeout: std::time::Duration,

    /// How many clients dynamic registration may create (its namespace's quota).
    #[arg(long, env = "KUBE_OIDC_REGISTRATION_QUOTA", default_value_t = 100)]
    pub registration_quota: usize,

    /// Accept registration metadata URLs on private and loopback addresses, and fetch clients'
    /// jwksUri from them.
    #[arg(long, env = "KUBE_OIDC_REGISTRATION_ALLOW_PRIVATE_URLS")]
    pub registration_allow_private_urls: bool,

    /// PEM CA certificates the provider's own requests trust besides the public roots:
    /// back-channel logout and clients' jwksUri on a private CA.
    #[arg(long, env = "KUBE_OIDC_OUTBOUND_CA")]
    pub outbound_ca: Option<std::path::PathBuf>,

    /// The product name on the pages (header and title).
    #[arg(long, env = "KUBE_OIDC_BRAND_NAME")]
    pub brand_name: Option<String>,

    /// A logo for the pages' header: an https URL (its origin is added to the pages' CSP
    /// img-src) or a `data:image/...` URL.
    #[arg(long, env = "KUBE_OIDC_BRAND_LOGO_URL")]
    pub brand_logo_url: Option<String>,

    /// The colour of primary buttons and focus rings, `#rrggbb`; the button text is black or
    /// white, whichever contrasts more.
    #[arg(long, env = "KUBE_OIDC_BRAND_COLOR")]
    pub brand_color: Option<String>,

    /// A CSS file added after the pages' built-in styles.
    #[arg(long, env = "KUBE_OIDC_BRAND_CSS")]
    pub brand_css: Option<PathBuf>,

    /// A folder of page templates (base.html, login.html, consent.html, device.html,
    /// logout.html, message.html, form_post.html) replacing the shipped ones of the same name.
    #[arg(long, env = "KUBE_OIDC_TEMPLATES")]
    pub templates: Option<PathBuf>,

    /// A folder of `<lang>.json` text catalogs (English text → translation) adding languages
    /// or replacing shipped texts; pages follow the browser's Accept-Language.
    #[arg(long, env = "KUBE_OIDC_LOCALES")]
    pub locales: Option<PathBuf>,

    /// Log format: `json` (in a cluster) or `text`.
    #[arg(long, env = "KUBE_OIDC_LOG_FORMAT", value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,
}

impl Args {
    /// How the pages are branded.
    pub fn branding(&self) -> crate::http::pages::Branding {
        crate::http::pages::Branding {
            name: self.brand_name.clone(),
            logo_url: self.brand_logo_url.clone(),
            color: self.brand_color.clone(),
            css: self.brand_css.clone(),
            templates: self.templates.clone(),
            locales: self.locales.clone(),
        }
    }
}

/// A Go-style duration (`10s`, `1m30s`, `500ms`).
fn duration(value: &str) -> Result<std::time::Duration, String> {
    value
        .parse::<kube::core::Duration>()
        .map(std::time::Duration::from)
        .map_err(|e| format!("{value}: not a duration such as 10s or 1m30s: {e}"))
}

fn registration_consent(value: &str) -> Result<crds::ConsentPolicy, String> {
    match value {
        "once" => Ok(crds::ConsentPolicy::Once),
        "always" => Ok(crds::ConsentPolicy::Always),
        other => Err(format!(
            "{other:?}: registered clients ask for consent `once` or `always`"
        )),
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Read a password on stdin and print its argon2id PHC string for the users file.
    HashPassword,
    /// Check a folder of manifests as the operator and the provider would (for CI before
    /// anything reaches the cluster): one line per problem, exit status 1 if there is one.
    Check {
        /// The folder (every *.yaml / *.yml in it).
        dir: std::path::PathBuf,
    },
}

/// Where short-lived protocol state lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreUrl {
    /// In this process (one replica).
    Memory,
    /// A Redis server (`redis://` or `rediss://`), shared by replicas.
    Redis(String),
}

impl StoreUrl {
    fn parse(value: &str) -> Result<Self, String> {
        match value {
            "memory" => Ok(Self::Memory),
            v if v.starts_with("redis://") || v.starts_with("rediss://") => {
                Ok(Self::Redis(v.to_string()))
            }
            other => Err(format!("{other:?}: use memory or redis://HOST:PORT")),
        }
    }
}

/// Who may register clients dynamically (RFC 7591).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RegistrationPolicy {
    Closed,
    Open,
    /// Callers present `--registration-token` as a Bearer initial access token.
    Token,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Text when stderr is a terminal, JSON lines otherwise.
    Auto,
    /// JSON lines (in a cluster).
    Json,
    /// For humans.
    Text,
}

impl LogFormat {
    /// The format `Auto` stands for here.
    pub fn resolved(self) -> LogFormat {
        match self {
            LogFormat::Auto if std::io::IsTerminal::is_terminal(&std::io::stderr()) => {
                LogFormat::Text
            }
            LogFormat::Auto => LogFormat::Json,
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use clap::Parser;

    use super::*;

    #[test]
    fn values_are_typed_and_bad_ones_refused_at_parse() {
        let a = Args::try_parse_from([
            "p",
            "--store",
            "redis://127.0.0.1:6379",
            "--registration",
            "open",
            "--log-format",
            "text",
        ])
        .unwrap();
        assert_eq!(a.store, StoreUrl::Redis("redis://127.0.0.1:6379".into()));
        assert_eq!(a.registration, RegistrationPolicy::Open);
        assert_eq!(a.log_format, LogFormat::Text);
        let d = Args::try_parse_from(["p"]).unwrap();
        assert_eq!(
            (d.store, d.registration, d.log_format),
            (
                StoreUrl::Memory,
                RegistrationPolicy::Closed,
                LogFormat::Auto
            )
        );
        for bad in [
            ["--store", "postgres://x"],
            ["--registration", "maybe"],
            ["--log-format", "xml"],
            ["--registration-consent", "skip"],
        ] {
            let err = Args::try_parse_from(["p", bad[0], bad[1]])
                .unwrap_err()
                .to_string();
            assert!(err.contains(bad[1]), "{err}");
        }
    }
}
