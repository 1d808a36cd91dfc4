#!/usr/bin/env bash
# Install dlptui as a user does and run it outside the checkout.
#
#   bash scripts/check-install.sh            # or: make check-install
#
# 1. Builds a wheel (`pip wheel --no-deps`) from a copy of the checkout's files (tracked and
#    untracked, not ignored), so no build/ folder of the checkout leaks stale files into it.
# 2. base:    a fresh venv with the wheel alone: `dlptui --help`, no torch.
# 3. cluster: a fresh venv with `wheel[cluster]`: torch must not import, and
#             `dlptui --profile cluster status` against dead addresses prints one line per part,
#             exits 5 (unreachable) or 1, and no traceback.
# 4. local:   a fresh venv with `wheel[local]`, from an empty folder with a fresh HOME and
#             DLPTUI_HOME: data sample, train --wait, models register, models promote,
#             deploy --wait, predict --json, lineage, undeploy. With COMPARE (default: the
#             checkout's .venv/bin/dlptui) the same commands run from the checkout too and
#             the two outputs must have the same shape (ids, times, ports, numbers masked).
#
# Every install takes its versions from the lock (`pip install -c requirements.lock`).
# The venvs (about 6 GB for [local]) and the deployments are removed at the end, also on failure.
#
# Settings (environment):
#   PARTS="base cluster local"   which checks to run
#   PYTHON=python3.11            the interpreter of the fresh venvs
#   LOCK=<checkout>/requirements.lock
#   WORK=<new folder in /tmp>    where the wheel, the venvs and the empty folders go
#   CONFIG=                      the trial config of `dlptui train` (default: the shipped local.yaml);
#                                CONFIG=tiny uses the installed trial's tiny.yaml (seconds)
#   COMPARE=<checkout>/.venv/bin/dlptui   a dlptui to compare with; COMPARE= skips it
#   PHOTO=                       an extra image to predict (e.g. a real cat photo)
#   KEEP=1                       keep WORK (venvs included) for a look afterwards
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PARTS="${PARTS:-base cluster local}"
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
LOCK="$(realpath "${LOCK:-$ROOT/requirements.lock}")"
WORK="${WORK:-$(mktemp -d /tmp/dlptui-check.XXXXXX)}"
CONFIG="${CONFIG:-}"
COMPARE="${COMPARE-$ROOT/.venv/bin/dlptui}"
PHOTO="${PHOTO:-}"
KEEP="${KEEP:-}"
PIP_QUIET=(-q --disable-pip-version-check)

mkdir -p "$WORK"
WORK="$(realpath "$WORK")"
# failures and deployments go to files: most checks run in subshells (their own cd and env)
: >"$WORK/failures"
: >"$WORK/deployed"   # "dlptui-binary|home" lines to undeploy on exit

say() { printf '\n== %s\n' "$*"; }
fail() { echo "FAIL: $*"; echo "$*" >>"$WORK/failures"; }
no_torch() {  # no_torch VENV : torch must not be importable there
    if "$1/bin/python" -c "import torch" 2>/dev/null; then fail "torch imports in $(basename "$1")"; else echo "  import torch fails in $(basename "$1"), as it should"; fi
}

# run NAME SECONDS CMD... : runs CMD, times it, keeps stdout/stderr/rc under $OUTDIR/NAME.*
run() {
    local name=$1 limit=$2; shift 2
    local start=$SECONDS rc
    timeout "$limit" "$@" >"$OUTDIR/$name.out" 2>"$OUTDIR/$name.err"
    rc=$?
    echo "$rc" >"$OUTDIR/$name.rc"
    printf '  %-10s rc=%-3s %4ss  %s\n' "$name" "$rc" "$((SECONDS - start))" "$*"
    if grep -q '^Traceback' "$OUTDIR/$name.err" "$OUTDIR/$name.out"; then
        fail "$name printed a traceback (see $OUTDIR/$name.err)"
    fi
    return "$rc"
}

