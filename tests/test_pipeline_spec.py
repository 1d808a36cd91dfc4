"""The rules of a pipeline spec that both profiles apply (`platform/pipeline_spec.py`): input names, globs,
environment keys, Pachyderm's durations. Pure parsing, no runner."""

from __future__ import annotations

import pytest

from dlptui.errors import InvalidInput
from dlptui.platform import pipeline_spec


def spec(name="raw", glob="/*", **extra):
    body = {"pipeline": {"name": "p"}, "input": {"pfs": {"repo": "raw", "glob": glob, "name": name}},
            "transform": {"cmd": ["true"]}}
    body.update(extra)
    return body


def refused(body, *words):
    with pytest.raises(InvalidInput) as e:
        pipeline_spec.parse(body)
    message = str(e.value)
    assert "\n" not in message and message.endswith(".") and all(w in message for w in words), message
    return message


@pytest.mark.parametrize("name", ["../../../tmp/escape", "..", "a/b", "/abs", ".hidden", "a b", "x" * 64, ""])
def test_an_input_name_that_is_no_plain_folder_name_is_one_sentence(name):
    refused(spec(name=name) if name else spec(name="-"), "Input name", "not valid")


@pytest.mark.parametrize("name", ["PATH", "HOME", "LD_PRELOAD", "LD_LIBRARY_PATH", "PYTHONPATH", "PYTHONSTARTUP", "BASH_ENV",
                                  "IFS", "PFS", "DLPTUI_HOME", "PACH_JOB_ID", "PPS_PIPELINE_NAME", "raw_COMMIT", "LC_ALL",
                                  "NODE_OPTIONS", "GCONV_PATH", "TMPDIR", "out"])
def test_an_input_name_may_not_shadow_a_variable_the_runner_sets_or_a_dangerous_one(name):
    refused(spec(name=name), repr(name))


def test_the_same_through_a_cross_and_a_repo_named_like_one():
    body = {"pipeline": {"name": "p"}, "transform": {"cmd": ["true"]},
            "input": {"cross": [{"pfs": {"repo": "raw", "glob": "/*"}}, {"pfs": {"repo": "LD_AUDIT", "glob": "/*"}}]}}
    refused(body, "'LD_AUDIT'", "another `name`")  # the name defaults to the repo's
    body["input"]["cross"][1]["pfs"]["name"] = "audit"
    assert [leaf.name for leaf in pipeline_spec.parse(body).input.leaves()] == ["raw", "audit"]


def test_ordinary_names_pass():
    for name in ("raw", "split", "images-2024", "Images", "train_set", "path", "home"):
        assert pipeline_spec.parse(spec(name=name)).input.pfs.name == name


@pytest.mark.parametrize("glob", ["/../*", "/a/../../b", "/./x", "/a\x00b", "/a\nb"])
def test_a_glob_with_dot_segments_or_control_characters_is_refused(glob):
    refused(spec(glob=glob), "glob")


def test_env_keys_are_plain_names_and_do_not_overwrite_an_inputs_variables():
    refused(spec(transform={"cmd": ["true"], "env": {"raw": "/elsewhere"}}), "sets raw")
    refused(spec(transform={"cmd": ["true"], "env": {"raw_COMMIT": "x"}}), "raw_COMMIT")
    refused(spec(transform={"cmd": ["true"], "env": {"A=B": "x"}}), "'A=B'")
    assert pipeline_spec.parse(spec(transform={"cmd": ["true"], "env": {"SEED": "1"}})).env == {"SEED": "1"}


@pytest.mark.parametrize("text, seconds", [("30s", 30.0), ("1m", 60.0), ("1h5m", 3900.0), ("1.5h", 5400.0),
                                           ("250ms", 0.25), ("2m30s", 150.0)])
def test_timeouts_take_pachyderms_duration_format(text, seconds):
    parsed = pipeline_spec.parse(spec(datum_timeout=text, job_timeout=text))
    assert parsed.datum_timeout == pytest.approx(seconds) and parsed.job_timeout == pytest.approx(seconds)
    request = pipeline_spec.request(spec(datum_timeout=text))  # what pachd receives: a protobuf Duration
    assert request.datum_timeout.seconds + request.datum_timeout.nanos / 1e9 == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["30", "1 m", "soon", "0s", "-5s", "1d"])
def test_a_bad_duration_is_one_sentence(text):
    refused(spec(job_timeout=text), "job_timeout", repr(text))


def test_the_fields_a_spec_sets_are_listed_by_their_dotted_names():
    parsed = pipeline_spec.parse(spec(resource_limits={"memory": "1G", "gpu": {"type": "nvidia.com/gpu", "number": 1}},
                                      datum_timeout="1m"))
    assert {"resource_limits", "resource_limits.memory", "resource_limits.gpu.number", "datum_timeout",
            "input.pfs.name", "transform.cmd"} <= set(parsed.fields)
    assert not any(f.startswith("datum_timeout.") for f in parsed.fields)
