{{/* Names are fixed: the webhook configuration is cluster-wide, so one
     release per cluster; the kustomize manifests use the same names. */}}
{{- define "gi.name" -}}graceful-inject-webhook{{- end -}}

{{- define "gi.selector" -}}
app.kubernetes.io/name: graceful-inject-webhook
{{- end -}}

{{- define "gi.labels" -}}
{{ include "gi.selector" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "gi.secretName" -}}
{{- if eq .Values.certificates.mode "existing" -}}
{{ .Values.certificates.existing.secretName }}
{{- else -}}
graceful-inject-webhook-tls
{{- end -}}
{{- end -}}

{{- define "gi.configMapName" -}}
{{- default "graceful-inject-config" .Values.config.existingConfigMap -}}
{{- end -}}

{{- define "gi.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end -}}
{{- end -}}

{{/* The Service's DNS names, which the serving certificate must carry. */}}
{{- define "gi.dnsNames" -}}
- {{ include "gi.name" . }}.{{ .Release.Namespace }}.svc
- {{ include "gi.name" . }}.{{ .Release.Namespace }}.svc.cluster.local
{{- end -}}
