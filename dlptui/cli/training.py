"""`dlptui train`, `experiments`, `experiment`, `metrics`, `logs`: the Training part, headless.

    dlptui train [--config FILE] [--data REPO@REF] [--name N] [--wait]
    dlptui experiments
    dlptui experiment ID                  one experiment and its checkpoints
    dlptui experiment pause|resume|kill ID
    dlptui metrics ID [--follow]
    dlptui logs ID [--follow]

With `--json` a listing is a JSON array of objects with the dataclass fields; a followed
stream prints one JSON value per line (JSON Lines) as it arrives.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from dlptui.cli.models import require_writable
from dlptui.cli.output import emit_json, emit_table, human_time
from dlptui.errors import InvalidInput
from dlptui.platform.model import DataRef, Experiment, ExperimentState

VERBS = ("pause", "resume", "kill")
POLL_S = 0.5


def default_config() -> Path:
    from dlptui.actions.defaults import demo_config

    return demo_config()


def register(sub) -> None:
    t = sub.add_parser("train", help="start an experiment of the Dogs-vs-Cats trial")
    t.add_argument("--config", type=Path, default=None, help="the experiment YAML file (default trial/local.yaml)")
    t.add_argument("--data", help="the data to train on, REPO@BRANCH_OR_COMMIT (default: the config's, dogs-and-cats@master)")
    t.add_argument("--name", help="a name for the experiment (default: the config's)")
    t.add_argument("--wait", action="store_true", help="follow it to the end; exit non-zero unless it completes")
    t.add_argument("--json", action="store_true", help="print a JSON object")
    t.set_defaults(func=train)

    ls = sub.add_parser("experiments", help="the experiments, their states, progress and data commits")
    ls.add_argument("--json", action="store_true", help="print a JSON array")
    ls.set_defaults(func=list_experiments)

    e = sub.add_parser(
        "experiment",
        help="one experiment, or pause|resume|kill it",
        usage="dlptui experiment [pause|resume|kill] ID [--json]",
    )
    e.add_argument("words", nargs="+", metavar="[pause|resume|kill] ID")
    e.add_argument("--json", action="store_true", help="print a JSON object")
    e.set_defaults(func=experiment)

    m = sub.add_parser("metrics", help="an experiment's training and validation metrics")
    m.add_argument("id", metavar="ID")
    m.add_argument("--follow", "-f", action="store_true", help="keep printing new points until the experiment ends")
    m.add_argument("--json", action="store_true", help="print a JSON array (JSON Lines with --follow)")
    m.set_defaults(func=metrics)

    lg = sub.add_parser("logs", help="an experiment's log")
    lg.add_argument("id", metavar="ID")
    lg.add_argument("--follow", "-f", action="store_true", help="keep printing new lines until the experiment ends")
    lg.add_argument("--json", action="store_true", help="print a JSON array of lines (JSON Lines with --follow)")
    lg.set_defaults(func=logs)


def parse_data(text: str | None) -> DataRef | None:
    if text is None:
        return None
    repo, at, ref = text.partition("@")
    if not at or not repo or not ref:
        raise InvalidInput(f"--data {text!r} is not REPO@BRANCH_OR_COMMIT; give e.g. dogs-and-cats@master.")
    return DataRef(repo=repo, commit=ref)


def _short(commit: str | None) -> str | None:
    return commit[:12] if commit else None


COLUMNS = [
    ("ID", lambda e: e.id),
    ("NAME", lambda e: e.name),
    ("STATE", lambda e: e.state.value),
    ("BATCHES", lambda e: f"{e.batches_done}/{e.max_batches}"),
    ("BEST ACC", lambda e: None if e.best_accuracy is None else f"{e.best_accuracy:.3f}"),
    ("DATA", lambda e: f"{e.data_repo}@{_short(e.data_commit)}" if e.data_repo else None),
    ("CREATED", lambda e: human_time(e.created)),
]


def list_experiments(args, platform) -> int:
    emit_table(platform.training.list_experiments(), COLUMNS, args.json)
    return 0


def _show(experiment: Experiment, platform) -> None:
    emit_table([experiment], COLUMNS, False)
    if experiment.error:
        print(f"error: {experiment.error}")
    for c in platform.training.checkpoints(experiment.id):  # plain lines: a uuid is never cut short
        scores = "  ".join(f"{k} {v:.4f}" for k, v in sorted(c.metrics.items()))
        print(f"checkpoint {c.uuid}  batch {c.batch:<6} {human_time(c.created)}  {scores}".rstrip())


def experiment(args, platform) -> int:
    words = args.words
    if len(words) == 1 and words[0] not in VERBS:
        found = platform.training.get_experiment(words[0])
    elif len(words) == 2 and words[0] in VERBS:
        require_writable(platform, f"`experiment {words[0]}`")
        found = getattr(platform.training, words[0])(words[1])
    else:
        raise InvalidInput("Give an experiment id, or pause, resume or kill and an id: `dlptui experiment pause 3`.")
    if args.json:
        emit_json(found)
    else:
        _show(found, platform)
    return 0


def train(args, platform) -> int:
    require_writable(platform, "`train`")
    config = args.config or default_config()
    started = platform.training.create_experiment(config, data=parse_data(args.data), name=args.name)
    if not args.wait:
        if args.json:
            emit_json(started)
        else:
            print(f"Experiment {started.id} ({started.name}) is {started.state.value} on {started.data_repo}@{_short(started.data_commit)}; "
                  f"follow it with `dlptui metrics {started.id} --follow`.")
        return 0
    try:
        final = _wait(platform, started, live=sys.stdout.isatty() and not args.json)
    except KeyboardInterrupt:
        print(f"dlptui: stopped waiting; experiment {started.id} keeps training (`dlptui experiment pause {started.id}` pauses it).",
              file=sys.stderr)
        return 130
    if args.json:
        emit_json(final)
    else:
        _show(final, platform)
    if final.state is ExperimentState.COMPLETED:
        return 0
    print(f"dlptui: experiment {final.id} ended {final.state.value}" + (f": {final.error}" if final.error else "."), file=sys.stderr)
    return 1


def _done(experiment: Experiment) -> bool:
    return experiment.state.terminal or experiment.state is ExperimentState.PAUSED


def _wait(platform, experiment: Experiment, live: bool) -> Experiment:
    """Poll until the experiment ends (or is paused); with `live`, a progress bar and the latest metrics."""
    training = platform.training
    if not live:
        while not _done(experiment):
            time.sleep(POLL_S)
            experiment = training.get_experiment(experiment.id)
        return experiment
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    latest: dict[str, float] = {}
    cursor = 0
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("{task.fields[metrics]}"))
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task(f"experiment {experiment.id}", total=experiment.max_batches or None, metrics="")
        while True:
            points, cursor = training.metrics(experiment.id, cursor)
            latest.update({p.name: p.value for p in points})
            shown = "  ".join(f"{k} {v:.4f}" for k, v in sorted(latest.items()))
            bar.update(task, completed=experiment.batches_done, metrics=f"{experiment.state.value}  {shown}")
            if _done(experiment):
                return experiment
            time.sleep(POLL_S)
            experiment = training.get_experiment(experiment.id)


def _follow(poll, finished, emit, follow: bool) -> None:
    """Emit what `poll(cursor)` returns; with `follow`, keep polling until `finished()` and drained."""
    cursor = 0
    while True:
        ended = finished() if follow else True  # asked before the poll, so nothing written at the end is lost
        items, cursor = poll(cursor)
        for item in items:
            emit(item)
        sys.stdout.flush()
        if ended and not items:
            return
        if not items:
            time.sleep(POLL_S)


def metrics(args, platform) -> int:
    training = platform.training
    training.get_experiment(args.id)  # an unknown id fails here, in one sentence
    if not args.follow:
        points, _ = training.metrics(args.id)
        emit_table(
            points,
            [("BATCH", lambda p: p.batch), ("GROUP", lambda p: p.group), ("NAME", lambda p: p.name),
             ("VALUE", lambda p: f"{p.value:.6g}"), ("TIME", lambda p: human_time(p.time))],
            args.json,
        )
        return 0

    def emit(point) -> None:
        if args.json:
            print(json.dumps({"batch": point.batch, "group": point.group, "name": point.name, "value": point.value, "time": point.time}))
        else:
            print(f"{point.batch:>7}  {point.group:<10}  {point.name:<16}  {point.value:.6g}")

    _follow(lambda c: training.metrics(args.id, c), lambda: _done(training.get_experiment(args.id)), emit, True)
    return 0


def logs(args, platform) -> int:
    training = platform.training
    training.get_experiment(args.id)
    if args.json and not args.follow:
        emit_json(_all_lines(training, args.id))
        return 0
    emit = (lambda line: print(json.dumps(line))) if args.json else print
    _follow(lambda c: training.logs(args.id, c), lambda: _done(training.get_experiment(args.id)), emit, args.follow)
    return 0


def _all_lines(training, experiment_id: str) -> list[str]:
    lines: list[str] = []
    cursor = 0
    while True:
        more, cursor = training.logs(experiment_id, cursor)
        if not more:
            return lines
        lines += more
