"""The paths that keep the console and the CLI fast at a team's scale answer as before, and see every change:
the training listing kept while unchanged, the stamp of a store, a poll that finds nothing new, the prediction
log's figures kept until a prediction comes, a long CLI table and a JSON list. (The figures themselves are
bench/console.py's; nothing here is timed.)"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from dlptui.platform.model import ExperimentState
from tests.fixtures.tui import SIZE, make_app, wait_for

TRIAL = Path(__file__).resolve().parents[1] / "trial"
SERVING = Path(__file__).resolve().parents[1] / "serving"


def record(db, n: int, accuracy: float) -> int:
    """An experiment with one trial, 10 training batches and one validation, recorded as a runner records them."""
    experiment = db.insert(name=f"e{n}", config_file=str(TRIAL / "tiny.yaml"), trial_dir=str(TRIAL),
                           config={"searcher": {"metric": "accuracy", "smaller_is_better": False}},
                           data_repo="dogs-and-cats", data_commit="0" * 32, max_batches=20)
    trial = db.insert_trial(experiment, {}, 20)
    db.add_metrics(experiment, trial, "training", [(b, "loss", 1.0 / b) for b in range(1, 11)])
    db.add_metrics(experiment, trial, "validation", [(10, "accuracy", accuracy), (10, "validation_loss", 1 - accuracy)])
    db.update(experiment, state=ExperimentState.COMPLETED)
    return experiment


def test_a_listing_is_the_same_object_until_something_changes_and_then_shows_the_change(platform):
    training = platform.training
    db = training.db
    ids = [record(db, n, 0.5 + n / 200) for n in range(60)]  # more than MANY: the one-pass path
    first = training.list_experiments()
    assert [e.id for e in first] == [str(i) for i in reversed(ids)]
    assert first[0].batches_done == 10 and first[0].best_accuracy == 0.5 + 59 / 200
    assert training.list_experiments() is first  # nothing committed since: the same list, nothing read again

    trial = db.trial_rows(ids[0])[0].id
    db.add_metrics(ids[0], trial, "training", [(11, "loss", 0.05)])
    db.add_metrics(ids[0], trial, "validation", [(11, "accuracy", 0.99)])
    second = training.list_experiments()
    assert second is not first
    changed = next(e for e in second if e.id == str(ids[0]))
    assert changed.batches_done == 11 and changed.best_accuracy == 0.99
    unchanged = {e.id: e for e in first}
    assert all(e is unchanged[e.id] for e in second if e.id != str(ids[0]))  # the others: the same objects
    assert training.get_experiment(str(ids[0])) == changed  # one experiment alone: the same figures

    db.update(ids[1], state=ExperimentState.KILLED)  # a row changed, its metrics not
    assert next(e for e in training.list_experiments() if e.id == str(ids[1])).state is ExperimentState.KILLED


def test_a_store_stamp_moves_with_every_commit_from_any_connection(platform):
    db = platform.training.db
    before = db.stamp()
    assert db.stamp() == before
    record(db, 1, 0.7)
    after = db.stamp()
    assert after != before and db.stamp() == after


async def test_a_poll_that_finds_nothing_new_draws_nothing_and_a_change_is_drawn(config, platform, monkeypatch):
    from dlptui.tui.screens import base
    from dlptui.tui.screens.experiments import ExperimentsScreen

    record(platform.training.db, 1, 0.7)
    polls, shows = [], []
    polled, show = base.BaseScreen._polled, ExperimentsScreen.show
    monkeypatch.setattr(base.BaseScreen, "_polled", lambda self, data: (polls.append(data), polled(self, data))[1])
    monkeypatch.setattr(ExperimentsScreen, "show", lambda self, data: (shows.append(data), show(self, data))[1])
    monkeypatch.setattr(ExperimentsScreen, "POLL_SECONDS", 0.2)
    app = make_app(config, platform, start="experiments")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(polls) >= 5, what="five polls")
        assert len(shows) == 1  # the first poll drew the list; the four after it found nothing new
        record(platform.training.db, 2, 0.8)
        await wait_for(pilot, lambda: len(shows) == 2, what="the new experiment drawn")
        assert "2" in app.screen.query_one("#experiments").all_keys


def test_the_prediction_logs_figures_follow_a_new_prediction(tmp_path):
    from dlptui.platform.local import prediction_log as reader

    spec = importlib.util.spec_from_file_location("_served_prediction_log", SERVING / "prediction_log.py")
    served = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(served)
    path = tmp_path / "predictions.sqlite"
    log = served.PredictionLog(str(path))

    def predict(label: str, status: int = 200) -> None:
        log.record(model="m", version=1, role="primary", request_id=label + str(status), input_sha256="0" * 64,
                   input_bytes=1, label=label, probabilities={label: 1.0}, latency_ms=10.0, status=status)

    predict("cat")
    assert reader.summary(path)[(1, "primary")]["requests"] == 1
    assert reader.summary(path)[(1, "primary")]["requests"] == 1  # kept: nothing came
    predict("dog")
    predict("cat", status=400)
    figures = reader.summary(path)[(1, "primary")]
    assert (figures["requests"], figures["errors"], figures["labels"]) == (3, 1, {"cat": 1, "dog": 1})


def test_a_long_table_and_a_json_list_of_the_cli(capsys):
    from dataclasses import dataclass

    from dlptui.cli.output import MANY_ROWS, emit_table

    @dataclass(frozen=True)
    class Item:
        name: str
        size: int | None

    rows = [Item(f"file-[{n}]-é", n if n % 7 else None) for n in range(MANY_ROWS + 50)]
    emit_table(rows, [("NAME", lambda r: r.name), ("SIZE", lambda r: r.size)], as_json=False)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "SIZE"] and len(lines) == len(rows) + 1
    width = max(len(r.name) for r in rows)
    assert lines[2] == "file-[1]-é".ljust(width) + "  1" and lines[1] == "file-[0]-é".ljust(width) + "  -"
    emit_table(rows, [("NAME", lambda r: r.name)], as_json=True)
    assert json.loads(capsys.readouterr().out) == [{"name": r.name, "size": r.size} for r in rows]
