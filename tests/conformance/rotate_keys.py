#!/usr/bin/env python3
"""The person oidcc-server-rotate-keys asks for: once that module has read the provider's JWKS
(status CONFIGURED) and before it is started, rotate the cluster's signing key the way the README
says (`kubectl annotate signingkey default -n kube-oidc kubeoidc.dev/rotate=...`) and wait until
the new key is published.

  rotate_keys.py RUN_LOG KUBECTL JWKS_URL CA_FILE

Watches RUN_LOG (run-test-plan.py's output) for the module and rotates once; the caller stops it
when the run ends first. Prints what it did."""

import json
import re
import ssl
import subprocess
import sys
import time
import urllib.request

SUITE = "https://localhost:8443"
MODULE = "oidcc-server-rotate-keys"
TIMEOUT = 3 * 3600


def get(url, ctx):
    with urllib.request.urlopen(url, context=ctx, timeout=10) as r:
        return json.load(r)


def main():
    run_log, kubectl, jwks_url, ca = sys.argv[1:5]
    started = time.time()
    module_id = None
    while time.time() - started < TIMEOUT:
        try:
            text = open(run_log, errors="replace").read()
        except FileNotFoundError:
            text = ""
        if module_id is None:
            at = text.find(f"Running test module: {MODULE}")
            if at >= 0:
                m = re.search(r"Created test module, new id: (\S+)", text[at:])
                module_id = m and m.group(1)
        if module_id:
            # (the run's CA exists once run.sh started: created only now)
            suite_ctx = ssl.create_default_context(cafile=ca)
            status = get(f"{SUITE}/api/info/{module_id}", suite_ctx).get("status")
            if status == "CONFIGURED":
                before = {k["kid"] for k in get(jwks_url, suite_ctx)["keys"]}
                stamp = str(int(time.time()))
                subprocess.run(
                    [kubectl, "annotate", "signingkey", "default", "-n", "kube-oidc", "--overwrite",
                     f"kubeoidc.dev/rotate={stamp}", "kubeoidc.dev/rotate-prepublish=0s"],
                    check=True, capture_output=True)
                for _ in range(100):
                    after = {k["kid"] for k in get(jwks_url, suite_ctx)["keys"]}
                    if after - before:
                        print(f"rotated: new kid {sorted(after - before)} while {MODULE} ({module_id}) waited",
                              flush=True)
                        return
                    time.sleep(0.05)
                sys.exit("rotate_keys.py: no new key in the JWKS within 5 s of the annotation")
            if status not in (None, "CREATED"):
                sys.exit(f"rotate_keys.py: {MODULE} was {status} before the rotation")
            time.sleep(0.1)
        else:
            time.sleep(0.5)
    sys.exit(f"rotate_keys.py: {MODULE} never ran")


if __name__ == "__main__":
    main()
