#!/usr/bin/env bash
# Create (or update) the platform's Kubernetes Secrets from environment variables. The serving
# pods get no Determined credential (they read their checkpoint from the bucket with a read-only
# Google account); the console reads the serving token (the Istio gateway's AuthorizationPolicy asks
# for it) from seldon/dlptui-serving-token.
#
#   set -a; . ~/dlp-secrets.env; set +a     # a copy of secrets.env.template, outside the repo
#   infra/secrets/create-secrets.sh [--dry-run]       (KUBE_CONTEXT: default, the current context)
#
# Each `secret` line below names a namespace, a Secret and its keys, each key filled from
# one environment variable. Values travel to kubectl through file descriptors, never on a
# command line or in a file, and are never printed; --dry-run shows what would be created.
# A missing variable stops the script with one sentence naming it, before anything changes.
set -euo pipefail
# shellcheck source=../lib.sh source-path=SCRIPTDIR
source "$(dirname "$0")/../lib.sh" "$@"

# namespace      secret               key=VARIABLE ...
SECRETS=(
  "pachyderm     pachyderm-postgres   postgresql-password=PACHYDERM_DB_PASSWORD postgresql-postgres-password=PACHYDERM_DB_ROOT_PASSWORD"
  "seldon        dlptui-serving-token token=DLPTUI_SERVING_TOKEN"
)
# TLS Secrets (kubernetes.io/tls) from a certificate and key file each: pachd and its proxy, the
# Determined master, and the Istio gateway's HTTPS port. Paths, not values, reach kubectl.
# namespace      secret               CERT_FILE_VARIABLE KEY_FILE_VARIABLE
TLS=(
  "pachyderm     pachd-tls            PACHD_TLS_CERT_FILE PACHD_TLS_KEY_FILE"
  "determined    determined-tls       DET_TLS_CERT_FILE DET_TLS_KEY_FILE"
  "istio-system  seldon-gateway-tls   GATEWAY_TLS_CERT_FILE GATEWAY_TLS_KEY_FILE"
)
# Created only when its first variable is set (Pachyderm Enterprise turns on auth; the trials of
# trial/const.yaml read PACHD_TOKEN from determined/pachyderm-token, optional there too).
OPTIONAL=(
  "pachyderm     pachyderm-enterprise enterprise-license-key=PACHYDERM_ENTERPRISE_LICENSE root-token=PACHD_TOKEN"
  "determined    pachyderm-token      root-token=PACHD_TOKEN"
)

# The first variable of "key=VAR ..." that is unset, or that holds a line break.
missing() {
  local pair var
  for pair in "$@"; do
    var="${pair#*=}"
    if [[ -z "${!var:-}" || "${!var}" == *$'\n'* ]]; then
      echo "$var"
      return
    fi
  done
}

wanted=("${SECRETS[@]}")
for line in "${OPTIONAL[@]}"; do
  read -r -a words <<<"$line"
  first="${words[2]#*=}"
  if [[ -n "${!first:-}" ]]; then
    wanted+=("$line")
  else
    note "skipping ${words[1]}: $first is not set"
  fi
done

for line in "${wanted[@]}"; do
  read -r -a words <<<"$line"
  var="$(missing "${words[@]:2}")"
  [[ -z "$var" ]] || die "the environment variable $var is not set (or holds a line break); set it (see infra/secrets/secrets.env.template) and run again."
done
for line in "${TLS[@]}"; do
  read -r -a words <<<"$line"
  for var in "${words[2]}" "${words[3]}"; do
    [[ -n "${!var:-}" ]] || die "the environment variable $var is not set; point it at the PEM file of ${words[0]}/${words[1]} and run again."
    [[ -f "${!var}" ]] || die "$var names ${!var}, which is not a file; point it at the PEM file of ${words[0]}/${words[1]}."
  done
done
need kubectl
if [[ -z "${KUBE_CONTEXT:-}" ]]; then
  use_context "$(query kubectl config current-context || true)"
  [[ -n "$KUBE_CONTEXT" || "$DRY_RUN" == 1 ]] || die "kubectl has no current context; set KUBE_CONTEXT or run create-cluster.sh first."
fi
note "Kubernetes context: ${KUBE_CONTEXT:-(none)}"

# KEY=VALUE lines for kubectl's --from-env-file; printf is a builtin, so no value reaches argv.
env_lines() {
  local pair var
  for pair in "$@"; do
    var="${pair#*=}"
    printf '%s=%s\n' "${pair%%=*}" "${!var}"
  done
}

apply_secret() {
  local ns="$1" name="$2"
  shift 2
  if [[ "$DRY_RUN" == 1 ]]; then
    note "would create or update Secret $ns/$name with keys: ${*%%=*}"
    return
  fi
  "${KUBECTL[@]}" create secret generic "$name" --namespace "$ns" --from-env-file=<(env_lines "$@") \
    --dry-run=client -o yaml | "${KUBECTL[@]}" apply -f - >/dev/null
  note "Secret $ns/$name created or updated (keys: ${*%%=*})"
}

for line in "${wanted[@]}"; do
  read -r -a words <<<"$line"
  apply_secret "${words[@]}"
done

for line in "${TLS[@]}"; do
  read -r -a words <<<"$line"
  ns="${words[0]}" name="${words[1]}" cert="${!words[2]}" key="${!words[3]}"
  if [[ "$DRY_RUN" == 1 ]]; then
    note "would create or update TLS Secret $ns/$name from ${words[2]} and ${words[3]}"
    continue
  fi
  "${KUBECTL[@]}" create secret tls "$name" --namespace "$ns" --cert="$cert" --key="$key" \
    --dry-run=client -o yaml | "${KUBECTL[@]}" apply -f - >/dev/null
  note "TLS Secret $ns/$name created or updated"
done