cleanup() {  # undeploy what is still deployed, then remove the venvs (and WORK, when all passed)
    local pair bin home
    while IFS= read -r pair; do
        [ -n "$pair" ] || continue
        bin=${pair%%|*}; home=${pair#*|}
        HOME=$home/user DLPTUI_HOME=$home XDG_CONFIG_HOME=$home/config "$bin" undeploy dogcat-deploy --yes >/dev/null 2>&1 ||
            HOME=$home/user DLPTUI_HOME=$home XDG_CONFIG_HOME=$home/config "$bin" undeploy dogcat-deploy </dev/null >/dev/null 2>&1 || true
    done <"$WORK/deployed"
    if [ -n "$KEEP" ]; then
        echo "kept $WORK"
    elif [ -s "$WORK/failures" ] || [ -z "${FINISHED:-}" ]; then
        rm -rf "$WORK"/venv-*; echo "outputs kept in $WORK (venvs removed)"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

new_venv() {  # new_venv NAME SPEC : a fresh venv with SPEC installed under the lock
    local venv="$WORK/venv-$1" start=$SECONDS
    "$PYTHON" -m venv "$venv" || return 1
    if ! "$venv/bin/pip" install "${PIP_QUIET[@]}" -c "$LOCK" "$2" >"$WORK/install-$1.log" 2>&1; then
        tail -20 "$WORK/install-$1.log"; return 1
    fi
    printf '  installed %s in %ss (%s)\n' "$2" "$((SECONDS - start))" "$(du -sh "$venv" | cut -f1)"
    "$venv/bin/pip" check >/dev/null || fail "pip check in venv-$1: $("$venv/bin/pip" check | head -3)"
}

# console NAME VENV [PROFILE] : the console, headless (Textual's run_test), paints its first frames and quits
console() {
    local name=$1 venv=$2; shift 2
    run "$name" 120 "$venv/bin/python" - "$@" <<'EOF'
import asyncio, sys
from dlptui.config import load_config
from dlptui.tui.app import DlpApp

async def main() -> None:
    config = load_config(profile=sys.argv[1]) if len(sys.argv) > 1 else load_config()
    app = DlpApp(config)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause(2.0)
        svg = app.export_screenshot()
        assert "dlptui" in svg, "no dlptui header on the first frame"
        print(f"console painted {type(app.screen).__name__} ({len(svg)} bytes of SVG); torch loaded: {'torch' in sys.modules}")
        await pilot.press("q")

asyncio.run(main())
EOF
}

# ---------------------------------------------------------------------------- the wheel
say "wheel from $ROOT"
SRC="$WORK/src"
mkdir -p "$SRC"
if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
    (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
        [ -e "$f" ] && printf '%s\0' "$f"; done | xargs -0 cp --parents -t "$SRC")
else
    (cd "$ROOT" && tar --exclude=.venv --exclude=build --exclude='*.egg-info' --exclude=__pycache__ -cf - .) | tar -xf - -C "$SRC"
fi
if ! { "$PYTHON" -m venv "$WORK/venv-build" &&
       "$WORK/venv-build/bin/pip" wheel "${PIP_QUIET[@]}" --no-deps -w "$WORK/wheelhouse" "$SRC"; } >"$WORK/wheel.log" 2>&1; then
    tail -20 "$WORK/wheel.log"; fail "the wheel does not build"; exit 1
fi
WHEEL="$(ls "$WORK"/wheelhouse/dlptui-*.whl)"
rm -rf "$WORK/venv-build"
echo "  $WHEEL ($(du -h "$WHEEL" | cut -f1))"

# one fresh user per run: HOME, DLPTUI_HOME and the config dir in an empty folder, no DLPTUI_* of ours
fresh_env() {  # fresh_env DIR : exports a user whose every folder is under DIR
    mkdir -p "$1/user"
    export HOME="$1/user" DLPTUI_HOME="$1" XDG_CONFIG_HOME="$1/config" XDG_DATA_HOME="$1/user/.local/share"
    unset DLPTUI_PROFILE DLPTUI_CONFIG DLPTUI_TRIAL_DIR DLPTUI_SERVING_DIR DLPTUI_INFRA_DIR KUBECONFIG PACHD_ADDRESS DET_MASTER
}

# ---------------------------------------------------------------------------- base
if [[ " $PARTS " == *" base "* ]]; then
    say "base: $WHEEL alone"
    if new_venv base "$WHEEL"; then
        OUTDIR="$WORK/out-base"; mkdir -p "$OUTDIR" "$WORK/empty-base"
        (
            cd "$WORK/empty-base" && fresh_env "$WORK/empty-base/home"
            run help 60 "$WORK/venv-base/bin/dlptui" --help || fail "dlptui --help in a base install"
            no_torch "$WORK/venv-base"
        )
        grep -q "usage: dlptui" "$WORK/out-base/help.out" 2>/dev/null || fail "base: no usage from dlptui --help"
    else
        fail "base install"
    fi
fi

# ---------------------------------------------------------------------------- cluster
if [[ " $PARTS " == *" cluster "* ]]; then
    say "cluster: ${WHEEL}[cluster]"
    if new_venv cluster "${WHEEL}[cluster]"; then
        OUTDIR="$WORK/out-cluster"; mkdir -p "$OUTDIR" "$WORK/empty-cluster"
        (
            cd "$WORK/empty-cluster" && fresh_env "$WORK/empty-cluster/home"
            # nothing listens on port 9 of this host; no kubeconfig at all
            export KUBECONFIG="$PWD/no-kubeconfig" PACHD_ADDRESS=127.0.0.1:9 DET_MASTER=http://127.0.0.1:9
            no_torch "$WORK/venv-cluster"
            run status 120 "$WORK/venv-cluster/bin/dlptui" --profile cluster status
            # a kubeconfig whose API server is dead (nothing listens on port 9)
            printf '%s\n' 'apiVersion: v1' 'kind: Config' 'current-context: dead' \
                'clusters: [{name: dead, cluster: {server: "https://127.0.0.1:9"}}]' \
                'users: [{name: dead, user: {token: none}}]' \
                'contexts: [{name: dead, context: {cluster: dead, user: dead}}]' >dead-kubeconfig
            KUBECONFIG="$PWD/dead-kubeconfig" run status-dead 120 "$WORK/venv-cluster/bin/dlptui" --profile cluster status
            console console "$WORK/venv-cluster" cluster || fail "the console on the cluster profile"
            true
        )
        for name in status status-dead; do
            rc=$(cat "$WORK/out-cluster/$name.rc")
            case $rc in 5|1) echo "  $name exit $rc (unreachable parts)";; *) fail "cluster $name exited $rc (want 5 or 1)";; esac
            sed 's/^/    /' "$WORK/out-cluster/$name.out" "$WORK/out-cluster/$name.err"
            # one line for each part
            [ "$(grep -c -E '^ *(cluster|data|training|registry|serving) ' "$WORK/out-cluster/$name.out")" -eq 5 ] ||
                fail "cluster $name: not one line for each of the five parts"
        done
        sed 's/^/    /' "$WORK/out-cluster/console.out" "$WORK/out-cluster/console.err" | tail -5
        grep -q "torch loaded: False" "$WORK/out-cluster/console.out" || fail "the cluster console loaded torch (or did not paint)"
    else
        fail "cluster install"
    fi
