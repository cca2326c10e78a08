#!/usr/bin/env bash
# Builds the real control plane used by the integration tests from the Go module proxy:
# etcd, kube-apiserver, kube-controller-manager and kubectl at pinned versions.
# Binaries are cached in $KUBE_OIDC_CACHE/controlplane/<versions>/bin; with the cache present
# this script returns in well under a second.
set -euo pipefail

# shellcheck source=versions.env
source "$(dirname "${BASH_SOURCE[0]}")/versions.env"
CACHE="${KUBE_OIDC_CACHE:-$HOME/.cache/kube-oidc}"
OUT="$CACHE/controlplane/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-helm-$HELM_VERSION"
BIN="$OUT/bin"

want=(etcd kube-apiserver kube-controller-manager kubectl helm)
missing=()
for b in "${want[@]}"; do [[ -x "$BIN/$b" ]] || missing+=("$b"); done
# kubelogin is named as kubectl finds plugins; a stamp says which version it is.
kubelogin_current() {
  [[ -x "$BIN/kubectl-oidc_login" && "$(cat "$BIN/kubectl-oidc_login.version" 2>/dev/null)" == "$KUBELOGIN_VERSION" ]]
}
kubelogin_current || missing+=(kubectl-oidc_login)
HTTPROUTE_CRD="$BIN/gateway-api-httproutes-$GATEWAY_API_VERSION.yaml"
[[ -f "$HTTPROUTE_CRD" ]] || missing+=(httproute-crd)
PROMETHEUS_CRDS="$BIN/prometheus-operator-$PROMETHEUS_OPERATOR_VERSION-crds"
[[ -f "$PROMETHEUS_CRDS/monitoring.coreos.com_prometheusrules.yaml" ]] || missing+=(prometheus-crds)
promtool_current() {
  [[ -x "$BIN/promtool" && "$(cat "$BIN/promtool.version" 2>/dev/null)" == "$PROMETHEUS_VERSION" ]]
}
promtool_current || missing+=(promtool)
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "$BIN"
  exit 0
fi

command -v go >/dev/null || { echo "build.sh: Go is required to build the control plane" >&2; exit 1; }
mkdir -p "$BIN" "$OUT/src"
export GOFLAGS="${GOFLAGS:--buildvcs=false} -mod=mod"
export CGO_ENABLED=0
started=$(date +%s)

# Writes the module $OUT/src/NAME that requires each MODULE@VERSION and imports each PACKAGE
# (a tools file), so that `go build` there builds one tool at pinned versions; sets $d to it.
# Usage: tool_module NAME "MODULE@VERSION ..." "PACKAGE ..."
tool_module() {
  d="$OUT/src/$1"; mkdir -p "$d"
  {
    printf 'module kubeoidc.dev/controlplane/%s\n\ngo 1.24\n\nrequire (\n' "$1"
    for r in $2; do printf '\t%s %s\n' "${r%@*}" "${r##*@}"; done
    printf ')\n'
  } >"$d/go.mod"
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for i in $3; do printf '\t_ "%s"\n' "$i"; done
    printf ')\n'
  } >"$d/tools.go"
}

