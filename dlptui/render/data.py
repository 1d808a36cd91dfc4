"""Repos, commits and files as table rows and describe blocks; files in natural order."""

from __future__ import annotations

from collections.abc import Iterable

from dlptui import text
from dlptui.platform.model import Commit, FileEntry, Repo
from dlptui.render import Block, Column, describer, joined


def provenance(refs: Iterable[str]) -> str:
    """The commits a pipeline made a commit from, each as repo@commit (shortened)."""
    return joined(text.data_ref(*ref.split("@", 1)) if "@" in ref else ref for ref in refs)


REPO_COLUMNS = [
    Column("name", "NAME", lambda r: r.name),
    Column("size", "SIZE", lambda r: text.size(r.size_bytes)),
    Column("commits", "COMMITS", lambda r: r.commits),
    Column("last", "LAST CHANGE", lambda r: text.timestamp(r.last_change)),
    Column("branches", "BRANCHES", lambda r: joined(r.branches)),
    Column("description", "DESCRIPTION", lambda r: r.description),
]

COMMIT_COLUMNS = [
    Column("id", "COMMIT", lambda c: text.commit_id(c.id)),
    Column("branch", "BRANCH", lambda c: c.branch),
    Column("created", "CREATED", lambda c: text.timestamp(c.created)),
    Column("files", "FILES", lambda c: c.files),
    Column("size", "SIZE", lambda c: text.size(c.size_bytes)),
    Column("message", "MESSAGE", lambda c: c.message),
    Column("provenance", "MADE FROM", lambda c: provenance(c.provenance)),
]

FILE_COLUMNS = [
    Column("path", "PATH", lambda e: e.path + ("/" if e.type == "dir" else "")),
    Column("type", "TYPE", lambda e: e.type),
    Column("size", "SIZE", lambda e: text.size(e.size_bytes)),
    Column("hash", "SHA256", lambda e: e.hash[:12] if e.hash else None),
]


def sort_files(entries: Iterable[FileEntry]) -> list[FileEntry]:
    """Files as a person reads a listing: by path, numbers by their value (cat.2 before cat.10), case aside."""
    return sorted(entries, key=lambda e: text.natural_key(e.path))


def file_label(name: str, size_bytes: int) -> tuple[str, str]:
    """(name, size) of a file or folder in a tree of files."""
    return name, text.size(size_bytes)


@describer(Repo)
def describe_repo(r: Repo) -> Block:
    return [
        ("repo", r.name),
        ("description", r.description or text.MISSING),
        ("created", text.timestamp(r.created)),
        ("size", text.size(r.size_bytes)),
        ("commits", str(r.commits)),
        ("branches", joined(r.branches)),
        ("last change", text.timestamp(r.last_change)),
    ]


@describer(Commit)
def describe_commit(c: Commit) -> Block:
    return [
        ("commit", c.id),
        ("repo", c.repo),
        ("branch", c.branch),
        ("parent", c.parent or text.MISSING),
        ("message", c.message or text.MISSING),
        ("created", text.timestamp(c.created)),
        ("files", str(c.files)),
        ("size", text.size(c.size_bytes)),
        ("made from", provenance(c.provenance)),
    ]


@describer(FileEntry)
def describe_file(e: FileEntry) -> Block:
    return [("path", e.path), ("type", e.type), ("size", text.size(e.size_bytes)), ("sha256", e.hash or text.MISSING)]
