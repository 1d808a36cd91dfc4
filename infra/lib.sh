# shellcheck shell=bash disable=SC2034  # a library: the scripts that source it use these names
# Shared by the infra scripts: the names every step uses, each overridable from the
# environment, and the two ways a step touches the world.
#
#   run CMD...    a command that changes something: printed as `+ CMD`, and run unless --dry-run
#   query CMD...  a read-only command: runs in both modes (printed as `? CMD` under --dry-run),
#                 its errors hidden; a step uses it to see whether its thing exists already,
#                 so running a script twice does no harm.
#
# Nothing here holds a secret: credentials come from the environment (see infra/secrets/).

DRY_RUN="${DRY_RUN:-0}"

for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY_RUN=1 ;;
    -h | --help)
      awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
      exit 0
      ;;
    *)
      echo "$(basename "$0"): unknown argument '$arg'; the only option is --dry-run." >&2
      exit 2
      ;;
  esac
done

# The plan goes to fd 3 (the caller's stdout), so a step can capture a query's output
# while its ? line still shows.
exec 3>&1

show() {
  local mark="$1"
  shift
  {
    printf '%s' "$mark"
    printf ' %q' "$@"
    printf '\n'
  } >&3
}

run() {
  show + "$@"
  [[ "$DRY_RUN" == 1 ]] || "$@"
}

query() {
  [[ "$DRY_RUN" == 1 ]] && show '?' "$@"
  command -v "$1" >/dev/null || return 1
  "$@" 2>/dev/null
}

# exists CMD...: true when the read-only CMD succeeds (the thing is there).
exists() { query "$@" >/dev/null; }

note() { printf '# %s\n' "$*"; }

die() {
  printf '%s: %s\n' "$(basename "$0")" "$*" >&2
  exit 1
}

need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || [[ "$DRY_RUN" == 1 ]] ||
      die "$tool is not on PATH; install it (see docs/cluster.md) and run again."
  done
}

# --- names, zones and sizes (override any of them in the environment) -------------------
# The namespaces are fixed: infra/namespaces.yaml and infra/istio/gateway.yaml name them.
PACHYDERM_NAMESPACE=pachyderm
DETERMINED_NAMESPACE=determined
SELDON_NAMESPACE=seldon
SELDON_SYSTEM_NAMESPACE=seldon-system
ISTIO_NAMESPACE=istio-system
INFRA_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KSA_NAME="${KSA_NAME:-dlp-storage}"

# kubectl and helm aimed at one context, so no step touches another cluster by accident:
# KUBE_CONTEXT if set, else the GKE context of $CLUSTER (cloud_names), else the current one.
KUBECTL=(kubectl)
HELM=(helm)
use_context() {
  KUBE_CONTEXT="$1"
  KUBECTL=(kubectl --context "$KUBE_CONTEXT")
  HELM=(helm --kube-context "$KUBE_CONTEXT")
}
[[ -z "${KUBE_CONTEXT:-}" ]] || use_context "$KUBE_CONTEXT"

# The Google Cloud names; a script that needs them calls this first.
cloud_names() {
  if [[ -z "${PROJECT:-}" ]]; then
    PROJECT="$(query gcloud config get-value project | tail -n1 || true)"
    [[ "$PROJECT" == "(unset)" ]] && PROJECT=""
  fi
  if [[ -z "$PROJECT" ]]; then
    [[ "$DRY_RUN" == 1 ]] || die "no Google Cloud project: set PROJECT or run 'gcloud config set project ID'."
    PROJECT="my-project"
  fi
  REGION="${REGION:-us-central1}"
  ZONE="${ZONE:-${REGION}-a}"
  CLUSTER="${CLUSTER:-dlp}"
  DATA_BUCKET="${DATA_BUCKET:-${PROJECT}-dlp-data}"
  CHECKPOINT_BUCKET="${CHECKPOINT_BUCKET:-${PROJECT}-dlp-checkpoints}"
  GSA_NAME="${GSA_NAME:-dlp-storage}"
  GSA_EMAIL="${GSA_NAME}@${PROJECT}.iam.gserviceaccount.com"
  SERVING_GSA_NAME="${SERVING_GSA_NAME:-dlp-serving}"  # the serving pods': reads checkpoints only
  SERVING_GSA_EMAIL="${SERVING_GSA_NAME}@${PROJECT}.iam.gserviceaccount.com"
  use_context "${KUBE_CONTEXT:-gke_${PROJECT}_${ZONE}_${CLUSTER}}"
  export PROJECT REGION ZONE CLUSTER DATA_BUCKET CHECKPOINT_BUCKET GSA_NAME GSA_EMAIL SERVING_GSA_NAME SERVING_GSA_EMAIL KUBE_CONTEXT
}
