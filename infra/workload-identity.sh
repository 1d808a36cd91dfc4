#!/usr/bin/env bash
# Workload Identity: pods reach the buckets as a Google service account, with no key file.
#
#   infra/workload-identity.sh [--dry-run]      (create-cluster.sh runs it last)
#
# Creates the Google service account $GSA_NAME, lets it use both buckets, applies
# infra/namespaces.yaml (the namespaces and the dlp-storage Kubernetes service accounts),
# annotates those with the Google account, and lets each Kubernetes service account that
# touches a bucket act as it: Pachyderm's pachd and workers, the Determined master, trial
# pods and serving pods. Re-running changes nothing.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh" "$@"
need gcloud kubectl
cloud_names

note "Google service account $GSA_EMAIL"
if exists gcloud iam service-accounts describe "$GSA_EMAIL" --project "$PROJECT"; then
  note "service account $GSA_EMAIL exists"
else
  run gcloud iam service-accounts create "$GSA_NAME" --project "$PROJECT" \
    --display-name "dlptui bucket access (Workload Identity)"
fi
for bucket in "$DATA_BUCKET" "$CHECKPOINT_BUCKET"; do
  run gcloud storage buckets add-iam-policy-binding "gs://$bucket" \
    --member "serviceAccount:$GSA_EMAIL" --role roles/storage.objectAdmin --condition None
done

note "namespaces and Kubernetes service accounts"
run "${KUBECTL[@]}" apply -f "$INFRA_DIR/namespaces.yaml"
for ns in "$DETERMINED_NAMESPACE" "$SELDON_NAMESPACE"; do
  run "${KUBECTL[@]}" annotate serviceaccount "$KSA_NAME" --namespace "$ns" --overwrite \
    "iam.gke.io/gcp-service-account=$GSA_EMAIL"
done

# The first three accounts are made by the Pachyderm and Determined charts (helm/install.sh
# annotates them); a binding may name an account that does not exist yet.
for member in \
  "$PACHYDERM_NAMESPACE/pachyderm" \
  "$PACHYDERM_NAMESPACE/pachyderm-worker" \
  "$DETERMINED_NAMESPACE/determined-master-determined" \
  "$DETERMINED_NAMESPACE/$KSA_NAME" \
  "$SELDON_NAMESPACE/$KSA_NAME"; do
  run gcloud iam service-accounts add-iam-policy-binding "$GSA_EMAIL" --project "$PROJECT" \
    --role roles/iam.workloadIdentityUser --member "serviceAccount:${PROJECT}.svc.id.goog[${member}]"
done
