"""ports.Pipelines, once for both profiles: unknown names, orders, logs, names, a failed job's output, repos in use.

As test_pipelines_contract.py: the local runner and the pachd stand-in both run the spec's command on this machine."""

from __future__ import annotations

import pytest

from dlptui.errors import Conflict, InvalidInput, NotFound
from dlptui.platform.model import JobState
from tests.contract.checks import one_sentence
from tests.contract.test_pipelines_contract import ended, spec

pytestmark = pytest.mark.timeout(90)
STATES = {"starting", "running", "paused", "standby", "crashing", "failed"}


@pytest.fixture
def pipelines(contract_platform):
    part = contract_platform.pipelines
    yield part
    for p in part.list_pipelines():
        part.stop_pipeline(p.name)


@pytest.fixture
def raw(data_store, fresh_name):
    name = fresh_name("raw")
    data_store.create_repo(name)
    first = data_store.put_files(name, "master", {"/a.txt": b"alpha", "/b.txt": b"beta"})
    return name, first


def test_every_pipeline_and_job_method_is_not_found_for_an_unknown_name(pipelines, fresh_name):
    ghost = fresh_name("ghost")
    job = "0123456789abcdef0123456789abcdef"
    for call, named in [
        (lambda: pipelines.inspect_pipeline(ghost), ghost),
        (lambda: pipelines.stop_pipeline(ghost), ghost),
        (lambda: pipelines.start_pipeline(ghost), ghost),
        (lambda: pipelines.delete_pipeline(ghost), ghost),
        (lambda: pipelines.list_jobs(ghost), ghost),
        (lambda: pipelines.inspect_job(job), job),
        (lambda: pipelines.list_datums(job), job),
        (lambda: pipelines.restart_job(job), job),
        (lambda: pipelines.job_logs(job), job),
    ]:
        with pytest.raises(NotFound) as e:
            call()
        one_sentence(e.value, named)
    assert ghost not in [p.name for p in pipelines.list_pipelines()]


def test_listings_have_their_orders_and_every_pipelines_jobs_are_newest_first(pipelines, raw, fresh_name):
    repo, _ = raw
    older, newer = sorted([fresh_name("p"), fresh_name("p")], reverse=True)  # the newer pipeline sorts first by name
    pipelines.create_pipeline(spec(older, repo))
    [first] = ended(pipelines, older, 1)
    pipelines.create_pipeline(spec(newer, repo))
    [second] = ended(pipelines, newer, 1)
    everything = pipelines.list_jobs(None)
    assert [j.id for j in everything if j.pipeline in (older, newer)] == [second.id, first.id]
    assert pipelines.list_jobs() == everything
    names = [p.name for p in pipelines.list_pipelines()]
    assert names == sorted(names) and {older, newer} <= set(names)
    datums = pipelines.list_datums(first.id)
    assert [d.id for d in datums] == sorted(d.id for d in datums) and len(datums) == 2


def test_job_logs_are_the_lines_the_code_wrote_of_each_datum(pipelines, raw, fresh_name):
    repo, _ = raw
    name = fresh_name("p")
    pipelines.create_pipeline(spec(name, repo, cmd=["sh", "-c", "for f in /pfs/raw/*; do echo seen $(basename $f); "
                                                                "cp $f /pfs/out/; done"]))
    [job] = ended(pipelines, name, 1)
    assert job.state is JobState.SUCCESS
    datums = {d.files[0]: d.id for d in pipelines.list_datums(job.id)}
    lines = pipelines.job_logs(job.id)
    assert sorted(lines) == sorted([f"{datums[f'{repo}:/a.txt'][:12]} seen a.txt", f"{datums[f'{repo}:/b.txt'][:12]} seen b.txt"])
    assert lines == sorted(lines, key=lambda line: line[:12])  # by datum
    assert pipelines.job_logs(job.id, datums[f"{repo}:/b.txt"][:8]) == ["seen b.txt"]
    with pytest.raises(NotFound) as e:
        pipelines.job_logs(job.id, "ffffffff")
    one_sentence(e.value, "'ffffffff'")


