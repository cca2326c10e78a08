//! kube-oidc's provider: serves OpenID Connect from watched resources or a folder of manifests.
//!
//! The module map is in `provider/README.md`.

pub mod args;
pub mod config;
pub mod http;
pub mod identity;
pub mod kubernetes;
pub mod manifests;
pub mod metrics;
pub mod protocol;
pub mod registry;
pub mod signing;
pub mod store;
pub mod users;

use std::{net::SocketAddr, sync::Arc};

use arc_swap::ArcSwap;

pub use args::{Args, Command, LogFormat, RegistrationPolicy, StoreUrl};

/// Why the provider could not start; `main` prints it as one line.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("{0}")]
    Flags(String),
    #[error("{0}")]
    Manifests(String),
    #[error("Kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Store(#[from] store::StoreError),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Logs to stderr in the chosen format.
pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,kube_client=warn,kube_runtime=warn".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format.resolved() {
        LogFormat::Text => builder.init(),
        _ => builder.json().flatten_event(true).init(),
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

/// Every TLS connection of this process (Kubernetes API, back-channel logout, https serving) uses
/// aws-lc-rs. Installed explicitly: with more than one rustls backend compiled in, rustls refuses
/// to pick one. Idempotent.
pub fn install_crypto_provider() {
    // An error only means a provider is installed already, which is what we want.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Serves until SIGTERM: loads or watches the configuration, connects the store, listens.
pub async fn run(args: Args) -> Result<(), StartupError> {
    let issuer = args
        .issuer
        .clone()
        .unwrap_or_else(|| format!("http://{}", args.listen))
        .trim_end_matches('/')
        .to_string();
    let view: config::SharedView = Arc::new(ArcSwap::from_pointee(config::View::empty(&issuer)));
    let ui = Arc::new(
        http::pages::Ui::load(&args.branding()).map_err(|e| StartupError::Flags(e.to_string()))?,
    );
    let policy = registration_policy(&args)?;
    let store = match &args.store {
        StoreUrl::Memory => store::Store::memory(),
        StoreUrl::Redis(url) => {
            let ca = match &args.store_ca {
                Some(path) => Some(std::fs::read(path).map_err(|e| {
                    StartupError::Flags(format!("--store-ca {}: {e}", path.display()))
                })?),
                None => None,
            };
            store::Store::redis_with_ca(url, &args.store_prefix, ca).await?
        }
    };
    let metrics = Arc::new(metrics::Metrics::with_store_errors(store.errors()));
    let registration = watch_or_load(&args, &issuer, &view, &metrics, &store, policy).await?;
    let outbound = outbound_http(&args)?;
    let state = Arc::new(http::AppState {
        view,
        store,
        metrics,
        http: outbound.clone(),
        registration,
        settings: protocol::Settings {
            client_keys: Arc::new(protocol::client_assertion::RemoteKeys::new(
                outbound,
                args.registration_allow_private_urls,
            )),
            refresh_reuse_interval: args.refresh_reuse_interval,
            passwords: Arc::new(protocol::login::PasswordBudget::new(
                args.password_hash_memory.max(1),
                std::time::Duration::from_secs(2),
            )),
        },
        ui,
    });
    let operations = http::operations_router(state.clone());
    let app = http::router_with(
        state,
        http::Limits {
            trusted_proxies: http::extract::TrustedProxies(Arc::new(args.trusted_proxies.clone())),
            metrics_here: args.metrics_listen.is_none(),
            max_concurrent_requests: args.max_concurrent_requests.max(1),
            request_timeout: args.request_timeout,
        },
    );
    serve(&args, &issuer, app, operations).await
}

/// Who may register clients, from the flags.
fn registration_policy(
    args: &Args,
) -> Result<Option<protocol::registration::Policy>, StartupError> {
    let policy = match (args.registration, &args.registration_token) {
        (RegistrationPolicy::Closed, _) => None,
        (RegistrationPolicy::Open, _) => Some(protocol::registration::Policy::Open),
        (RegistrationPolicy::Token, Some(t)) if !t.is_empty() => Some(
            protocol::registration::Policy::Token(store::hash_token("initial", t)),
        ),
        (RegistrationPolicy::Token, _) => {
            return Err(StartupError::Flags(
                "--registration token needs --registration-token".into(),
            ));
        }
    };
    Ok(policy)
}

/// What serves the keys after a standalone rotation.
enum Rotated {
    /// The view alone: its keys are swapped.
    View(config::SharedView),
    /// The registry's view (the folder's and the registered clients): rebuilt.
    Registry(Arc<registry::StoreRegistry>),
}

/// Standalone key rotation, the admin action `kill -HUP <pid>`: every SigningKey of the folder
/// gets a new key that signs from now on; the keys before stay published until the next
/// rotation. (A cluster rotates with the `kubeoidc.dev/rotate` annotation instead.)
async fn rotate_on_sighup(ring: Arc<manifests::KeyRing>, rotated: Rotated) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "no SIGHUP handler: keys rotate only at a restart");
            return;
        }
    };
    while hangups.recv().await.is_some() {
        let kids = match ring.rotate() {
            Ok(kids) => kids,
            Err(e) => {
                tracing::error!(error = %e, "key rotation failed; the keys before keep signing");
                continue;
            }
        };
        match &rotated {
            Rotated::View(view) => view.store(Arc::new(view.load().with_keys(&ring.keys()))),
            Rotated::Registry(registry) => {
                if let Err(e) = registry.rebuild().await {
                    tracing::error!(error = %e, "view not rebuilt after the key rotation");
                    continue;
                }
            }
        }
        tracing::info!(kids = ?kids, "signing keys rotated (SIGHUP); the previous ones stay published until the next rotation");
    }
}

