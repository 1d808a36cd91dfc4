"""`dlptui train` and `dlptui experiment ...`: the Training part, headless.

    dlptui train [--config FILE] [--data REPO@REF] [--name N] [--from MODEL@VERSION|CHECKPOINT] [--job J] [--coalesce KEY] [--wait]
    dlptui experiment list
    dlptui experiment describe ID          (also `experiment ID`) one experiment and its checkpoints
    dlptui experiment pause|resume ID
    dlptui experiment kill ID [--yes]      asks on a terminal
    dlptui experiment metrics ID [--follow]
    dlptui experiment logs ID [--follow]
    dlptui trials ID                       the trials of an experiment's search
    dlptui trial describe|metrics|logs TRIAL [--follow]

With `--json` a listing is a JSON array of objects with the dataclass fields; a followed
stream prints one JSON value per line (JSON Lines) as it arrives.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from dlptui import text
from dlptui.actions import refs, training
from dlptui.cli.completers import experiment_ids
from dlptui.cli.output import confirm, emit_block, emit_json, emit_table, say
from dlptui.platform.model import Experiment, ExperimentState
from dlptui.render import describe as block_of
from dlptui.render import training as render


def register(sub) -> None:
    t = sub.add_parser("train", help="start an experiment of the Dogs-vs-Cats trial")
    t.add_argument("--config", type=Path, default=None, help="the experiment YAML file (default: the shipped trial/local.yaml)")
    t.add_argument("--data", help="the data to train on, REPO@BRANCH_OR_COMMIT (default: the config's, dogs-and-cats@master)")
    t.add_argument("--name", help="a name for the experiment (default: the config's)")
    t.add_argument("--from", dest="source", metavar="MODEL@VERSION|CHECKPOINT",
                   help="start warm from the weights of a registered version (or alias) or a checkpoint uuid")
    t.add_argument("--job", metavar="JOB", help="the pipeline job that starts this run (a retrain on commit), recorded for lineage")
    t.add_argument("--coalesce", metavar="KEY",
                   help="at most one run of KEY (a retrain pipeline's name) trains at a time: this one waits queued while "
                        "another trains, and a newer one supersedes it while it waits (the local profile; a cluster's "
                        "master schedules them itself)")
    t.add_argument("--wait", action="store_true", help="follow it to the end; exit non-zero unless it completes")
    t.add_argument("--json", action="store_true", help="print a JSON object")
    t.set_defaults(func=train)

    e = sub.add_parser("experiment", aliases=["e", "exp"], help="experiments: list, describe, pause, resume, kill, metrics, logs")
    verbs = e.add_subparsers(dest="verb", metavar="VERB", required=True)

    def verb(name: str, func, help: str, with_id: bool = True, json_help: str = "print JSON"):
        p = verbs.add_parser(name, help=help)
        if with_id:
            p.add_argument("id", metavar="ID").completer = experiment_ids
        p.add_argument("--json", action="store_true", help=json_help)
        p.set_defaults(func=func)
        return p

    verb("list", list_experiments, "the experiments, their states, progress and data commits", with_id=False)
    verb("describe", describe, "one experiment and its checkpoints")
    verb("pause", change, "pause a running experiment at its next checkpoint")
    verb("resume", change, "resume a paused experiment from its last checkpoint")
    verb("kill", change, "stop an experiment for good (asks first)").add_argument("--yes", action="store_true", help="do not ask")
    m = verb("metrics", metrics, "an experiment's training and validation metrics", json_help="print a JSON array (JSON Lines with --follow)")
    m.add_argument("--follow", "-f", action="store_true", help="keep printing new points until the experiment ends")
    lg = verb("logs", logs, "an experiment's log", json_help="print a JSON array of lines (JSON Lines with --follow)")
    lg.add_argument("--follow", "-f", action="store_true", help="keep printing new lines until the experiment ends")

    ts = sub.add_parser("trials", help="the trials of an experiment: state, hyperparameters, batches, best metric, best checkpoint")
    ts.add_argument("id", metavar="EXPERIMENT").completer = experiment_ids
    ts.add_argument("--json", action="store_true", help="print a JSON array")
    ts.set_defaults(func=list_trials)
    tr = sub.add_parser("trial", help="one trial of a search: describe, metrics, logs")
    tverbs = tr.add_subparsers(dest="verb", metavar="VERB", required=True)
    for name, func, text_help in (("describe", describe_trial, "one trial"), ("metrics", trial_metrics, "a trial's metrics"),
                                  ("logs", trial_logs, "a trial's log")):
        v = tverbs.add_parser(name, help=text_help)
        v.add_argument("trial", metavar="TRIAL")
        v.add_argument("--json", action="store_true", help="print JSON (JSON Lines with --follow)")
        if name != "describe":
            v.add_argument("--follow", "-f", action="store_true", help="keep printing until the trial's experiment ends")
        v.set_defaults(func=func)


def list_experiments(args, platform) -> int:
    emit_table(platform.training.list_experiments(), render.EXPERIMENT_COLUMNS, args.json)
    return 0


def _show(experiment: Experiment, platform) -> None:
    emit_block(block_of(experiment))
    for c in platform.training.checkpoints(experiment.id):  # plain lines: a uuid is never cut short
        say(render.checkpoint_line(c))


def _print(experiment: Experiment, platform, as_json: bool) -> None:
    if as_json:
        emit_json(experiment)
    else:
        _show(experiment, platform)


def describe(args, platform) -> int:
    _print(platform.training.get_experiment(args.id), platform, args.json)
    return 0


def change(args, platform) -> int:
    """pause, resume or kill: the verb is the Training method."""
    if args.verb == "kill":
        found = platform.training.get_experiment(args.id)
        if not confirm(f"Kill experiment {found.id} ({found.name}, {found.state.value})?", args.yes,
                       f"Not killing experiment {found.id}"):
            say(f"Experiment {found.id} left {found.state.value}.", file=sys.stderr)
            return 1
    _print(getattr(platform.training, args.verb)(args.id), platform, args.json)
    return 0


def trial_row(t) -> dict:
    """What `dlptui trials --json` prints of a trial."""
    return {"id": t.id, "experiment_id": t.experiment_id, "state": t.state.value, "hparams": t.hparams,
            "batches": t.batches_done, "max_batches": t.max_batches, "best_metric": t.best_metric,
            "best_checkpoint": t.best_checkpoint, "stopped_early": t.stopped_early, "error": t.error}


def list_trials(args, platform) -> int:
    trials = platform.training.list_trials(args.id)
    if args.json:
        say(json.dumps([trial_row(t) for t in trials]))
        return 0
    metric, _ = render.searcher(platform.training.get_experiment(args.id))
    emit_table(trials, render.trial_columns(trials, metric), False, title=f"trials of experiment {args.id}")
    return 0


def describe_trial(args, platform) -> int:
    t = platform.training.get_trial(args.trial)
    if args.json:
        say(json.dumps(trial_row(t)))
        return 0
    metric, _ = render.searcher(platform.training.get_experiment(t.experiment_id))
    emit_block(render.trial_block(t, metric))
    return 0


def _trial_finished(platform, trial_id: str):
    def finished() -> bool:
        return training.settled(platform.training.get_experiment(platform.training.get_trial(trial_id).experiment_id))

    return finished


def trial_metrics(args, platform) -> int:
    platform.training.get_trial(args.trial)
    if not args.follow:
        points, _ = platform.training.trial_metrics(args.trial)
        if args.json:
            emit_json(points)
            return 0
        for p in points:
            say(render.point_line(p))
        return 0
    for batch in training.follow(lambda c: platform.training.trial_metrics(args.trial, c), _trial_finished(platform, args.trial), True):
        for p in batch:
            say(json.dumps({"batch": p.batch, "group": p.group, "name": p.name, "value": p.value, "time": p.time,
                              "trial_id": p.trial_id}) if args.json
                  else render.point_line(p))
        sys.stdout.flush()
    return 0


def trial_logs(args, platform) -> int:
    platform.training.get_trial(args.trial)
    finished = _trial_finished(platform, args.trial) if args.follow else (lambda: True)
    lines: list[str] = []
    for batch in training.follow(lambda c: platform.training.trial_logs(args.trial, c), finished, args.follow):
        if args.json and not args.follow:
            lines += batch
            continue
        for line in batch:
            say(json.dumps(line) if args.json else text.plain(line))
        sys.stdout.flush()
    if args.json and not args.follow:
        emit_json(lines)
    return 0


def train(args, platform) -> int:
    started = training.start(platform, args.config, refs.training_data(args.data), args.name, source=args.source, job=args.job,
                             coalesce=args.coalesce)
    if not args.wait:
        if args.json:
            emit_json(started)
        else:
            say(f"{training.started(started)} Follow it with `dlptui experiment metrics {started.id} --follow`.")
        return 0
    try:
        final = _wait(platform, started, live=sys.stdout.isatty() and not args.json)
    except KeyboardInterrupt:
        say(f"dlptui: stopped waiting; experiment {started.id} keeps training (`dlptui experiment pause {started.id}` pauses it).",
              file=sys.stderr)
        return 130
    _print(final, platform, args.json)
    if final.state is ExperimentState.COMPLETED:
        return 0
    say(f"dlptui: experiment {final.id} ended {final.state.value}" + (f": {final.error}" if final.error else "."), file=sys.stderr)
    return 1


def _wait(platform, experiment: Experiment, live: bool) -> Experiment:
    """Until the experiment settles; with `live`, a progress bar and the latest metrics."""
    if not live:
        return training.wait(platform, experiment)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    latest: dict[str, float] = {}
    cursor = 0
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("{task.fields[metrics]}"))
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task(f"experiment {experiment.id}", total=experiment.max_batches or None, metrics="")

        def show(e: Experiment) -> None:
            nonlocal cursor
            points, cursor = platform.training.metrics(e.id, cursor)
            latest.update({p.name: p.value for p in points})
            shown = "  ".join(f"{k} {text.metric(k, v)}" for k, v in sorted(latest.items()))
            bar.update(task, completed=e.batches_done, metrics=f"{e.state.value}  {shown}")

        return training.wait(platform, experiment, on_poll=show)


def _stream(platform, args, poll, emit) -> None:
    finished = lambda: training.settled(platform.training.get_experiment(args.id))  # noqa: E731
    for batch in training.follow(poll, finished, keep=args.follow):
        for item in batch:
            emit(item)
        sys.stdout.flush()


def metrics(args, platform) -> int:
    platform.training.get_experiment(args.id)  # an unknown id fails here, in one sentence
    if not args.follow:
        points, _ = platform.training.metrics(args.id)
        emit_table(points, render.POINT_COLUMNS, args.json)
        return 0

    def emit(point) -> None:
        if args.json:
            say(json.dumps({"batch": point.batch, "group": point.group, "name": point.name, "value": point.value, "time": point.time,
                              "trial_id": point.trial_id}))
        else:
            say(render.point_line(point))

    _stream(platform, args, lambda c: platform.training.metrics(args.id, c), emit)
    return 0


def logs(args, platform) -> int:
    platform.training.get_experiment(args.id)
    if args.json and not args.follow:
        emit_json(training.all_logs(platform, args.id))
        return 0
    emit = (lambda line: say(json.dumps(line))) if args.json else (lambda line: say(text.plain(line)))
    _stream(platform, args, lambda c: platform.training.logs(args.id, c), emit)
    return 0
