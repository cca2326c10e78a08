//! `kube-oidc-operator`: reconciles OidcClient, OidcScope and SigningKey.

use std::{sync::Arc, time::Duration};

use clap::Parser;
use crds::{ClientPolicy, ClusterLogin, OidcClient, OidcScope, SIGNING_KEY_LABEL, SigningKey};
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::{
    core::v1::{ConfigMap, Namespace, Secret},
    networking::v1::Ingress,
};
use kube::{
    Api, Client, Resource, ResourceExt,
    core::DeserializeGuard,
    runtime::{
        Controller, WatchStreamExt,
        controller::Action,
        events::{Recorder, Reporter},
        reflector::{self, Store},
        watcher,
    },
};

mod client;
mod cluster_login;
mod connector;
mod error;
mod leader;
mod metrics;
mod policy;
mod scope;
mod signing_key;
mod status;

pub use error::Error;

/// Field manager of every write, and the name of the lease.
pub const MANAGER: &str = "kube-oidc-operator";
/// `app.kubernetes.io/managed-by` of the Secrets the operator creates.
pub const MANAGED_BY: &str = "kube-oidc-operator";

/// Reconciles kube-oidc's custom resources: validates clients, writes their credentials into
/// Secrets, rotates signing keys, and reports status and Events.
#[derive(Parser, Debug, Clone)]
#[command(name = "kube-oidc-operator", version, about)]
pub struct Args {
    /// Namespace of the provider: where SigningKeys, OidcScopes and the leader lease live.
    #[arg(long, env = "KUBE_OIDC_NAMESPACE", default_value = "kube-oidc")]
    pub namespace: String,

    /// Namespaces whose OidcClients are accepted: a comma-separated list, or `*` for all.
    #[arg(
        long,
        env = "KUBE_OIDC_CLIENT_NAMESPACES",
        default_value = "*",
        value_delimiter = ','
    )]
    pub client_namespaces: Vec<String>,

    /// Issuer URL written into each client's Secret (`issuer-url`).
    #[arg(
        long,
        env = "KUBE_OIDC_ISSUER",
        default_value = "http://127.0.0.1:8080"
    )]
    pub issuer: String,

    /// Address of /metrics, /healthz and /readyz.
    #[arg(
        long,
        env = "KUBE_OIDC_METRICS_LISTEN",
        default_value = "127.0.0.1:9090"
    )]
    pub metrics_listen: String,

    /// How long the previous client secret stays valid after `kubeoidc.dev/rotate-secret`.
    #[arg(long, env = "KUBE_OIDC_SECRET_GRACE_PERIOD", default_value = "24h")]
    pub secret_grace_period: kube::core::Duration,

    /// Leader lease duration; a standby takes over this long after the leader stops renewing.
    #[arg(long, env = "KUBE_OIDC_LEASE_DURATION", default_value = "15s")]
    pub lease_duration: kube::core::Duration,

    /// Name of this replica in the lease and in Events (default: the host name and pid).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,

    /// Log format: `auto` (text when stderr is a terminal, JSON lines otherwise), `json` or
    /// `text`.
    #[arg(long, env = "KUBE_OIDC_LOG_FORMAT", default_value = "auto", value_parser = ["auto", "json", "text"])]
    pub log_format: String,
}

impl Args {
    /// Whether OidcClients in `namespace` are accepted.
    pub fn accepts_namespace(&self, namespace: &str) -> bool {
        self.client_namespaces
            .iter()
            .any(|n| n == "*" || n == namespace)
    }
}

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Arc<metrics::Metrics>,
    pub args: Args,
    pub clients: Store<DeserializeGuard<OidcClient>>,
    pub scopes: Store<DeserializeGuard<OidcScope>>,
    /// ClientPolicies, and the Namespaces whose labels choose them.
    pub policies: Store<DeserializeGuard<ClientPolicy>>,
    pub namespaces: Store<Namespace>,
    /// SigningKeys in the provider's namespace: a client's algorithm needs one.
    pub signing_keys: Store<DeserializeGuard<SigningKey>>,
    /// Consecutive failures per object, for the error policy's backoff.
    pub failures: Backoff,
}

/// Exponential backoff per object: a persistent error is retried ever less often, never in a
/// tight loop, and a success starts over.
#[derive(Default)]
pub struct Backoff(std::sync::Mutex<std::collections::HashMap<String, u32>>);

