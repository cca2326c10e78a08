//! The Helm chart against the real control plane: lint, render, server-side dry run, apply,
//! install; values typos rejected; least privilege of its ServiceAccounts proven by running the
//! operator and the provider with their tokens.

use std::{
    io::Write,
    path::PathBuf,
    process::{Command, Stdio},
    time::Duration,
};

use crds::OidcClient;
use k8s_openapi::api::{
    authentication::v1::{TokenRequest, TokenRequestSpec},
    core::v1::{Secret, ServiceAccount},
};
use kube::{
    Api, Client, Config,
    api::{ObjectMeta, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
};
use kube_oidc_tests::{ControlPlane, TestNamespace, control_plane, operator::workspace_binary};

use crate::operator::eventually;

fn repo() -> PathBuf {
    crds::workspace_root()
}

fn chart() -> PathBuf {
    repo().join("charts/kube-oidc")
}

fn helm(cp: &ControlPlane) -> Command {
    let mut cmd = Command::new(cp.bin_path("helm"));
    cmd.env("KUBECONFIG", cp.kubeconfig())
        .env("HELM_CACHE_HOME", cp.dir().join("helm/cache"))
        .env("HELM_CONFIG_HOME", cp.dir().join("helm/config"))
        .env("HELM_DATA_HOME", cp.dir().join("helm/data"));
    cmd
}

/// Runs a command; returns (success, stdout, stderr).
fn run(mut cmd: Command, stdin: Option<&str>) -> (bool, String, String) {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn template(cp: &ControlPlane, release: &str, ns: &str, args: &[&str]) -> (bool, String, String) {
    let mut cmd = helm(cp);
    cmd.args(["template", release])
        .arg(chart())
        .args(["--namespace", ns, "--kube-version", "1.34.0"])
        .args(args);
    run(cmd, None)
}

/// Applies rendered manifests as they are: the chart names the namespace of every object.
fn apply(cp: &ControlPlane, manifests: &str, dry_run: bool) {
    let mut cmd = cp.kubectl();
    cmd.args([
        "apply",
        "--server-side",
        "--field-manager",
        "kube-oidc-tests",
        "-f",
        "-",
    ]);
    if dry_run {
        cmd.arg("--dry-run=server");
    }
    let (ok, out, err) = run(cmd, Some(manifests));
    assert!(
        ok,
        "kubectl apply{} failed: {err}\n{out}",
        if dry_run { " --dry-run=server" } else { "" }
    );
}

#[tokio::test]
async fn chart_lints_renders_applies_and_installs() {
    let cp = control_plane();
    let ha = repo().join("tests/helm/ha-values.yaml");
    for extra in [vec![], vec!["-f".to_string(), ha.display().to_string()]] {
        let mut cmd = helm(cp);
        cmd.arg("lint").arg(chart()).args(&extra);
        let (ok, out, err) = run(cmd, None);
        assert!(ok, "helm lint {extra:?}: {out}{err}");
    }
    // Default values (clients from every namespace) and the HA values file.
    for (name, args) in [
        ("default", vec![]),
        ("ha", vec!["-f", ha.to_str().unwrap()]),
    ] {
        let ns = cp.namespace(&format!("chart-{name}")).await;
        let (ok, rendered, err) = template(cp, &format!("r-{}", ns.name), &ns.name, &args);
        assert!(ok, "helm template ({name}): {err}");
        assert!(
            rendered.contains("kind: Deployment") && rendered.contains("kind: PodDisruptionBudget")
        );
        // Everything, the cluster-wide ClientPolicy and admission policy included, passes the
        // API server's validation; applied for real without those two, which would govern the
        // namespaces of every other test on this shared control plane (the README test
        // installs them on a control plane of its own).
        assert!(
            rendered.contains("kind: ValidatingAdmissionPolicy\n")
                && rendered.contains("kind: ClientPolicy\n")
        );
        apply(cp, &rendered, true);
        let mut local = args.clone();
        local.extend([
            "--set",
            "clientPolicy.createDefault=false",
            "--set",
            "clientPolicy.admission=false",
        ]);
        let (ok, rendered, err) = template(cp, &format!("r-{}", ns.name), &ns.name, &local);
        assert!(ok, "helm template ({name}): {err}");
        assert!(!rendered.contains("kind: ValidatingAdmissionPolicy"));
        apply(cp, &rendered, false);
        if name == "ha" {
            assert!(
                rendered.contains("kind: HorizontalPodAutoscaler")
                    && rendered.contains("kind: Ingress")
            );
            assert!(rendered.contains("redis://:$(KUBE_OIDC_REDIS_PASSWORD)@redis.redis.svc:6379"));
            // The provider's NetworkPolicy (applied above) and the trusted proxies.
            assert!(
                rendered.contains("kind: NetworkPolicy")
                    && rendered.contains("KUBE_OIDC_TRUSTED_PROXIES"),
                "{rendered}"
            );
        }
        ns.delete().await;
    }
    // A typo in values fails at install, and so does an unsafe store.
    let (ok, _, err) = template(cp, "typo", "default", &["--set", "provder.replicas=2"]);
    assert!(!ok && err.contains("provder"), "{err}");
    let (ok, _, err) = template(cp, "typo", "default", &["--set", "store.mode=memry"]);
    assert!(!ok && err.contains("/store/mode"), "{err}");
    let (ok, _, err) = template(cp, "mem", "default", &["--set", "store.mode=memory"]);
    assert!(!ok && err.contains("set provider.replicas to 1"), "{err}");
    let (ok, _, _) = template(
        cp,
        "mem",
        "default",
        &["--set", "store.mode=memory", "--set", "provider.replicas=1"],
    );
    assert!(ok);

    // helm install for real, as the README says.
    let ns = cp.namespace("chart-install").await;
    let mut cmd = helm(cp);
    // The cluster-wide ClientPolicy and admission policy stay out of the control plane other
    // tests share; the README test installs them on a control plane of its own.
    cmd.args(["install", "kube-oidc"]).arg(chart()).args([
        "--namespace",
        &ns.name,
        "--set",
        &format!("clientNamespaces={{{}}}", ns.name),
        "--set",
        "clientPolicy.createDefault=false",
        "--set",
        "clientPolicy.admission=false",
    ]);
    let (ok, out, err) = run(cmd, None);
    assert!(ok, "helm install: {out}{err}");
    assert!(
        out.contains("Issuer: https://oidc.example.com"),
        "NOTES.txt: {out}"
    );
    let key = ns.api::<crds::SigningKey>().get("default").await.unwrap();
    assert_eq!(key.spec.algorithm, crds::Algorithm::RS256);
    assert_eq!(
        ns.api::<crds::OidcScope>()
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .len(),
        7
    );
    ns.delete().await;
}

async fn service_account_client(
    cp: &ControlPlane,
    ns: &TestNamespace,
    sa: &str,
) -> (PathBuf, Client) {
    let token = Api::<ServiceAccount>::namespaced(ns.client.clone(), &ns.name)
        .create_token_request(
            sa,
            &PostParams::default(),
            &TokenRequest {
                metadata: ObjectMeta::default(),
                spec: TokenRequestSpec {
                    audiences: vec![],
                    expiration_seconds: Some(3600),
                    bound_object_ref: None,
                },
                status: None,
            },
        )
        .await
        .unwrap()
        .status
        .unwrap()
        .token;
    let path = cp.dir().join(format!("kubeconfig-{}-{sa}", ns.name));
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {}\n    certificate-authority: {}\nusers:\n- name: sa\n  user:\n    token: {token}\ncontexts:\n- name: sa\n  context: {{cluster: test, user: sa, namespace: {}}}\ncurrent-context: sa\n",
            cp.server,
            cp.dir().join("ca.crt").display(),
            ns.name
        ),
    )
    .unwrap();
    let config = Config::from_custom_kubeconfig(
        Kubeconfig::read_from(&path).unwrap(),
        &KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    (path, Client::try_from(config).unwrap())
}

fn forbidden<T: std::fmt::Debug>(r: Result<T, kube::Error>, what: &str) {
    match r {
        Err(kube::Error::Api(s)) if s.code == 403 => {}
        other => panic!("{what}: expected 403 Forbidden, got {other:?}"),
    }
}

#[tokio::test]
async fn the_chart_service_accounts_are_least_privilege_and_sufficient() {
    let cp = control_plane();
    let ns = cp.namespace("least").await;
    let other = cp.namespace("elsewhere").await;
    // Clients live in two team namespaces, granted one by one: neither component may watch
    // OidcClients cluster-wide, so each watches the two namespaces.
    let teams = [cp.namespace("team-a").await, cp.namespace("team-b").await];
    let team_list = format!("{},{}", teams[0].name, teams[1].name);
    let release = "kube-oidc";
    let (ok, rendered, err) = template(
        cp,
        release,
        &ns.name,
        &[
            "--set",
            &format!("clientNamespaces={{{team_list}}}"),
            "--set",
            "clientPolicy.createDefault=false",
            "--set",
            "clientPolicy.admission=false",
        ],
    );
    assert!(ok, "{err}");
    apply(cp, &rendered, false);
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("private".into()),
            ..Default::default()
        },
        string_data: Some([("k".to_string(), "v".to_string())].into()),
        ..Default::default()
    };
    Api::<Secret>::namespaced(other.client.clone(), &other.name)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();

    // The operator, out of cluster, with its ServiceAccount token.
    let (op_kubeconfig, op_client) =
        service_account_client(cp, &ns, &format!("{release}-operator")).await;
    let mut cmd = Command::new(workspace_binary("kube-oidc-operator"));
    cmd.env("KUBECONFIG", &op_kubeconfig)
        .args([
            "--namespace",
            &ns.name,
            "--client-namespaces",
            &team_list,
            "--log-format",
            "text",
        ])
        .arg(format!(
            "--metrics-listen=127.0.0.1:{}",
            ControlPlane::free_port()
        ));
    let mut operator = kube_oidc_tests::controlplane::spawn_reaped(
        cmd,
        &cp.dir().join(format!("operator-sa-{}.log", ns.name)),
    )
    .unwrap();
    let client: OidcClient = serde_yaml::from_str(
        "apiVersion: kubeoidc.dev/v1alpha1\nkind: OidcClient\nmetadata: {name: svc}\nspec:\n  grantTypes: [client_credentials]\n",
    )
    .unwrap();
    let mut creds = Vec::new();
    for team in &teams {
        team.api::<OidcClient>()
            .create(&PostParams::default(), &client)
            .await
            .unwrap();
    }
    for team in &teams {
        let secret = eventually(
            "the operator (with its own token) to write the client Secret in each team namespace",
            Duration::from_secs(20),
            || async { team.api::<Secret>().get_opt("svc-oidc").await.ok()? },
        )
        .await;
        let data = secret.data.unwrap();
        let field = |k: &str| String::from_utf8(data[k].0.clone()).unwrap();
        creds.push((field("client-id"), field("client-secret")));
    }

    // The provider, out of cluster, with its ServiceAccount token.
    let (prov_kubeconfig, prov_client) =
        service_account_client(cp, &ns, &format!("{release}-provider")).await;
    let mut cmd = Command::new(workspace_binary("kube-oidc-provider"));
    let port = ControlPlane::free_port();
    cmd.env("KUBECONFIG", &prov_kubeconfig)
        .args([
            "--namespace",
            &ns.name,
            "--client-namespaces",
            &team_list,
            "--log-format",
            "text",
        ])
        .args(["--listen", &format!("127.0.0.1:{port}")]);
    let mut provider = kube_oidc_tests::controlplane::spawn_reaped(
        cmd,
        &cp.dir().join(format!("provider-sa-{}.log", ns.name)),
    )
    .unwrap();
    let token_status = |id: String, value: String| async move {
        reqwest::Client::new()
            .post(format!("http://127.0.0.1:{port}/token"))
            .basic_auth(&id, Some(&value))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .ok()
            .map(|r| r.status().as_u16())
    };
    for (id, value) in &creds {
        eventually(
            "a token from the provider running with its own token, for each team's client",
            Duration::from_secs(30),
            || async { (token_status(id.clone(), value.clone()).await == Some(200)).then_some(()) },
        )
        .await;
    }
    // A client deleted in one team namespace stops working; the other team's keeps working.
    teams[1]
        .api::<OidcClient>()
        .delete("svc", &Default::default())
        .await
        .unwrap();
    eventually(
        "the deleted client to be refused",
        Duration::from_secs(20),
        || async {
            (token_status(creds[1].0.clone(), creds[1].1.clone()).await == Some(401)).then_some(())
        },
    )
    .await;
    assert_eq!(
        token_status(creds[0].0.clone(), creds[0].1.clone()).await,
        Some(200)
    );

    // Not one permission more.
    forbidden(
        Api::<Secret>::namespaced(prov_client.clone(), &other.name)
            .get("private")
            .await,
        "provider reads a Secret in another namespace",
    );
    forbidden(
        Api::<Secret>::namespaced(prov_client.clone(), &other.name)
            .list(&Default::default())
            .await,
        "provider lists Secrets elsewhere",
    );
    forbidden(
        Api::<OidcClient>::namespaced(prov_client.clone(), &ns.name)
            .create(&PostParams::default(), &client)
            .await,
        "provider creates an OidcClient (registration is closed)",
    );
    forbidden(
        Api::<Secret>::namespaced(prov_client.clone(), &ns.name)
            .create(&PostParams::default(), &secret)
            .await,
        "provider writes a Secret",
    );
    forbidden(
        Api::<Secret>::namespaced(op_client.clone(), &other.name)
            .get("private")
            .await,
        "operator reads a Secret elsewhere",
    );
    forbidden(
        Api::<Secret>::namespaced(op_client.clone(), &other.name)
            .create(&PostParams::default(), &secret)
            .await,
        "operator writes a Secret elsewhere",
    );
    forbidden(
        Api::<OidcClient>::namespaced(op_client.clone(), &teams[0].name)
            .create(&PostParams::default(), &client)
            .await,
        "operator writes a client spec",
    );
    forbidden(
        Api::<OidcClient>::all(op_client.clone())
            .list(&Default::default())
            .await,
        "operator lists OidcClients cluster-wide",
    );
    for child in [&mut operator, &mut provider] {
        let _ = child.kill();
        let _ = child.wait();
    }
    ns.delete().await;
    other.delete().await;
    for team in teams {
        team.delete().await;
    }
}

