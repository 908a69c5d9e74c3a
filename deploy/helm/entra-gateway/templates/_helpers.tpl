{{/* The labels every object carries; the Deployment, Service and PDB select on them. */}}
{{- define "entra-gateway.labels" -}}
app.kubernetes.io/name: entra-gateway
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}
