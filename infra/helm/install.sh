#!/usr/bin/env bash
# Install (or upgrade) the platform on the cluster that create-cluster.sh made:
# Istio, its gateway, the Seldon Core operator, Pachyderm and Determined.
#
#   infra/helm/install.sh [--dry-run]
#
# Needs the Secrets of secrets/create-secrets.sh, and DET_DB_PASSWORD, DET_PASS and
# DLPTUI_SERVING_TOKEN in the environment (the Determined chart takes its passwords only as
# values: they go to helm through a file descriptor, never a file or a command line; the token
# goes into istio/serving-auth.yaml on its way to kubectl, through a pipe). `helm upgrade --install` makes every
# step safe to repeat. Chart versions: ISTIO_VERSION, SELDON_VERSION, PACHYDERM_VERSION,
# DETERMINED_VERSION.
set -euo pipefail
# shellcheck source=../lib.sh source-path=SCRIPTDIR
source "$(dirname "$0")/../lib.sh" "$@"

ISTIO_VERSION="${ISTIO_VERSION:-1.22.8}"
SELDON_VERSION="${SELDON_VERSION:-1.17.1}"
PACHYDERM_VERSION="${PACHYDERM_VERSION:-2.7.6}"
DETERMINED_VERSION="${DETERMINED_VERSION:-0.38.1}"
values="$INFRA_DIR/helm"

for var in DET_DB_PASSWORD DET_PASS DLPTUI_SERVING_TOKEN; do
  [[ -n "${!var:-}" ]] || die "the environment variable $var is not set; set it (see infra/secrets/secrets.env.template) and run again."
done
[[ "$DLPTUI_SERVING_TOKEN" =~ ^[A-Za-z0-9_-]{32,}$ ]] ||
  die "DLPTUI_SERVING_TOKEN must be at least 32 letters, digits, '-' or '_' (openssl rand -hex 32); set another and run again."
need helm kubectl
cloud_names
annotation='iam\.gke\.io/gcp-service-account'

for secret in pachyderm/pachyderm-postgres seldon/dlptui-serving-token pachyderm/pachd-tls \
  determined/determined-tls istio-system/seldon-gateway-tls; do
  if [[ "$DRY_RUN" != 1 ]] && ! exists "${KUBECTL[@]}" --namespace "${secret%/*}" get secret "${secret#*/}"; then
    die "the Secret $secret does not exist; run infra/secrets/create-secrets.sh first."
  fi
done

# Determined's secret values, as YAML on a file descriptor (printf is a builtin: no argv),
# each a single-quoted scalar (where only ' needs escaping, as '').
determined_secrets() {
  local q="'" qq="''"
  printf "db:\n  password: '%s'\ninitialUserPassword: '%s'\n" "${DET_DB_PASSWORD//$q/$qq}" "${DET_PASS//$q/$qq}"
}

# istio/serving-auth.yaml with the serving token in place of its placeholder (a builtin: no argv).
serving_auth() {
  local text placeholder='@DLPTUI_SERVING_TOKEN@'
  text="$(<"$INFRA_DIR/istio/serving-auth.yaml")"
  printf '%s\n' "${text//"$placeholder"/$DLPTUI_SERVING_TOKEN}"
}

note "chart repositories"
run helm repo add istio https://istio-release.storage.googleapis.com/charts --force-update
run helm repo add seldon https://storage.googleapis.com/seldon-charts --force-update
run helm repo add pachyderm https://helm.pachyderm.com --force-update
run helm repo add determined-ai https://helm.determined.ai --force-update
run helm repo update

note "namespaces"
run "${KUBECTL[@]}" apply -f "$INFRA_DIR/namespaces.yaml"
run "${KUBECTL[@]}" apply -f "$INFRA_DIR/rbac.yaml"
run "${KUBECTL[@]}" apply -f "$INFRA_DIR/network-policy.yaml"

note "Istio $ISTIO_VERSION and the seldon-gateway"
run "${HELM[@]}" upgrade --install istio-base istio/base --version "$ISTIO_VERSION" --namespace "$ISTIO_NAMESPACE"
run "${HELM[@]}" upgrade --install istiod istio/istiod --version "$ISTIO_VERSION" --namespace "$ISTIO_NAMESPACE" \
  -f "$values/istiod.yaml" --wait
run "${HELM[@]}" upgrade --install istio-ingressgateway istio/gateway --version "$ISTIO_VERSION" \
  --namespace "$ISTIO_NAMESPACE" -f "$values/istio-gateway.yaml" --wait
run "${KUBECTL[@]}" apply -f "$INFRA_DIR/istio/gateway.yaml"
if [[ "$DRY_RUN" == 1 ]]; then
  note "would apply istio/serving-auth.yaml with DLPTUI_SERVING_TOKEN in place of its placeholder"
else
  serving_auth | "${KUBECTL[@]}" apply -f - >/dev/null
  note "AuthorizationPolicy istio-system/seldon-predictions-need-the-serving-token applied"
fi

note "Seldon Core operator $SELDON_VERSION"
run "${HELM[@]}" upgrade --install seldon-core seldon/seldon-core-operator --version "$SELDON_VERSION" \
  --namespace "$SELDON_SYSTEM_NAMESPACE" -f "$values/seldon-core-operator.yaml" --wait

note "Pachyderm $PACHYDERM_VERSION (data in gs://$DATA_BUCKET)"
enterprise=()
if [[ -n "${PACHYDERM_ENTERPRISE_LICENSE:-}" ]]; then
  enterprise=(-f "$values/pachyderm-enterprise.yaml")
fi
run "${HELM[@]}" upgrade --install pachyderm pachyderm/pachyderm --version "$PACHYDERM_VERSION" \
  --namespace "$PACHYDERM_NAMESPACE" -f "$values/pachyderm.yaml" "${enterprise[@]}" \
  --set "pachd.storage.google.bucket=$DATA_BUCKET" \
  --set "pachd.serviceAccount.additionalAnnotations.$annotation=$GSA_EMAIL" \
  --set "pachd.worker.serviceAccount.additionalAnnotations.$annotation=$GSA_EMAIL" --wait

note "Determined $DETERMINED_VERSION (checkpoints in gs://$CHECKPOINT_BUCKET)"
run "${HELM[@]}" upgrade --install determined determined-ai/determined --version "$DETERMINED_VERSION" \
  --namespace "$DETERMINED_NAMESPACE" -f "$values/determined.yaml" -f <(determined_secrets) \
  --set "checkpointStorage.bucket=$CHECKPOINT_BUCKET" --wait
run "${KUBECTL[@]}" annotate serviceaccount determined-master-determined --namespace "$DETERMINED_NAMESPACE" \
  --overwrite "iam.gke.io/gcp-service-account=$GSA_EMAIL"

note "pachd and the Determined master have no public address: reach them through the Kubernetes API,"
note "  kubectl -n $PACHYDERM_NAMESPACE port-forward service/pachyderm-proxy 30650:443      # pachd_address = grpcs://localhost:30650"
note "  kubectl -n $DETERMINED_NAMESPACE port-forward service/determined-master-service-determined 8443:8080   # det_master = https://localhost:8443"
note "istio_ingress (HTTPS): https://\$(kubectl -n $ISTIO_NAMESPACE get service istio-ingressgateway -o jsonpath='{.status.loadBalancer.ingress[0].ip}')"
