"""The data rules both profiles apply beyond names and paths (those are in rules.py): which commit is data,
which repos a pipeline holds, and that a pipeline's output is written by its jobs only. Backend-agnostic: the
local data store and the Pachyderm adapter call them.

Which commit is data: one that is finished and has no error. On pachd a job's output commit is opened with the
job, as the head of the output branch, and a failed job finishes it with an error, holding what the datums that
ran had written; a commit someone is still uploading is open too. Neither is data, so neither is ever taken for
a branch's head, pinned for training or read:
- a branch names its *data head*: the newest commit of its history (the head, then its parents) that is data;
  a branch with none is NotFound, saying why its newest commit is not data;
- a commit named by its id that is not data is a Conflict, saying why;
- a listing of commits leaves them out, and a commit's `parent` is its nearest ancestor that is data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from dlptui.errors import Conflict, NotFound

T = TypeVar("T")


def is_data(finished: bool, error: str | None = "") -> bool:
    """A commit is data once it is finished without an error."""
    return bool(finished) and not error


def why_not(finished: bool, error: str | None) -> str:
    """Why a commit is not data, as a clause: 'ended with an error (...)' or 'is still being written'."""
    if error:
        return f"ended with an error ({error.strip().rstrip('.')})"
    return "is still being written" if not finished else "is complete"


def data_head(chain: Iterable[T], state: Callable[[T], tuple[bool, str | None]]) -> tuple[T | None, T | None]:
    """(the first commit of `chain` that is data, the first one before it that is not).

    `chain` is a branch's history, newest first (its head, then each parent); `state(commit)` is
    (finished, error)."""
    skipped = None
    for commit in chain:
        if is_data(*state(commit)):
            return commit, skipped
        skipped = skipped if skipped is not None else commit
    return None, skipped


def no_data_head(repo: str, branch: str, newest_id: str, finished: bool, error: str | None) -> NotFound:
    """The sentence for a branch whose history holds no data, its newest commit `newest_id` not being data."""
    return NotFound(
        f"Branch {branch!r} of repo {repo!r} has no data yet: its newest commit {newest_id} {why_not(finished, error)} "
        "and no earlier commit is complete; wait for a commit to finish, or fix what failed and run it again."
    )


def not_data(repo: str, commit_id: str, finished: bool, error: str | None) -> Conflict:
    """The sentence for a commit named by id that is not data."""
    return Conflict(
        f"Commit {commit_id} of repo {repo!r} {why_not(finished, error)}, so it is not data to read or train on; "
        "pick a commit that finished without one."
    )


def data_parent(parent: str | None, commits: dict[str, T], state: Callable[[T], tuple[bool, str | None]],
                parent_of: Callable[[T], str | None]) -> str | None:
    """The nearest ancestor that is data, from a commit's `parent` id through `commits` (id -> commit)."""
    seen = set()
    while parent is not None and parent in commits and parent not in seen:
        seen.add(parent)
        if is_data(*state(commits[parent])):
            return parent
        parent = parent_of(commits[parent])
    return parent if parent is not None and parent not in commits else None


# --- repos a pipeline holds ---------------------------------------------------------------------


def check_repo_unused(repo: str, users: Iterable[tuple[str, Iterable[str]]]) -> None:
    """A repo that a pipeline writes (its output repo, named as the pipeline) or reads (an input) cannot be deleted:
    `users` is (pipeline name, the repos it reads) for every pipeline. One Conflict sentence naming them."""
    users = list(users)
    if any(name == repo for name, _ in users):
        raise Conflict(
            f"Repo {repo!r} is the output of pipeline {repo!r}; delete the pipeline instead "
            f"(`dlptui pipeline delete {repo}`), which deletes its output repo with it."
        )
    readers = sorted({name for name, inputs in users if repo in set(inputs)})
    if readers:
        named = ", ".join(repr(r) for r in readers)
        word = "pipeline" if len(readers) == 1 else "pipelines"
        raise Conflict(
            f"Repo {repo!r} is an input of {word} {named}; delete the {word} first "
            f"(`dlptui pipeline delete {readers[0]}`), then the repo."
        )


def output_written_by_jobs(repo: str) -> Conflict:
    """The sentence for a user's commit (a put, an upload, a delete of files) to a pipeline's output branch, which
    Pachyderm refuses: only the pipeline's jobs write there (pachd: "cannot start a commit on an output branch")."""
    return Conflict(
        f"Repo {repo!r} is the output of pipeline {repo!r}, which only its jobs write; put the files into the "
        f"pipeline's input repo instead (`dlptui pipeline inspect {repo}` names it)."
    )


def check_not_output(repo: str, branch: str, outputs: Iterable[tuple[str, str]]) -> None:
    """A user's commit to `repo@branch` is refused when that is a pipeline's output branch: `outputs` is (pipeline
    name, its output branch) for every pipeline, the output repo having the pipeline's name."""
    if any(name == repo and out_branch == branch for name, out_branch in outputs):
        raise output_written_by_jobs(repo)


def repo_taken(pipeline: str) -> Conflict:
    """A pipeline writes to a new repo of its own name, so a pipeline may not be named as a repo that exists (pachd:
    "cannot be created because a repo with the same name already exists")."""
    return Conflict(f"Pipeline {pipeline!r} cannot be created: repo {pipeline!r} exists, and a pipeline writes to a new "
                    "repo of its own name; pick another name or delete the repo.")