impl Backoff {
    /// Base delay and the cap of a failure kind.
    fn bounds(conflict: bool) -> (Duration, Duration) {
        if conflict {
            // A stale read: the next try usually succeeds.
            (Duration::from_millis(200), Duration::from_secs(5))
        } else {
            (Duration::from_secs(5), Duration::from_secs(300))
        }
    }

    /// Records a failure of `key` and returns how long to wait before the next try.
    pub fn failed(&self, key: String, conflict: bool) -> Duration {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = map.entry(key).or_insert(0);
        let (base, cap) = Self::bounds(conflict);
        let delay = base.saturating_mul(1u32 << (*n).min(16)).min(cap);
        *n = n.saturating_add(1);
        delay
    }

    /// Forgets the failures of `key`.
    pub fn succeeded(&self, key: &str) {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.remove(key);
    }
}

fn backoff_key(controller: &str, meta: &kube::api::ObjectMeta) -> String {
    format!(
        "{controller}/{}/{}",
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default()
    )
}

fn init_tracing(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,kube_client=warn,kube_runtime=warn".into());
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(terminal)
        .with_writer(std::io::stderr);
    if format == "json" || (format == "auto" && !terminal) {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}

/// SIGTERM or Ctrl-C, seen by every part of the process that asks.
///
/// The handlers are registered before anything else runs, and a dedicated task waits for them:
/// the signal never depends on some other future happening to be polled (a lazily created signal
/// future polled only through the controllers' streams lost a SIGTERM now and then).
#[derive(Clone)]
struct Shutdown(tokio::sync::watch::Receiver<bool>);

impl Shutdown {
    fn listen() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {},
                _ = interrupt.recv() => {},
            }
            tracing::info!("shutting down");
            let _ = tx.send(true);
        });
        Ok(Self(rx))
    }

    /// Resolves once shutdown was asked for.
    async fn wait(mut self) {
        // An error means the sender is gone, which only happens after it sent `true`.
        let _ = self.0.wait_for(|down| *down).await;
    }

    /// The trigger for a controller's `graceful_shutdown_on`.
    fn trigger(&self) -> impl Future<Output = ()> + Send + Sync + 'static {
        self.clone().wait().boxed().shared()
    }
}

/// How long the controllers get to finish the reconciles they are running after SIGTERM.
const DRAIN: Duration = Duration::from_secs(10);

/// Common wrapper: metrics, malformed objects, and the error policy.
async fn guarded<K, F, Fut>(
    controller: &'static str,
    obj: Arc<DeserializeGuard<K>>,
    ctx: Arc<Context>,
    reconcile: F,
) -> Result<Action, Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    F: FnOnce(Arc<K>, Arc<Context>) -> Fut,
    Fut: std::future::Future<Output = Result<Action, Error>>,
{
    let labels = metrics::ControllerLabels { controller };
    ctx.metrics.reconciles.get_or_create(&labels).inc();
    let key = match &obj.0 {
        Ok(o) => backoff_key(controller, o.meta()),
        Err(invalid) => backoff_key(controller, &invalid.metadata),
    };
    let started = std::time::Instant::now();
    let result = match &obj.0 {
        Ok(o) => reconcile(Arc::new(o.clone()), ctx.clone()).await,
        Err(invalid) => {
            // A malformed object gets a condition and an Event; the controller moves on.
            let name = invalid.metadata.name.clone().unwrap_or_default();
            let ns = invalid.metadata.namespace.clone().unwrap_or_default();
            let message = format!(
                "the object cannot be read: {}; fix the manifest",
                invalid.error
            );
            tracing::warn!(%ns, %name, kind = %K::kind(&()), %message);
            let condition = status::condition(
                "False",
                "InvalidObject",
                &message,
                invalid.metadata.generation,
            );
            let api: Api<K> = Api::namespaced(ctx.client.clone(), &ns);
            let patch = serde_json::json!({"status": {"conditions": [condition]}});
            let _ = api
                .patch_status(
                    &name,
                    &kube::api::PatchParams::default(),
                    &kube::api::Patch::Merge(&patch),
                )
                .await;
            ctx.metrics
                .failures
                .get_or_create(&metrics::FailureLabels {
                    controller,
                    reason: "InvalidObject",
                })
                .inc();
            Ok(Action::await_change())
        }
    };
    ctx.metrics
        .duration
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    if result.is_ok() {
        ctx.failures.succeeded(&key);
    }
    result
}