fi

# ---------------------------------------------------------------------------- local
workflow() {  # workflow DLPTUI DIR : the README's first run, from DIR (empty), outputs under $OUTDIR
    local D=$1 cfg=()
    mkdir -p "$2" && cd "$2" && fresh_env "$2/home" || return 1
    case $CONFIG in
        "") ;;
        tiny) cfg=(--config "$("$(dirname "$D")/python" -c 'import dlptui.resources as r; print(r.trial_dir() / "tiny.yaml")')") ;;
        *) cfg=(--config "$CONFIG") ;;
    esac
    run sample 120 "$D" data sample || return 1
    run train 900 "$D" train --wait "${cfg[@]}" || return 1
    run register 60 "$D" models register --experiment 1 --model dogcat-model || return 1
    run promote 60 "$D" models promote dogcat-model 1 --to production || return 1
    echo "$D|$2/home" >>"$WORK/deployed"
    run deploy 300 "$D" deploy dogcat-model@production --name dogcat-deploy --wait || return 1
    local cat dog
    cat=$("$D" data ls dogs-and-cats@master /eval | grep -o '/eval/cat\.[0-9]*\.jpg' | head -1)
    dog=$("$D" data ls dogs-and-cats@master /eval | grep -o '/eval/dog\.[0-9]*\.jpg' | head -1)
    run get 60 "$D" data get "dogs-and-cats@master:$cat" -o cat.jpg || return 1
    "$D" data get "dogs-and-cats@master:$dog" -o dog.jpg >/dev/null || return 1
    local images=(cat.jpg dog.jpg)
    [ -n "$PHOTO" ] && cp "$PHOTO" photo.jpg && images+=(photo.jpg)
    run predict 120 "$D" predict "${images[@]}" --json || return 1
    run lineage 60 "$D" lineage dogcat-deploy || return 1
    if "$D" undeploy --help 2>/dev/null | grep -q -- --yes; then
        run undeploy 120 "$D" undeploy dogcat-deploy --yes || return 1
    else
        run undeploy 120 "$D" undeploy dogcat-deploy </dev/null || return 1
    fi
    run after 60 "$D" deployments || return 1
}

