"""`dlptui deployment gate` and the gate runner: a deployment's canaries aborted, stepped or promoted by a policy.

    dlptui deploy MODEL@V --canary V2 --traffic 10 --gate auto|FILE   gate the canary from the start
    dlptui deployment gate NAME                      the gate's policy and what it would do now
    dlptui deployment gate NAME auto|off|FILE        gate the deployment's canaries by a policy (off: no gate)
    dlptui gate run                                  the home's gate runner (started by dlptui itself)
"""

from __future__ import annotations

from dlptui.cli.completers import deployment_names
from dlptui.cli.output import emit_json, say


def register(sub) -> None:
    g = sub.add_parser("gate", help="the home's gate runner, which judges gated canaries (started by dlptui itself)")
    verbs = g.add_subparsers(dest="verb", metavar="VERB", required=True)
    r = verbs.add_parser("run", help="look at every gated canary until none is left (what dlptui starts in the background)")
    r.set_defaults(func=run)


def register_verb(verbs) -> None:
    """`deployment gate NAME [POLICY]`, under the deployment noun."""
    v = verbs.add_parser("gate", help="show or set the policy that aborts, steps or promotes the deployment's canaries")
    v.add_argument("name", metavar="NAME").completer = deployment_names
    v.add_argument("policy", nargs="?", metavar="auto|off|FILE",
                   help="auto: error rate, p50 and p95 latency guarded, steps 10, 25, 50, 100 %%; a .toml or .yaml "
                   "policy file; off removes the gate (without it: show the gate and what it would do now)")
    v.add_argument("--json", action="store_true", help="print JSON")
    v.set_defaults(func=show_or_set)


def show_or_set(args, platform) -> int:
    from dlptui.actions import gate

    if args.policy is not None:
        deployment = gate.attach(platform, args.name, args.policy)
        if not args.json:
            say(f"{deployment.name} has no gate now; its canary stays where a person puts it." if deployment.gate is None
                else f"{deployment.name}'s canaries are gated: {gate.summary(gate.policy(deployment))}.")
    if args.json:
        deployment = platform.serving.get_deployment(args.name)
        taken = gate.look(platform, args.name, act=False) if deployment.gate else None
        emit_json({"name": args.name, "gate": deployment.gate, "next": taken.action.to_dict() if taken else None,
                   "runner": gate.runner_state(platform)})
        return 0
    if args.policy is None:
        lines = gate.lines(platform, args.name)
        for line in lines or [f"{args.name} has no gate; `dlptui deployment gate {args.name} auto` gates its canaries."]:
            say(line)
    return 0


def run(args, platform) -> int:
    from dlptui.actions import gate
    from dlptui.platform import gate_runner

    return gate_runner.serve(platform.config, lambda said: gate.look_all(platform, said))