/// The rendered documents of `rendered`, by kind and name.
/// The objects of `helm template` output.
fn rendered_docs(rendered: &str) -> Vec<serde_json::Value> {
    serde_yaml::Deserializer::from_str(rendered)
        .filter_map(|d| serde::Deserialize::deserialize(d).ok())
        .filter(|v: &serde_json::Value| !v.is_null())
        .collect()
}

/// The entry called `name` of a list of named entries (env, volumes, volume mounts).
fn named<'a>(list: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    list.as_array()
        .and_then(|l| l.iter().find(|e| e["name"] == name))
        .unwrap_or_else(|| panic!("no {name} in {list}"))
}

/// The Redis password the chart generated, from its rendered Secret `name`.
fn redis_password(docs: &[serde_json::Value], name: &str) -> String {
    use base64::Engine;
    let encoded = doc(docs, "Secret", name)["data"]["password"]
        .as_str()
        .unwrap();
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap(),
    )
    .unwrap()
}

fn doc<'a>(docs: &'a [serde_json::Value], kind: &str, name: &str) -> &'a serde_json::Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} rendered"))
}

/// The chart's Redis, run as the chart renders it on a real redis-server: a connection without
/// the generated password is refused, memory is bounded, the append-only file is on, and the
/// provider's rendered store URL (with the password from the same Secret) works.
#[tokio::test]
async fn the_chart_redis_refuses_connections_without_its_generated_password() {
    let cp = control_plane();
    let (ok, rendered, err) = template(cp, "pw", "pw-ns", &[]);
    assert!(ok, "{err}");
    let docs = rendered_docs(&rendered);
    let password = redis_password(&docs, "pw-redis");
    assert!(password.len() >= 32, "a weak generated password");
    let redis = &doc(&docs, "StatefulSet", "pw-redis")["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<String> = redis["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().replace("$(REDIS_PASSWORD)", &password))
        .collect();
    assert!(
        args.windows(2)
            .any(|w| w[0] == "--appendonly" && w[1] == "yes"),
        "{args:?}"
    );
    let server = kube_oidc_tests::RedisServer::start_with(&args);
    let cli = |auth: bool, command: &[&str]| {
        let mut c = Command::new("redis-cli");
        c.args(["-p", &server.port.to_string()]);
        if auth {
            c.env("REDISCLI_AUTH", &password);
        }
        let out = c
            .args(command)
            .output()
            .expect("redis-cli (tests/run installs redis-server)");
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    assert!(
        cli(false, &["PING"]).contains("NOAUTH"),
        "Redis answered without the password"
    );
    assert!(cli(false, &["SET", "kube-oidc:session:x", "forged"]).contains("NOAUTH"));
    assert!(cli(true, &["PING"]).contains("PONG"));
    assert!(cli(true, &["CONFIG", "GET", "maxmemory"]).contains("201326592"));
    // The provider's store, as rendered, reaches it with the password from the same Secret.
    let provider =
        &doc(&docs, "Deployment", "pw-provider")["spec"]["template"]["spec"]["containers"][0];
    let store = named(&provider["env"], "KUBE_OIDC_STORE")["value"]
        .as_str()
        .unwrap();
    let from = named(&provider["env"], "KUBE_OIDC_REDIS_PASSWORD");
    assert_eq!(from["valueFrom"]["secretKeyRef"]["name"], "pw-redis");
    let url = store
        .replace("$(KUBE_OIDC_REDIS_PASSWORD)", &password)
        .replace("pw-redis:6379", &format!("127.0.0.1:{}", server.port));
    let mut p = kube_oidc_tests::Provider::standalone(&repo().join("examples/local"), &url);
    p.wait_ready(Duration::from_secs(20));
    let without = format!("redis://127.0.0.1:{}", server.port);
    let mut refused =
        kube_oidc_tests::Provider::standalone(&repo().join("examples/local"), &without);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        kube_oidc_tests::operator::http_get(refused.port, "/readyz")
            .is_none_or(|(code, _)| code != 200),
        "a provider without the password was ready"
    );
    drop(refused.log_text());
    let _ = &mut refused;
}

