"""The data part of the cluster profile: Pachyderm (pachd 2.x) through python-pachyderm 7.6.

Repos live in pachd's default project. How pachd is found, the token, the bounded health
check and the error sentences are in pachd_connection.py. python-pachyderm and grpc are
imported only when the part is first built.

Only commits that are data (finished, without an error: data_rules.py) are read, listed or pinned: on
pachd a job's output commit is the head of its branch while the job runs, and a failed job leaves it
there finished with an error, holding a partial tree.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlptui.errors import InvalidInput, NotFound
from dlptui.platform import data_rules, rules
from dlptui.platform.model import Commit, CommitRef, DataRef, FileEntry, Repo, Service
from dlptui.platform.cluster.pachyderm_connection import Pachd, pipeline_users, refused_output_branch
from dlptui.platform.ports import Progress

if TYPE_CHECKING:
    from dlptui.config import Config

FULL_ID = re.compile(r"^[0-9a-f]{32}$")
FILE = 1  # pfs_pb2.FileType.FILE (DIR is 2)
FINISHED = 4  # pfs_pb2.CommitState.FINISHED (STARTED 1, READY 2, FINISHING 3)


class _CountingReader(io.RawIOBase):
    """A source (a local file, opened on first read, or bytes) that reports every read."""

    def __init__(self, source: Path | bytes, on_read) -> None:
        self._source, self._on_read, self._f = source, on_read, None

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._f is None:
            self._f = open(self._source, "rb") if isinstance(self._source, Path) else io.BytesIO(self._source)
        chunk = self._f.read(size)
        if chunk:
            self._on_read(len(chunk))
        else:
            self._f.close()
        return chunk


def _seconds(stamp: Any) -> float | None:
    return stamp.seconds + stamp.nanos / 1e9 if stamp is not None and (stamp.seconds or stamp.nanos) else None


def _state(info: Any) -> tuple[bool, str]:
    """(finished, error) of a CommitInfo: what data_rules decides on. FINISHING is not finished yet."""
    return _seconds(info.finished) is not None, info.error


def _provenance(info: Any) -> tuple[str, ...]:
    """The user commits a commit was made from ("repo@commit"): a job's output commit also names the pipeline's
    spec commit (a system repo), which is no data."""
    return tuple(CommitRef.of(c.repo.name or c.branch.repo.name, c.id) for c in info.direct_provenance
                 if (c.repo.type or c.branch.repo.type or "user") == "user")


def _parent(info: Any) -> str | None:
    return info.parent_commit.id or None


def _clean_path(path: str) -> str:
    """A path as pachd gives it back ("/eval/" for a folder) in the form the port uses ("/eval")."""
    return "/" + "/".join(p for p in path.split("/") if p)


def _user_path(path: str, folder: bool = False) -> str:
    """A path someone gave, refused in one sentence as the local store refuses it (`rules.clean_path`):
    pachd would quietly clean `a//b` or `a/./b`, and a typo would land files where nobody looks."""
    if isinstance(path, str) and ".." in path.replace("\\", "/").split("/"):
        raise InvalidInput(f"The path {path!r} contains '..'; give a path inside the repo.")
    return rules.clean_path(path, folder=folder)


class PachydermDataStore:
    """ports.DataStore on a pachd server."""

    def __init__(self, config: Config, platform: Any = None) -> None:
        self.config = config
        self.pachd = Pachd(config)
        self._file_counts: dict[str, int] = {}  # finished commit id -> files in its tree

    def health(self) -> Service:
        return self.pachd.health()

    def close(self) -> None:
        self.pachd.close()

    # --- conversions ------------------------------------------------------------

    def _file_count(self, client: Any, info: Any) -> int:
        """How many files the commit's tree holds; a finished commit never changes, so it is counted once."""
        commit_id = info.commit.id
        if commit_id in self._file_counts:
            return self._file_counts[commit_id]
        count = sum(1 for f in client.walk_file(info.commit, "/") if f.file_type == FILE)
        if _seconds(info.finished) is not None:
            self._file_counts[commit_id] = count
        return count

    def _commit(self, client: Any, info: Any, parent: str | None) -> Commit:
        return Commit(
            id=info.commit.id,
            repo=info.commit.branch.repo.name or info.commit.repo.name,
            branch=info.commit.branch.name,
            parent=parent,
            message=info.description,
            created=_seconds(info.started) or 0.0,
            size_bytes=info.details.size_bytes or info.size_bytes_upper_bound,
            files=self._file_count(client, info),
            provenance=_provenance(info),
        )

    @staticmethod
    def _entry(info: Any) -> FileEntry:
        kind = "file" if info.file_type == FILE else "dir"
        return FileEntry(path=_clean_path(info.file.path), type=kind, size_bytes=info.size_bytes)

    def _repo(self, client: Any, info: Any) -> Repo:
        commits = [c for c in client.list_commit(info.repo.name, all=True) if data_rules.is_data(*_state(c))]
        times = [_seconds(c.finished) or _seconds(c.started) or 0.0 for c in commits]
        return Repo(
            name=info.repo.name,
            created=_seconds(info.created) or 0.0,
            size_bytes=info.details.size_bytes or info.size_bytes_upper_bound,
            commits=len(commits),
            last_change=max(times) if times else None,
            branches=tuple(sorted(b.name for b in info.branches)),
            description=info.description,
        )

    def _data_parent(self, client: Any, repo: str, info: Any) -> str | None:
        """The nearest ancestor of the commit that is data (data_rules): its parent, unless that failed or is open."""
        from python_pachyderm.pfs import Commit as PfsCommit

        parent = info.parent_commit.id or None
        while parent:
            found = next(iter(client.inspect_commit(PfsCommit(repo=repo, id=parent))))
            if data_rules.is_data(*_state(found)):
                return parent
            parent = found.parent_commit.id or None
        return None

    def _ref(self, repo: str, ref: str) -> Any:
        """The CommitInfo of the data commit that `ref` names: a branch's data head (data_rules), or a full commit
        id or a unique id prefix, refused when that commit is not data."""
        from python_pachyderm.pfs import Commit as PfsCommit

        if not ref or not isinstance(ref, str):
            raise InvalidInput(f"Give a branch or a commit of repo {repo!r}.")
        with self.pachd.call(f"repo {repo!r}") as client:
            branches = {b.branch.name for b in client.list_branch(repo)}
        if ref in branches:
            with self.pachd.call(f"branch {ref!r} in repo {repo!r}") as client:
                head = next(iter(client.inspect_commit(PfsCommit(repo=repo, branch=ref))))
                if data_rules.is_data(*_state(head)):  # the usual case: one call
                    return head
                chain = list(client.list_commit(repo, to_commit=head.commit, all=True))
                head, newest = data_rules.data_head(chain, _state)
            if head is None:  # `newest` is the branch's head then
                raise data_rules.no_data_head(repo, ref, newest.commit.id, *_state(newest))
            return head
        if re.fullmatch(r"[0-9a-fA-F]{4,32}", ref):  # commit ids are lower-case hex; a prefix may be typed in either case
            ref = ref.lower()
        if not re.fullmatch(r"[0-9a-f]{4,32}", ref):
            raise NotFound(f"Repo {repo!r} has no branch or commit {ref!r}.")
        with self.pachd.call(f"commit {ref!r} in repo {repo!r}") as client:
            if FULL_ID.match(ref):
                found = [next(iter(client.inspect_commit(PfsCommit(repo=repo, id=ref))))]
            else:
                found = [c for c in client.list_commit(repo, all=True) if c.commit.id.startswith(ref)]
        if not found:
            raise NotFound(f"Repo {repo!r} has no branch or commit {ref!r}.")
        if len(found) > 1:
            raise InvalidInput(f"{ref!r} matches {len(found)} commits of repo {repo!r}; give more characters.")
        if not data_rules.is_data(*_state(found[0])):
            raise data_rules.not_data(repo, found[0].commit.id, *_state(found[0]))
        return found[0]

    # --- repos --------------------------------------------------------------------

    def list_repos(self) -> list[Repo]:
        with self.pachd.call("repo list") as client:
            return sorted((self._repo(client, info) for info in client.list_repo()), key=lambda r: r.name)

    def inspect_repo(self, name: str) -> Repo:
        with self.pachd.call(f"repo {name!r}") as client:
            return self._repo(client, client.inspect_repo(name))

    def create_repo(self, name: str, description: str = "") -> Repo:
        rules.check_repo_name(name)  # one rule on both profiles, inside pachd's own
        with self.pachd.call(f"repo {name!r}") as client:
            client.create_repo(name, description=description or None)
        return self.inspect_repo(name)

    def delete_repo(self, name: str) -> None:
        """pachd 2.x answers success for a repo that is not there; the port says NotFound, as locally. A repo that a
        pipeline reads or writes is a Conflict on both profiles (data_rules): pachd refuses those in its own words,
        except the input of a stopped pipeline, which it deletes."""
        with self.pachd.call(f"repo {name!r}") as client:
            client.inspect_repo(name)
            data_rules.check_repo_unused(name, pipeline_users(client))
            client.delete_repo(name)

    def list_branches(self, repo: str) -> list[str]:
        with self.pachd.call(f"repo {repo!r}") as client:
            return sorted(b.branch.name for b in client.list_branch(repo))

    # --- commits ----------------------------------------------------------------

    def list_commits(self, repo: str, branch: str | None = None, limit: int | None = None) -> list[Commit]:
        """The commits that are data (data_rules), newest first: a failed job's output commit and an open one are left
        out, and a commit's parent is its nearest ancestor that is data. python-pachyderm asks pachd for USER commits
        only unless told `all`, which would leave out every commit a pipeline made."""
        from python_pachyderm.pfs import Commit as PfsCommit

        with self.pachd.call(f"repo {repo!r}") as client:
            client.inspect_repo(repo)
        what = f"branch {branch!r} in repo {repo!r}" if branch else f"repo {repo!r}"
        with self.pachd.call(what) as client:
            head = PfsCommit(repo=repo, branch=branch) if branch else None
            infos = sorted(client.list_commit(repo, to_commit=head, all=True), key=lambda i: _seconds(i.started) or 0.0,
                           reverse=True)
            by_id = {i.commit.id: i for i in infos}
            chosen = [i for i in infos if data_rules.is_data(*_state(i))][: limit or None]
            return [self._commit(client, i, data_rules.data_parent(i.parent_commit.id or None, by_id, _state, _parent))
                    for i in chosen]

    def inspect_commit(self, repo: str, ref: str) -> Commit:
        info = self._ref(repo, ref)
        with self.pachd.call(f"commit {ref!r} in repo {repo!r}") as client:
            return self._commit(client, info, self._data_parent(client, repo, info))

    def resolve(self, repo: str, ref: str) -> DataRef:
        commit = self.inspect_commit(repo, ref)
        return DataRef(repo=repo, commit=commit.id, branch=commit.branch)

    # --- files --------------------------------------------------------------------

    @staticmethod
    def _sources(files: Mapping[str, Path | bytes]) -> list[tuple[str, Path | bytes, int]]:
        """(destination, source, size) for every file to put; a folder brings all the files in it."""
        out = []
        for dest, value in files.items():
            dest = _user_path(dest)
            if isinstance(value, (bytes, bytearray)):
                out.append((dest, bytes(value), len(value)))
                continue
            path = Path(value)
            if path.is_dir():
                out.extend((where, f, f.stat().st_size) for where, f in rules.files_below(path, dest))
            elif path.is_file():
                out.append((dest, path, path.stat().st_size))
            else:
                raise NotFound(f"There is no file or folder {path} on this machine; check the path.")
        if not out:
            raise InvalidInput("There are no files to put; give at least one file.")
        return out

    def _modify(self, repo: str, branch: str, message: str, ops) -> Commit:
        """One commit on `branch` holding the changes `ops(mfc)` queues; dropped again if they fail."""
        rules.check_branch_name(branch)
        with self.pachd.call(f"repo {repo!r}") as client:
            client.inspect_repo(repo)
            try:
                commit = client.start_commit(repo, branch, description=message or None)
            except Exception as e:  # pachd refuses a user's commit to a pipeline's output branch: the rule's sentence
                if refused_output_branch(e):
                    raise data_rules.output_written_by_jobs(repo) from None
                raise
        with self.pachd.call(f"a commit to {repo}@{branch}") as client:
            try:
                with client.modify_file_client(commit) as mfc:
                    ops(mfc)
            except BaseException:
                with contextlib.suppress(Exception):
                    client.finish_commit(commit, error="dlptui: the upload failed")
                    client.drop_commit(commit.id)
                raise
            client.finish_commit(commit)
            # pachd 2.x finishes asynchronously (FINISHING, then FINISHED): sizes and counts are known once FINISHED
            info = next(iter(client.inspect_commit(commit, FINISHED)))
            return self._commit(client, info, self._data_parent(client, repo, info))

    def put_files(
        self,
        repo: str,
        branch: str,
        files: Mapping[str, Path | bytes],
        message: str = "",
        progress: Progress | None = None,
        delete: Sequence[str] = (),
    ) -> Commit:
        sources = self._sources(files)
        deletions = [_user_path(p) for p in delete]
        total, done = sum(size for _, _, size in sources), 0

        def advance(n: int) -> None:
            nonlocal done
            done += n
            if progress:
                progress(done, total)

        def ops(mfc) -> None:
            for path in deletions:  # first: the puts below land on the tree without them
                mfc.delete_file(path)
            for dest, source, _ in sources:
                mfc.put_file_from_fileobj(dest, _CountingReader(source, advance))

        commit = self._modify(repo, branch, message, ops)
        if progress:
            progress(total, total)
        return commit

    def delete_files(self, repo: str, branch: str, paths: list[str], message: str = "") -> Commit:
        cleaned = [_user_path(p) for p in paths]
        if not cleaned:
            raise InvalidInput("There are no paths to delete; give at least one.")
        with self.pachd.call(f"branch {branch!r} in repo {repo!r}") as client:
            head = self._ref(repo, branch).commit
            for path in cleaned:
                with self.pachd.call(f"file {path!r} in {repo}@{branch}"):
                    list(client.list_file(head, path))

        def ops(mfc) -> None:
            for path in cleaned:
                mfc.delete_file(path)

        return self._modify(repo, branch, message, ops)

    def list_files(self, repo: str, ref: str, path: str = "/", recursive: bool = False) -> list[FileEntry]:
        path = _user_path(path, folder=True)
        with self.pachd.call(f"path {path!r} in {repo}@{ref}") as client:
            commit = self._ref(repo, ref).commit
            infos = client.walk_file(commit, path) if recursive else client.list_file(commit, path)
            entries = [self._entry(i) for i in infos]
        if recursive:  # every file below `path`, as the local store gives them
            entries = [e for e in entries if e.type == "file"]
        return sorted(entries, key=lambda e: e.path)

    def iter_file(self, repo: str, ref: str, path: str, chunk_size: int = 1 << 20):
        """GetFile's stream, passed on in chunks (python-pachyderm's PFSFile reads the gRPC stream as it comes)."""
        path = _user_path(path)
        what = f"file {path!r} in {repo}@{ref}"
        with self.pachd.call(what) as client:
            commit = self._ref(repo, ref).commit
            f = client.get_file(commit, path)
            try:
                first = f.read(chunk_size)  # errors (no such file) come with the first message: before any chunk
            except StopIteration:
                first = b""

        def chunks():
            with self.pachd.call(what):
                try:
                    chunk = first
                    while chunk:
                        yield chunk
                        chunk = f.read(chunk_size)
                except StopIteration:
                    return
                finally:
                    f.close()

        return chunks()

    def get_file(self, repo: str, ref: str, path: str) -> bytes:
        path = _user_path(path)
        with self.pachd.call(f"file {path!r} in {repo}@{ref}") as client:
            commit = self._ref(repo, ref).commit
            try:
                with client.get_file(commit, path) as f:
                    return f.read()
            except StopIteration:  # an empty file arrives as an empty stream
                return b""
