//! Every manifest under examples/ is applied and reaches Ready.

use std::{path::Path, process::Stdio, time::Duration};

use crds::OidcClient;
use futures::future::join_all;
use kube::{Api, ResourceExt};
use kube_oidc_tests::{Operator, TestNamespace, control_plane, readiness};

use crate::operator::eventually;

/// The manifests of a folder (through kustomize where there is a kustomization), without
/// namespaces, so that each example can be applied in a test namespace.
fn manifests(dir: &Path) -> String {
    let cp = control_plane();
    let text = if dir.join("kustomization.yaml").exists() {
        let out = cp.kubectl().arg("kustomize").arg(dir).output().unwrap();
        assert!(out.status.success(), "kubectl kustomize {}", dir.display());
        String::from_utf8(out.stdout).unwrap()
    } else {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|f| std::fs::read_to_string(f).unwrap())
            .collect::<Vec<_>>()
            .join("\n---\n")
    };
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let mut value: serde_yaml::Value = serde::Deserialize::deserialize(doc).unwrap();
        // Namespaces an example creates are replaced by the test's own.
        if value.is_null() || value["kind"] == "Namespace" {
            continue;
        }
        if let Some(meta) = value.get_mut("metadata").and_then(|m| m.as_mapping_mut()) {
            meta.remove("namespace");
        }
        docs.push(serde_yaml::to_string(&value).unwrap());
    }
    docs.join("---\n")
}

/// How many kube-oidc objects the namespace holds, once every one of them is Ready.
async fn all_ready(ns: &TestNamespace) -> Option<usize> {
    let (objects, not_ready) = readiness(&ns.client, &ns.name).await.ok()?;
    not_ready.is_empty().then_some(objects)
}

async fn example_reaches_ready(name: String) -> (String, usize) {
    let cp = control_plane();
    let dir = crds::workspace_root().join("examples").join(&name);
    let ns = cp
        .namespace(&format!("ex-{}", name.replace('_', "-")))
        .await;
    let _op = Operator::start(cp, &ns.name, "a", &[]);
    let yaml = manifests(&dir);
    let mut child = cp
        .kubectl()
        .args(["apply", "-n", &ns.name, "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), yaml.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "examples/{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let objects = eventually(
        &format!("every object of examples/{name} to be Ready"),
        Duration::from_secs(30),
        || all_ready(&ns),
    )
    .await;
    assert!(objects > 0, "examples/{name} has no kube-oidc objects");
    let names: Vec<String> = Api::<OidcClient>::namespaced(ns.client.clone(), &ns.name)
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|c| c.name_any())
        .collect();
    eprintln!("examples/{name}: {objects} objects Ready (clients {names:?})");
    ns.delete().await;
    (name, objects)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_is_applied_and_reaches_ready() {
    let root = crds::workspace_root().join("examples");
    let mut names: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 9, "{names:?}");
    let results = join_all(names.into_iter().map(example_reaches_ready)).await;
    for (name, n) in results {
        assert!(n >= 1, "{name}");
    }
}