/// The chart's branding values, as rendered (the ConfigMap's files at the Deployment's mount
/// paths, its environment as the provider's flags), are what the provider serves: the company's
/// name, colour, CSS, a replaced template, an added language, the logo's origin in the CSP.
#[tokio::test]
async fn the_chart_branding_is_what_the_provider_serves() {
    let cp = control_plane();
    let ha = repo().join("tests/helm/ha-values.yaml");
    let (ok, rendered, err) = template(cp, "br", "br-ns", &["-f", ha.to_str().unwrap()]);
    assert!(ok, "{err}");
    let docs = rendered_docs(&rendered);
    let files = &doc(&docs, "ConfigMap", "br-branding")["data"];
    let pod = &doc(&docs, "Deployment", "br-provider")["spec"]["template"]["spec"];
    let mount = named(&pod["containers"][0]["volumeMounts"], "branding")["mountPath"]
        .as_str()
        .unwrap();
    let root = tempfile::tempdir().unwrap();
    for item in named(&pod["volumes"], "branding")["configMap"]["items"]
        .as_array()
        .unwrap()
    {
        let path = root.path().join(item["path"].as_str().unwrap());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            &path,
            files[item["key"].as_str().unwrap()].as_str().unwrap(),
        )
        .unwrap();
    }
    // KUBE_OIDC_BRAND_NAME is --brand-name, and so on (clap's env names).
    let mut flags = Vec::new();
    for e in pod["containers"][0]["env"].as_array().unwrap() {
        let name = e["name"].as_str().unwrap();
        if [
            "KUBE_OIDC_BRAND_",
            "KUBE_OIDC_TEMPLATES",
            "KUBE_OIDC_LOCALES",
        ]
        .iter()
        .any(|p| name.starts_with(p))
        {
            let flag = name["KUBE_OIDC_".len()..].to_lowercase().replace('_', "-");
            let value = e["value"].as_str().unwrap();
            flags.push(format!("--{flag}"));
            flags.push(value.replace(mount, root.path().to_str().unwrap()));
        }
    }
    assert_eq!(flags.len(), 12, "{flags:?}");
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut p = kube_oidc_tests::Provider::standalone_with(
        &repo().join("examples/local"),
        "memory",
        &flags,
    );
    p.wait_ready(Duration::from_secs(20));
    let c = reqwest::Client::new();
    let get = |path: &str, lang: &str| c.get(p.url(path)).header("accept-language", lang).send();
    let r = get("/device", "fr").await.unwrap();
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("img-src 'self' https://cdn.example.com;"),
        "{csp}"
    );
    let page = r.text().await.unwrap();
    assert!(
        page.contains("lang=\"fr\"")
            && page.contains("Example Corp")
            && page.contains("--brand:#0b6e4f")
            && page.contains("body{background:#f3f6f4}")
            && page.contains("src=\"https://cdn.example.com/logo.svg\""),
        "{page}"
    );
    let html = get("/authorize?client_id=nobody", "fr")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("<h1 class=\"branded\">"),
        "the replaced template: {html}"
    );
    let html = get("/authorize?client_id=nobody", "de")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Diese Anmeldeanfrage ist ungültig"), "{html}");
}

