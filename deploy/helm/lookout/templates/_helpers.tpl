{{/* Name of every object: the release name, plus the chart name unless the release already has it. */}}
{{- define "lookout.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "lookout.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "lookout.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: agent
{{- end -}}

{{- define "lookout.secretName" -}}
{{- .Values.existingSecret | default (printf "%s-secrets" (include "lookout.fullname" .)) -}}
{{- end -}}

{{- define "lookout.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- if eq $tag "latest" -}}
{{- fail "image.tag: pin a version, not latest" -}}
{{- end -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}

{{/* The lookout container; readiness only in standalone mode (a sidecar must not gate the app's pod). */}}
{{- define "lookout.container" -}}
- name: lookout
  image: {{ include "lookout.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args: ["run"]
  env:
    - name: LOOKOUT_METRICS__HOST
      value: "0.0.0.0"
    - name: LOOKOUT_METRICS__PORT
      value: {{ .Values.metrics.port | quote }}
  envFrom:
    - configMapRef:
        name: {{ include "lookout.fullname" . }}-config
    - secretRef:
        name: {{ include "lookout.secretName" . }}
  ports:
    - name: metrics
      containerPort: {{ .Values.metrics.port }}
      protocol: TCP
  livenessProbe:
    httpGet:
      path: /healthz
      port: metrics
    {{- toYaml .Values.probes.liveness | nindent 4 }}
  {{- if eq .Values.mode "standalone" }}
  readinessProbe:
    httpGet:
      path: /readyz
      port: metrics
    {{- toYaml .Values.probes.readiness | nindent 4 }}
  {{- end }}
  startupProbe:
    httpGet:
      path: /healthz
      port: metrics
    {{- toYaml .Values.probes.startup | nindent 4 }}
  resources:
    {{- toYaml .Values.resources | nindent 4 }}
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  volumeMounts:
    - name: lookout-tmp
      mountPath: /tmp
{{- end -}}
