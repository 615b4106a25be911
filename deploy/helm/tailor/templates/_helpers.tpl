{{/* Chart name, at most 63 characters. */}}
{{- define "tailor.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Object name prefix: <release>-tailor, or the release name when it already says tailor. */}}
{{- define "tailor.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "tailor.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tailor.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "tailor.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "tailor.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tailor
{{- end }}

{{- define "tailor.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tailor.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name: name the existing ServiceAccount when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "tailor.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "tailor.leaseName" -}}
{{- default (printf "%s-leader" (include "tailor.fullname" .)) .Values.leaderElection.leaseName }}
{{- end }}

{{/* Where Secret and ConfigMap keys are mounted (docs/install.md). */}}
{{- define "tailor.secretsDir" -}}/var/run/secrets/tailor{{- end }}

{{/*
The agent config (docs/configuration.md) rendered from the values. Keys the
chart owns are refused in .Values.config so a value set there cannot be
silently overridden.
*/}}
{{- define "tailor.config" -}}
{{- $v := .Values }}
{{- $dir := include "tailor.secretsDir" . }}
{{- $user := deepCopy (default dict $v.config) }}
{{- range $key := list "prometheus" "selection" "pricing" }}
{{- if hasKey $user $key }}
{{- fail (printf "config.%s: set it through the chart's `%s` values instead (values.yaml), so they are not set twice" $key $key) }}
{{- end }}
{{- end }}
{{- $userGuardrails := default dict (get $user "guardrails") }}
{{- range $key := list "mode" "changes_per_hour" "max_in_flight" "paused" }}
{{- if hasKey $userGuardrails $key }}
{{- fail (printf "config.guardrails.%s: set it through the chart value `%s` instead, so it is not set twice" $key (ternary "mode" (printf "guardrails.%s" ($key | camelcase | untitle)) (eq $key "mode"))) }}
{{- end }}
{{- end }}
{{- $userAgent := default dict (get $user "agent") }}
{{- range $key := list "metrics_address" "leader_election" }}
{{- if hasKey $userAgent $key }}
{{- fail (printf "config.agent.%s: set it through the chart values `%s` instead, so it is not set twice" $key (ternary "metrics.port" "leaderElection" (eq $key "metrics_address"))) }}
{{- end }}
{{- end }}
{{- $prom := dict "url" $v.prometheus.url "timeout" $v.prometheus.timeout "max_queries_per_second" $v.prometheus.maxQueriesPerSecond "compression" $v.prometheus.compression }}
{{- if $v.prometheus.headers }}
{{- $_ := set $prom "headers" $v.prometheus.headers }}
{{- end }}
{{- if $v.prometheus.clusterLabel }}
{{- $_ := set $prom "cluster_label" $v.prometheus.clusterLabel }}
{{- $_ := set $prom "cluster" $v.prometheus.cluster }}
{{- end }}
{{- if $v.prometheus.bearerToken.existingSecret.name }}
{{- $_ := set $prom "bearer_token_file" (printf "%s/prometheus-token/token" $dir) }}
{{- end }}
{{- if $v.prometheus.basicAuth.existingSecret.name }}
{{- $_ := set $prom "basic_auth" (dict "username" $v.prometheus.basicAuth.username "password_file" (printf "%s/prometheus-password/password" $dir)) }}
{{- end }}
{{- if or $v.prometheus.tls.caSecret.name $v.prometheus.tls.caConfigMap.name }}
{{- $_ := set $prom "ca_file" (printf "%s/prometheus-ca/ca.crt" $dir) }}
{{- end }}
{{- $guardrails := dict "mode" $v.mode "changes_per_hour" $v.guardrails.changesPerHour "max_in_flight" $v.guardrails.maxInFlight "paused" $v.guardrails.paused }}
{{- $election := dict "enabled" $v.leaderElection.enabled "lease_name" (include "tailor.leaseName" .) "lease_duration" $v.leaderElection.leaseDuration "renew_every" $v.leaderElection.renewEvery }}
{{- $agent := dict "metrics_address" (printf "0.0.0.0:%d" (int $v.metrics.port)) "leader_election" $election }}
{{- $n := $v.notifications }}
{{- $sinks := list }}
{{- range $type := list "slack" "teams" }}
{{- if (get $n $type).existingSecret.name }}
{{- $sinks = append $sinks (dict "name" $type "type" $type "url_file" (printf "%s/%s/url" $dir $type)) }}
{{- end }}
{{- end }}
{{- if $n.webhook.existingSecret.name }}
{{- if not $n.webhook.signingSecret.name }}
{{- fail "notifications.webhook.signingSecret: a webhook is signed; name the Secret key holding its HMAC secret" }}
{{- end }}
{{- $sinks = append $sinks (dict "name" "webhook" "type" "webhook" "url_file" (printf "%s/webhook/url" $dir) "secret_file" (printf "%s/webhook-secret/secret" $dir)) }}
{{- end }}
{{- $chart := dict
  "prometheus" $prom
  "selection" (dict "namespaces" $v.selection.namespaces "exclude_namespaces" $v.selection.excludeNamespaces)
  "pricing" (dict "cpu_core_hour_usd" $v.pricing.cpuCoreHourUsd "memory_gib_hour_usd" $v.pricing.memoryGibHourUsd)
  "guardrails" $guardrails
  "agent" $agent }}
{{- if $sinks }}
{{- if hasKey $user "notifications" }}
{{- fail "config.notifications: set the sinks through the chart's `notifications` values instead (values.yaml), so they are not set twice" }}
{{- end }}
{{- $_ := set $chart "notifications" (dict "sinks" $sinks "links" $n.links "digest" (dict "interval" $n.digestInterval)) }}
{{- end }}
{{- toYaml (mustMergeOverwrite $user $chart) }}
{{- end }}
