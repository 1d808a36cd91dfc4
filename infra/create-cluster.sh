#!/usr/bin/env bash
# Create the GKE side of the `cluster` profile, or finish what an earlier run started.
#
#   infra/create-cluster.sh [--dry-run]
#
# Steps, each skipped when its thing exists already: the APIs, the cluster (its default
# pool is the CPU pool, autoscaling), the GPU pool (autoscaling from zero), Cloud NAT for
# private nodes, credentials for kubectl, the NVIDIA driver DaemonSet, the data and
# checkpoint buckets, a Docker repository for the serving image, the firewall rule
# Istio's webhook needs (found from GKE's own control-plane rule by its name pattern),
# then infra/workload-identity.sh.
# --dry-run prints every command that would change something (+) and runs only the
# read-only look-ups (?). Every name, zone and size below can be set in the environment.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh" "$@"
need gcloud kubectl
cloud_names

CPU_MACHINE="${CPU_MACHINE:-e2-standard-8}"
CPU_NODES="${CPU_NODES:-2}"
CPU_MIN_NODES="${CPU_MIN_NODES:-1}"
CPU_MAX_NODES="${CPU_MAX_NODES:-4}"
GPU_POOL="${GPU_POOL:-gpu-pool}"
GPU_MACHINE="${GPU_MACHINE:-n1-standard-8}"
GPU_TYPE="${GPU_TYPE:-nvidia-tesla-t4}"
GPU_COUNT="${GPU_COUNT:-1}"
GPU_MIN_NODES="${GPU_MIN_NODES:-0}"
GPU_MAX_NODES="${GPU_MAX_NODES:-2}"
PRIVATE_NODES="${PRIVATE_NODES:-true}"
MASTER_CIDR="${MASTER_CIDR:-172.16.0.32/28}"
ROUTER="${ROUTER:-${CLUSTER}-router}"
NAT="${NAT:-${CLUSTER}-nat}"
ISTIO_FIREWALL_RULE="${ISTIO_FIREWALL_RULE:-${CLUSTER}-allow-istio-webhook}"
REGISTRY="${REGISTRY:-dlptui}"
# pinned to a commit (not a branch), so the cluster runs the DaemonSet that was reviewed
GPU_DRIVER_DAEMONSET="${GPU_DRIVER_DAEMONSET:-https://raw.githubusercontent.com/GoogleCloudPlatform/container-engine-accelerators/feb27ef33e5fdf1b8ec7dafbf4cf527ee400278a/nvidia-driver-installer/cos/daemonset-preloaded.yaml}"

where=(--project "$PROJECT" --zone "$ZONE")

note "APIs"
run gcloud services enable container.googleapis.com compute.googleapis.com storage.googleapis.com \
  iam.googleapis.com artifactregistry.googleapis.com --project "$PROJECT"

note "cluster $CLUSTER in $ZONE (the default pool is the CPU pool)"
if exists gcloud container clusters describe "$CLUSTER" "${where[@]}"; then
  note "cluster $CLUSTER exists"
else
  private=()
  if [[ "$PRIVATE_NODES" == true ]]; then
    private=(--enable-private-nodes --master-ipv4-cidr "$MASTER_CIDR")
  fi
  run gcloud container clusters create "$CLUSTER" "${where[@]}" \
    --release-channel regular --enable-ip-alias "${private[@]}" \
    --workload-pool "${PROJECT}.svc.id.goog" --workload-metadata GKE_METADATA \
    --machine-type "$CPU_MACHINE" --num-nodes "$CPU_NODES" \
    --enable-autoscaling --min-nodes "$CPU_MIN_NODES" --max-nodes "$CPU_MAX_NODES"
fi

note "GPU pool $GPU_POOL ($GPU_COUNT x $GPU_TYPE per node, $GPU_MIN_NODES to $GPU_MAX_NODES nodes)"
if exists gcloud container node-pools describe "$GPU_POOL" --cluster "$CLUSTER" "${where[@]}"; then
  note "node pool $GPU_POOL exists"
