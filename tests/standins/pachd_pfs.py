"""The PFS half of the pachd stand-in (tests only): repos, branches, commits and files on the generated servicer.

What it does as pachd 2.12 does (and 2.7.8 the same, unless said), from pachd's source (src/server/pfs):
- repos in the `default` project; DeleteRepo of a repo that is not there succeeds; of a pipeline's output repo it
  is refused ("cannot delete a repo associated with a pipeline - delete the pipeline instead"), and of a repo a
  pipeline reads too, because its branch is in the provenance of the pipeline's output branch (2.12's words,
  pachd_pps.IN_PROVENANCE; 2.7.8 says "branch master has [...] as subvenance, deleting it would break those
  branches"); both without a gRPC code of their own (UNKNOWN);
- a commit is started and finished; FinishCommit passes it through FINISHING to FINISHED asynchronously
  (InspectCommit with `wait` waits); a commit may finish with an `error`; a job's output commit is AUTO, a
  commit someone started USER, and ListCommit keeps only the `origin_kind` asked for unless `all` is set
  (python-pachyderm 7.6 asks for USER unless told otherwise);
- StartCommit on a pipeline's output branch is refused ("cannot start a commit on an output branch");
  a new commit on a branch that a pipeline reads starts that pipeline's job at once (the commit set),
  while the commit is still open;
- DropCommitSet drops the commit set: the commit, and the output commits and jobs made for it;
- ModifyFile streams are atomic; GetFile streams raw byte chunks; ListFile / WalkFile / GlobFile;
- errors carry pachd's codes and words ("repo default/x not found", NOT_FOUND), and with auth on
  (`required_token`) every call needs the token (UNAUTHENTICATED otherwise).
"""

from __future__ import annotations

import fnmatch
import re
import threading
import time
import uuid

import grpc
from google.protobuf import empty_pb2, wrappers_pb2
from python_pachyderm.proto.v2.pfs import pfs_pb2, pfs_pb2_grpc

from tests.standins.pachd_state import (
    PROJECT, USER, Abort, StandinCommit, StandinRepo, check_token, clean_path, seed, timestamp,
)

NAME = re.compile(r"^[a-zA-Z0-9_-]+$")  # pachd's ancestry.ValidateName
CHUNK = 1 << 20  # GetFile sends the content in chunks of this size
FINISHING_S = 0.05  # how long a finished commit stays FINISHING before it is FINISHED (asynchronously, as on pachd 2.x)


def repo_pb(name: str, type: str = "user") -> pfs_pb2.Repo:
    return pfs_pb2.Repo(name=name, type=type, project=pfs_pb2.Project(name=PROJECT))


