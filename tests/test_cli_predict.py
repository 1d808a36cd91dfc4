"""`dlptui predict` keeps the README's error rules, against real deployments (Envoy in front of real model servers).

One image that cannot be predicted is one sentence on stderr and exit 2 (a missing file exit 3); several images
print the table with a final count line and exit 2 if any failed; no sentence names the protocol (binData); with
several deployments and no --deployment, a terminal is asked (a numbered choice), otherwise one sentence names them.
"""

from __future__ import annotations

import io
import json

import pytest

from tests.helpers import run, run_json

pytestmark = pytest.mark.slow


class Terminal(io.StringIO):
    """A stdin that says it is a terminal, holding what a person types."""

    def isatty(self) -> bool:
        return True


class Pipe(io.StringIO):
    def isatty(self) -> bool:
        return False


def test_predict_keeps_the_error_rules(trained_platform, sample_dir, tmp_path, capsys, monkeypatch):
    [experiment] = trained_platform.training.list_experiments()
    trained_platform.registry.register("dogcat-model", experiment.id)
    images = sorted(str(p) for p in sample_dir.rglob("*.jpg"))[:2]
    not_image = tmp_path / "notes.jpg"
    not_image.write_text("this is not a picture")
    truncated = tmp_path / "half.jpg"
    whole = open(images[0], "rb").read()
    truncated.write_bytes(whole[: len(whole) // 3])  # its header reads as a JPEG: the model server refuses the pixels
    missing = tmp_path / "gone.jpg"
    monkeypatch.setattr("sys.stdin", Pipe(""))

    code, _, err = run(capsys, "predict", images[0])
    assert code == 3 and "Nothing is deployed" in err and len(err.splitlines()) == 1

    run_json(capsys, "deploy", "dogcat-model@1", "--name", "one", "--wait")
    try:
        # the only deployment answers without --deployment
        code, out, err = run(capsys, "predict", images[0])
        assert code == 0 and err == ""
        assert out.splitlines()[0].split()[:4] == ["IMAGE", "LABEL", "P(CAT)", "P(DOG)"] and "%" in out

        # one image that cannot be predicted: one sentence, nothing on stdout
        for path, exit_code, words in ((not_image, 2, "is not an image"), (truncated, 2, "half.jpg"), (missing, 3, "no file")):
            code, out, err = run(capsys, "predict", str(path))
            assert (code, out) == (exit_code, ""), err
            assert len(err.splitlines()) == 1 and err.startswith("dlptui: ") and words in err, err
            assert "binData" not in err and "Traceback" not in err

        # several: a row each, the failed ones with their sentence, a final count; exit 2
        code, out, err = run(capsys, "predict", *images, str(not_image), str(truncated), str(missing))
        assert code == 2 and "binData" not in out
        lines = out.strip().splitlines()
        assert lines[0].split()[0] == "IMAGE" and lines[-1].endswith("failed 3 (5 images)"), lines[-1]
        assert all(p.name in out for p in (not_image, truncated, missing))
        code, out, _ = run(capsys, "predict", *images, "--json")
        assert code == 0 and [r["image"] for r in json.loads(out)] == images

        # two deployments, none named: without a terminal one sentence naming them
        run_json(capsys, "deploy", "dogcat-model@1", "--name", "two", "--wait")
        code, out, err = run(capsys, "predict", images[0])
        assert (code, out) == (2, "") and len(err.splitlines()) == 1
        assert "2 deployments (one, two)" in err and "--deployment" in err
        # at a terminal: a numbered choice, and the one picked answers
        before = len(trained_platform.serving.predictions("two"))
        monkeypatch.setattr("sys.stdin", Terminal("7\n2\n"))  # a number off the list is asked again
        code, out, err = run(capsys, "predict", images[0])
        assert code == 0, err
        assert "1) one" in out and "2) two" in out and "Give a number from 1 to 2." in err
        assert len(trained_platform.serving.predictions("two")) == before + 1
    finally:
        for name in ("one", "two"):
            run(capsys, "undeploy", name, "--yes")