/// The Prometheus Operator CRDs build.sh generates, installed once.
async fn install_prometheus_crds(cp: &ControlPlane) {
    let dir = kube_oidc_tests::controlplane::binary_dir().join(format!(
        "prometheus-operator-{}-crds",
        kube_oidc_tests::controlplane::version("PROMETHEUS_OPERATOR_VERSION")
    ));
    for kind in ["prometheusrules", "servicemonitors"] {
        let file = dir.join(format!("monitoring.coreos.com_{kind}.yaml"));
        let yaml = std::fs::read_to_string(&file).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; tests/controlplane/build.sh generates it",
                file.display()
            )
        });
        let mut cmd = cp.kubectl();
        cmd.args(["apply", "--server-side", "-f", "-"]);
        let (ok, out, err) = run(cmd, Some(&yaml));
        assert!(ok, "{out}{err}");
        crate::fresh::established(cp, &format!("{kind}.monitoring.coreos.com")).await;
    }
}

fn promtool(args: &[&str], dir: &std::path::Path) -> (bool, String) {
    let bin = kube_oidc_tests::controlplane::binary_dir().join("promtool");
    assert!(
        bin.is_file(),
        "{} is missing; tests/controlplane/build.sh builds it",
        bin.display()
    );
    let mut cmd = Command::new(bin);
    cmd.args(args).current_dir(dir);
    let (ok, out, err) = run(cmd, None);
    (ok, out + &err)
}