else
  run gcloud container node-pools create "$GPU_POOL" --cluster "$CLUSTER" "${where[@]}" \
    --machine-type "$GPU_MACHINE" \
    --accelerator "type=${GPU_TYPE},count=${GPU_COUNT},gpu-driver-version=disabled" \
    --workload-metadata GKE_METADATA --num-nodes "$GPU_MIN_NODES" \
    --enable-autoscaling --min-nodes "$GPU_MIN_NODES" --max-nodes "$GPU_MAX_NODES"
fi

if [[ "$PRIVATE_NODES" == true ]]; then
  note "Cloud NAT, so private nodes can pull public images"
  network="$(query gcloud container clusters describe "$CLUSTER" "${where[@]}" --format 'value(network)' || true)"
  network="${network:-default}"
  if exists gcloud compute routers describe "$ROUTER" --project "$PROJECT" --region "$REGION"; then
    note "router $ROUTER exists"
  else
    run gcloud compute routers create "$ROUTER" --project "$PROJECT" --region "$REGION" --network "$network"
  fi
  if exists gcloud compute routers nats describe "$NAT" --router "$ROUTER" --project "$PROJECT" --region "$REGION"; then
    note "NAT $NAT exists"
  else
    run gcloud compute routers nats create "$NAT" --router "$ROUTER" --project "$PROJECT" --region "$REGION" \
      --auto-allocate-nat-external-ips --nat-all-subnet-ip-ranges
  fi
fi

note "kubectl credentials and the NVIDIA driver DaemonSet"
run gcloud container clusters get-credentials "$CLUSTER" "${where[@]}"
if exists "${KUBECTL[@]}" --namespace kube-system get daemonset nvidia-driver-installer; then
  note "the NVIDIA driver DaemonSet exists"
else
  run "${KUBECTL[@]}" apply -f "$GPU_DRIVER_DAEMONSET"
fi

note "buckets"
for bucket in "$DATA_BUCKET" "$CHECKPOINT_BUCKET"; do
  if exists gcloud storage buckets describe "gs://$bucket" --project "$PROJECT"; then
    note "bucket gs://$bucket exists"
  else
    run gcloud storage buckets create "gs://$bucket" --project "$PROJECT" --location "$REGION" \
      --uniform-bucket-level-access --public-access-prevention
  fi
done

note "Artifact Registry repository $REGISTRY for the serving image"
if exists gcloud artifacts repositories describe "$REGISTRY" --project "$PROJECT" --location "$REGION"; then
  note "repository $REGISTRY exists"
else
  run gcloud artifacts repositories create "$REGISTRY" --project "$PROJECT" --location "$REGION" \
    --repository-format docker --description "dlptui serving images"
fi
note "  push to: ${REGION}-docker.pkg.dev/${PROJECT}/${REGISTRY}/dlptui-serving:<tag>"

note "firewall: let the control plane reach Istio's webhook (tcp:15017) on the nodes"
# GKE names its control-plane rule gke-<cluster>-<hash>-master (private nodes only); its
# source range and node tag are the ones Istio's rule needs. Nothing is typed by hand.
pattern="^gke-${CLUSTER}-[0-9a-f]+-master\$"
master_rule="$(query gcloud compute firewall-rules list --project "$PROJECT" \
  --filter "name~${pattern}" --format 'value(name)' | head -n1 || true)"
if [[ -z "$master_rule" ]]; then
  note "no firewall rule matches $pattern (public nodes, or the cluster is not created yet): nothing to open"
elif exists gcloud compute firewall-rules describe "$ISTIO_FIREWALL_RULE" --project "$PROJECT"; then
  note "firewall rule $ISTIO_FIREWALL_RULE exists"
else
  field() {
    query gcloud compute firewall-rules describe "$master_rule" --project "$PROJECT" --format "value($1)"
  }
  run gcloud compute firewall-rules create "$ISTIO_FIREWALL_RULE" --project "$PROJECT" \
    --network "$(field 'network.basename()')" --direction INGRESS --allow tcp:15017 \
    --source-ranges "$(field 'sourceRanges.list()')" --target-tags "$(field 'targetTags.list()')"
fi

"$INFRA_DIR/workload-identity.sh" "$@"
note "done: next, infra/secrets/create-secrets.sh and infra/helm/install.sh (docs/cluster.md)"
