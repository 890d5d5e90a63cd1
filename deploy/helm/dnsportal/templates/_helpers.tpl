{{/* Names and labels. */}}
{{- define "dnsportal.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "dnsportal.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "dnsportal.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dnsportal.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "dnsportal.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "dnsportal.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Labels of one component: (dict "root" $ "component" "web"). */}}
{{- define "dnsportal.componentLabels" -}}
{{ include "dnsportal.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "dnsportal.componentSelector" -}}
{{ include "dnsportal.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* "true" when /metrics is configured (a token or an allow-list), else empty. */}}
{{- define "dnsportal.metricsOn" -}}
{{- if or .Values.metrics.tokenSecret.name .Values.metrics.allow -}}true{{- end -}}
{{- end -}}

{{- define "dnsportal.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "dnsportal.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "dnsportal.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The four secrets every process needs: env var name -> the Secret reference in values. */}}
{{- define "dnsportal.secretRefs" -}}
{{- $v := .Values -}}
{{- $refs := dict "SECRET_KEY" $v.secrets.secretKey "DNSPORTAL_ENCRYPTION_KEYS" $v.secrets.encryptionKeys "DATABASE_URL" $v.postgres.urlSecret "REDIS_URL" $v.redis.urlSecret -}}
{{- range $var, $ref := $refs -}}
{{- if or (not $ref.name) (not $ref.key) -}}
{{- fail (printf "%s needs an existing Secret: set its name and key in values (README.md, \"Deploying with Helm\")" $var) -}}
{{- end -}}
{{- end -}}
{{- toJson $refs -}}
{{- end -}}

{{/* Secret-bearing variables that must never be given as plain values. */}}
{{- define "dnsportal.checkNoPlainSecrets" -}}
{{- range $var := list "SECRET_KEY" "DNSPORTAL_ENCRYPTION_KEYS" "DATABASE_URL" "REDIS_URL" "DNSPORTAL_METRICS_TOKEN" "DNSPORTAL_OIDC_CLIENT_SECRET" "DNSPORTAL_OIDC_CLIENT_SECRET_FILE" "SECRET_KEY_FILE" "DNSPORTAL_ENCRYPTION_KEYS_FILE" "DATABASE_URL_FILE" "REDIS_URL_FILE" -}}
{{- if hasKey $.Values.env $var -}}
{{- fail (printf "env.%s: secrets come from existing Secrets, never from values (see secrets, postgres.urlSecret, redis.urlSecret, metrics.tokenSecret, oidc.clientSecret)" $var) -}}
{{- end -}}
{{- end -}}
{{- if not (has $.Values.secrets.mountAs (list "env" "files")) -}}
{{- fail (printf "secrets.mountAs must be env or files, not %q" $.Values.secrets.mountAs) -}}
{{- end -}}
{{- end -}}

{{/* The environment of every portal container. */}}
{{- define "dnsportal.env" -}}
{{- include "dnsportal.checkNoPlainSecrets" . -}}
{{- $refs := include "dnsportal.secretRefs" . | fromJson -}}
{{- if eq .Values.secrets.mountAs "env" }}
{{- range $var := keys $refs | sortAlpha }}
{{- $ref := get $refs $var }}
- name: {{ $var }}
  valueFrom:
    secretKeyRef:
      name: {{ $ref.name | quote }}
      key: {{ $ref.key | quote }}
{{- end }}
{{- else }}
{{- range $var := keys $refs | sortAlpha }}
- name: {{ $var }}_FILE
  value: {{ printf "/var/run/secrets/dnsportal/%s" ($var | lower | replace "_" "-") | quote }}
{{- end }}
{{- end }}
{{- if .Values.metrics.tokenSecret.name }}
- name: DNSPORTAL_METRICS_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .Values.metrics.tokenSecret.name | quote }}
      key: {{ .Values.metrics.tokenSecret.key | quote }}
{{- end }}
{{- if .Values.oidc.clientSecret.name }}
- name: DNSPORTAL_OIDC_CLIENT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ .Values.oidc.clientSecret.name | quote }}
      key: {{ .Values.oidc.clientSecret.key | quote }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Volumes of every portal pod: /tmp, and the secrets when mounted as files. */}}
{{- define "dnsportal.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpVolume.sizeLimit }}
- name: metrics
  emptyDir:
    sizeLimit: 64Mi
{{- if eq .Values.secrets.mountAs "files" }}
{{- $refs := include "dnsportal.secretRefs" . | fromJson }}
- name: secrets
  projected:
    defaultMode: 0440
    sources:
{{- range $var := keys $refs | sortAlpha }}
{{- $ref := get $refs $var }}
      - secret:
          name: {{ $ref.name | quote }}
          items:
            - key: {{ $ref.key | quote }}
              path: {{ $var | lower | replace "_" "-" }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "dnsportal.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: metrics
  mountPath: /var/lib/dnsportal/metrics
{{- if eq .Values.secrets.mountAs "files" }}
- name: secrets
  mountPath: /var/run/secrets/dnsportal
  readOnly: true
{{- end }}
{{- end -}}

{{/* Pod-level settings shared by every portal pod: (dict "root" $ "component" "web"). */}}
{{- define "dnsportal.podSpec" -}}
{{- $root := .root -}}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- /* A hook runs before the release's own ServiceAccount exists: the migration uses the namespace's. */}}
{{- $sa := include "dnsportal.serviceAccountName" $root }}
{{- if and (eq .component "migrate") $root.Values.serviceAccount.create }}
{{- $sa = "default" }}
{{- end }}
serviceAccountName: {{ $sa }}
automountServiceAccountToken: {{ $root.Values.serviceAccount.automountToken }}
securityContext:
  {{- toYaml $root.Values.podSecurityContext | nindent 2 }}
{{- with $root.Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with $root.Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if $root.Values.affinity }}
affinity:
  {{- toYaml $root.Values.affinity | nindent 2 }}
{{- else }}
# Replicas of one component on different nodes when the cluster allows it (a standby watch on the leader's
# node would die with it).
affinity:
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "dnsportal.componentSelector" . | nindent 14 }}
{{- end }}
{{- with $root.Values.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  {{- include "dnsportal.volumes" $root | nindent 2 }}
{{- end -}}

{{/* One portal container: (dict "root" $ "name" "worker" "command" (list ...) "resources" ...). */}}
{{- define "dnsportal.container" -}}
{{- $root := .root -}}
- name: {{ .name }}
  image: {{ include "dnsportal.image" $root | quote }}
  imagePullPolicy: {{ $root.Values.image.pullPolicy }}
  command:
    {{- toYaml .command | nindent 4 }}
  envFrom:
    - configMapRef:
        name: {{ include "dnsportal.fullname" $root }}-env
  env:
    {{- include "dnsportal.env" $root | trim | nindent 4 }}
  securityContext:
    {{- toYaml $root.Values.securityContext | nindent 4 }}
  resources:
    {{- toYaml .resources | nindent 4 }}
  volumeMounts:
    {{- include "dnsportal.volumeMounts" $root | nindent 4 }}
  {{- if and .processMetrics (include "dnsportal.metricsOn" $root) }}
  ports:
    - name: metrics
      containerPort: {{ $root.Values.metrics.processPort }}
      protocol: TCP
  {{- end }}
{{- end -}}

{{/* Pod annotations: a change of the settings rolls the pods. */}}
{{- define "dnsportal.podAnnotations" -}}
checksum/env: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- with .Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end -}}