fn error_policy<K: Resource>(
    controller: &'static str,
) -> impl Fn(Arc<DeserializeGuard<K>>, &Error, Arc<Context>) -> Action {
    move |obj, error, ctx| {
        let reason = error.metric_label();
        ctx.metrics
            .failures
            .get_or_create(&metrics::FailureLabels { controller, reason })
            .inc();
        let meta = match &obj.0 {
            Ok(o) => o.meta().clone(),
            Err(invalid) => invalid.metadata.clone(),
        };
        let retry = ctx
            .failures
            .failed(backoff_key(controller, &meta), reason == "Conflict");
        let name = meta.name.unwrap_or_default();
        tracing::warn!(controller, %name, %reason, error = %error, ?retry, "reconcile failed");
        Action::requeue(retry)
    }
}

fn log_result<T: std::fmt::Debug, E: std::fmt::Display>(
    r: Result<T, E>,
) -> futures::future::Ready<()> {
    if let Err(e) = r {
        tracing::debug!(error = %e, "controller");
    }
    futures::future::ready(())
}

async fn run_controllers(
    client: Client,
    args: Args,
    metrics: Arc<metrics::Metrics>,
    shutdown: Shutdown,
    identity: String,
) {
    let reporter = Reporter {
        controller: MANAGER.into(),
        instance: Some(identity),
    };
    let recorder = Recorder::new(client.clone(), reporter);

    // OidcClients in every accepted namespace: one watch cluster-wide, or one per namespace
    // (merged) when the operator is only granted those namespaces.
    let (clients_store, clients_events) = crds::watch::reflect::<DeserializeGuard<OidcClient>>(
        &client,
        &args.client_namespaces,
        watcher::Config::default(),
    );
    let client_controller =
        Controller::for_stream(clients_events.touched_objects(), clients_store.clone());
    let (scope_store, scope_reflector) = cache(Api::<DeserializeGuard<OidcScope>>::namespaced(
        client.clone(),
        &args.namespace,
    ));

    let (policy_store, policy_reflector) =
        cache(Api::<DeserializeGuard<ClientPolicy>>::all(client.clone()));
    let (key_store, key_reflector) = cache(Api::<DeserializeGuard<SigningKey>>::namespaced(
        client.clone(),
        &args.namespace,
    ));
    let keys_task = tokio::spawn(key_reflector);
    let (namespace_store, namespace_reflector) = cache(Api::<Namespace>::all(client.clone()));
    // A client is only ever checked against the policies and labels as they are: both caches
    // are filled before the first reconcile.
    let policies_served = crds::watch::is_served(&kube::Api::<ClientPolicy>::all(client.clone()))
        .await
        .unwrap_or(true);
    if !policies_served {
        tracing::warn!(
            "the ClientPolicy CRD is not installed: the built-in client policy applies; apply crds/yaml/ to use ClientPolicies"
        );
    }
    let policies_task = policies_served.then(|| tokio::spawn(policy_reflector));
    let namespaces_task = tokio::spawn(namespace_reflector);
    let policies_ready = async {
        if policies_served {
            policy_store.wait_until_ready().await.is_ok()
        } else {
            true
        }
    };
    let (policies_ready, namespaces_ready, keys_ready) = futures::join!(
        policies_ready,
        namespace_store.wait_until_ready(),
        key_store.wait_until_ready()
    );
    if !policies_ready || namespaces_ready.is_err() || keys_ready.is_err() {
        tracing::error!("the ClientPolicy, Namespace or SigningKey cache never filled");
        return;
    }

    let ctx = Arc::new(Context {
        client: client.clone(),
        recorder,
        metrics: metrics.clone(),
        args: args.clone(),
        clients: clients_store,
        scopes: scope_store.clone(),
        policies: policy_store,
        namespaces: namespace_store,
        signing_keys: key_store.clone(),
        failures: Backoff::default(),
    });

    let sk_controller = Controller::new(
        Api::<DeserializeGuard<SigningKey>>::namespaced(client.clone(), &args.namespace),
        watcher::Config::default(),
    )
    .owns(
        Api::<Secret>::namespaced(client.clone(), &args.namespace),
        watcher::Config::default().labels(SIGNING_KEY_LABEL),
    )
    .graceful_shutdown_on(shutdown.trigger())
    .run(
        |o, c| guarded("signingkey", o, c, signing_key::reconcile),
        error_policy("signingkey"),
        ctx.clone(),
    )
    .for_each(log_result);

    let clients_for_scopes = ctx.clients.clone();
    let clients_for_conflicts = ctx.clients.clone();
    let clients_for_secrets = ctx.clients.clone();
    let clients_for_policies = ctx.clients.clone();
    let clients_for_namespaces = ctx.clients.clone();
    let clients_for_routes = ctx.clients.clone();
    let clients_for_keys = ctx.clients.clone();
    let client_controller = client_controller
        .watches(
            Api::<DeserializeGuard<SigningKey>>::namespaced(client.clone(), &args.namespace),
            watcher::Config::default(),
            move |_| client::all_clients(&clients_for_keys),
        )
        .watches(
            Api::<DeserializeGuard<ClientPolicy>>::all(client.clone()),
            watcher::Config::default(),
            move |_| client::all_clients(&clients_for_policies),
        )
        .watches(
            Api::<Namespace>::all(client.clone()),
            watcher::Config::default(),
            move |n| client::clients_in(&clients_for_namespaces, &n.name_any()),
        )
        .watches_stream(
            crds::watch::touched::<Ingress>(
                &client,
                &args.client_namespaces,
                watcher::Config::default(),
            ),
            move |i| client::clients_in(&clients_for_routes, &i.namespace().unwrap_or_default()),
        )
        .watches_stream(
            crds::watch::touched::<Secret>(
                &client,
                &args.client_namespaces,
                watcher::Config::default(),
            ),
            move |secret| client::clients_using_secret(&clients_for_secrets, &secret),
        )
        .watches(
            Api::<DeserializeGuard<OidcScope>>::namespaced(client.clone(), &args.namespace),
            watcher::Config::default(),
            move |scope| client::clients_using_scope(&clients_for_scopes, &scope),
        )
        .watches_stream(
            crds::watch::touched::<DeserializeGuard<OidcClient>>(
                &client,
                &args.client_namespaces,
                watcher::Config::default(),
            ),
            move |c| client::clients_sharing_id(&clients_for_conflicts, &c),
        )
        .graceful_shutdown_on(shutdown.trigger())
        .run(
            |o, c| guarded("oidcclient", o, c, client::reconcile),
            error_policy("oidcclient"),
            ctx.clone(),
        )
        .for_each(log_result);

    let scope_controller = Controller::new(
        Api::<DeserializeGuard<OidcScope>>::namespaced(client.clone(), &args.namespace),
        watcher::Config::default(),
    )
    .graceful_shutdown_on(shutdown.trigger())
    .run(
        |o, c| guarded("oidcscope", o, c, scope::reconcile),
        error_policy("oidcscope"),
        ctx.clone(),
    )
    .for_each(log_result);

    let login_controller = cluster_login_controller(&client, &args, &shutdown, ctx.clone());
    let connector_controller = {
        let controller = Controller::new(
            Api::<DeserializeGuard<crds::connector::IdentityConnector>>::namespaced(
                client.clone(),
                &args.namespace,
            ),
            watcher::Config::default(),
        );
        let for_secrets = controller.store();
        controller
            .watches(
                Api::<Secret>::namespaced(client.clone(), &args.namespace),
                watcher::Config::default(),
                move |s| connector::connectors_using_secret(&for_secrets, &s),
            )
            .graceful_shutdown_on(shutdown.trigger())
            .run(
                |o, c| guarded("identityconnector", o, c, connector::reconcile),
                error_policy("identityconnector"),
                ctx.clone(),
            )
            .for_each(log_result)
    };

    metrics
        .ready
        .store(true, std::sync::atomic::Ordering::Relaxed);
    tokio::select! {
        _ = async { futures::join!(sk_controller, client_controller, scope_controller, login_controller, connector_controller) } => {},
        _ = scope_reflector => {},
    }
    if let Some(t) = policies_task {
        t.abort();
    }
    namespaces_task.abort();
    keys_task.abort();
}

