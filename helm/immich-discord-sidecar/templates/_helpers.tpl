{{/* Chart name, truncated to the 63 characters Kubernetes allows in names. */}}
{{- define "sidecar.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name: the release name, unless it already contains the chart name. */}}
{{- define "sidecar.fullname" -}}
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

{{- define "sidecar.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sidecar.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sidecar.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "sidecar.labels" -}}
helm.sh/chart: {{ include "sidecar.chart" . }}
{{ include "sidecar.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: immich
{{- end }}

{{- define "sidecar.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sidecar.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "sidecar.secretName" -}}
{{- default (include "sidecar.fullname" .) .Values.existingSecret }}
{{- end }}

{{- define "sidecar.configMapName" -}}
{{- default (include "sidecar.fullname" .) .Values.existingConfigMap }}
{{- end }}

{{/*
The config file the ConfigMap holds: the user's `config` plus what the chart owns (the Immich
URL and key reference, the state path on the volume, the metrics port the probes use).
*/}}
{{- define "sidecar.configFile" -}}
{{- $config := deepCopy .Values.config }}
{{- $immich := get $config "immich" | default dict }}
{{- if not (hasKey $immich "url") }}
{{- $_ := set $immich "url" .Values.immich.url }}
{{- end }}
{{- if not (or (hasKey $immich "api_key") (hasKey $immich "api_key_file") (hasKey $immich "accounts")) }}
{{- $_ := set $immich "api_key" "${IMMICH_API_KEY}" }}
{{- end }}
{{- $_ := set $config "immich" $immich }}
{{- if hasKey $config "discord" }}
{{- $discord := get $config "discord" | default dict }}
{{- if not (or (hasKey $discord "token") (hasKey $discord "token_file")) }}
{{- $_ := set $discord "token" "${DISCORD_TOKEN}" }}
{{- end }}
{{- $_ := set $config "discord" $discord }}
{{- end }}
{{- $_ := set $config "state" (dict "path" "/data/state.db") }}
{{- $_ := set $config "metrics" (dict "listen" "0.0.0.0:9187") }}
{{- if include "sidecar.pushEnabled" . }}
{{- $push := get $config "push" | default dict }}
{{- $_ := set $push "listen" (printf "0.0.0.0:%d" (int .Values.push.port)) }}
{{- if not (or (hasKey $push "secret") (hasKey $push "secret_file")) }}
{{- $_ := set $push "secret" "${IMMICH_PUSH_SECRET}" }}
{{- end }}
{{- $_ := set $config "push" $push }}
{{- else }}
{{- $_ := unset $config "push" }}
{{- end }}
{{- if .Values.ui.enabled }}
{{- $ui := get $config "ui" | default dict }}
{{- $_ := set $ui "listen" (printf "0.0.0.0:%d" (int .Values.ui.port)) }}
{{- if not (or (hasKey $ui "password") (hasKey $ui "password_file")) }}
{{- $_ := set $ui "password" "${SIDECAR_UI_PASSWORD}" }}
{{- end }}
{{- $_ := set $config "ui" $ui }}
{{- else }}
{{- $_ := unset $config "ui" }}
{{- end }}
{{- if and (empty (get $config "targets")) (empty (get $config "rules")) }}
{{- $_ := set $config "targets" (dict "log" (dict "console" true)) }}
{{- $_ := set $config "rules" (list (dict "name" "everything" "targets" (list "log"))) }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{/* Push is on with push.enabled or a config.push block: "true", or empty. */}}
{{- define "sidecar.pushEnabled" -}}
{{- if or .Values.push.enabled (hasKey (.Values.config | default dict) "push") }}true{{ end }}
{{- end }}

{{/*
config.poll.interval in seconds (30s, 2m, 1h30m, 1d), for the stale-poll alert's "three
intervals"; 120 (the sidecar's default) when it is not set or reads the environment.
*/}}
{{- define "sidecar.pollIntervalSeconds" -}}
{{- $poll := get (.Values.config | default dict) "poll" | default dict }}
{{- $interval := get $poll "interval" | default "2m" | toString }}
{{- $seconds := 0 }}
{{- if regexMatch "^([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?$" $interval }}
{{- range $unit, $size := dict "d" 86400 "h" 3600 "m" 60 "s" 1 }}
{{- $part := regexFind (printf "[0-9]+%s" $unit) $interval }}
{{- if $part }}
{{- $seconds = add $seconds (mul (trimSuffix $unit $part | atoi) $size) }}
{{- end }}
{{- end }}
{{- end }}
{{- if gt (int $seconds) 0 }}{{ $seconds }}{{ else }}120{{ end }}
{{- end }}
