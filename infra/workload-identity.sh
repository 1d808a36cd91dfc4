#!/usr/bin/env bash
# Workload Identity: pods reach the buckets as a Google service account, with no key file.
#
#   infra/workload-identity.sh [--dry-run]      (create-cluster.sh runs it last)
#
# Two Google service accounts, each with what it needs and no more:
# - $GSA_NAME writes both buckets: Pachyderm's pachd and workers, the Determined master, trial pods;
# - $SERVING_GSA_NAME reads the checkpoint bucket only: the serving pods (seldon/dlp-storage),
#   which load one registered checkpoint and must not be able to change or delete any data.
# It applies infra/namespaces.yaml (the namespaces and the dlp-storage Kubernetes service
# accounts), annotates those with their Google account, and lets each act as it. Re-running
# changes nothing.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh" "$@"
need gcloud kubectl
cloud_names

# bucket  role  (each line: one binding of the account)
STORAGE_BINDINGS=(
  "$DATA_BUCKET roles/storage.objectAdmin"
  "$CHECKPOINT_BUCKET roles/storage.objectAdmin"
)
SERVING_BINDINGS=(
  "$CHECKPOINT_BUCKET roles/storage.objectViewer"
)

google_account() {  # email name display-name binding...
  local email="$1" name="$2" display="$3" line bucket role
  shift 3
  note "Google service account $email"
  if exists gcloud iam service-accounts describe "$email" --project "$PROJECT"; then
    note "service account $email exists"
  else
    run gcloud iam service-accounts create "$name" --project "$PROJECT" --display-name "$display"
  fi
  for line in "$@"; do
    read -r bucket role <<<"$line"
    run gcloud storage buckets add-iam-policy-binding "gs://$bucket" \
      --member "serviceAccount:$email" --role "$role" --condition None
  done
}

google_account "$GSA_EMAIL" "$GSA_NAME" "dlptui bucket access (Workload Identity)" "${STORAGE_BINDINGS[@]}"
google_account "$SERVING_GSA_EMAIL" "$SERVING_GSA_NAME" "dlptui serving: reads checkpoints (Workload Identity)" \
  "${SERVING_BINDINGS[@]}"

note "namespaces and Kubernetes service accounts"
run "${KUBECTL[@]}" apply -f "$INFRA_DIR/namespaces.yaml"
run "${KUBECTL[@]}" annotate serviceaccount "$KSA_NAME" --namespace "$DETERMINED_NAMESPACE" --overwrite \
  "iam.gke.io/gcp-service-account=$GSA_EMAIL"
run "${KUBECTL[@]}" annotate serviceaccount "$KSA_NAME" --namespace "$SELDON_NAMESPACE" --overwrite \
  "iam.gke.io/gcp-service-account=$SERVING_GSA_EMAIL"

# The first three accounts are made by the Pachyderm and Determined charts (helm/install.sh
# annotates them); a binding may name an account that does not exist yet.
for member in \
  "$PACHYDERM_NAMESPACE/pachyderm" \
  "$PACHYDERM_NAMESPACE/pachyderm-worker" \
  "$DETERMINED_NAMESPACE/determined-master-determined" \
  "$DETERMINED_NAMESPACE/$KSA_NAME"; do
  run gcloud iam service-accounts add-iam-policy-binding "$GSA_EMAIL" --project "$PROJECT" \
    --role roles/iam.workloadIdentityUser --member "serviceAccount:${PROJECT}.svc.id.goog[${member}]"
done
run gcloud iam service-accounts add-iam-policy-binding "$SERVING_GSA_EMAIL" --project "$PROJECT" \
  --role roles/iam.workloadIdentityUser --member "serviceAccount:${PROJECT}.svc.id.goog[$SELDON_NAMESPACE/$KSA_NAME]"