/// Fills `view` from the manifests folder, or starts watching the cluster; returns how
/// registration is served.
async fn watch_or_load(
    args: &Args,
    issuer: &str,
    view: &config::SharedView,
    metrics: &Arc<metrics::Metrics>,
    store: &store::Store,
    policy: Option<protocol::registration::Policy>,
) -> Result<Option<http::register::Registration>, StartupError> {
    let settings = |policy| protocol::registration::Settings {
        policy,
        allow_private_urls: args.registration_allow_private_urls,
        consent: args.registration_consent,
        quota: args.registration_quota,
    };
    if let Some(dir) = &args.manifests {
        let folder = manifests::load(dir, &args.users_secret)
            .map_err(|e| StartupError::Manifests(format!("{}: {e}", dir.display())))?;
        tracing::info!(
            clients = folder.client_count(),
            users = folder.user_count(),
            "loaded manifests"
        );
        metrics
            .clients
            .set(i64::try_from(folder.client_count()).unwrap_or(i64::MAX));
        let ring = folder.key_ring();
        let Some(policy) = policy else {
            view.store(Arc::new(folder.into_view(issuer)));
            tokio::spawn(rotate_on_sighup(ring, Rotated::View(view.clone())));
            return Ok(None);
        };
        // Registered clients live in the store, next to the folder's.
        let registry = Arc::new(registry::StoreRegistry::new(
            store.clone(),
            Arc::new(folder),
            view.clone(),
            metrics.clone(),
            issuer,
            args.registration_namespace
                .clone()
                .unwrap_or_else(|| args.namespace.clone()),
        ));
        registry
            .refresh()
            .await
            .map_err(|e| StartupError::Flags(format!("--store: registered clients: {e}")))?;
        if matches!(store, store::Store::Redis(_)) {
            // Other replicas on the same Redis register too.
            let resync = registry.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(registry::RESYNC).await;
                    if let Err(e) = resync.refresh().await {
                        tracing::warn!(error = %e, "registered clients not read");
                    }
                }
            });
        }
        tokio::spawn(rotate_on_sighup(ring, Rotated::Registry(registry.clone())));
        return Ok(Some(http::register::Registration {
            settings: settings(policy),
            registry: registry::Registry::Store(registry),
        }));
    }
    let client = kube::Client::try_default().await?;
    let kube_settings = kubernetes::Settings {
        issuer: issuer.to_string(),
        namespace: args.namespace.clone(),
        client_namespaces: args.client_namespaces.clone(),
        users_secret: args.users_secret.clone(),
        registration: policy.is_some(),
    };
    let registration = policy.map(|policy| {
        let namespace = args.registration_namespace.clone().unwrap_or_else(|| {
            match args.client_namespaces.as_slice() {
                [only] if only != "*" => only.clone(),
                _ => args.namespace.clone(),
            }
        });
        http::register::Registration {
            settings: settings(policy),
            registry: registry::Registry::Cluster(kubernetes::registry::ClusterRegistry::new(
                client.clone(),
                namespace,
            )),
        }
    });
    tokio::spawn(kubernetes::run(
        client,
        kube_settings,
        view.clone(),
        metrics.clone(),
    ));
    Ok(registration)
}

/// Serves `app` over http or https until SIGTERM, and `operations` (/metrics, /healthz,
/// /readyz) on --metrics-listen.
async fn serve(
    args: &Args,
    issuer: &str,
    app: axum::Router,
    operations: axum::Router,
) -> Result<(), StartupError> {
    if let Some(addr) = args.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        tracing::info!(listen = %addr, "serving /metrics, /healthz, /readyz");
        tokio::spawn(async move {
            let _ = axum::serve(listener, operations).await;
        });
    }
    let handle = axum_server::Handle::new();
    let shutdown = handle.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        shutdown.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
    });
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let config =
            axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(tls_config(cert, key)?));
        tracing::info!(%issuer, listen = %args.listen, "serving OpenID Connect over TLS");
        let mut server = axum_server::bind_rustls(args.listen, config).handle(handle);
        limit_header_time(server.http_builder(), args.header_read_timeout);
        server.serve(app).await?;
    } else {
        tracing::info!(%issuer, listen = %args.listen, "serving OpenID Connect");
        let mut server = axum_server::bind(args.listen).handle(handle);
        limit_header_time(server.http_builder(), args.header_read_timeout);
        server.serve(app).await?;
    }
    Ok(())
}

/// A client that has not sent a request's headers in `limit` is cut off (slowloris); idle
/// keep-alive connections likewise.
fn limit_header_time(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    limit: std::time::Duration,
) {
    builder.http1().header_read_timeout(Some(limit));
}

/// A TLS server configuration from PEM files (aws-lc-rs, TLS 1.2 and 1.3).
fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<rustls::ServerConfig, StartupError> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| StartupError::Tls(format!("--tls-cert {}: {e}", cert.display())))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| StartupError::Tls(format!("--tls-cert {}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(StartupError::Tls(format!(
            "--tls-cert {} holds no certificate",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| StartupError::Tls(format!("--tls-key {}: {e}", key.display())))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
    .map_err(|e| StartupError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod http_tests;
#[cfg(test)]
mod test_support;

/// The client of the provider's own requests (back-channel logout, clients' jwksUri): 5 s, no
/// redirects, the public roots and the CAs of `--outbound-ca`.
fn outbound_http(args: &Args) -> Result<reqwest::Client, StartupError> {
    let mut builder = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none());
    if let Some(path) = &args.outbound_ca {
        let fail =
            |e: String| StartupError::Flags(format!("--outbound-ca {}: {e}", path.display()));
        let pem = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| fail(e.to_string()))?;
        if certs.is_empty() {
            return Err(fail("no PEM certificate in it".into()));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .build()
        .map_err(|e| StartupError::Tls(e.to_string()))
}
