{{/*
Names are capped at 63 characters (DNS label) and suffixed, so the longest
suffix ("-controller-leader-election", 27) is subtracted up front: a long
release name then truncates the same way everywhere instead of failing in one
object only.
*/}}
{{- define "pyserve.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 36 | trimSuffix "-" }}
{{- end }}

{{- define "pyserve.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 36 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 36 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 36 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "pyserve.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "pyserve.labels" -}}
helm.sh/chart: {{ include "pyserve.chart" . }}
app.kubernetes.io/name: {{ include "pyserve.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: pyserve
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels must never change across upgrades: Deployments reject it. */}}
{{- define "pyserve.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pyserve.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "pyserve.controller.selectorLabels" -}}
{{ include "pyserve.selectorLabels" . }}
app.kubernetes.io/component: controller
{{- end }}

{{- define "pyserve.dataplane.selectorLabels" -}}
{{ include "pyserve.selectorLabels" . }}
app.kubernetes.io/component: dataplane
{{- end }}

{{- define "pyserve.controller.fullname" -}}
{{- printf "%s-controller" (include "pyserve.fullname" .) }}
{{- end }}

{{- define "pyserve.dataplane.fullname" -}}
{{- printf "%s-dataplane" (include "pyserve.fullname" .) }}
{{- end }}

{{/* The dataplane admin Service: the controller's push targets. */}}
{{- define "pyserve.admin.fullname" -}}
{{- printf "%s-dataplane-admin" (include "pyserve.fullname" .) }}
{{- end }}

{{- define "pyserve.controller.serviceAccountName" -}}
{{- default (include "pyserve.controller.fullname" .) .Values.serviceAccount.controller.name }}
{{- end }}

{{- define "pyserve.dataplane.serviceAccountName" -}}
{{- default (include "pyserve.dataplane.fullname" .) .Values.serviceAccount.dataplane.name }}
{{- end }}

{{- define "pyserve.pushToken.secretName" -}}
{{- default (printf "%s-push-token" (include "pyserve.fullname" .)) .Values.pushToken.existingSecret }}
{{- end }}

{{- define "pyserve.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The push token's value: the one already in the cluster when there is one, so
upgrades keep it (a new token would make every push fail until both sides
restart); otherwise a fresh random one. lookup returns nothing under helm
template and --dry-run, so those render a new value each time.
*/}}
{{- define "pyserve.pushToken.value" -}}
{{- /* Memoized on the render's root so the Secret and the pods' checksum
       annotations agree within one render. */}}
{{- if not (hasKey $ "pyservePushToken") }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "pyserve.pushToken.secretName" .) }}
{{- if and $existing $existing.data (hasKey $existing.data .Values.pushToken.secretKey) }}
{{- $_ := set $ "pyservePushToken" (index $existing.data .Values.pushToken.secretKey | b64dec) }}
{{- else }}
{{- $_ := set $ "pyservePushToken" (randAlphaNum 48) }}
{{- end }}
{{- end }}
{{- get $ "pyservePushToken" }}
{{- end }}

{{/* Where both containers find the token; the flags name this path. */}}
{{- define "pyserve.pushToken.mountPath" -}}/etc/pyserve/token{{- end }}

{{- define "pyserve.pushToken.volume" -}}
- name: push-token
  secret:
    secretName: {{ include "pyserve.pushToken.secretName" . }}
    # 0440 (owner and group read) in decimal: YAML 1.1 parsers read a leading zero
    # as octal, YAML 1.2 ones as decimal.
    defaultMode: 288
    items:
      - key: {{ .Values.pushToken.secretKey }}
        path: token
{{- end }}

{{/*
A default topology spread (soft, so a one-node cluster still schedules) unless
the user gave one; a user-given constraint without labelSelector gets this
component's selector, which is what it almost always means.
*/}}
{{- define "pyserve.topologySpread" -}}
{{- $selector := fromYaml .selector }}
{{- $constraints := .constraints }}
{{- if not $constraints }}
{{- $constraints = list }}
{{- range .defaultKeys }}
{{- $constraints = append $constraints (dict "maxSkew" 1 "topologyKey" . "whenUnsatisfiable" "ScheduleAnyway") }}
{{- end }}
{{- end }}
{{- range $constraints }}
{{- $c := deepCopy . }}
{{- if not (hasKey $c "labelSelector") }}
{{- $_ := set $c "labelSelector" (dict "matchLabels" $selector) }}
{{- end }}
- {{ toYaml $c | nindent 2 | trim }}
{{- end }}
{{- end }}

{{/* Fails the render on combinations the schema cannot express. */}}
{{- define "pyserve.validate" -}}
{{- $drainSeconds := divf .Values.dataplane.drainTimeoutMs 1000.0 }}
{{- $needed := addf .Values.dataplane.preStopSleepSeconds $drainSeconds }}
{{- if le (float64 .Values.dataplane.terminationGracePeriodSeconds) $needed }}
{{- fail (printf "dataplane.terminationGracePeriodSeconds (%v) must exceed dataplane.preStopSleepSeconds + dataplane.drainTimeoutMs/1000 (%v), or pods are killed mid-drain" .Values.dataplane.terminationGracePeriodSeconds $needed) }}
{{- end }}
{{- if and (not .Values.controller.leaderElection.enabled) (gt (int .Values.controller.replicaCount) 1) }}
{{- fail "controller.leaderElection.enabled=false needs controller.replicaCount=1: replicas would race on status writes" }}
{{- end }}
{{- if and (not .Values.serviceAccount.create) (or (not .Values.serviceAccount.controller.name) (not .Values.serviceAccount.dataplane.name)) }}
{{- fail "serviceAccount.create=false needs serviceAccount.controller.name and serviceAccount.dataplane.name" }}
{{- end }}
{{- if and (eq (toString .Values.dataplane.workers) "auto") (not (dig "limits" "cpu" "" (.Values.dataplane.resources | default dict))) }}
{{- fail "dataplane.workers=auto needs dataplane.resources.limits.cpu: auto starts one worker per CPU of that limit, and without one, one per CPU of the node (about 150 MiB each), which can exceed the memory limit. Set a CPU limit, or workers to a number" }}
{{- end }}
{{- end }}