class PfsStandinServicer(pfs_pb2_grpc.APIServicer):
    """The PFS calls python-pachyderm makes for repos, branches, commits and files."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.finishing = threading.Condition(self.lock)
        self.pps = None  # the PPS servicer (pachd_pps.py), which shares this state and lock
        self.reset()

    def reset(self) -> None:
        """Back to the fixed state (pachd_state.seed), with auth off."""
        with self.lock:
            self.repos = seed()
            self.required_token: str | None = None  # when set, every PFS and PPS call needs it as `authn-token`

    # --- plumbing --------------------------------------------------------------

    def _run(self, context, fn):
        try:
            with self.lock:
                check_token(context, self.required_token)
                return fn()
        except Abort as e:
            context.abort(e.code, e.details)

    def _repo(self, name: str) -> StandinRepo:
        if name not in self.repos:
            raise Abort(grpc.StatusCode.NOT_FOUND, f"repo {PROJECT}/{name} not found")
        return self.repos[name]

    def _find(self, commit: pfs_pb2.Commit) -> StandinCommit:
        repo = self._repo(commit.branch.repo.name or commit.repo.name)
        if commit.id:
            if commit.id not in repo.commits:
                raise Abort(grpc.StatusCode.NOT_FOUND, f"commit {PROJECT}/{repo.name}@{commit.id} not found")
            return repo.commits[commit.id]
        if commit.branch.name not in repo.branches:
            raise Abort(grpc.StatusCode.NOT_FOUND, f'branch "{commit.branch.name}" not found in repo {PROJECT}/{repo.name}')
        return repo.commits[repo.branches[commit.branch.name]]

    def commit_pb(self, c: StandinCommit) -> pfs_pb2.Commit:
        repo = repo_pb(c.repo)
        return pfs_pb2.Commit(id=c.id, repo=repo, branch=pfs_pb2.Branch(repo=repo, name=c.branch))

    def _commit_info(self, c: StandinCommit) -> pfs_pb2.CommitInfo:
        repo = self.repos[c.repo]
        size = sum(len(v) for v in c.files.values()) if c.finished is not None else 0  # pachd knows it once FINISHED
        provenance = [self.commit_pb(self.repos[r].commits[i]) for r, i in c.provenance
                      if r in self.repos and i in self.repos[r].commits]
        if c.spec:  # a job's output commit: the pipeline's spec commit is in its provenance too
            spec = repo_pb(c.repo, "spec")
            provenance.append(pfs_pb2.Commit(id=c.spec, repo=spec, branch=pfs_pb2.Branch(repo=spec, name="master")))
        return pfs_pb2.CommitInfo(
            commit=self.commit_pb(c),
            origin=pfs_pb2.CommitOrigin(kind=c.origin),
            description=c.description,
            parent_commit=self.commit_pb(repo.commits[c.parent]) if c.parent in repo.commits else None,
            child_commits=[self.commit_pb(x) for x in repo.commits.values() if x.parent == c.id],
            started=timestamp(c.started),
            finishing=timestamp(c.finishing or c.finished),
            finished=timestamp(c.finished),
            error=c.error,
            direct_provenance=provenance,
            size_bytes_upper_bound=size,
            details=pfs_pb2.CommitInfo.Details(size_bytes=size),
        )

    def _repo_info(self, r: StandinRepo) -> pfs_pb2.RepoInfo:
        repo = repo_pb(r.name)
        head = r.commits.get(r.branches.get("master", ""))
        size = sum(len(v) for v in head.files.values()) if head else 0
        return pfs_pb2.RepoInfo(
            repo=repo,
            created=timestamp(r.created),
            size_bytes_upper_bound=size,
            description=r.description,
            branches=[pfs_pb2.Branch(repo=repo, name=b) for b in sorted(r.branches)],
            details=pfs_pb2.RepoInfo.Details(size_bytes=size),
        )

    def _file_info(self, c: StandinCommit, path: str, is_dir: bool) -> pfs_pb2.FileInfo:
        if is_dir:
            prefix = path.rstrip("/") + "/"
            size = sum(len(v) for p, v in c.files.items() if p.startswith(prefix))
            shown = prefix
        else:
            size, shown = len(c.files[path]), path
        return pfs_pb2.FileInfo(
            file=pfs_pb2.File(commit=self.commit_pb(c), path=shown),
            file_type=pfs_pb2.FileType.DIR if is_dir else pfs_pb2.FileType.FILE,
            committed=timestamp(c.finished),
            size_bytes=size,
        )

    @staticmethod
    def _dirs(c: StandinCommit) -> set[str]:
        out = {"/"}
        for p in c.files:
            parts = p.split("/")[1:-1]
            out.update("/" + "/".join(parts[: i + 1]) for i in range(len(parts)))
        return out

    def _entries(self, c: StandinCommit, path: str, recursive: bool) -> list[pfs_pb2.FileInfo]:
        path = clean_path(path)
        dirs = self._dirs(c)
        if path in c.files:
            return [self._file_info(c, path, False)]
        if path not in dirs:
            raise Abort(grpc.StatusCode.NOT_FOUND, f"file {path} not found in repo {PROJECT}/{c.repo} at commit {c.id}")
        prefix = path.rstrip("/") + "/"
        names = sorted((p, False) for p in c.files if p.startswith(prefix))
        names += sorted((d, True) for d in dirs if d.startswith(prefix) and d != path)
        if not recursive:
            names = [(p, d) for p, d in names if "/" not in p[len(prefix) :]]
        else:  # like pachd, a walk starts with the folder itself
            names.append((path, True))
        return [self._file_info(c, p, d) for p, d in sorted(names)]

    def new_commit(self, repo: StandinRepo, branch: str, origin: int = USER, description: str = "",
                   commit_id: str | None = None) -> StandinCommit:
        """A started commit on top of the branch's head (its tree to begin with), made the branch's head."""
        parent = repo.commits.get(repo.branches.get(branch, ""))
        c = StandinCommit(id=commit_id or uuid.uuid4().hex, repo=repo.name, branch=branch,
                          parent=parent.id if parent else None, description=description, started=time.time(),
                          files=dict(parent.files) if parent else {}, origin=origin)
        repo.commits[c.id] = c
        repo.branches[branch] = c.id
        return c

    # --- repos and branches ----------------------------------------------------

    def CreateRepo(self, request, context):
        def create():
            name = request.repo.name
            if not NAME.match(name):
                raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"repo name ({name}) invalid: only alphanumeric characters, underscores, and dashes are allowed")
            if name in self.repos and not request.update:
                raise Abort(grpc.StatusCode.ALREADY_EXISTS, f"repo {PROJECT}/{name} already exists")
            if name in self.repos:
                self.repos[name].description = request.description
            else:
                self.repos[name] = StandinRepo(name, request.description, time.time())
            return empty_pb2.Empty()

        return self._run(context, create)

    def InspectRepo(self, request, context):
        return self._run(context, lambda: self._repo_info(self._repo(request.repo.name)))

    def ListRepo(self, request, context):
        infos = self._run(context, lambda: [self._repo_info(r) for r in self.repos.values()])
        yield from infos

    def DeleteRepo(self, request, context):
        def delete():  # like pachd 2.x, a repo that is not there is no error: the call succeeds
            name = request.repo.name
            if name in self.repos and self.pps is not None:
                self.pps.refuse_repo_delete(name)
            self.repos.pop(name, None)
            return empty_pb2.Empty()

        return self._run(context, delete)

    def ListBranch(self, request, context):
        def branches():
            r = self._repo(request.repo.name)
            return [
                pfs_pb2.BranchInfo(branch=pfs_pb2.Branch(repo=repo_pb(r.name), name=b), head=self.commit_pb(r.commits[head]))
                for b, head in sorted(r.branches.items())
            ]

        yield from self._run(context, branches)

    # --- commits ----------------------------------------------------------------

    def StartCommit(self, request, context):
        def start():
            r = self._repo(request.branch.repo.name)
            branch = request.branch.name
            if not NAME.match(branch):
                raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"name ({branch}) invalid: only alphanumeric characters, underscores, and dashes are allowed")
            if self.pps is not None and self.pps.output_branch(r.name, branch):
                raise Abort(grpc.StatusCode.UNKNOWN, f"cannot start a commit on an output branch: {PROJECT}/{r.name}@{branch}")
            parent = r.commits.get(r.branches.get(branch, ""))
            if parent and parent.finished is None and parent.finishing is None:
                raise Abort(grpc.StatusCode.FAILED_PRECONDITION, f"parent commit {parent.id} has not been finished")
            c = self.new_commit(r, branch, USER, request.description)
            if self.pps is not None:
                self.pps.propagate(r.name, branch)  # the commit set: the jobs of the pipelines that read the branch
            return self.commit_pb(c)

        return self._run(context, start)

    def FinishCommit(self, request, context):
        def finish():
            c = self._find(request.commit)
            if c.finished is not None or c.finishing is not None:
                raise Abort(grpc.StatusCode.FAILED_PRECONDITION, f"commit {PROJECT}/{c.repo}@{c.id} has already finished")
            if request.description:
                c.description = request.description
            self.finish(c, request.error)
            return empty_pb2.Empty()

        return self._run(context, finish)

    def finish(self, c: StandinCommit, error: str = "") -> None:
        """FINISHING now, FINISHED a moment later (asynchronously, as on pachd 2.x)."""
        c.error = error
        c.finishing = time.time()
        threading.Timer(FINISHING_S, self._finished, (c,)).start()

    def _finished(self, c: StandinCommit) -> None:
        with self.finishing:
            c.finished = time.time()
            self.finishing.notify_all()

    def InspectCommit(self, request, context):
        def inspect():
            c = self._find(request.commit)
            if request.wait >= pfs_pb2.CommitState.FINISHING:
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and (
                    c.finished is None if request.wait == pfs_pb2.CommitState.FINISHED else c.finishing is None
                ):
                    self.finishing.wait(0.05)  # releases the lock meanwhile
            return self._commit_info(c)

        return self._run(context, inspect)

    def ListCommit(self, request, context):
        def commits():
            r = self._repo(request.repo.name)
            if request.HasField("to"):
                chain, c = [], self._find(getattr(request, "to"))
                while c:
                    chain.append(c)
                    c = r.commits.get(c.parent or "")
            else:
                chain = sorted(r.commits.values(), key=lambda c: c.started, reverse=True)
            if not request.all and request.origin_kind:
                chain = [c for c in chain if c.origin == request.origin_kind]
            if request.reverse:
                chain.reverse()
            if request.number:
                chain = chain[: request.number]
            return [self._commit_info(c) for c in chain]

        yield from self._run(context, commits)

    def DropCommitSet(self, request, context):
        def drop():
            ident = request.commit_set.id
            found = [r for r in self.repos.values() if ident in r.commits]
            if not found:
                raise Abort(grpc.StatusCode.NOT_FOUND, f"no commits found for commitset {ident}")
            for r in found:
                if any(x.parent == ident for x in r.commits.values()):
                    raise Abort(grpc.StatusCode.UNKNOWN, f"cannot drop a commit that has children: {PROJECT}/{r.name}@{ident}")
            for r in found:
                c = r.commits.pop(ident)
                if r.branches.get(c.branch) == ident:
                    if c.parent:
                        r.branches[c.branch] = c.parent
                    else:
                        del r.branches[c.branch]
            if self.pps is not None:
                self.pps.drop_jobs(ident)
            return empty_pb2.Empty()

        return self._run(context, drop)

    # --- files ------------------------------------------------------------------

    def ModifyFile(self, request_iterator, context):
        commit, puts = None, []
        for req in request_iterator:  # staged first, applied at the end: one atomic change
            kind = req.WhichOneof("body")
            if kind == "set_commit":
                commit = req.set_commit
            elif kind == "add_file":
                puts.append((clean_path(req.add_file.path), req.add_file.raw.value))
            elif kind == "delete_file":
                puts.append((clean_path(req.delete_file.path), None))

        def apply():
            if commit is None:
                raise Abort(grpc.StatusCode.INVALID_ARGUMENT, "no commit set for ModifyFile")
            c = self._find(commit)
            if c.finished is not None or c.finishing is not None:
                raise Abort(grpc.StatusCode.FAILED_PRECONDITION, f"commit {PROJECT}/{c.repo}@{c.id} has already finished")
            for path, chunk in puts:
                if chunk is None:
                    prefix = path.rstrip("/") + "/"
                    for p in [p for p in c.files if p == path or p.startswith(prefix)]:
                        del c.files[p]
                else:
                    c.files[path] = c.files.get(path, b"") + chunk
            return empty_pb2.Empty()

        return self._run(context, apply)

    def GetFile(self, request, context):
        def content():
            c = self._find(request.file.commit)
            path = clean_path(request.file.path)
            if path not in c.files:
                if path in self._dirs(c):
                    raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"{path} is a directory; use GetFileTAR")
                raise Abort(grpc.StatusCode.NOT_FOUND, f"file {path} not found in repo {PROJECT}/{c.repo} at commit {c.id}")
            return c.files[path][request.offset :]

        data = self._run(context, content)
        for i in range(0, max(len(data), 1), CHUNK):
            yield wrappers_pb2.BytesValue(value=data[i : i + CHUNK])

    def InspectFile(self, request, context):
        return self._run(context, lambda: self._entries(self._find(request.file.commit), request.file.path, False)[0])

    def ListFile(self, request, context):
        yield from self._run(context, lambda: self._entries(self._find(request.file.commit), request.file.path, False))

    def WalkFile(self, request, context):
        yield from self._run(context, lambda: self._entries(self._find(request.file.commit), request.file.path, True))

    def GlobFile(self, request, context):
        def glob():
            c = self._find(request.commit)
            paths = [(p, False) for p in c.files] + [(d, True) for d in self._dirs(c) if d != "/"]
            pattern = clean_path(request.pattern)
            return [self._file_info(c, p, d) for p, d in sorted(paths) if fnmatch.fnmatchcase(p, pattern)]

        yield from self._run(context, glob)