/// Every `kube_oidc_*` metric a text names, without the sample suffixes.
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("kube_oidc_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        let base = ["_total", "_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(&name);
        out.insert(base.to_string());
    }
    out
}

/// The chart's alerts and dashboard: rendered, applied against the Prometheus Operator's CRDs,
/// the rules checked and unit-tested by promtool (each alert fires when it should and not
/// before), the dashboard's queries valid PromQL, and every metric they read exported by the
/// real provider and operator.
#[tokio::test]
async fn the_chart_alerts_fire_and_the_dashboard_reads_real_metrics() {
    let cp = control_plane();
    install_prometheus_crds(cp).await;
    let ns = cp.namespace("chart-mon").await;
    let (ok, rendered, err) = template(
        cp,
        "mon",
        &ns.name,
        &[
            "--set",
            "prometheusRule.enabled=true",
            "--set",
            "grafanaDashboard.enabled=true",
            "--set",
            "serviceMonitor.enabled=true",
            "--set",
            "clientPolicy.createDefault=false",
            "--set",
            "clientPolicy.admission=false",
        ],
    );
    assert!(ok, "{err}");
    apply(cp, &rendered, false);
    let docs = rendered_docs(&rendered);
    let rule = doc(&docs, "PrometheusRule", "mon");
    let dashboard = doc(&docs, "ConfigMap", "mon-dashboard");
    assert_eq!(dashboard["metadata"]["labels"]["grafana_dashboard"], "1");
    let dashboard: serde_json::Value =
        serde_json::from_str(dashboard["data"]["kube-oidc.json"].as_str().unwrap()).unwrap();

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rules.yaml"),
        serde_yaml::to_string(&rule["spec"]).unwrap(),
    )
    .unwrap();
    let (ok, out) = promtool(&["check", "rules", "rules.yaml"], dir.path());
    assert!(ok, "promtool check rules: {out}");

    // The dashboard's queries, as recording rules, for promtool's PromQL parser.
    let exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().iter())
        .map(|t| t["expr"].as_str().unwrap().replace("$namespace", &ns.name))
        .collect();
    assert!(exprs.len() >= 10, "{exprs:?}");
    let recording: Vec<serde_json::Value> = exprs
        .iter()
        .enumerate()
        .map(|(i, e)| serde_json::json!({"record": format!("dashboard:panel_{i}"), "expr": e}))
        .collect();
    std::fs::write(
        dir.path().join("dashboard.yaml"),
        serde_yaml::to_string(
            &serde_json::json!({"groups": [{"name": "dashboard", "rules": recording}]}),
        )
        .unwrap(),
    )
    .unwrap();
    let (ok, out) = promtool(&["check", "rules", "dashboard.yaml"], dir.path());
    assert!(ok, "the dashboard's queries: {out}");

    // Each alert fires when it should, and not before.
    let n = &ns.name;
    let tests = format!(
        r#"rule_files: [rules.yaml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'kube_oidc_operator_signing_key_active_since_seconds{{namespace="{n}",signing_key="default"}}'
        values: '0x200'
      - series: 'kube_oidc_operator_signing_key_rotation_interval_seconds{{namespace="{n}",signing_key="default"}}'
        values: '3600x200'
      - series: 'kube_oidc_provider_sign_ins_total{{namespace="{n}",pod="p-1",result="refused"}}'
        values: '0+60x200'
      - series: 'kube_oidc_provider_store_errors_total{{namespace="{n}",pod="p-1"}}'
        values: '0x30 0+10x30'
      - series: 'kube_oidc_provider_ready{{namespace="{n}",pod="p-1"}}'
        values: '1x30 0x30'
      - series: 'up{{namespace="{n}",job="mon-operator-metrics"}}'
        values: '1x30 0x60'
      - series: 'kube_oidc_operator_reconcile_failures_total{{namespace="{n}",controller="oidcclient",reason="Kube"}}'
        values: '0x10 0+1x100'
    alert_rule_test:
      - {{eval_time: 110m, alertname: KubeOidcSigningKeyNotRotated, exp_alerts: []}}
      - eval_time: 150m
        alertname: KubeOidcSigningKeyNotRotated
        exp_alerts:
          - exp_labels: {{severity: warning, namespace: {n}, signing_key: default}}
            exp_annotations:
              summary: SigningKey default has signed past its rotation interval
              description: The operator has not rotated SigningKey {n}/default; see its Ready condition and Events (kubectl describe signingkey) and the operator's log.
      - {{eval_time: 5m, alertname: KubeOidcSignInFailures, exp_alerts: []}}
      - eval_time: 30m
        alertname: KubeOidcSignInFailures
        exp_alerts:
          - exp_labels: {{severity: warning}}
            exp_annotations:
              summary: Most sign-ins fail
              description: "More than 0.2 failed sign-ins per second, and more failures than successes: password guessing, or a broken users directory."
      - {{eval_time: 30m, alertname: KubeOidcStoreErrors, exp_alerts: []}}
      - eval_time: 45m
        alertname: KubeOidcStoreErrors
        exp_alerts:
          - exp_labels: {{severity: critical}}
            exp_annotations:
              summary: The provider's store (Redis) fails
              description: Store operations fail; sign-ins and token requests are answered temporarily_unavailable. Check the Redis pods and the provider's log.
      - {{eval_time: 33m, alertname: KubeOidcProviderNotReady, exp_alerts: []}}
      - eval_time: 40m
        alertname: KubeOidcProviderNotReady
        exp_alerts:
          - exp_labels: {{severity: warning, pod: p-1}}
            exp_annotations:
              summary: Provider pod p-1 is not ready
              description: Not synced, no signing key that can sign, or the store does not answer (its /readyz says which).
      - {{eval_time: 40m, alertname: KubeOidcOperatorDown, exp_alerts: []}}
      - eval_time: 50m
        alertname: KubeOidcOperatorDown
        exp_alerts:
          - exp_labels: {{severity: warning, namespace: {n}}}
            exp_annotations:
              summary: No kube-oidc operator is up
              description: Clients are not validated, credentials not generated and keys not rotated while no operator runs.
      - {{eval_time: 30m, alertname: KubeOidcReconcileFailures, exp_alerts: []}}
      - eval_time: 60m
        alertname: KubeOidcReconcileFailures
        exp_alerts:
          - exp_labels: {{severity: warning, controller: oidcclient, reason: Kube}}
            exp_annotations:
              summary: The operator's oidcclient reconciles fail (Kube)
              description: Objects are not reconciled; their conditions and Events say why.
"#
    );
    std::fs::write(dir.path().join("alerts-test.yaml"), tests).unwrap();
    let (ok, out) = promtool(&["test", "rules", "alerts-test.yaml"], dir.path());
    assert!(ok, "promtool test rules: {out}");

    // Every metric the alerts and the dashboard read is one the programs export.
    let wanted = metric_names(&(serde_json::to_string(&rule["spec"]).unwrap() + &exprs.join("\n")));
    let mut p = kube_oidc_tests::Provider::standalone(&repo().join("examples/local"), "memory");
    p.wait_ready(Duration::from_secs(20));
    // A failed client authentication: its series appears at the first.
    let r = reqwest::Client::new()
        .post(p.url("/token"))
        .basic_auth("reports", Some("wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let provider_metrics = reqwest::get(p.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let op = kube_oidc_tests::Operator::start(cp, &ns.name, "mon", &[]);
    crate::provider::create_signing_key(&ns).await;
    let operator_metrics = eventually(
        "the operator to export the signing key's rotation",
        Duration::from_secs(20),
        || async {
            let (_, body) = op.get("/metrics")?;
            body.contains("kube_oidc_operator_signing_key_active_since_seconds{")
                .then_some(body)
        },
    )
    .await;
    // Reconcile failures appear at the first failure, which a healthy operator never has: the
    // operator registers the name.
    let registered = include_str!("../../../operator/src/metrics.rs");
    assert!(registered.contains("\"reconcile_failures\""));
    let exported = metric_names(
        &(provider_metrics.clone() + &operator_metrics + "kube_oidc_operator_reconcile_failures"),
    );
    let missing: Vec<&String> = wanted.difference(&exported).collect();
    assert!(
        missing.is_empty(),
        "read but not exported: {missing:?}\n{provider_metrics}\n{operator_metrics}"
    );
    assert!(
        provider_metrics.contains("kube_oidc_provider_ready 1"),
        "{provider_metrics}"
    );
    ns.delete().await;
}

/// `store.internal.tls`: the chart's Redis, as rendered, listens on TLS only with the Secret's
/// certificate; the provider, as rendered, reaches it over rediss:// trusting the Secret's CA,
/// and without that CA (or without TLS) it is not ready.
#[tokio::test]
async fn the_chart_redis_speaks_tls_only_and_the_provider_trusts_its_ca() {
    let cp = control_plane();
    let (ok, rendered, err) = template(
        cp,
        "tls",
        "tls-ns",
        &[
            "--set",
            "store.internal.tls.enabled=true",
            "--set",
            "store.internal.tls.secretName=redis-tls",
        ],
    );
    assert!(ok, "{err}");
    let docs = rendered_docs(&rendered);
    let password = redis_password(&docs, "tls-redis");
    // The Secret cert-manager would write, for the names the provider dials.
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = cp.server_certificate(&["tls-redis", "127.0.0.1"]);
    std::fs::write(dir.path().join("tls.crt"), cert).unwrap();
    std::fs::write(dir.path().join("tls.key"), key).unwrap();
    std::fs::write(dir.path().join("ca.crt"), cp.ca_pem()).unwrap();
    let tls_dir = format!("{}/", dir.path().display());
    let port = ControlPlane::free_port();
    let redis_pod = &doc(&docs, "StatefulSet", "tls-redis")["spec"]["template"]["spec"];
    assert_eq!(redis_pod["volumes"][1]["secret"]["secretName"], "redis-tls");
    let args: Vec<String> = redis_pod["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            a.as_str()
                .unwrap()
                .replace("$(REDIS_PASSWORD)", &password)
                .replace("/tls/", &tls_dir)
                .replace("6379", &port.to_string())
        })
        .collect();
    assert!(
        args.windows(2).any(|w| w[0] == "--port" && w[1] == "0"),
        "the plain port stays open: {args:?}"
    );
    let _server = kube_oidc_tests::RedisServer::start_on(port, &args);

    let provider = &doc(&docs, "Deployment", "tls-provider")["spec"]["template"]["spec"];
    let value = |name: &str| {
        named(&provider["containers"][0]["env"], name)["value"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} has no value"))
            .to_string()
    };
    let url = value("KUBE_OIDC_STORE")
        .replace("$(KUBE_OIDC_REDIS_PASSWORD)", &password)
        .replace("tls-redis:6379", &format!("127.0.0.1:{port}"));
    assert!(url.starts_with("rediss://"), "{url}");
    assert_eq!(
        value("KUBE_OIDC_STORE_CA"),
        "/etc/kube-oidc/store-ca/ca.crt"
    );
    let ca_volume = named(&provider["volumes"], "store-ca");
    assert_eq!(ca_volume["secret"]["secretName"], "redis-tls");
    assert_eq!(ca_volume["secret"]["items"][0]["key"], "ca.crt");
    let ca = dir.path().join("ca.crt");
    let folder = repo().join("examples/local");
    let mut p = kube_oidc_tests::Provider::standalone_with(
        &folder,
        &url,
        &["--store-ca", ca.to_str().unwrap()],
    );
    p.wait_ready(Duration::from_secs(20));
    // A sign-in's state round-trips through the TLS store.
    let r = reqwest::Client::new()
        .post(p.url("/device_authorization"))
        .form(&[("client_id", "demo"), ("scope", "openid")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Without the CA (the system's roots do not know it), or in plain text: never ready.
    let plain = url.replace("rediss://", "redis://");
    let untrusted = kube_oidc_tests::Provider::standalone(&folder, &url);
    let cleartext = kube_oidc_tests::Provider::standalone(&folder, &plain);
    std::thread::sleep(Duration::from_secs(3));
    for (what, p) in [("without the CA", &untrusted), ("without TLS", &cleartext)] {
        assert!(
            kube_oidc_tests::operator::http_get(p.port, "/readyz")
                .is_none_or(|(code, _)| code != 200),
            "a provider {what} was ready"
        );
    }
}
