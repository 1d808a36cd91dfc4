"""The render layer writes every noun the way a person reads it, the same for both faces: one metric rule, local
ISO times, IEC sizes, `-` for what is missing, no Python repr; compares as new minus old; the model server's log
without its noise; files in natural order; scatter ticks as values. (The faces' own tests check that the CLI and
the console print these words: tests/test_cli_data.py, test_cli_pipeline.py, test_tui_*.py.)"""

from __future__ import annotations

import re
import time
from datetime import datetime

import pytest

from dlptui import render, text
from dlptui.platform import model as m
from dlptui.render import data, pipelines, registry, serving, training
from tests.helpers import no_repr

NOW = 1796492082.111873
ISO = datetime.fromtimestamp(NOW).strftime("%Y-%m-%d %H:%M:%S")

NOUNS = [
    m.Repo("dogs-and-cats", NOW),
    m.Commit("a" * 32, "dogs-and-cats", "master", None, "", NOW, provenance=("raw@" + "b" * 32,)),
    m.FileEntry("/train/cat.1.jpg", "file", 2048, "c" * 64),
    m.Pipeline("split", "running", ("raw@master",), "split@master", NOW, cmd=("python3", "split.py", "--seed", "1")),
    m.Job("d" * 32, "split", m.JobState.SUCCESS, ("raw@" + "b" * 32,), None, {"total": 3, "processed": 2, "skipped": 1},
          started=NOW, finished=None),
    m.Datum("e" * 32, "d" * 32, "success", ("raw:/train/cat.1.jpg",)),
    m.Experiment("1", "dogcat", m.ExperimentState.RUNNING, NOW, best_accuracy=1.0, best_validation_loss=0.2314191),
    m.Trial("1", "1", m.ExperimentState.COMPLETED, hparams={"learning_rate": 0.0031, "frozen": True}, best_metric=None),
    m.Checkpoint("f" * 36, "1", "1", 20, NOW, "/x", {"validation_accuracy": 0.5, "validation_loss": 0.7}),
    m.Model("dogcat-model", NOW, aliases={"production": 1}),
    m.ModelVersion("dogcat-model", 2, "f" * 36, NOW, metrics={"accuracy": 0.93}),
    m.Promotion("dogcat-model", "production", None, 1, "me", NOW),
    m.Deployment("dogcat-deploy", "dogcat-model", 1, m.DeploymentState.AVAILABLE, created=NOW, log_tail=("a", "b")),
    m.DeploymentChange(NOW, "deployed", "me", "dogcat-model", None, 1),
    m.LoggedPrediction(7, "dogcat-deploy", NOW, "dogcat-model", 1, "primary", "r", "0" * 64, 100, "cat",
                       {"cat": 0.75, "dog": 0.25}, 12.34, 200),
]
COLUMNS = {
    m.Repo: data.REPO_COLUMNS, m.Commit: data.COMMIT_COLUMNS, m.FileEntry: data.FILE_COLUMNS,
    m.Pipeline: pipelines.PIPELINE_COLUMNS, m.Job: pipelines.JOB_COLUMNS, m.Datum: pipelines.DATUM_COLUMNS,
    m.Experiment: training.EXPERIMENT_COLUMNS, m.Checkpoint: training.CHECKPOINT_COLUMNS,
    m.Model: registry.MODEL_COLUMNS, m.ModelVersion: registry.VERSION_COLUMNS, m.Promotion: registry.PROMOTION_COLUMNS,
    m.Deployment: serving.DEPLOYMENT_COLUMNS, m.DeploymentChange: serving.CHANGE_COLUMNS,
    m.LoggedPrediction: serving.LOGGED_COLUMNS,
}


@pytest.mark.parametrize("obj", NOUNS, ids=lambda o: type(o).__name__)
def test_every_noun_has_a_describe_block_and_cells_without_python_repr(obj):
    lines = render.lines(render.describe(obj))
    assert lines and no_repr("\n".join(lines))
    assert not any(line.rstrip().endswith(":") for line in lines), lines  # '-' where a value is missing
    if hasattr(obj, "created") or hasattr(obj, "time"):
        assert any(ISO in line for line in lines), lines  # local ISO, not seconds since the epoch
    columns = COLUMNS.get(type(obj)) or training.trial_columns([obj], "accuracy")
    cells = render.cells(columns, obj)
    assert all(isinstance(c, str) and c for c in cells) and no_repr(" ".join(cells))


