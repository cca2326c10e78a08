#!/usr/bin/env python3
"""Stands in for the suite's scripts/run-test-plan.py (kept beside it as
run-test-plan-upstream.py), so that ../shared/conformance/run.sh runs what its plan table does
not know; the suite's own driver still runs every plan. tests/conformance/run installs it into
its own copy of the suite (CONFORMANCE_CACHE).

- KUBE_OIDC_EXTRA_PLANS: more plans, "PLAN@CONFIG" each (CONFIG a file name beside the
  configurations run.sh passes), appended to run.sh's.
- KUBE_OIDC_ROTATE_KEYS: a command run with the provider's discovery URL before
  oidcc-server-rotate-keys is started, that is, once the module has read the keys: the person
  the module waits for. The module starts when the command has finished.
- KUBE_OIDC_PLAN_MODES: a file where each created plan's id and provider (discovery URL) go, one
  line each, so that the summary can tell the standalone plans from the cluster ones.
- KUBE_OIDC_EXPORT_MAX_MODULES: plans with more modules are not exported (with FerretDB their
  HTML export outlasts the driver's retries); the per-module report still covers them.
"""
import os
import runpy
import shlex
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import conformance  # noqa: E402  (the suite's API client, beside this file)

extra = os.environ.get("KUBE_OIDC_EXTRA_PLANS", "").split()
if extra:
    configs = [a for a in sys.argv[1:] if a.endswith(".json")]
    if not configs:
        sys.exit("run-test-plan.py: KUBE_OIDC_EXTRA_PLANS needs a plan of run.sh beside it")
    folder = os.path.dirname(configs[0])
    for entry in extra:
        plan, _, config = entry.rpartition("@")
        path = os.path.join(folder, config)
        if not plan or not os.path.isfile(path):
            sys.exit(f"run-test-plan.py: {entry}: not PLAN@CONFIG with CONFIG in {folder}")
        sys.argv += [plan, path]

Conformance = conformance.Conformance
upstream_start = Conformance.start_test
upstream_create_plan = Conformance.create_test_plan
upstream_export = Conformance.exporthtml


async def start_test(self, module_id):
    rotate = os.environ.get("KUBE_OIDC_ROTATE_KEYS")
    if rotate:
        info = await self.get_module_info(module_id)
        if info.get("testName") == "oidcc-server-rotate-keys":
            url = (info.get("config") or {}).get("server", {}).get("discoveryUrl", "")
            print(f"{module_id}: rotating the keys of {url}", flush=True)
            done = subprocess.run(shlex.split(rotate) + [url], capture_output=True, text=True, timeout=120)
            print(done.stdout + done.stderr, flush=True)
            if done.returncode != 0:
                raise RuntimeError(f"key rotation failed ({done.returncode})")
    return await upstream_start(self, module_id)


async def create_test_plan(self, name, configuration, variant=None):
    plan = await upstream_create_plan(self, name, configuration, variant)
    modes = os.environ.get("KUBE_OIDC_PLAN_MODES")
    if modes:
        import json
        url = json.loads(configuration).get("server", {}).get("discoveryUrl", "")
        with open(modes, "a") as f:
            f.write(f"{plan['id']} {url}\n")
    return plan


async def exporthtml(self, plan_id, path):
    limit = int(os.environ.get("KUBE_OIDC_EXPORT_MAX_MODULES", "0") or 0)
    if limit:
        plan = self._request(self.httpclient.get, "get plan", 200,
                             url=f"{self.api_url_base}api/plan/{plan_id}").json()
        if len(plan.get("modules", [])) > limit:
            print(f"{plan_id}: not exported ({len(plan['modules'])} modules)", flush=True)
            return None
    return await upstream_export(self, plan_id, path)


Conformance.start_test = start_test
Conformance.create_test_plan = create_test_plan
Conformance.exporthtml = exporthtml

runpy.run_path(os.path.join(here, "run-test-plan-upstream.py"), run_name="__main__")
