"""What `dlptui feedback` reads before it asks the platform anything: the target and the labels file, each mistake
one sentence (InvalidInput exit 2, a missing file NotFound exit 3) naming the row, nothing read half."""

from __future__ import annotations

import pytest

from dlptui.actions.feedback import other_label, parse_target, read_labels
from dlptui.errors import InvalidInput, NotFound
from dlptui.platform.model import Feedback, LoggedPrediction


def test_a_labels_file_is_read_whole_with_an_optional_header_and_blank_lines(tmp_path):
    labels = tmp_path / "labels.csv"
    sha = "ab" * 32
    labels.write_text(f"\ufeffprediction,label\n12, cat\n\n{sha},dog\n")
    assert read_labels(labels) == [Feedback("12", label="cat"), Feedback(sha, label="dog")]


@pytest.mark.parametrize("content, words", [
    ("12,cat\n13\n", "line 2 has 1 values"),
    ("12,cat,extra\n", "line 1 has 3 values"),
    ("12,cat\n12,dog\n", "line 2 names the prediction 12 again (first on line 1)"),
    ("prediction,label\n\n", "has no rows"),
    ("12,\n", "line 1 has 1 values"),
    (b"\xff\xfe\x00binary", "is not a text file"),
])
def test_a_bad_labels_file_is_one_sentence_naming_the_row(tmp_path, content, words):
    labels = tmp_path / "labels.csv"
    labels.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(InvalidInput) as bad:
        read_labels(labels)
    said = str(bad.value)
    assert said.startswith(str(labels)) and words in said and "\n" not in said and said.endswith("."), said


def test_a_missing_file_or_a_folder_is_one_sentence(tmp_path):
    with pytest.raises(NotFound) as missing:
        read_labels(tmp_path / "gone.csv")
    assert "There is no file" in str(missing.value) and missing.value.exit_code == 3
    with pytest.raises(InvalidInput) as folder:
        read_labels(tmp_path)
    assert "is a folder" in str(folder.value)


def test_the_target_is_a_deployment_or_a_prediction_of_one():
    assert parse_target("dogcat-deploy") == ("dogcat-deploy", None)
    assert parse_target("dogcat-deploy#42") == ("dogcat-deploy", "42")
    for bad in ("#42", "dogcat-deploy#", " "):
        with pytest.raises(InvalidInput):
            parse_target(bad)


def test_wrong_is_the_other_label_of_two_and_asked_of_more():
    def said(label, labels):
        return LoggedPrediction(1, "d", 0.0, "m", 1, "primary", "r", "0" * 64, 1, label, {k: 0.5 for k in labels}, 1.0, 200)

    assert other_label(said("cat", ("cat", "dog"))) == "dog"
    assert other_label(said("dog", ("cat", "dog"))) == "cat"
    assert other_label(said("cat", ("cat", "dog", "bird"))) is None