def test_one_metric_rule_everywhere():
    assert text.metric("accuracy", 1.0) == "100.0%" and text.metric("validation_accuracy", 0.97312) == "97.3%"
    assert text.metric("validation_loss", 0.2314191) == "0.2314" and text.metric("loss", 1.23456e-5) == "1.235e-05"
    assert text.metric("agreement", 0.5) == "50.0%" and text.metric("accuracy", None) == "-"
    experiment = render.cells(training.EXPERIMENT_COLUMNS, NOUNS[6])
    version = render.cells(registry.VERSION_COLUMNS, m.ModelVersion("x", 1, "u", NOW, metrics={"validation_accuracy": 1.0}))
    assert "100.0%" in experiment and "100.0%" in version and "0.2314" in experiment


def test_a_change_is_new_minus_old_with_the_better_direction_named():
    old = m.ModelVersion("x", 1, "u1", NOW, metrics={"accuracy": 0.90, "validation_loss": 0.20})
    new = m.ModelVersion("x", 2, "u2", NOW, metrics={"accuracy": 0.93, "validation_loss": 0.25})
    for a, b in ((old, new), (new, old)):  # whichever was marked, the older is "old"
        first, second, rows, facts = registry.compare_versions(a, b)
        assert (first.version, second.version) == (1, 2)
        by = {r.name: r for r in rows}
        assert (by["accuracy"].old, by["accuracy"].new, by["accuracy"].change, by["accuracy"].better) == (
            "90.0%", "93.0%", "+3.0 pp, better", True)
        assert (by["validation_loss"].change, by["validation_loss"].better) == ("+0.05, worse", False)
        assert {f.name: f.change for f in facts}["checkpoint"] == "differs"
    assert text.change("loss", 0.3, 0.3) == ("0, same", None)
    assert text.change("score", 1.0, 2.0, smaller_is_better=True) == ("+1, worse", False)


def test_files_sort_as_a_person_counts():
    names = ["cat.10.jpg", "cat.114.jpg", "cat.2.jpg", "Cat.1.jpg", "cat.11.jpg", "dog.1.jpg"]
    entries = [m.FileEntry(f"/train/{n}", "file") for n in names]
    assert [e.path.rsplit("/", 1)[1] for e in data.sort_files(entries)] == [
        "Cat.1.jpg", "cat.2.jpg", "cat.10.jpg", "cat.11.jpg", "cat.114.jpg", "dog.1.jpg"]
    assert sorted(["/b/x", "/a10/y", "/a9/z"], key=text.natural_key) == ["/a9/z", "/a10/y", "/b/x"]


# what a seldon-core 1.17.1 model server wrote into a deployment's log (lines of a real run)
SERVER_LOG = [
    "/work/.venv/lib/python3.11/site-packages/gunicorn/util.py:25: UserWarning: pkg_resources is deprecated as an API. "
    "See https://setuptools.pypa.io/en/latest/pkg_resources.html.",
    "  import pkg_resources",
    "2026-12-05 19:44:02,555 - seldon_core.microservice:main:579 - INFO:  Seldon Core version: 1.17.1",
    "2026-12-05 19:44:02,558 - seldon_core.microservice:main:602 - INFO:  Parse JAEGER_EXTRA_TAGS []",
    "2026-12-05 19:44:02,558 - seldon_core.microservice:main:605 - INFO:  Annotations: {}",
    "2026-12-05 19:44:02,559 - seldon_core.microservice:main:613 - INFO:  Importing submodule ['dogcat_model', 'DogCatModel']",
    "2026-12-05 19:44:02,620 - seldon_core.microservice:server:432 - INFO:  Gunicorn Config:  {'bind': '0.0.0.0:9000', "
    "'accesslog': None, 'loglevel': 'info'}",
    "2026-12-05 19:44:02,623 - seldon_core.wrapper:_set_flask_app_configs:225 - INFO:  App Config:  <Config {'ENV': "
    "'production', 'DEBUG': False, 'SECRET_KEY': None}>",
    "2026-12-05 19:44:02,634 - seldon_core.wrapper:_set_flask_app_configs:225 - INFO:  App Config:  <Config {'ENV': "
    "'production', 'DEBUG': False, 'SECRET_KEY': None}>",
    "[2026-12-05 19:44:02 +0000] [694] [INFO] Starting gunicorn 20.1.0",
    "2026-12-05 19:44:03,101 - seldon_core.wrapper:handle_invalid_usage:60 - ERROR:  {'status': {'status': 1, 'info': "
    "'The model is still loading.', 'code': -1, 'reason': 'MODEL_LOADING'}}",
    "2026-12-05 19:44:06,733 - dogcat_model:_load_with_retry:132 - INFO:  model dogcat-model version 1 loaded (attempt 1)",
    "2026-12-05 19:44:09,001 - seldon_core.wrapper:handle_invalid_usage:60 - ERROR:  {'status': {'status': 1, 'info': "
    "'The JPEG image cannot be decoded (truncated); send the whole, intact file.', 'code': -1, 'reason': 'BAD_REQUEST'}}",
    "\x1b]0;retitled\x07a line with an escape sequence",
]


