#!/usr/bin/env bash
# Benchmarks of the figures kube-oidc is held to (see RESULTS.md):
#   1. client_credentials tokens signed RS256, against `openssl speed -multi 2 rsa2048` on the
#      same machine in the same run (ratio of medians of 3 runs each);
#   2. resident memory of the provider idle, and with 10,000 clients;
#   3. how soon a new OidcClient is usable after `kubectl apply`, against the tests' real control
#      plane with the operator and a provider running (release builds; median of 10 clients).
# Load goes to 127.0.0.1 only and every run is bounded in time.
# Usage: tests/bench/run.sh            (prints a Markdown section for RESULTS.md)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export KUBE_OIDC_CACHE="${KUBE_OIDC_CACHE:-$HOME/.cache/kube-oidc}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$KUBE_OIDC_CACHE/target}"

for p in wrk openssl; do
  command -v "$p" >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >/dev/null; }
done
cargo build --release --locked -p kube-oidc-provider -p kube-oidc-operator >&2
cargo build --locked -p kube-oidc-tests --bin kube-oidc-test-control-plane >&2
CP_BIN="$(tests/controlplane/build.sh)"
export KUBE_OIDC_CONTROLPLANE_BIN="$CP_BIN"
BIN="$CARGO_TARGET_DIR/release/kube-oidc-provider"
WORK="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
rss_mb() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }

start_provider() { # dir port -> pid
  "$BIN" --manifests "$1" --listen "127.0.0.1:$2" --log-format text >"$WORK/provider-$2.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 1 300); do
    curl -fs "http://127.0.0.1:$2/readyz" >/dev/null 2>&1 && { echo "$pid"; return; }
    sleep 0.1
  done
  echo "provider on $2 did not become ready" >&2; cat "$WORK/provider-$2.log" >&2; exit 1
}

# 1. Signing throughput against the openssl baseline.
openssl_runs=()
for _ in 1 2 3; do
  openssl_runs+=("$(openssl speed -multi 2 -seconds 5 rsa2048 2>/dev/null | awk '/^rsa 2048 bits/ || /^rsa  2048 bits/ {v=$(NF-1)} END {print v}')")
done
openssl_median=$(printf '%s\n' "${openssl_runs[@]}" | median)

port=18181
pid=$(start_provider examples/local $port)
idle_rss=$(rss_mb "$pid")
auth=$(printf 'reports:reports-demo-secret-change-me' | base64 -w0)
cat >"$WORK/token.lua" <<LUA
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $auth"
LUA
curl -fs -u reports:reports-demo-secret-change-me -d grant_type=client_credentials "http://127.0.0.1:$port/token" | grep -q '"access_token"'
wrk -t1 -c8 -d2s -s "$WORK/token.lua" "http://127.0.0.1:$port/token" >/dev/null # warm up
token_runs=()
for _ in 1 2 3; do
  out=$(wrk -t2 -c32 -d10s -s "$WORK/token.lua" "http://127.0.0.1:$port/token")
  echo "$out" | grep -q "Non-2xx" && { echo "$out" >&2; echo "non-2xx responses under load" >&2; exit 1; }
  token_runs+=("$(echo "$out" | awk '/Requests\/sec/ {print $2}')")
done
token_median=$(printf '%s\n' "${token_runs[@]}" | median)
loaded_rss=$(rss_mb "$pid")
kill "$pid"

# 2. Memory with 10,000 clients (public clients: no secrets to hash at load).
mkdir -p "$WORK/many"
cp examples/local/signing-key.yaml examples/local/users.yaml "$WORK/many/"
python3 - "$WORK/many/clients.yaml" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(10000):
        f.write(f"""---
apiVersion: kubeoidc.dev/v1alpha1
kind: OidcClient
metadata: {{name: app-{i}, namespace: team-{i % 50}}}
spec:
  type: public
  displayName: Application {i}
  redirectUris: ["https://app-{i}.example.com/callback", "http://127.0.0.1:8000/callback"]
  scopes: [openid, profile, email, offline_access]
""")
PY
pid=$(start_provider "$WORK/many" 18182)
sleep 1
many_rss=$(rss_mb "$pid")
clients=$(curl -fs "http://127.0.0.1:18182/metrics" | awk '/^kube_oidc_provider_clients / {print $2}')
kill "$pid"