/// A cache of `api`'s objects, and the future that keeps it current (poll or spawn it).
fn cache<K>(api: Api<K>) -> (Store<K>, impl Future<Output = ()> + Send + 'static)
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let (store, writer) = reflector::store::<K>();
    let keep_current = reflector::reflector(writer, watcher(api, watcher::Config::default()))
        .applied_objects()
        .for_each(|_| futures::future::ready(()));
    (store, keep_current)
}

/// ClusterLogins in the provider's namespace, re-rendered when their client, their CA or the
/// ConfigMap they own changes.
fn cluster_login_controller(
    client: &Client,
    args: &Args,
    shutdown: &Shutdown,
    ctx: Arc<Context>,
) -> impl Future<Output = ()> {
    let ns = &args.namespace;
    let controller = Controller::new(
        Api::<DeserializeGuard<ClusterLogin>>::namespaced(client.clone(), ns),
        watcher::Config::default(),
    );
    let (for_maps, for_secrets, for_clients) =
        (controller.store(), controller.store(), controller.store());
    controller
        .watches(
            Api::<ConfigMap>::namespaced(client.clone(), ns),
            watcher::Config::default(),
            move |cm| cluster_login::logins_using_config_map(&for_maps, &cm),
        )
        .watches(
            Api::<Secret>::namespaced(client.clone(), ns),
            watcher::Config::default(),
            move |s| cluster_login::logins_using_secret(&for_secrets, &s),
        )
        .watches(
            Api::<DeserializeGuard<OidcClient>>::namespaced(client.clone(), ns),
            watcher::Config::default(),
            move |c| cluster_login::logins_using_client(&for_clients, &c),
        )
        .graceful_shutdown_on(shutdown.trigger())
        .run(
            |o, c| guarded("clusterlogin", o, c, cluster_login::reconcile),
            error_policy("clusterlogin"),
            ctx,
        )
        .for_each(log_result)
}