def test_a_pipeline_name_is_at_most_51_characters_and_the_image_defaults_as_on_pachd(pipelines, raw, fresh_name):
    repo, _ = raw
    long = "p" * 52
    with pytest.raises(InvalidInput) as e:
        pipelines.create_pipeline(spec(long, repo))
    one_sentence(e.value, repr(long))
    name = fresh_name("p")
    bare = spec(name, repo)
    del bare["transform"]["image"]
    made = pipelines.create_pipeline(bare)
    assert made.image == "ubuntu:20.04" and made.state in STATES and made.detail.endswith(".")
    assert long not in [p.name for p in pipelines.list_pipelines()]


def test_a_repo_a_pipeline_reads_or_writes_cannot_be_deleted(pipelines, data_store, raw, fresh_name):
    repo, _ = raw
    name = fresh_name("p")
    pipelines.create_pipeline(spec(name, repo))
    ended(pipelines, name, 1)
    with pytest.raises(Conflict) as e:
        data_store.delete_repo(repo)
    one_sentence(e.value, repr(repo), repr(name))
    with pytest.raises(Conflict) as e:
        data_store.delete_repo(name)
    one_sentence(e.value, repr(name))
    assert {repo, name} <= {r.name for r in data_store.list_repos()}
    pipelines.stop_pipeline(name)
    with pytest.raises(Conflict):  # stopped, it still reads the repo when started again
        data_store.delete_repo(repo)
    pipelines.delete_pipeline(name)
    data_store.delete_repo(repo)
    assert repo not in {r.name for r in data_store.list_repos()}


def test_a_failed_jobs_output_is_never_the_data_head(pipelines, data_store, raw, fresh_name):
    """The datums of `bad` files fail: the second job fails, and the first job's output stays the data."""
    repo, _ = raw
    name = fresh_name("p")
    pipelines.create_pipeline(spec(name, repo, cmd=["sh", "-c", "for f in /pfs/raw/*; do grep -q bad $f && exit 1; "
                                                                "cp $f /pfs/out/; done; true"]))
    [good] = ended(pipelines, name, 1)
    head = data_store.inspect_commit(name, "master")
    assert good.output_commit == f"{name}@{head.id}"
    data_store.put_files(repo, "master", {"/c.txt": b"bad"})
    failed, _ = ended(pipelines, name, 2)
    assert failed.state is JobState.FAILURE and failed.output_commit is None
    for ref in ("master", head.id[:8]):
        assert data_store.inspect_commit(name, ref) == head
    assert data_store.resolve(name, "master").commit == head.id
    assert [c.id for c in data_store.list_commits(name)] == [head.id]
    assert [e.path for e in data_store.list_files(name, "master")] == ["/a.txt", "/b.txt"]


def test_a_branch_whose_only_output_failed_says_so(pipelines, data_store, raw, fresh_name):
    repo, _ = raw
    name = fresh_name("p")
    pipelines.create_pipeline(spec(name, repo, cmd=["false"]))
    [job] = ended(pipelines, name, 1)
    assert job.state is JobState.FAILURE
    with pytest.raises(NotFound) as e:
        data_store.inspect_commit(name, "master")
    text = one_sentence(e.value, repr(name), "'master'")
    assert "ended with an error" in text and job.reason.rstrip(".") in text


def test_a_pipeline_is_not_named_as_an_existing_repo(pipelines, data_store, raw, fresh_name):
    repo, _ = raw
    taken = fresh_name("taken")
    data_store.create_repo(taken)
    kept = data_store.put_files(taken, "master", {"/mine.txt": b"mine"})
    with pytest.raises(Conflict) as e:
        pipelines.create_pipeline(spec(taken, repo))
    one_sentence(e.value, repr(taken))
    assert taken not in [p.name for p in pipelines.list_pipelines()]
    assert [c.id for c in data_store.list_commits(taken)] == [kept.id]  # the repo stays as it was
    assert data_store.get_file(taken, "master", "/mine.txt") == b"mine"
