#!/usr/bin/env python3
"""Stands in for the suite's scripts/run-test-plan.py (kept beside it as
run-test-plan-upstream.py), so that ../shared/conformance/run.sh runs what its plan table does
not know; the suite's own driver still runs every plan. tests/conformance/run installs it into
its own copy of the suite (CONFORMANCE_CACHE).

- KUBE_OIDC_EXTRA_PLANS: more plans, "PLAN@CONFIG" each (CONFIG a file name beside the
  configurations run.sh passes), appended to run.sh's; with KUBE_OIDC_ONLY_EXTRA_PLANS set,
  instead of run.sh's.
- KUBE_OIDC_ROTATE_KEYS: a command run with the provider's discovery URL before
  oidcc-server-rotate-keys is started, that is, once the module has read the keys: the person
  the module waits for. The module starts when the command has finished.
- KUBE_OIDC_PLAN_MODES: a file where each created plan's id and provider (discovery URL) go, one
  line each, so that the summary can tell the standalone plans from the cluster ones.
- KUBE_OIDC_EXPORT_MAX_MODULES: plans with more modules are not exported (with FerretDB their
  HTML export outlasts the driver's retries); the per-module report still covers them.
- KUBE_OIDC_RESULTS: a folder for each plan's results once the plans are done: <plan id>.json
  with the plan, its variant, the provider, and every module's status and result.
- KUBE_OIDC_SCREENSHOTS: a folder for the pages of the REVIEW modules, rendered with Chromium
  once the plans are done (see review_screenshots).
"""
import json
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
    if os.environ.get("KUBE_OIDC_ONLY_EXTRA_PLANS"):
        # run.sh's own plans only carried the configuration folder: drop them (the driver's
        # options stay).
        kept, args = [sys.argv[0]], iter(sys.argv[1:])
        for a in args:
            if a.startswith("--"):
                kept.append(a)
                if a in ("--export-dir", "--expected-failures-file", "--expected-skips-file",
                         "--show-untested-test-modules", "--rerun"):
                    kept.append(next(args))
        sys.argv = kept
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


created = []  # (plan id, discovery URL) of each plan created


async def create_test_plan(self, name, configuration, variant=None):
    plan = await upstream_create_plan(self, name, configuration, variant)

    url = json.loads(configuration).get("server", {}).get("discoveryUrl", "")
    created.append((plan["id"], url))
    modes = os.environ.get("KUBE_OIDC_PLAN_MODES")
    if modes:
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


def api(path):
    """GET the suite's API (`/api/<path>`) as the driver reaches it (its own CA, dev mode)."""
    import ssl
    import urllib.request
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    base = os.environ.get("CONFORMANCE_SERVER", "https://localhost:8443/").rstrip("/")
    with urllib.request.urlopen(f"{base}/api/{path}", context=ctx, timeout=120) as r:
        return json.load(r)


def review_screenshots(out):
    """What a reviewer of a REVIEW module looks at: the page the scripted browser checked, as the
    suite stored it (its source, in the log entry of the module's placeholder), rendered with
    Chromium into OUT/<mode>/<plan>/<module>-<test id>.png beside the .html, and an index.md of
    them. Runs while the suite and the providers still serve (the pages' images load)."""
    import concurrent.futures

    pages, rows = [], []
    for plan_id, url in created:
        mode = "cluster" if ":8450/" in url else "standalone"
        plan = api(f"plan/{plan_id}")
        for mod in plan.get("modules", []):
            for tid in mod.get("instances") or []:
                if api(f"info/{tid}").get("result") != "REVIEW":
                    continue
                for n, entry in enumerate(e for e in api(f"log/{tid}") if e.get("page_source")):
                    folder = os.path.join(out, mode, plan["planName"])
                    os.makedirs(folder, exist_ok=True)
                    stem = os.path.join(folder, f"{mod['testModule']}-{tid}" + (f"-{n}" if n else ""))
                    with open(stem + ".html", "w") as f:
                        f.write(entry["page_source"])
                    pages.append(stem)
                    rows.append(f"| {mode} | {plan['planName']} | {mod['testModule']} | "
                                f"{(entry.get('msg') or '').replace('|', '/')} | "
                                f"`{os.path.relpath(stem, out)}.png` |")

    def render(stem):
        subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        "--ignore-certificate-errors", "--window-size=900,1000",
                        f"--screenshot={stem}.png", f"file://{stem}.html"],
                       capture_output=True, timeout=60)
        return os.path.isfile(stem + ".png")

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        rendered = sum(pool.map(render, pages))
    index = os.path.join(out, "index.md")
    new = not os.path.exists(index)
    os.makedirs(out, exist_ok=True)
    with open(index, "a") as f:
        if new:
            f.write("| mode | plan | module | what the reviewer checks | screenshot |\n|---|---|---|---|---|\n")
        f.write("".join(r + "\n" for r in sorted(rows)))
    print(f"review screenshots: {rendered} of {len(pages)} pages rendered into {out}", flush=True)
    if rendered != len(pages):
        raise RuntimeError("some review pages were not rendered")


def plan_results(out):
    """Each plan's modules and results, as the suite has them (its API), in OUT/<plan id>.json."""
    os.makedirs(out, exist_ok=True)
    for plan_id, url in created:
        plan = api(f"plan/{plan_id}")
        modules = []
        for mod in plan.get("modules", []):
            for tid in mod.get("instances") or []:
                info = api(f"info/{tid}")
                modules.append({"module": mod["testModule"], "variant": mod.get("variant"),
                                "test_id": tid, "status": info.get("status"),
                                "result": info.get("result")})
        with open(os.path.join(out, f"{plan_id}.json"), "w") as f:
            json.dump({"plan": plan.get("planName"), "id": plan_id, "variant": plan.get("variant"),
                       "provider": url, "modules": modules}, f, indent=1)


try:
    runpy.run_path(os.path.join(here, "run-test-plan-upstream.py"), run_name="__main__")
finally:
    if os.environ.get("KUBE_OIDC_RESULTS"):
        plan_results(os.environ["KUBE_OIDC_RESULTS"])
    if os.environ.get("KUBE_OIDC_SCREENSHOTS"):
        review_screenshots(os.environ["KUBE_OIDC_SCREENSHOTS"])
