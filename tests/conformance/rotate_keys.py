#!/usr/bin/env python3
"""The person oidcc-server-rotate-keys asks for: rotates the signing key of the provider behind
DISCOVERY_URL the way the README tells an administrator, and returns once the new key is
published. The stand-in driver (run-test-plan.py) runs it after the module read the keys and
before it starts the module.

  rotate_keys.py DISCOVERY_URL

- the cluster's provider (KUBE_OIDC_CLUSTER_ISSUER): `kubectl annotate signingkey default -n
  kube-oidc kubeoidc.dev/rotate=...` (KUBECTL, KUBECONFIG), with no prepublish wait;
- the standalone provider: SIGHUP to the process in KUBE_OIDC_PROVIDER_PIDFILE.

TLS is verified against CONFORMANCE_CA. Prints what it did; exits non-zero when no new key
appears within 10 s."""

import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request


def get(url, ctx):
    with urllib.request.urlopen(url, context=ctx, timeout=10) as r:
        return json.load(r)


def main():
    discovery_url = sys.argv[1]
    ctx = ssl.create_default_context(cafile=os.environ["CONFORMANCE_CA"])
    metadata = get(discovery_url, ctx)
    jwks_uri = metadata["jwks_uri"]
    before = {k["kid"] for k in get(jwks_uri, ctx)["keys"]}
    if metadata["issuer"].rstrip("/") == os.environ["KUBE_OIDC_CLUSTER_ISSUER"].rstrip("/"):
        how = "kubectl annotate signingkey default -n kube-oidc kubeoidc.dev/rotate=..."
        subprocess.run(
            [os.environ["KUBECTL"], "annotate", "signingkey", "default", "-n", "kube-oidc", "--overwrite",
             f"kubeoidc.dev/rotate={int(time.time())}", "kubeoidc.dev/rotate-prepublish=0s"],
            check=True, capture_output=True)
    else:
        with open(os.environ["KUBE_OIDC_PROVIDER_PIDFILE"]) as f:
            pid = int(f.read().strip())
        how = f"kill -HUP {pid}"
        os.kill(pid, signal.SIGHUP)
    for _ in range(200):
        after = {k["kid"] for k in get(jwks_uri, ctx)["keys"]}
        if after - before:
            print(f"rotated ({how}): new kid {sorted(after - before)} at {metadata['issuer']}", flush=True)
            return
        time.sleep(0.05)
    sys.exit(f"rotate_keys.py: no new key at {jwks_uri} within 10 s of `{how}`")


if __name__ == "__main__":
    main()
