//! Every command of the README and of the examples' READMEs, run as written against the real
//! control plane (kubectl and helm from the test build; the operator the chart would run, started
//! out of cluster). A command added to a README without a way to run it here fails the test.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crds::{KeyState, OidcClient, SigningKey};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube_oidc_tests::{ControlPlane, Operator, Provider, operator::workspace_binary, readiness};

use crate::operator::eventually;

fn repo() -> PathBuf {
    crds::workspace_root().canonicalize().unwrap()
}

/// The shell commands of a README: its indented code blocks, one command per line (a line
/// ending in `\` continues on the next).
fn readme_commands(readme: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(readme).unwrap();
    let mut commands = Vec::new();
    let mut fenced = false;
    let mut pending = String::new();
    for line in text.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
            continue;
        }
        let Some(code) = line.strip_prefix("    ").filter(|_| !fenced) else {
            continue;
        };
        let code = code.trim();
        if let Some(start) = code.strip_suffix('\\') {
            pending.push_str(start.trim_end());
            pending.push(' ');
        } else {
            pending.push_str(code);
            commands.push(std::mem::take(&mut pending));
        }
    }
    commands
}

/// Runs `command` with bash in the repository, with kubectl, helm and the workspace binaries on
/// PATH and the admin kubeconfig; returns stdout, panicking with stderr on failure.
fn sh(cp: &ControlPlane, command: &str) -> String {
    let path = format!(
        "{}:{}:{}",
        cp.bin_path("kubectl").parent().unwrap().display(),
        workspace_binary("kube-oidc-provider")
            .parent()
            .unwrap()
            .display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", command])
        .current_dir(repo())
        .env("PATH", path)
        .env("KUBECONFIG", cp.kubeconfig())
        .env("HELM_CACHE_HOME", cp.dir().join("helm/cache"))
        .env("HELM_CONFIG_HOME", cp.dir().join("helm/config"))
        .env("HELM_DATA_HOME", cp.dir().join("helm/data"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "README command failed: {command}\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Commands a test cannot run from inside `cargo test`, and what runs them instead.
const RUN_ELSEWHERE: [(&str, &str); 3] = [
    ("tests/run", ".ci/run"),
    ("tests/conformance/run", ".ci/run, after tests/run"),
    ("tests/fuzz", "tests/run (`tests/fuzz 20`, a short run)"),
];

async fn signing_key(cp: &ControlPlane) -> SigningKey {
    Api::<SigningKey>::namespaced(cp.client().await, "kube-oidc")
        .get("default")
        .await
        .unwrap()
}

/// The README from the top, on a control plane of its own that has no kube-oidc CRDs: the CRDs
/// come from the chart's `crds/` through the README's `helm install`, and the walk ends with a
/// token verified against the published keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_commands_work_as_written() {
    let cp = &ControlPlane::start_empty();
    let crds = Api::<CustomResourceDefinition>::all(cp.client().await);
    assert!(
        crds.get_opt("signingkeys.kubeoidc.dev")
            .await
            .unwrap()
            .is_none(),
        "the README's cluster must start without kube-oidc's CRDs"
    );
    let commands = readme_commands(&repo().join("README.md"));
    assert!(commands.len() >= 8, "README commands: {commands:?}");
    let mut done = vec![false; commands.len()];
    let quick_start_prefix = "cargo run -p kube-oidc-provider -- ";
    let quick_start: Vec<String> = take(&commands, &mut done, quick_start_prefix)
        [quick_start_prefix.len()..]
        .split_whitespace()
        .map(String::from)
        .collect();
    // The quick start with registration, run once the quick start is done.
    let with_registration: Vec<String> = take(&commands, &mut done, quick_start_prefix)
        [quick_start_prefix.len()..]
        .split_whitespace()
        .map(String::from)
        .collect();
    let mut run = |prefix: &str| sh(cp, &take(&commands, &mut done, prefix));

    // Quick start, serving where the README says.
    let (mut provider, discovery) = quick_start_serving(&quick_start).await;
    assert_eq!(discovery["issuer"], "http://127.0.0.1:8080");
    // Its key rotation, as the README says: a second key is published.
    let kids = async || {
        let jwks: serde_json::Value = reqwest::get("http://127.0.0.1:8080/jwks")
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        Some(jwks["keys"].as_array()?.len())
    };
    assert_eq!(kids().await, Some(1));
    run("pkill -HUP ");
    eventually(
        "a second key after SIGHUP",
        Duration::from_secs(10),
        || async { (kids().await == Some(2)).then_some(()) },
    )
    .await;

    // Install in a cluster.
    let notes = run("helm install kube-oidc charts/kube-oidc ");
    assert!(notes.contains("https://login.example.com"), "{notes}");
    // The operator and the provider the chart deploys, run out of cluster (the test cluster has
    // no nodes), with the chart's defaults: clients in every namespace, the issuer installed.
    let _operator = Operator::start_for(
        cp,
        "kube-oidc",
        "*",
        "readme",
        &["--issuer", "https://login.example.com"],
    );
    let mut provider_in_cluster = Provider::in_cluster(
        cp,
        "kube-oidc",
        "memory",
        &["--client-namespaces", "my-team"],
    );

    // Onboard a client.
    run("kubectl create namespace my-team");
    run("kubectl apply -n my-team -f examples/web-app/");
    let started = Instant::now();
    let table = loop {
        let out = run("kubectl get oidcclients -n my-team");
        if out.contains(" True ") || started.elapsed() > Duration::from_secs(20) {
            break out;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let row: Vec<&str> = table
        .lines()
        .find(|l| l.starts_with("orders-web "))
        .unwrap_or_else(|| panic!("{table}"))
        .split_whitespace()
        .collect();
    assert_eq!(
        row[..4],
        ["orders-web", "True", "my-team.orders-web", "confidential"],
        "{table}"
    );
    let client = cp.client().await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "my-team");
    let first =
        secrets.get("orders-web-oidc").await.unwrap().data.unwrap()["client-secret"].clone();
    run("kubectl annotate oidcclient orders-web -n my-team kubeoidc.dev/rotate-secret=");
    eventually(
        "a new client secret, with the previous one still valid",
        Duration::from_secs(20),
        || async {
            let data = secrets.get("orders-web-oidc").await.ok()?.data?;
            let c = Api::<OidcClient>::namespaced(client.clone(), "my-team")
                .get("orders-web")
                .await
                .ok()?;
            (data["client-secret"] != first && c.status?.previous_secret.is_some()).then_some(())
        },
    )
    .await;

    // Signing keys.
    let active = eventually(
        "the default key to be Active",
        Duration::from_secs(20),
        || async {
            let key = signing_key(cp).await;
            key.status?
                .keys
                .into_iter()
                .find(|k| k.state == KeyState::Active)
                .map(|k| k.kid)
        },
    )
    .await;
    let table = run("kubectl get signingkeys -n kube-oidc");
    assert!(table.contains(&active), "{table}");
    // NEXT-ROTATION is a time in the future: shown as one, not as `<invalid>`.
    assert!(
        !table.contains("<invalid>") && table.contains(&format!("{}-", jiff::Zoned::now().year())),
        "{table}"
    );
    run("kubectl annotate signingkey default -n kube-oidc kubeoidc.dev/rotate=now");
    let next = eventually(
        "a Next key after rotate=now",
        Duration::from_secs(20),
        || async {
            signing_key(cp)
                .await
                .status?
                .keys
                .into_iter()
                .find(|k| k.kid != active)
                .map(|k| k.kid)
        },
    )
    .await;
    let revoke = take(
        &commands,
        &mut done,
        "kubectl annotate signingkey default -n kube-oidc kubeoidc.dev/revoke-kid=",
    );
    sh(cp, &revoke.replace("<kid>", &next));
    eventually(
        "the revoked kid to be gone",
        Duration::from_secs(20),
        || async {
            let keys = signing_key(cp).await.status?.keys;
            (!keys.iter().any(|k| k.kid == next)).then_some(())
        },
    )
    .await;

    for (command, by) in RUN_ELSEWHERE {
        assert_eq!(take(&commands, &mut done, command), command);
        eprintln!("README `{command}`: run by {by}");
    }
    let not_run: Vec<&String> = commands
        .iter()
        .zip(&done)
        .filter(|(_, d)| !**d)
        .map(|(c, _)| c)
        .collect();
    assert!(
        not_run.is_empty(),
        "README commands no test runs: {not_run:?}"
    );

    examples_readmes(cp, &quick_start).await;

    // The chart's admission policy refuses a squatter at kubectl apply already: in my-team under
    // the default ClientPolicy, in team-a under team-a's (examples/gitops labels it).
    let refused = [
        (
            "my-team",
            "  clientId: team-b.wiki\n  redirectUris: [http://127.0.0.1:9/cb]\n",
            "ClientPolicy default: clientId team-b.wiki is not allowed",
        ),
        (
            "team-a",
            "  clientId: team-b.wiki\n  redirectUris: [http://127.0.0.1:9/cb]\n",
            "ClientPolicy team-a: clientId team-b.wiki is not allowed",
        ),
        (
            "my-team",
            "  consent: skip\n  redirectUris: [http://127.0.0.1:9/cb]\n",
            "ClientPolicy default: consent: skip is not allowed",
        ),
        (
            "team-a",
            "  accessTokenTtl: 2h\n  redirectUris: [http://127.0.0.1:9/cb]\n",
            "ClientPolicy team-a: accessTokenTtl 2h is longer than the maximum 1h",
        ),
        (
            "team-a",
            "  redirectUris: [https://evil.example/cb]\n",
            "ClientPolicy team-a: a redirect URI names a host that is not allowed",
        ),
    ];
    for (ns, field, message) in refused {
        let squatter = format!(
            "apiVersion: kubeoidc.dev/v1alpha1\nkind: OidcClient\nmetadata: {{name: squatter, namespace: {ns}}}\nspec:\n{field}"
        );
        let mut apply = cp.kubectl();
        apply
            .args(["apply", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = apply.spawn().unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), squatter.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(message),
            "{ns}: {field} was not refused at admission: {err}"
        );
    }

    // All the way to a token from the cluster's provider, for the service example's client,
    // verified against the keys it publishes.
    provider_in_cluster.wait_ready(Duration::from_secs(30));
    let issuer = provider_in_cluster.issuer.clone();
    let token = crate::fresh::token_of(&issuer, &secrets, "billing-sync-oidc").await;
    let claims = crate::provider::verify(&issuer, &token, &issuer).await;
    assert_eq!(claims["sub"], "my-team.billing-sync");
    provider.stop();

    // The quick start with registration: a client registers itself over HTTP.
    assert!(with_registration.contains(&"open".to_string()));
    let (mut provider, discovery) = quick_start_serving(&with_registration).await;
    assert_eq!(
        discovery["registration_endpoint"],
        "http://127.0.0.1:8080/register"
    );
    let r = reqwest::Client::new()
        .post("http://127.0.0.1:8080/register")
        .json(&serde_json::json!({"redirect_uris": ["http://127.0.0.1:8000/cb"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    provider.stop();

    for ns in ["my-team", "team-a", "kube-oidc"] {
        let _ = Api::<Namespace>::all(client.clone())
            .delete(ns, &Default::default())
            .await;
    }
}

/// The README command that starts with `prefix`, marked as run.
/// The provider started with a quick start's arguments (the program and arguments of `cargo
/// run`: a nested cargo would wait on the build lock of this one), once it serves discovery
/// where the README says; with that document.
async fn quick_start_serving(args: &[String]) -> (KillOnDrop, serde_json::Value) {
    let provider = KillOnDrop(
        Command::new(workspace_binary("kube-oidc-provider"))
            .args(args)
            .current_dir(repo())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let discovery = eventually(
        &format!(
            "`{}` to serve discovery at http://127.0.0.1:8080",
            args.join(" ")
        ),
        Duration::from_secs(20),
        || async {
            let r = reqwest::get("http://127.0.0.1:8080/.well-known/openid-configuration")
                .await
                .ok()?;
            r.json::<serde_json::Value>().await.ok()
        },
    )
    .await;
    (provider, discovery)
}

/// A process that is killed when the test ends, also by a panic: a quick start left running
/// would answer on 127.0.0.1:8080 for the next run.
struct KillOnDrop(std::process::Child);

impl KillOnDrop {
    fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.stop();
    }
}

fn take(commands: &[String], done: &mut [bool], prefix: &str) -> String {
    // The first not yet run, else the first (some commands are run twice).
    let i = commands
        .iter()
        .enumerate()
        .position(|(i, c)| !done[i] && c.starts_with(prefix))
        .or_else(|| commands.iter().position(|c| c.starts_with(prefix)))
        .unwrap_or_else(|| panic!("the README no longer has `{prefix}...`"));
    done[i] = true;
    commands[i].clone()
}

/// The examples' READMEs, in the cluster the README set up (and with its quick start still
/// serving): every command succeeds, and everything they apply becomes Ready.
async fn examples_readmes(cp: &ControlPlane, quick_start: &[String]) {
    let mut readmes: Vec<PathBuf> = std::fs::read_dir(repo().join("examples"))
        .unwrap()
        .filter_map(|e| Some(e.ok()?.path().join("README.md")))
        .filter(|p| p.is_file())
        .collect();
    readmes.sort();
    let mut ran = 0;
    for readme in readmes {
        for command in readme_commands(&readme) {
            if let Some(args) = command.strip_prefix("cargo run -p kube-oidc-provider -- ") {
                // The quick start, already serving.
                assert_eq!(args.split_whitespace().collect::<Vec<_>>(), quick_start);
            } else {
                let out = sh(cp, &command);
                if command.starts_with("curl") {
                    assert!(out.contains("access_token"), "{command}: {out}");
                }
            }
            ran += 1;
        }
    }
    assert!(ran >= 10, "only {ran} commands in the examples' READMEs");
    let client = cp.client().await;
    eventually(
        "every client, scope and key the READMEs applied to be Ready",
        Duration::from_secs(30),
        || async {
            let mut not_ready = Vec::new();
            for ns in ["my-team", "team-a", "kube-oidc"] {
                not_ready.extend(readiness(&client, ns).await.ok()?.1);
            }
            if not_ready.is_empty() {
                Some(())
            } else {
                eprintln!("not Ready yet: {not_ready:?}");
                None
            }
        },
    )
    .await;
}
