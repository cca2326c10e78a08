//! Starts and shares the real control plane.

use std::{
    fs,
    io::Write,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    sync::{Mutex, OnceLock},
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::core::v1::Namespace,
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Client, Config,
    api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
};

const VERSIONS: &str = include_str!("../controlplane/versions.env");
const BINARIES: [&str; 4] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kubectl",
];
const BUILD_SCRIPT: &str = "tests/controlplane/build.sh";

/// A running control plane. Created once per test binary by [`control_plane`].
pub struct ControlPlane {
    dir: PathBuf,
    bin: PathBuf,
    kubeconfig: PathBuf,
    /// `https://127.0.0.1:<port>`
    pub server: String,
    ca: PathBuf,
    ca_params: rcgen::CertificateParams,
    ca_key: String,
    children: Mutex<Vec<(String, Child)>>,
}

static CONTROL_PLANE: OnceLock<Result<ControlPlane, String>> = OnceLock::new();

/// The control plane of this test binary, started on first use. Panics with a message that says
/// what to do when it cannot start (binaries missing: run the build script).
pub fn control_plane() -> &'static ControlPlane {
    crate::install_crypto_provider();
    let started = CONTROL_PLANE.get_or_init(|| {
        // Started on a thread of its own so that it can block and run its own runtime whatever
        // runtime the calling test uses.
        std::thread::spawn(ControlPlane::start)
            .join()
            .unwrap_or_else(|_| Err("control plane start panicked".into()))
    });
    match started {
        Ok(cp) => cp,
        Err(e) => panic!("the test control plane is not available: {e}"),
    }
}

pub fn version(key: &str) -> String {
    VERSIONS
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("{key} missing from tests/controlplane/versions.env"))
}

/// Where build.sh puts the binaries (kept in step with it).
pub fn binary_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KUBE_OIDC_CONTROLPLANE_BIN") {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("KUBE_OIDC_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
                .join(".cache/kube-oidc")
        });
    cache.join(format!(
        "controlplane/k8s-{}-etcd-{}-helm-{}/bin",
        version("K8S_VERSION"),
        version("ETCD_VERSION"),
        version("HELM_VERSION")
    ))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

struct Pki {
    ca: PathBuf,
    /// The CA, to issue client certificates for other users later.
    ca_params: rcgen::CertificateParams,
    ca_key: String,
    server_cert: PathBuf,
    server_key: PathBuf,
    admin_cert: PathBuf,
    admin_key: PathBuf,
    sa_key: PathBuf,
    sa_pub: PathBuf,
}

fn write_pki(dir: &Path) -> Result<Pki, String> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let e = |e: rcgen::Error| e.to_string();
    let write = |name: &str, body: String| -> Result<PathBuf, String> {
        let path = dir.join(name);
        fs::write(&path, body).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    };

    let ca_key = KeyPair::generate().map_err(e)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "kube-oidc-test-ca");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(e)?;
    let ca = write("ca.crt", ca_cert.pem())?;
    let ca_key_pem = ca_key.serialize_pem();
    let issuer = Issuer::new(ca_params.clone(), ca_key);

    let server_key = KeyPair::generate().map_err(e)?;
    let mut server = CertificateParams::new(vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "kubernetes".to_string(),
        "kubernetes.default.svc".to_string(),
    ])
    .map_err(e)?;
    server
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server.signed_by(&server_key, &issuer).map_err(e)?;

    let (admin_cert, admin_key) = client_certificate(&issuer, ADMIN)?;

    let sa_key = KeyPair::generate().map_err(e)?;
    Ok(Pki {
        ca,
        ca_params,
        ca_key: ca_key_pem,
        server_cert: write("apiserver.crt", server_cert.pem())?,
        server_key: write("apiserver.key", server_key.serialize_pem())?,
        admin_cert: write("admin.crt", admin_cert)?,
        admin_key: write("admin.key", admin_key)?,
        sa_key: write("sa.key", sa_key.serialize_pem())?,
        sa_pub: write("sa.pub", sa_key.public_key_pem())?,
    })
}

/// The user name of the admin kubeconfig.
const ADMIN: &str = "kube-oidc-test-admin";

/// The apiserver's audit policy: the metadata of every write, nothing else. Tests read it to
/// prove that a component made no writes.
const AUDIT_POLICY: &str = "apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    verbs: [create, update, patch, delete, deletecollection]
  - level: None
";