def test_the_server_log_comes_without_config_dumps_readiness_noise_or_dicts():
    shown = serving.server_log(SERVER_LOG)
    assert shown == [
        "2026-12-05 19:44:02,555 - seldon_core.microservice:main:579 - INFO:  Seldon Core version: 1.17.1",
        "[2026-12-05 19:44:02 +0000] [694] [INFO] Starting gunicorn 20.1.0",
        "2026-12-05 19:44:06,733 - dogcat_model:_load_with_retry:132 - INFO:  model dogcat-model version 1 loaded (attempt 1)",
        "2026-12-05 19:44:09,001 - seldon_core.wrapper:handle_invalid_usage:60 - ERROR:  The JPEG image cannot be decoded "
        "(truncated); send the whole, intact file. (BAD_REQUEST)",
        "a line with an escape sequence",
    ]


def test_scatter_ticks_are_values_never_fractional_exponents():
    from dlptui.tui.widgets.scatter import scatter_text, ticks

    assert [label for _, label in ticks(-3.7, -1.7, True)] == ["0.001", "0.01"]
    assert [label for _, label in ticks(-5, -1, True)] == ["1e-05", "0.0001", "0.001", "0.01", "0.1"]
    assert [label for _, label in ticks(0.1, 0.33, False)] == ["0.1", "0.2", "0.3"]
    plotted = scatter_text([0.0002, 0.001, 0.02], [0.5, 0.3, 0.4], width=36, height=4, x_name="lr").plain
    assert not re.search(r"1e-?\d+\.\d", plotted) and "0.001" in plotted and "0.01" in plotted


def test_a_refusal_of_the_model_server_is_about_the_file_never_the_protocol():
    from dlptui.platform.seldon_protocol import about_image

    assert about_image("binData is not an image the model reads; send the bytes of a JPEG or PNG file.", "a.gif") == (
        "a.gif is not an image the model reads (JPEG or PNG); give a photo as a .jpg or .png file.")
    assert about_image("binData is empty; send the bytes of a JPEG or PNG image.", "e.jpg") == (
        "e.jpg is empty; give a JPEG or PNG image.")
    assert about_image("The image is 9000x9000 pixels, over the limit of 40000000; send a smaller image.", "big.png") == (
        "big.png is 9000x9000 pixels, over the limit of 40000000; send a smaller image.")
    assert "binData" not in about_image("binData is not valid base64; encode the image file's bytes.", "x.jpg")


def test_times_sizes_and_ages():
    assert text.size(11400) == "11.1 KiB" and text.size(None) == "-" and text.size(0) == "0 B"
    assert text.timestamp(NOW) == ISO and text.timestamp(None) == "-"
    assert text.since(time.time() - 330) == "5m" and text.duration(65) == "1m05s" and text.duration(4.25) == "4.2s"
    assert text.job_id("split@" + "d" * 32) == "split@dddddddddddd" and text.job_id("d" * 32) == "d" * 12
