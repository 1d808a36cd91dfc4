"""A platform opened read-only refuses every changing port method itself, whoever calls it."""

from __future__ import annotations

import inspect
from dataclasses import replace

import pytest

from dlptui.errors import NotAvailable, ReadOnlyError
from dlptui.platform import PARTS, Platform
from dlptui.platform.ports import PORTS, changing_methods

EXPECTED = {
    "data": {"create_repo", "delete_repo", "put_files", "delete_files"},
    "training": {"create_experiment", "pause", "resume", "kill"},
    "registry": {"register", "promote"},
    "serving": {"deploy", "update", "set_canary", "set_shadow", "set_gate", "rollback", "undeploy", "save_drift_record", "feedback",
                "set_keep_inputs"},
    "cluster": set(),
    "pipelines": {"create_pipeline", "stop_pipeline", "start_pipeline", "delete_pipeline", "restart_job"},
}


def test_the_ports_mark_every_changing_method():
    assert {part: set(changing_methods(PORTS[part])) for part in PARTS} == EXPECTED


@pytest.mark.parametrize("part, method", [(p, m) for p in PARTS for m in sorted(EXPECTED[p])])
def test_a_read_only_platform_refuses_each_change_in_one_sentence(config, part, method):
    platform = Platform(replace(config, read_only=True))
    try:
        call = getattr(getattr(platform, part), method)
        arity = len(inspect.signature(getattr(PORTS[part], method)).parameters) - 1  # without self
        with pytest.raises(ReadOnlyError) as refused:
            call(*([None] * arity))
        sentence = str(refused.value)
        assert isinstance(refused.value, NotAvailable) and refused.value.exit_code == 6
        assert "read-only" in sentence and f"{part}.{method}" in sentence and "\n" not in sentence
    finally:
        platform.close()


def test_reads_pass_and_nothing_changes(config):
    writable = Platform(config)
    writable.data.create_repo("kept")
    writable.data.put_files("kept", "master", {"/a.txt": b"one"})
    writable.close()

    platform = Platform(replace(config, read_only=True))
    try:
        with pytest.raises(ReadOnlyError):
            platform.data.put_files("kept", "master", {"/a.txt": b"two"})
        with pytest.raises(ReadOnlyError):
            platform.data.delete_repo("kept")
        assert platform.data.get_file("kept", "master", "/a.txt") == b"one"
        assert [r.name for r in platform.data.list_repos()] == ["kept"]
        assert platform.health("data").reachable
    finally:
        platform.close()


def test_a_use_case_is_refused_before_it_changes_anything(config):
    """The sample import (a use case of actions/) stops at the platform's refusal: no repo appears."""
    from dlptui.actions.datasets import import_sample

    platform = Platform(replace(config, read_only=True))
    try:
        with pytest.raises(ReadOnlyError):
            import_sample(platform.data, repo="dogs-and-cats", count=4)
        assert platform.data.list_repos() == []
    finally:
        platform.close()
