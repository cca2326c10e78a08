{{- define "kube-oidc.name" -}}{{ .Release.Name | trunc 40 | trimSuffix "-" }}{{- end -}}

{{- define "kube-oidc.labels" -}}
app.kubernetes.io/part-of: kube-oidc
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{- define "kube-oidc.selector" -}}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "kube-oidc.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* True when clients are accepted from every namespace. */}}
{{- define "kube-oidc.allNamespaces" -}}
{{- if has "*" .Values.clientNamespaces }}true{{ end -}}
{{- end -}}

{{- define "kube-oidc.registrationNamespace" -}}
{{ .Values.provider.registration.namespace | default .Release.Namespace }}
{{- end -}}

{{/* The store the provider uses; refuses more than one replica in memory. */}}
{{- define "kube-oidc.store" -}}
{{- if eq .Values.store.mode "memory" -}}
{{- if or (gt (int .Values.provider.replicas) 1) .Values.provider.autoscaling.enabled -}}
{{- fail "store.mode memory keeps state inside one provider pod: set provider.replicas to 1 (and autoscaling off), or use store.mode internal or external" -}}
{{- end -}}
memory
{{- else if eq .Values.store.mode "internal" -}}
{{ ternary "rediss" "redis" .Values.store.internal.tls.enabled }}://:$(KUBE_OIDC_REDIS_PASSWORD)@{{ include "kube-oidc.name" . }}-redis:6379
{{- else -}}
{{- if not .Values.store.external.url -}}
{{- fail "store.mode external needs store.external.url (redis://HOST:PORT)" -}}
{{- end -}}
{{- if .Values.store.external.passwordSecret.name -}}
{{ .Values.store.external.url | replace "redis://" "redis://:$(KUBE_OIDC_REDIS_PASSWORD)@" | replace "rediss://" "rediss://:$(KUBE_OIDC_REDIS_PASSWORD)@" }}
{{- else -}}
{{ .Values.store.external.url }}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "kube-oidc.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "kube-oidc.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/* Non-empty when the branding has files to mount (CSS, templates, locales). */}}
{{- define "kube-oidc.brandingFiles" -}}
{{- if or .Values.branding.css .Values.branding.templates .Values.branding.locales -}}true{{- end -}}
{{- end }}

{{/* The Secret and key of the CA that signs the store's TLS certificate, when there is one. */}}
{{- define "kube-oidc.storeCA" -}}
{{- if and (eq .Values.store.mode "internal") .Values.store.internal.tls.enabled -}}
{{ required "store.internal.tls.secretName is required with store.internal.tls.enabled" .Values.store.internal.tls.secretName }}/ca.crt
{{- else if and (eq .Values.store.mode "external") .Values.store.external.caSecret.name -}}
{{ .Values.store.external.caSecret.name }}/{{ .Values.store.external.caSecret.key }}
{{- end -}}
{{- end }}
