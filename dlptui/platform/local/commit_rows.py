"""The local data store's rows as the port's nouns: a commit row as a Commit (its parent the nearest ancestor that
is data, data_rules.py), with the provenance a pipeline recorded; and who holds a repo, from the pipelines' records.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path

from dlptui.errors import PlatformError
from dlptui.platform import data_rules, pipeline_spec
from dlptui.platform.model import Commit, CommitRef

COMMIT_COLUMNS = "seq, id, repo, branch, parent, message, created, size_bytes, files, error"


def commit_of(row: sqlite3.Row, parent: str | None = None) -> Commit:
    return Commit(
        id=row["id"], repo=row["repo"], branch=row["branch"], parent=parent, message=row["message"],
        created=row["created"], size_bytes=row["size_bytes"], files=row["files"],
    )


def data_commits(db: sqlite3.Connection, repo: str, rows: list[sqlite3.Row]) -> list[Commit]:
    """The rows as Commits, each with its nearest ancestor that is data as its parent (data_rules): the rows' own
    parent unless a failed job's output commit lies between."""
    if db.execute("SELECT 1 FROM commits WHERE repo = ? AND error != '' LIMIT 1", (repo,)).fetchone() is None:
        return [commit_of(r, r["parent"]) for r in rows]
    states = {r[0]: r for r in db.execute("SELECT id, parent, error FROM commits WHERE repo = ?", (repo,))}
    return [commit_of(r, data_rules.data_parent(r["parent"], states, lambda s: (True, s["error"]), lambda s: s["parent"]))
            for r in rows]


def with_provenance(db: sqlite3.Connection, commits: list[Commit]) -> list[Commit]:
    """The commits with the sources a pipeline made them from ("repo@commit")."""
    if not commits:
        return commits
    ids = [c.id for c in commits]
    found: dict[str, list[str]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ",".join("?" * len(chunk))
        for row in db.execute(f"SELECT commit_id, source FROM provenance WHERE commit_id IN ({marks}) ORDER BY source", chunk):
            found.setdefault(row[0], []).append(row[1])
    return [dataclasses.replace(c, provenance=tuple(map(CommitRef, found[c.id]))) if c.id in found else c for c in commits]


def _pipeline_specs(home: Path, refused: str) -> list[tuple[str, object | None]]:
    """(pipeline name, its parsed spec or None) from the local pipelines' records (pipeline_db.py), read-only; none
    when no pipeline was ever made. A record that cannot be read is a PlatformError ending in `refused`."""
    path = home / "pipelines" / "meta.db"
    if not path.is_file():
        return []
    try:
        with sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=30) as con:
            rows = con.execute("SELECT name, spec FROM pipelines").fetchall()
    except sqlite3.Error as e:
        raise PlatformError(f"The pipeline records at {path.parent} cannot be read ({e}); {refused}") from None
    specs = []
    for name, spec in rows:
        try:
            specs.append((name, pipeline_spec.parse(json.loads(spec))))
        except (ValueError, PlatformError):
            specs.append((name, None))
    return specs


def pipeline_users(home: Path) -> list[tuple[str, list[str]]]:
    """(pipeline, the repos it reads) from the local pipelines' records, read-only; none when no pipeline was ever
    made. What data_rules.check_repo_unused decides on before a repo is deleted."""
    specs = _pipeline_specs(home, "a repo in use could not be told apart, so nothing was deleted.")
    return [(name, [leaf.repo for leaf in spec.input.leaves()] if spec is not None else []) for name, spec in specs]


def pipeline_outputs(home: Path) -> list[tuple[str, str]]:
    """(pipeline, its output branch) from the local pipelines' records, read-only: the branches only a pipeline's
    jobs write (data_rules.check_not_output). The runner commits through `commit_tree`, which does not ask."""
    specs = _pipeline_specs(home, "a pipeline's output could not be told apart, so nothing was committed.")
    return [(name, spec.output_branch if spec is not None else "master") for name, spec in specs]
