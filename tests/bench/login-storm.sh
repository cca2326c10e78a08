#!/usr/bin/env bash
# Login storm: 500 connections posting wrong passwords to /login of one provider (examples/local)
# for 10 s; prints the provider's peak resident memory (VmHWM) and whether it still serves
# afterwards. Load goes to 127.0.0.1 only.
# Usage: tests/bench/login-storm.sh [provider binary]   (default: the release build)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export KUBE_OIDC_CACHE="${KUBE_OIDC_CACHE:-$HOME/.cache/kube-oidc}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$KUBE_OIDC_CACHE/target}"
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
BIN="${1:-}"
if [[ -z "$BIN" ]]; then
  cargo build --release --locked -p kube-oidc-provider >&2
  BIN="$CARGO_TARGET_DIR/release/kube-oidc-provider"
fi
WORK="$(mktemp -d)"
port=18282
"$BIN" --manifests examples/local --listen "127.0.0.1:$port" --log-format text >"$WORK/provider.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 300); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
authorize="http://127.0.0.1:$port/authorize?response_type=code&client_id=demo&redirect_uri=http%3A%2F%2F127.0.0.1%3A8000%2Fcallback&scope=openid&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
page=$(curl -fs -c "$WORK/jar" "$authorize")
field() { sed -n "s/.*name=\"$1\" value=\"\([^\"]*\)\".*/\1/p" <<<"$page" | head -1; }
request=$(field request); csrf=$(field csrf)
binding=$(awk '$6 == "kube_oidc_req" {print $7}' "$WORK/jar")
idle=$(awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$pid/status")
cat >"$WORK/storm.lua" <<LUA
counter = 0
request = function()
  counter = counter + 1
  local body = "request=$request&csrf=$csrf&username=nobody" .. counter .. "&password=wrong"
  return wrk.format("POST", "/login", {["Content-Type"] = "application/x-www-form-urlencoded", ["Cookie"] = "kube_oidc_req=$binding"}, body)
end
LUA
wrk -t2 -c500 -d10s --timeout 15s -s "$WORK/storm.lua" "http://127.0.0.1:$port/login" >"$WORK/wrk.txt" 2>&1 || true
peak=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$pid/status")
after=$(awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$pid/status")
alive=$(kill -0 $pid 2>/dev/null && echo yes || echo no)
requests=$(awk '/requests in/ {print $1}' "$WORK/wrk.txt")
# The provider still serves afterwards. (A correct sign-in from here would now be throttled: the
# per-address counter is keyed on the TCP peer, 127.0.0.1 for the storm too.)
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz")
echo "| login storm (500 connections, 10 s, $requests requests) | idle $idle MB | peak $peak MB | after $after MB | alive: $alive, /healthz $code |"
