"""The two typed references of the model (platform/model.py): `repo@commit` and `deployment#id`, parsed once,
their parts named, and the same text in tables and JSON as before."""

from __future__ import annotations

import json

import pytest

from dlptui.platform.model import CommitRef, Job, JobState, PredictionRef, to_dict


def test_a_commit_ref_names_its_parts_and_is_its_text():
    ref = CommitRef.of("dogs-and-cats", "0123456789abcdef")
    assert (ref, ref.repo, ref.ref) == ("dogs-and-cats@0123456789abcdef", "dogs-and-cats", "0123456789abcdef")
    assert CommitRef("raw@master").ref == "master"
    job = Job(id="j1", pipeline="split", state=JobState.SUCCESS, input_commits=(CommitRef("raw@c1"),),
              output_commit=CommitRef("split@c2"))
    assert json.loads(json.dumps(to_dict(job)))["input_commits"] == ["raw@c1"]  # JSON as it always was


@pytest.mark.parametrize("bad", ["raw", "@c1", "raw@", ""])
def test_a_text_that_is_not_repo_at_commit_is_refused(bad):
    with pytest.raises(ValueError, match="repo@commit"):
        CommitRef(bad)


def test_a_prediction_ref_names_its_parts():
    ref = PredictionRef.of("dogcat-deploy", 42)
    assert (ref, ref.deployment, ref.id) == ("dogcat-deploy#42", "dogcat-deploy", "42")
    with pytest.raises(ValueError, match="deployment#id"):
        PredictionRef("dogcat-deploy")