# the shape of an output: ids, times, ports, paths and numbers masked, runs of spaces as one
shape() {
    sed -E -e "s#$1#<home>#g" \
        -e 's/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/<uuid>/g' \
        -e 's/@[0-9a-f]{8,}/@<commit>/g' -e 's/\b[0-9a-f]{12,}\b/<hex>/g' \
        -e 's/[0-9]{4}-[0-9]{2}-[0-9]{2}([ T][0-9]{2}:[0-9]{2}(:[0-9]{2})?)?/<time>/g' \
        -e 's/127\.0\.0\.1:[0-9]+/127.0.0.1:<port>/g' \
        -e 's/[0-9]+\.[0-9]+/<n>/g' -e 's/ +/ /g' -e 's/ $//' "$2"
}

if [[ " $PARTS " == *" local "* ]]; then
    say "local: ${WHEEL}[local]"
    if new_venv local "${WHEEL}[local]"; then
        OUTDIR="$WORK/out-installed"; mkdir -p "$OUTDIR"
        echo "  installed wheel, from $WORK/empty-installed"
        (workflow "$WORK/venv-local/bin/dlptui" "$WORK/empty-installed") || fail "the workflow from the installed wheel"
        (cd "$WORK/empty-installed" && fresh_env "$WORK/empty-installed/home" && console console "$WORK/venv-local") ||
            fail "the console from the installed wheel"
        sed 's/^/    /' "$OUTDIR/console.out" "$OUTDIR/console.err" | tail -5
        sed 's/^/    /' "$OUTDIR/predict.out" 2>/dev/null | head -40
        if [ -n "$COMPARE" ] && [ -x "$COMPARE" ]; then
            OUTDIR="$WORK/out-checkout"; mkdir -p "$OUTDIR"
            echo "  the checkout ($COMPARE), from $WORK/empty-checkout"
            (workflow "$COMPARE" "$WORK/empty-checkout") || fail "the workflow from the checkout"
            compared=0
            for f in "$WORK"/out-installed/*.out; do
                name=$(basename "$f" .out)
                [ "$name" = console ] && continue
                compared=$((compared + 1))
                if ! diff <(shape "$WORK/empty-installed/home" "$f") \
                          <(shape "$WORK/empty-checkout/home" "$WORK/out-checkout/$name.out") >"$WORK/diff-$name.txt"; then
                    fail "$name: the installed wheel and the checkout differ"; sed 's/^/    /' "$WORK/diff-$name.txt" | head -20
                fi
                [ "$(cat "$WORK/out-installed/$name.rc")" = "$(cat "$WORK/out-checkout/$name.rc" 2>/dev/null)" ] ||
                    fail "$name: exit codes differ (installed $(cat "$WORK/out-installed/$name.rc"), checkout $(cat "$WORK/out-checkout/$name.rc" 2>/dev/null))"
            done
            echo "  compared the outputs of $compared commands: same shape"
        fi
    else
        fail "local install"
    fi
fi

say "result"
FINISHED=1
if [ -s "$WORK/failures" ]; then
    sed 's/^/  FAIL: /' "$WORK/failures"
    exit 1
fi
echo "OK: $PARTS"
