#!/usr/bin/env python3
"""Writes what tests/conformance/run hands ../shared/conformance/run.sh: the provider's manifests
(CONFORMANCE_MANIFESTS) and the suite's configurations (CONFORMANCE_CONFIGS), for every plan in
both modes at once:

  standalone  https://localhost:8449 (--manifests), suite alias "kube-oidc"
  cluster     https://localhost:8450 (etcd, kube-apiserver, the operator), alias "kube-oidc-cluster"

The suite runs the plans of one alias one after the other and the two aliases side by side, so
each provider sees one test at a time (its key rotation cannot surprise another module).

  prepare.py SUITE_DIR MANIFESTS_DIR CONFIGS_DIR

Starts from the harness's own files (helper.py) and changes only what is listed here:
- every static client lists all six response types (Implicit, Hybrid plans), and the ClientPolicy
  "default" allows them (client-policy.yaml);
- every static client also accepts the cluster alias's callback and post-logout URIs;
- the back-channel clients get "-cluster" twins whose logout URI is the cluster alias's (the
  suite routes a back-channel logout by alias);
- configs: config-static.json, config-backchannel.json, config-dynamic-standalone.json (alias
  kube-oidc, 8449); config-static-cluster.json, config-backchannel-cluster.json,
  config-dynamic.json (alias kube-oidc-cluster, 8450: run.sh's own "dynamic" plan);
- every config: oidcc-ensure-request-object-with-redirect-uri accepts a normal sign-in as well
  as an error page (OIDC Core §6.1: the request object's redirect_uri wins, so ours signs in)."""

import json
import os
import subprocess
import sys

SUITE = "https://localhost:8443"
ALIASES = {"standalone": "kube-oidc", "cluster": "kube-oidc-cluster"}
ISSUERS = {"standalone": "https://localhost:8449", "cluster": "https://localhost:8450"}
RESPONSE_TYPES = "[code, id_token, id_token token, code id_token, code token, code id_token token]"


def helper(suite, env, *args):
    subprocess.run([sys.executable, os.path.join(suite, "helper.py"), *args],
                   env={**os.environ, "SUITE_URL": SUITE, **env}, check=True)


def manifests(suite, out):
    helper(suite, {"ALIAS": ALIASES["standalone"], "BACKCHANNEL_URL": SUITE}, "manifests", out)
    path = os.path.join(out, "clients.yaml")
    docs = open(path).read().split("---\n")
    a, b = (f"{SUITE}/test/a/{ALIASES[m]}" for m in ("standalone", "cluster"))
    changed = []
    for doc in docs:
        doc = doc.replace("  responseTypes: [code]\n", f"  responseTypes: {RESPONSE_TYPES}\n")
        doc = doc.replace(f'redirectUris: ["{a}/callback"]', f'redirectUris: ["{a}/callback", "{b}/callback"]')
        doc = doc.replace(f'postLogoutRedirectUris: ["{a}/post_logout_redirect"]',
                          f'postLogoutRedirectUris: ["{a}/post_logout_redirect", "{b}/post_logout_redirect"]')
        changed.append(doc)
        if "conformance-bc-" in doc:
            twin = doc
            for n in ("1", "2"):
                twin = twin.replace(f"conformance-bc-{n}", f"conformance-bc-{n}-cluster")
            changed.append(twin.replace(f"{a}/backchannel_logout", f"{b}/backchannel_logout"))
    for doc in changed:
        if "responseTypes:" in doc:
            assert RESPONSE_TYPES in doc and f"{b}/callback" in doc, doc
    assert sum(f"{b}/backchannel_logout" in d for d in changed) == 2, "back-channel twins"
    with open(path, "w") as f:
        f.write("---\n".join(changed))
    # The platform team's policy for the conformance namespace (unlabelled: "default" governs
    # it), applied to the cluster and read by the standalone provider: the static clients' own
    # IDs and the registered ones (dcr-...), and the implicit and hybrid response types, which
    # are off unless a ClientPolicy allows them (RFC 9700 §2.1.2).
    with open(os.path.join(out, "client-policy.yaml"), "w") as f:
        f.write("apiVersion: kubeoidc.dev/v1alpha1\nkind: ClientPolicy\nmetadata: {name: default}\n"
                "spec:\n  clientIdPatterns: [\"conformance-*\", \"dcr-*\"]\n  allowImplicit: true\n")


def configs(suite, out):
    os.makedirs(out, exist_ok=True)
    files = {
        ("standalone", "static"): "config-static.json",
        ("standalone", "backchannel"): "config-backchannel.json",
        ("standalone", "dynamic"): "config-dynamic-standalone.json",
        ("cluster", "static"): "config-static-cluster.json",
        ("cluster", "backchannel"): "config-backchannel-cluster.json",
        ("cluster", "dynamic"): "config-dynamic.json",
    }
    for (mode, kind), name in files.items():
        path = os.path.join(out, name)
        helper(suite, {"ALIAS": ALIASES[mode], "ISSUER": ISSUERS[mode]}, "config", path, kind)
        cfg = json.load(open(path))
        cfg["override"]["oidcc-ensure-request-object-with-redirect-uri"] = {"browser": cfg["browser"]}
        if mode == "cluster" and kind == "backchannel":
            for c in ("client", "client2"):
                cfg[c]["client_id"] += "-cluster"
        cfg["description"] += f" [{mode}]"
        json.dump(cfg, open(path, "w"), indent=1)


if __name__ == "__main__":
    suite_dir, manifests_dir, configs_dir = sys.argv[1:4]
    manifests(suite_dir, manifests_dir)
    configs(suite_dir, configs_dir)