# etcd: its own module so its dependency graph never fights Kubernetes'.
if [[ ! -x "$BIN/etcd" ]]; then
  tool_module etcd "go.etcd.io/etcd/server/v3@$ETCD_VERSION" go.etcd.io/etcd/server/v3
  (cd "$d" && go mod tidy >/dev/null && go build -trimpath -ldflags "-s -w" -o "$BIN/etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "$BIN/etcd.tmp" "$BIN/etcd"
  echo "build.sh: etcd $ETCD_VERSION built" >&2
fi

# Helm, for the chart tests: its own module too.
if [[ ! -x "$BIN/helm" ]]; then
  tool_module helm "helm.sh/helm/v3@$HELM_VERSION" helm.sh/helm/v3/cmd/helm
  (cd "$d" && go mod tidy >/dev/null && go build -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" -o "$BIN/helm.tmp" helm.sh/helm/v3/cmd/helm)
  mv "$BIN/helm.tmp" "$BIN/helm"
  echo "build.sh: helm $HELM_VERSION built" >&2
fi

# kubelogin (int128/kubelogin), the kubectl credential plugin of the kubectl login tests.
if ! kubelogin_current; then
  tool_module kubelogin "github.com/int128/kubelogin@$KUBELOGIN_VERSION" github.com/int128/kubelogin
  # The checksum database has no entry for this module: skip it for this module only.
  (cd "$d" && export GONOSUMDB=github.com/int128/kubelogin &&
    go mod tidy >/dev/null &&
    go build -trimpath -ldflags "-s -w" -o "$BIN/kubectl-oidc_login.tmp" github.com/int128/kubelogin)
  mv "$BIN/kubectl-oidc_login.tmp" "$BIN/kubectl-oidc_login"
  echo "$KUBELOGIN_VERSION" >"$BIN/kubectl-oidc_login.version"
  echo "build.sh: kubelogin $KUBELOGIN_VERSION built" >&2
fi

# The Gateway API's HTTPRoute CRD, as its Go module ships it.
if [[ ! -f "$HTTPROUTE_CRD" ]]; then
  dir=$(cd "$OUT/src" && GOFLAGS= go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  cp "$dir/config/crd/standard/gateway.networking.k8s.io_httproutes.yaml" "$HTTPROUTE_CRD.tmp"
  mv "$HTTPROUTE_CRD.tmp" "$HTTPROUTE_CRD"
  echo "build.sh: Gateway API $GATEWAY_API_VERSION HTTPRoute CRD copied" >&2
fi

# The Prometheus Operator's PrometheusRule and ServiceMonitor CRDs, generated from its API module
# by controller-gen as upstream generates them.
if [[ ! -f "$PROMETHEUS_CRDS/monitoring.coreos.com_prometheusrules.yaml" ]]; then
  tool_module prometheus-crds \
    "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring@$PROMETHEUS_OPERATOR_VERSION sigs.k8s.io/controller-tools@$CONTROLLER_TOOLS_VERSION" \
    "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1 sigs.k8s.io/controller-tools/cmd/controller-gen"
  rm -rf "$PROMETHEUS_CRDS.tmp"
  (cd "$d" && go mod tidy >/dev/null &&
    go build -trimpath -o "$d/controller-gen" sigs.k8s.io/controller-tools/cmd/controller-gen &&
    ./controller-gen crd:crdVersions=v1,maxDescLen=0 \
      paths=github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1 \
      output:crd:dir="$PROMETHEUS_CRDS.tmp")
  find "$PROMETHEUS_CRDS.tmp" -type f ! -name '*_prometheusrules.yaml' ! -name '*_servicemonitors.yaml' -delete
  rm -rf "$PROMETHEUS_CRDS"; mv "$PROMETHEUS_CRDS.tmp" "$PROMETHEUS_CRDS"
  echo "build.sh: Prometheus Operator $PROMETHEUS_OPERATOR_VERSION CRDs generated" >&2
fi

# promtool: checks the chart's alert rules and runs their unit tests.
if ! promtool_current; then
  tool_module promtool "github.com/prometheus/prometheus@$PROMETHEUS_VERSION" github.com/prometheus/prometheus/cmd/promtool
  (cd "$d" && go mod tidy >/dev/null &&
    go build -trimpath -ldflags "-s -w" -o "$BIN/promtool.tmp" github.com/prometheus/prometheus/cmd/promtool)
  mv "$BIN/promtool.tmp" "$BIN/promtool"
  echo "$PROMETHEUS_VERSION" >"$BIN/promtool.version"
  echo "build.sh: promtool $PROMETHEUS_VERSION built" >&2
fi

# Kubernetes: a wrapper module that requires k8s.io/kubernetes and replaces each staging module
# (k8s.io/kubernetes' own go.mod points them at ./staging) with its published v0.x release.
d="$OUT/src/kubernetes"; mkdir -p "$d"
staging_version="v0.${K8S_VERSION#v1.}"
if [[ ! -f "$d/go.mod" ]]; then
  upstream=$(cd "$d" && GOFLAGS= go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  {
    echo "module kubeoidc.dev/controlplane/kubernetes"
    echo
    echo "go $(sed -n 's/^go \([0-9.]*\)$/\1/p' "$upstream")"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#replace \1 => \1 '"$staging_version"'#p' "$upstream"
  } >"$d/go.mod"
  cat >"$d/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
fi
major=1
minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
cd "$d"
go mod tidy >/dev/null
for b in kube-apiserver kube-controller-manager kubectl; do
  if [[ ! -x "$BIN/$b" ]]; then
    go build -trimpath -tags tools -ldflags "$ldflags" -o "$BIN/$b.tmp" "k8s.io/kubernetes/cmd/$b"
    mv "$BIN/$b.tmp" "$BIN/$b"
    echo "build.sh: $b $K8S_VERSION built" >&2
  fi
done
echo "build.sh: control plane built in $(( $(date +%s) - started ))s" >&2
echo "$BIN"