/// A client certificate (PEM certificate, PEM key) for `user` in `system:masters`.
fn client_certificate(
    issuer: &rcgen::Issuer<'_, rcgen::KeyPair>,
    user: &str,
) -> Result<(String, String), String> {
    use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair};
    let e = |e: rcgen::Error| e.to_string();
    let key = KeyPair::generate().map_err(e)?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
    params.distinguished_name.push(DnType::CommonName, user);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "system:masters");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, issuer).map_err(e)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn kubeconfig_text(server: &str, ca: &Path, cert: &Path, key: &Path) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {server}\n    certificate-authority: {ca}\nusers:\n- name: admin\n  user:\n    client-certificate: {cert}\n    client-key: {key}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: admin\n    namespace: default\ncurrent-context: test\n",
        ca = ca.display(),
        cert = cert.display(),
        key = key.display(),
    )
}

impl ControlPlane {
    fn start() -> Result<ControlPlane, String> {
        Self::start_with(true, &[])
    }

    /// Like [`ControlPlane::start_empty`], with more kube-apiserver arguments (for example
    /// `--authentication-config=FILE`).
    pub fn start_empty_with(apiserver_args: &[String]) -> ControlPlane {
        crate::install_crypto_provider();
        let args = apiserver_args.to_vec();
        std::thread::spawn(move || Self::start_with(false, &args))
            .join()
            .unwrap_or_else(|_| Err("control plane start panicked".into()))
            .unwrap_or_else(|e| panic!("the test control plane is not available: {e}"))
    }

    /// A control plane of its own that has no kube-oidc CRDs: what a new user installs into.
    /// Its processes stop when it is dropped. Panics, naming the build script, when it cannot
    /// start.
    pub fn start_empty() -> ControlPlane {
        crate::install_crypto_provider();
        std::thread::spawn(|| Self::start_with(false, &[]))
            .join()
            .unwrap_or_else(|_| Err("control plane start panicked".into()))
            .unwrap_or_else(|e| panic!("the test control plane is not available: {e}"))
    }

