#!/usr/bin/env python3
"""Stands in for the suite's scripts/run-test-plan.py (kept beside it as
run-test-plan-upstream.py) so that ../shared/conformance/run.sh runs plans its table does not
know: each plan of $KUBE_OIDC_EXTRA_PLANS is appended with the configuration of the first
static-client plan, then the suite's own driver runs them all. tests/conformance/run installs
it into its own copy of the suite (CONFORMANCE_CACHE)."""
import os
import runpy
import sys

extra = os.environ.get("KUBE_OIDC_EXTRA_PLANS", "").split()
if extra:
    configs = [a for a in sys.argv[1:] if a.endswith("config-static.json")]
    if not configs:
        sys.exit("run-test-plan.py: KUBE_OIDC_EXTRA_PLANS needs a static-client plan beside it")
    for plan in extra:
        sys.argv += [plan, configs[0]]
upstream = os.path.join(os.path.dirname(os.path.abspath(__file__)), "run-test-plan-upstream.py")
sys.path.insert(0, os.path.dirname(upstream))
runpy.run_path(upstream, run_name="__main__")
