//! `kube-oidc-provider`: serves OpenID Connect from watched resources or a folder of manifests.

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use arc_swap::ArcSwap;
use clap::{Parser, Subcommand};

mod config;
mod http;
mod kubernetes;
mod manifests;
mod metrics;
mod oidc;
mod pages;
mod signing;
mod store;
mod users;

/// Serves the OpenID Connect endpoints for the clients, scopes and signing keys defined as
/// kube-oidc resources, watched in a cluster or read from a folder of manifests.
#[derive(Parser, Debug)]
#[command(name = "kube-oidc-provider", version, about)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,

    /// Issuer URL; defaults to `http://<listen>`.
    #[arg(long, env = "KUBE_OIDC_ISSUER")]
    issuer: Option<String>,

    /// Address the OpenID Connect endpoints listen on.
    #[arg(long, env = "KUBE_OIDC_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,

    /// Read OidcClient, OidcScope, SigningKey and Secret manifests from this folder instead of a
    /// cluster (standalone mode).
    #[arg(long, env = "KUBE_OIDC_MANIFESTS")]
    manifests: Option<PathBuf>,

    /// Where codes, refresh tokens and sessions live: `memory` (one replica) or
    /// `redis://HOST:PORT` (many).
    #[arg(long, env = "KUBE_OIDC_STORE", default_value = "memory")]
    store: String,

    /// The provider's namespace: SigningKeys, OidcScopes and the users Secret.
    #[arg(long, env = "KUBE_OIDC_NAMESPACE", default_value = "kube-oidc")]
    namespace: String,

    /// Namespaces whose OidcClients are served: a comma-separated list, or `*` for all.
    #[arg(
        long,
        env = "KUBE_OIDC_CLIENT_NAMESPACES",
        default_value = "*",
        value_delimiter = ','
    )]
    client_namespaces: Vec<String>,

    /// The Secret (key `users.yaml`) that holds the users directory.
    #[arg(
        long,
        env = "KUBE_OIDC_USERS_SECRET",
        default_value = "kube-oidc-users"
    )]
    users_secret: String,

    /// TLS certificate (PEM) to serve https.
    #[arg(long, env = "KUBE_OIDC_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// TLS private key (PEM) to serve https.
    #[arg(long, env = "KUBE_OIDC_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// Also serve /metrics, /healthz and /readyz on this address.
    #[arg(long, env = "KUBE_OIDC_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,

    /// Dynamic client registration: `closed`, `open`, or `token` (callers present
    /// --registration-token as a Bearer initial access token).
    #[arg(long, env = "KUBE_OIDC_REGISTRATION", default_value = "closed")]
    registration: String,

    /// The initial access token for `--registration token`.
    #[arg(long, env = "KUBE_OIDC_REGISTRATION_TOKEN", hide_env_values = true)]
    registration_token: Option<String>,

    /// Namespace in which registered clients are created (default: the only client namespace,
    /// else --namespace).
    #[arg(long, env = "KUBE_OIDC_REGISTRATION_NAMESPACE")]
    registration_namespace: Option<String>,

    /// Consent policy of registered clients: `once` (users are asked the first time) or
    /// `always`. Registered clients are third parties: they never skip consent.
    #[arg(long, env = "KUBE_OIDC_REGISTRATION_CONSENT", default_value = "once", value_parser = registration_consent)]
    registration_consent: crds::ConsentPolicy,

    /// Accept registration metadata URLs on private and loopback addresses.
    #[arg(long, env = "KUBE_OIDC_REGISTRATION_ALLOW_PRIVATE_URLS")]
    registration_allow_private_urls: bool,

    /// Log format: `json` (in a cluster) or `text`.
    #[arg(long, env = "KUBE_OIDC_LOG_FORMAT", default_value = "json")]
    log_format: String,
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
enum Command {
    /// Read a password on stdin and print its argon2id PHC string for the users file.
    HashPassword,
}

fn init_tracing(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,kube_client=warn,kube_runtime=warn".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {},
                _ = tokio::signal::ctrl_c() => {},
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    tracing::info!("shutting down");
}

fn hash_password() -> anyhow::Result<()> {
    let mut password = String::new();
    std::io::stdin().read_line(&mut password)?;
    let password = password.trim_end_matches(['\r', '\n']);
    anyhow::ensure!(!password.is_empty(), "no password on stdin");
    println!(
        "{}",
        users::hash_password(password).map_err(|e| anyhow::anyhow!("{e}"))?
    );
    Ok(())
}

