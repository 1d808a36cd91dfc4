"""`dlptui infra check`: validate infra/ offline and list what a real deploy still lacks.

Exit status 1 when a validation fails; a missing tool or environment variable is only a
warning (exit 0). `--json` prints a list of {check, ok, detail, warning}.
"""

from __future__ import annotations

import sys
from pathlib import Path

from dlptui.cli.output import emit_table, say


def register(sub) -> None:
    p = sub.add_parser("infra", help="the cluster profile's infrastructure files (infra/)")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    check = verbs.add_parser(
        "check",
        help="validate every manifest, Helm values file and script under infra/, offline",
        description="YAML, Kubernetes schemas, the SeldonDeployment against its CRD, shellcheck; "
        "then the tools and environment variables a real deploy needs (warnings only).",
    )
    check.add_argument("--json", action="store_true", help="print a JSON array of {check, ok, detail, warning}")
    check.add_argument("--root", type=Path, help="a folder holding infra/ (default: the infra/ dlptui ships, or DLPTUI_INFRA_DIR)")
    check.set_defaults(func=infra_check)


def _cluster_settings(platform):
    """The active profile's cluster settings, else those of the profile named `cluster`, if any."""
    from dlptui.config import load_config
    from dlptui.errors import PlatformError

    if platform.config.kind == "cluster":
        return platform.config.cluster
    try:
        config = load_config(profile="cluster")
    except PlatformError:
        return None
    return config.cluster if config.kind == "cluster" else None


def infra_check(args, platform) -> int:
    from dlptui.infra_check.checks import failed, run_checks

    checks = run_checks(args.root, profile=_cluster_settings(platform))
    columns = [
        ("CHECK", lambda c: c.check),
        ("RESULT", lambda c: "ok" if c.ok else ("warning" if c.warning else "FAILED")),
        ("DETAIL", lambda c: c.detail),
    ]
    emit_table(checks, columns, args.json, title="dlptui infra check")
    bad = failed(checks)
    if not args.json:
        warnings = sum(1 for c in checks if c.warning and not c.ok)
        summary = f"{len(checks)} checks: {len(bad)} failed, {warnings} warning(s) for a real deploy."
        say(summary, file=sys.stderr if bad else sys.stdout)
    return 1 if bad else 0