    fn start_with(with_crds: bool, apiserver_args: &[String]) -> Result<ControlPlane, String> {
        let bin = binary_dir();
        let missing: Vec<&str> = BINARIES
            .iter()
            .copied()
            .filter(|b| !bin.join(b).is_file())
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "missing {} in {}; build them with `{BUILD_SCRIPT}` (it caches them there)",
                missing.join(", "),
                bin.display()
            ));
        }

        let dir = tempfile::Builder::new()
            .prefix("kube-oidc-cp-")
            .tempdir()
            .map_err(|e| e.to_string())?
            .keep();
        reap_dir(&dir)?;
        let pki = write_pki(&dir)?;

        let etcd_port = free_port();
        let peer_port = free_port();
        let api_port = free_port();
        let kcm_port = free_port();
        let server = format!("https://127.0.0.1:{api_port}");
        let kubeconfig = dir.join("kubeconfig");
        fs::write(
            &kubeconfig,
            kubeconfig_text(&server, &pki.ca, &pki.admin_cert, &pki.admin_key),
        )
        .map_err(|e| e.to_string())?;
        let audit_policy = dir.join("audit-policy.yaml");
        fs::write(&audit_policy, AUDIT_POLICY).map_err(|e| e.to_string())?;

        let cp = ControlPlane {
            dir: dir.clone(),
            bin: bin.clone(),
            kubeconfig,
            server,
            ca: pki.ca.clone(),
            ca_params: pki.ca_params.clone(),
            ca_key: pki.ca_key.clone(),
            children: Mutex::new(Vec::new()),
        };

        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        cp.spawn(
            "etcd",
            &[
                "--name=default".into(),
                format!("--data-dir={}", dir.join("etcd").display()),
                format!("--listen-client-urls={etcd_url}"),
                format!("--advertise-client-urls={etcd_url}"),
                format!("--listen-peer-urls={peer_url}"),
                format!("--initial-advertise-peer-urls={peer_url}"),
                format!("--initial-cluster=default={peer_url}"),
                "--unsafe-no-fsync=true".into(),
                "--log-level=warn".into(),
            ],
        )?;

        let p = |p: &Path| p.display().to_string();
        let mut args = vec![
            format!("--etcd-servers={etcd_url}"),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            format!("--secure-port={api_port}"),
            format!("--cert-dir={}", dir.join("apiserver-certs").display()),
            format!("--tls-cert-file={}", p(&pki.server_cert)),
            format!("--tls-private-key-file={}", p(&pki.server_key)),
            format!("--client-ca-file={}", p(&pki.ca)),
            "--authorization-mode=Node,RBAC".into(),
            "--service-account-issuer=https://kubernetes.default.svc".into(),
            format!("--service-account-key-file={}", p(&pki.sa_pub)),
            format!("--service-account-signing-key-file={}", p(&pki.sa_key)),
            "--service-cluster-ip-range=10.96.0.0/24".into(),
            "--allow-privileged=true".into(),
            "--enable-priority-and-fairness=false".into(),
            "--endpoint-reconciler-type=none".into(),
            "--disable-admission-plugins=ServiceAccount".into(),
            format!("--audit-policy-file={}", p(&audit_policy)),
            format!("--audit-log-path={}", p(&dir.join("audit.log"))),
            "--audit-log-format=json".into(),
            "--audit-log-mode=blocking".into(),
        ];
        args.extend_from_slice(apiserver_args);
        cp.spawn("kube-apiserver", &args)?;

        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let client = cp.wait_for_apiserver().await?;
            if with_crds {
                install_crds(&client).await?;
            }
            Ok::<_, String>(())
        })?;

        // Started after the CRDs exist so that the garbage collector discovers them at once.
        cp.spawn(
            "kube-controller-manager",
            &[
                format!("--kubeconfig={}", p(&cp.kubeconfig)),
                format!("--authentication-kubeconfig={}", p(&cp.kubeconfig)),
                format!("--authorization-kubeconfig={}", p(&cp.kubeconfig)),
                "--bind-address=127.0.0.1".into(),
                format!("--secure-port={kcm_port}"),
                "--leader-elect=false".into(),
                "--controllers=garbagecollector,namespace,serviceaccount,serviceaccount-token"
                    .into(),
                format!("--service-account-private-key-file={}", p(&pki.sa_key)),
                format!("--root-ca-file={}", p(&pki.ca)),
                "--use-service-account-credentials=false".into(),
            ],
        )?;
        eprintln!(
            "test control plane: kube-apiserver {} up at {} (logs in {})",
            version("K8S_VERSION"),
            cp.server,
            dir.display()
        );
        Ok(cp)
    }

    /// Starts the etcd / apiserver side only once; see [`control_plane`].
    pub fn free_port() -> u16 {
        free_port()
    }

    fn spawn(&self, name: &str, args: &[String]) -> Result<(), String> {
        let mut cmd = Command::new(self.bin.join(name));
        cmd.args(args);
        let child = self.spawn_logged(name, cmd)?;
        self.children
            .lock()
            .expect("children lock")
            .push((name.to_string(), child));
        Ok(())
    }

    /// Starts a process with its output in `<dir>/<log>.log`; see [`spawn_reaped`].
    pub fn spawn_logged(&self, log: &str, cmd: Command) -> Result<Child, String> {
        spawn_reaped(cmd, &self.log_path(log))
    }

    /// Reports a child that exited, with the end of its log.
    fn check_children(&self) -> Result<(), String> {
        let mut children = self.children.lock().expect("children lock");
        for (name, child) in children.iter_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "{name} exited ({status}); end of {}:\n{}",
                    self.log_path(name).display(),
                    tail(&self.log_path(name), 30)
                ));
            }
        }
        Ok(())
    }

    async fn wait_for_apiserver(&self) -> Result<Client, String> {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut last = String::new();
        while Instant::now() < deadline {
            self.check_children()?;
            match self.try_readyz().await {
                Ok(client) => return Ok(client),
                Err(e) => last = e,
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Err(format!(
            "kube-apiserver not ready after 120 s: {last}; end of its log:\n{}",
            tail(&self.log_path("kube-apiserver"), 30)
        ))
    }

    async fn try_readyz(&self) -> Result<Client, String> {
        let client = self.client_result().await?;
        let req = http::Request::get("/readyz")
            .body(Vec::new())
            .map_err(|e| e.to_string())?;
        let body = client.request_text(req).await.map_err(|e| e.to_string())?;
        if body.trim() == "ok" {
            Ok(client)
        } else {
            Err(body)
        }
    }

    async fn client_result(&self) -> Result<Client, String> {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig).map_err(|e| e.to_string())?;
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        Client::try_from(config).map_err(|e| e.to_string())
    }

    /// An admin (system:masters) client for the calling test's runtime.
    pub async fn client(&self) -> Client {
        self.client_result().await.expect("admin client")
    }

    /// The working directory (certificates, kubeconfig, logs, etcd data).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A kubeconfig with admin credentials, for child processes (`KUBECONFIG`).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// A kubeconfig for `user` (in `system:masters`, so as powerful as the admin), for a child
    /// process whose API writes a test wants to tell apart: see [`ControlPlane::api_writes_by`].
    pub fn kubeconfig_for(&self, user: &str) -> PathBuf {
        let key = rcgen::KeyPair::from_pem(&self.ca_key).expect("CA key");
        let issuer = rcgen::Issuer::new(self.ca_params.clone(), key);
        let (cert, key) = client_certificate(&issuer, user).expect("client certificate");
        let file = |ext: &str| self.dir.join(format!("user-{user}.{ext}"));
        fs::write(file("crt"), cert).expect("write certificate");
        fs::write(file("key"), key).expect("write key");
        let path = file("kubeconfig");
        fs::write(
            &path,
            kubeconfig_text(&self.server, &self.ca, &file("crt"), &file("key")),
        )
        .expect("write kubeconfig");
        path
    }

    /// The PEM certificate of the CA that signed the apiserver's and every test certificate.
    pub fn ca_pem(&self) -> String {
        fs::read_to_string(&self.ca).expect("read the CA certificate")
    }

    /// The CA certificate file.
    pub fn ca_path(&self) -> &Path {
        &self.ca
    }

    /// A server certificate for `names` (DNS names or IP addresses), signed by this control
    /// plane's CA: (PEM certificate, PEM key).
    pub fn server_certificate(&self, names: &[&str]) -> (String, String) {
        use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, KeyPair};
        let ca_key = KeyPair::from_pem(&self.ca_key).expect("CA key");
        let issuer = rcgen::Issuer::new(self.ca_params.clone(), ca_key);
        let key = KeyPair::generate().expect("key");
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("certificate names");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &issuer).expect("sign");
        (cert.pem(), key.serialize_pem())
    }

    /// Every write (create, update, patch, delete) `user` made to the API so far, as
    /// `verb resource namespace/name code`, from the apiserver's audit log.
    pub fn api_writes_by(&self, user: &str) -> Vec<String> {
        let log = fs::read_to_string(self.dir.join("audit.log")).expect("read the audit log");
        log.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["user"]["username"] == user && e["stage"] == "ResponseComplete")
            .map(|e| {
                let o = &e["objectRef"];
                let s = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
                format!(
                    "{} {}{} {}/{} {}",
                    s(&e["verb"]),
                    s(&o["resource"]),
                    o["subresource"]
                        .as_str()
                        .map(|r| format!("/{r}"))
                        .unwrap_or_default(),
                    s(&o["namespace"]),
                    s(&o["name"]),
                    e["responseStatus"]["code"]
                )
            })
            .collect()
    }

    /// The log file of a control plane component.
    pub fn log_path(&self, component: &str) -> PathBuf {
        self.dir.join(format!("{component}.log"))
    }

    /// A binary of the control plane build (etcd, kube-apiserver, kubectl, helm, ...).
    pub fn bin_path(&self, name: &str) -> PathBuf {
        self.bin.join(name)
    }

    /// `kubectl apply -f -` of `yaml` (in `namespace`) as the admin; panics with kubectl's
    /// message when it is refused.
    pub fn apply(&self, namespace: Option<&str>, yaml: &str) {
        let mut cmd = self.kubectl();
        cmd.args(["apply", "-f", "-"]);
        if let Some(ns) = namespace {
            cmd.args(["-n", ns]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kubectl");
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(yaml.as_bytes()).expect("write to kubectl");
        }
        let out = child.wait_with_output().expect("run kubectl");
        assert!(
            out.status.success(),
            "kubectl apply: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `kubectl` with the admin kubeconfig.
    pub fn kubectl(&self) -> Command {
        let mut cmd = Command::new(self.bin.join("kubectl"));
        cmd.env("KUBECONFIG", &self.kubeconfig);
        cmd
    }

    /// A fresh namespace for one test.
    pub async fn namespace(&self, prefix: &str) -> TestNamespace {
        self.check_children().expect("control plane component died");
        let client = self.client().await;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let name = format!("{prefix}-{:x}", nanos ^ std::process::id().rotate_left(16));
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .expect("create test namespace");
        TestNamespace { client, name }
    }
}

impl Drop for ControlPlane {
    /// Stops an owned control plane ([`ControlPlane::start_empty`]); the shared one lives as long
    /// as the test binary, and the reaper stops it.
    fn drop(&mut self) {
        let mut children = self
            .children
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (_, child) in children.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A namespace of one test and an admin client.
pub struct TestNamespace {
    pub client: Client,
    pub name: String,
}

impl TestNamespace {
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }

    /// Deletes the namespace (tests that end cleanly call this; the control plane is discarded at
    /// the end of the run anyway).
    pub async fn delete(self) {
        let _ = Api::<Namespace>::all(self.client)
            .delete(&self.name, &DeleteParams::default())
            .await;
    }
}

static REAPER: OnceLock<Result<Mutex<ChildStdin>, String>> = OnceLock::new();

/// A process that, once this test process is gone (its stdin closes), kills the process group of
/// every `pid` line written to it and removes every `dir` line: nothing is left behind after a
/// panic, an abort or SIGKILL of the test binary.
fn reaper() -> Result<&'static Mutex<ChildStdin>, String> {
    REAPER
        .get_or_init(|| {
            use std::os::unix::process::CommandExt;
            let script = r#"
                pids=""; dirs=""
                while read -r kind value; do
                    case "$kind" in
                        pid) pids="$pids $value" ;;
                        dir) dirs="$dirs $value" ;;
                    esac
                done
                for pid in $pids; do kill -TERM -- "-$pid" 2>/dev/null; done
                for _ in 1 2 3 4 5 6 7 8 9 10; do
                    alive=""
                    for pid in $pids; do kill -0 -- "-$pid" 2>/dev/null && alive=1; done
                    [ -z "$alive" ] && break
                    sleep 0.5
                done
                for pid in $pids; do kill -KILL -- "-$pid" 2>/dev/null; done
                if [ -z "$KUBE_OIDC_KEEP_CONTROLPLANE" ]; then
                    for dir in $dirs; do rm -rf "$dir"; done
                fi
            "#;
            let mut child = Command::new("bash")
                .arg("-c")
                .arg(script)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .map_err(|e| format!("cannot start the reaper: {e}"))?;
            child
                .stdin
                .take()
                .map(Mutex::new)
                .ok_or_else(|| "reaper has no stdin".to_string())
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// A directory for the logs of processes started without a control plane, removed by the
/// reaper at the end (kept with `KUBE_OIDC_KEEP_CONTROLPLANE=1`).
pub fn scratch_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("kube-oidc-test-")
            .tempdir()
            .expect("temp dir")
            .keep();
        reap_dir(&dir).expect("reaper");
        dir
    })
}