# 3. A new OidcClient, from `kubectl apply` returning to its first token. The client brings its
# Secret (created before, as with External Secrets), so the clock measures the operator accepting
# the client and the provider serving it, not the test reading a generated secret.
"$CARGO_TARGET_DIR/debug/kube-oidc-test-control-plane" >"$WORK/cp.out" 2>"$WORK/cp.log" &
PIDS+=("$!")
for _ in $(seq 1 600); do grep -q '^KUBECONFIG=' "$WORK/cp.out" && break; sleep 0.1; done
export KUBECONFIG="$(sed -n 's/^KUBECONFIG=//p' "$WORK/cp.out")"
[[ -n "$KUBECONFIG" ]] || { echo "the control plane did not start" >&2; cat "$WORK/cp.log" >&2; exit 1; }
kubectl() { "$CP_BIN/kubectl" "$@"; }
kubectl create namespace bench >/dev/null
kubectl apply -n bench -f - >/dev/null <<'YAML'
apiVersion: kubeoidc.dev/v1alpha1
kind: SigningKey
metadata: {name: main}
spec: {}
YAML
release="$CARGO_TARGET_DIR/release"
"$release/kube-oidc-operator" --namespace bench --client-namespaces bench --identity bench \
  --issuer http://127.0.0.1:18183 --metrics-listen 127.0.0.1:18184 --log-format text \
  >"$WORK/operator.log" 2>&1 &
PIDS+=("$!")
"$release/kube-oidc-provider" --namespace bench --client-namespaces bench --store memory \
  --listen 127.0.0.1:18183 --issuer http://127.0.0.1:18183 --log-format text \
  >"$WORK/provider-18183.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 1 600); do curl -fs http://127.0.0.1:18183/readyz >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs http://127.0.0.1:18183/readyz >/dev/null || { echo "provider not ready" >&2; cat "$WORK/provider-18183.log" "$WORK/operator.log" >&2; exit 1; }
usable_runs=()
for i in $(seq 1 10); do
  kubectl create secret generic "svc-$i-oidc" -n bench --from-literal=client-secret="bench-secret-$i" >/dev/null
  kubectl apply -n bench -f - >/dev/null <<YAML
apiVersion: kubeoidc.dev/v1alpha1
kind: OidcClient
metadata: {name: svc-$i}
spec: {clientId: svc-$i, grantTypes: [client_credentials]}
YAML
  applied=$(date +%s%N)
  usable=""
  for _ in $(seq 1 1000); do # 10 ms apart, 10 s at most
    if curl -fs -u "svc-$i:bench-secret-$i" -d grant_type=client_credentials http://127.0.0.1:18183/token >/dev/null 2>&1; then
      usable=$(( ($(date +%s%N) - applied) / 1000000 ))
      break
    fi
    sleep 0.01
  done
  [[ -n "$usable" ]] || { echo "client svc-$i not usable after 10 s" >&2; cat "$WORK/operator.log" >&2; exit 1; }
  usable_runs+=("$usable")
done
usable_median=$(printf '%s\n' "${usable_runs[@]}" | median)

ratio=$(awk -v a="$token_median" -v b="$openssl_median" 'BEGIN {printf "%.0f", 100 * a / b}')
cat <<MD
### $(date -u +%Y-%m-%d) on $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)

Command: \`tests/bench/run.sh\` (release build; wrk -t2 -c32 -d10s, 3 runs; openssl speed -multi 2 -seconds 5 rsa2048, 3 runs)

| figure | runs | median | target |
|---|---|---|---|
| client_credentials tokens/s (RS256 2048) | ${token_runs[*]} | $token_median | |
| openssl rsa2048 signs/s (-multi 2) | ${openssl_runs[*]} | $openssl_median | |
| ratio | | **${ratio}%** | ≥ 70% |
| RSS idle (examples/local) | | ${idle_rss} MB | ≤ 15 MB |
| RSS after the load above | | ${loaded_rss} MB | |
| RSS with ${clients:-?} clients | | ${many_rss} MB | ≤ 40 MB |
| new OidcClient usable after \`kubectl apply\` returns (ms) | ${usable_runs[*]} | $usable_median ms | ≤ 1000 ms |
MD
