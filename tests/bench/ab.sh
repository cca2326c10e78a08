#!/usr/bin/env bash
# A/B of two provider builds in the same run, alternating: token rate (wrk, 4 pairs), idle RSS
# and RSS with 10,000 clients. Usage: tests/bench/ab.sh BASE_BINARY NEW_BINARY
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
BASE="${1:?usage: tests/bench/ab.sh BASE_BINARY NEW_BINARY}"
NEW="${2:?usage: tests/bench/ab.sh BASE_BINARY NEW_BINARY}"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
rss() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
start() { "$1" --manifests "$2" --listen "127.0.0.1:$3" --log-format text >"$W/$3.log" 2>&1 & local p=$!; for _ in $(seq 1 300); do curl -fs "http://127.0.0.1:$3/readyz" >/dev/null 2>&1 && { echo $p; return; }; sleep 0.1; done; exit 1; }
auth=$(printf 'reports:reports-demo-secret-change-me' | base64 -w0)
cat >"$W/t.lua" <<LUA
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $auth"
LUA
b=$(start $BASE examples/local 18301); n=$(start $NEW examples/local 18302)
echo "idle RSS base $(rss $b) new $(rss $n)"
wrk -t1 -c8 -d2s -s "$W/t.lua" http://127.0.0.1:18301/token >/dev/null; wrk -t1 -c8 -d2s -s "$W/t.lua" http://127.0.0.1:18302/token >/dev/null
for i in 1 2 3 4; do
  for x in 18301 18302; do
    r=$(wrk -t2 -c32 -d8s -s "$W/t.lua" "http://127.0.0.1:$x/token" | awk '/Requests\/sec/ {print $2}')
    echo "run $i port $x $r"
  done
done
kill $b $n
mkdir -p "$W/many"; cp examples/local/signing-key.yaml examples/local/users.yaml "$W/many/"
python3 - "$W/many/clients.yaml" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(10000):
        f.write(f"---\napiVersion: kubeoidc.dev/v1alpha1\nkind: OidcClient\nmetadata: {{name: c{i}, namespace: default}}\nspec:\n  type: public\n  redirectUris: [\"https://app{i}.example/cb\"]\n")
PY
b=$(start $BASE "$W/many" 18303); n=$(start $NEW "$W/many" 18304)
sleep 1
echo "10k RSS base $(rss $b) new $(rss $n)"
kill $b $n