fn reap_dir(dir: &Path) -> Result<(), String> {
    let mut reaper = reaper()?.lock().map_err(|e| e.to_string())?;
    writeln!(reaper, "dir {}", dir.display()).map_err(|e| format!("reaper: {e}"))
}

/// Starts a process in its own process group with stdout and stderr in `log`, registered with
/// the reaper so that it cannot outlive the test binary.
pub fn spawn_reaped(mut cmd: Command, log: &Path) -> Result<Child, String> {
    use std::os::unix::process::CommandExt;
    let file = fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err = file.try_clone().map_err(|e| e.to_string())?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", log.display()))?;
    let mut reaper = reaper()?.lock().map_err(|e| e.to_string())?;
    writeln!(reaper, "pid {}", child.id()).map_err(|e| format!("reaper: {e}"))?;
    Ok(child)
}

/// Applies the generated CRDs (the same objects as `crds/yaml/`) and waits until each is
/// Established.
pub async fn install_crds(client: &Client) -> Result<(), String> {
    let api = Api::<CustomResourceDefinition>::all(client.clone());
    let params = PatchParams::apply("kube-oidc-tests").force();
    for crd in crds::crds() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        api.patch(&name, &params, &Patch::Apply(&crd))
            .await
            .map_err(|e| format!("apply CRD {name}: {e}"))?;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for crd in crds::crds() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        loop {
            let current = api.get(&name).await.map_err(|e| e.to_string())?;
            if crd_established(&current) {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("CRD {name} not Established after 30 s"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// True when the CRD has `Established=True`.
pub fn crd_established(crd: &CustomResourceDefinition) -> bool {
    crd.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        })
}