/// Every TLS connection of this process (the Kubernetes API) uses
/// aws-lc-rs. Installed explicitly: with more than one rustls backend compiled in, rustls refuses
/// to pick one. Idempotent.
fn install_crypto_provider() {
    // An error only means a provider is installed already, which is what we want.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line: what is wrong, in the error's own words.
            eprintln!("kube-oidc-operator: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    install_crypto_provider();
    let args = Args::parse();
    init_tracing(&args.log_format);
    let client = Client::try_default().await?;
    let metrics = Arc::new(metrics::Metrics::default());

    let listener = tokio::net::TcpListener::bind(&args.metrics_listen).await?;
    tracing::info!(addr = %args.metrics_listen, "serving /metrics, /healthz, /readyz");
    let router = metrics::router(metrics.clone());
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "metrics server");
        }
    });

    let shutdown = Shutdown::listen()?;
    let identity = args.identity.clone().unwrap_or_else(|| {
        format!(
            "{}-{}",
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "operator".into()),
            std::process::id()
        )
    });
    let election = leader::LeaderElection::new(
        client.clone(),
        &args.namespace,
        MANAGER,
        identity.clone(),
        args.lease_duration.into(),
    );
    tokio::select! {
        _ = election.acquire() => {},
        _ = shutdown.clone().wait() => return Ok(()),
    }
    let mut controllers = std::pin::pin!(run_controllers(
        client.clone(),
        args.clone(),
        metrics.clone(),
        shutdown.clone(),
        identity
    ));
    let lost = tokio::select! {
        _ = &mut controllers => false,
        _ = election.hold() => true,
        _ = shutdown.clone().wait() => {
            // Still the leader: let the running reconciles finish, but not forever.
            if tokio::time::timeout(DRAIN, controllers).await.is_err() {
                tracing::warn!(after = ?DRAIN, "controllers did not stop in time");
            }
            false
        }
    };
    if lost {
        // Another replica may be writing already: stop at once.
        anyhow::bail!("leadership lost; exiting so that only the leader writes");
    }
    election.release().await;
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn backoff_grows_to_its_cap_and_starts_over_after_a_success() {
        let b = super::Backoff::default();
        let delays: Vec<Duration> = (0..10).map(|_| b.failed("k".into(), false)).collect();
        assert_eq!(delays[0], Duration::from_secs(5));
        assert_eq!(delays[1], Duration::from_secs(10));
        assert_eq!(delays[9], Duration::from_secs(300));
        assert!(delays.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(b.failed("other".into(), true), Duration::from_millis(200));
        b.succeeded("k");
        assert_eq!(b.failed("k".into(), false), Duration::from_secs(5));
    }
}