/// Every TLS connection of this process (Kubernetes API, back-channel logout, https serving) uses
/// aws-lc-rs. Installed explicitly: with more than one rustls backend compiled in, rustls refuses
/// to pick one. Idempotent.
pub(crate) fn install_crypto_provider() {
    // An error only means a provider is installed already, which is what we want.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    install_crypto_provider();
    let args = Args::parse();
    if let Some(Command::HashPassword) = args.command {
        return hash_password();
    }
    init_tracing(&args.log_format);
    let issuer = args
        .issuer
        .clone()
        .unwrap_or_else(|| format!("http://{}", args.listen))
        .trim_end_matches('/')
        .to_string();
    let metrics = Arc::new(metrics::Metrics::default());
    let view: config::SharedView = Arc::new(ArcSwap::from_pointee(config::View::empty(&issuer)));
    let policy = match (args.registration.as_str(), &args.registration_token) {
        ("closed", _) => None,
        ("open", _) => Some(http::register::Policy::Open),
        ("token", Some(t)) if !t.is_empty() => Some(http::register::Policy::Token(
            store::token_key("initial", t),
        )),
        ("token", _) => anyhow::bail!("--registration token needs --registration-token"),
        (other, _) => anyhow::bail!("--registration must be closed, open or token, not {other}"),
    };
    anyhow::ensure!(
        policy.is_none() || args.manifests.is_none(),
        "dynamic client registration needs a cluster; it is not available with --manifests"
    );
    let mut registration = None;
    match &args.manifests {
        Some(dir) => {
            let loaded = manifests::load(dir, &issuer, &args.users_secret)
                .map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
            tracing::info!(
                clients = loaded.clients.len(),
                users = loaded.users.len(),
                "loaded manifests"
            );
            metrics
                .clients
                .set(i64::try_from(loaded.clients.len()).unwrap_or(i64::MAX));
            view.store(Arc::new(loaded));
        }
        None => {
            let client = kube::Client::try_default().await?;
            let settings = kubernetes::Settings {
                issuer: issuer.clone(),
                namespace: args.namespace.clone(),
                client_namespaces: args.client_namespaces.clone(),
                users_secret: args.users_secret.clone(),
                registration: policy.is_some(),
            };
            if let Some(policy) = policy {
                let namespace = args.registration_namespace.clone().unwrap_or_else(|| {
                    match args.client_namespaces.as_slice() {
                        [only] if only != "*" => only.clone(),
                        _ => args.namespace.clone(),
                    }
                });
                registration = Some(http::register::Registration {
                    policy,
                    namespace,
                    client: client.clone(),
                    allow_private_urls: args.registration_allow_private_urls,
                    consent: args.registration_consent,
                });
            }
            tokio::spawn(kubernetes::run(
                client,
                settings,
                view.clone(),
                metrics.clone(),
            ));
        }
    }
    let store = if args.store == "memory" {
        store::Store::memory()
    } else if args.store.starts_with("redis://") || args.store.starts_with("rediss://") {
        store::Store::redis(&args.store).await?
    } else {
        anyhow::bail!(
            "--store must be memory or redis://HOST:PORT, not {}",
            args.store
        );
    };
    let state = Arc::new(http::AppState {
        view,
        store,
        metrics,
        http: reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()?,
        registration,
    });
    let app = http::router(state.clone());
    if let Some(addr) = args.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let app = app.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let config =
            axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(tls_config(cert, key)?));
        let handle = axum_server::Handle::new();
        let shutdown = handle.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            shutdown.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
        });
        tracing::info!(%issuer, listen = %args.listen, "serving OpenID Connect over TLS");
        axum_server::bind_rustls(args.listen, config)
            .handle(handle)
            .serve(app.into_make_service_with_connect_info::<SocketAddr>())
            .await?;
        return Ok(());
    }
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    tracing::info!(%issuer, listen = %args.listen, "serving OpenID Connect");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
    Ok(())
}

/// A TLS server configuration from PEM files (aws-lc-rs, TLS 1.2 and 1.3).
fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> anyhow::Result<rustls::ServerConfig> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| anyhow::anyhow!("--tls-cert {}: {e}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("--tls-cert {}: {e}", cert.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "--tls-cert {} holds no certificate",
        cert.display()
    );
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow::anyhow!("--tls-key {}: {e}", key.display()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod http_tests;
