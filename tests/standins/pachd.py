"""A stand-in for pachd: the PFS gRPC API over an in-memory state, for tests only.

It implements the `pfs_v2.API` servicer generated in python-pachyderm's own package (plus
the standard gRPC health service and pachd's version service, which the client calls), so
`python_pachyderm.Client` talks to it exactly as to a real pachd 2.x: repos in the
`default` project, branches, commits with parents that are started and finished, atomic
ModifyFile streams, GetFile as a stream of raw byte chunks, ListFile / WalkFile / GlobFile.
Errors use the gRPC status codes a real pachd sends for the same mistakes, and what pachd
accepts it accepts too (DeleteRepo of a repo that is not there succeeds), and a finished commit passes
through FINISHING to FINISHED asynchronously (InspectCommit with `wait` waits for it). Its state, and the
fixed repo it starts with, are in pachd_state.py.

    server = PachdStandin().start()
    client = python_pachyderm.Client.new_from_pachd_address(server.address)
    ...
    server.stop()
"""

from __future__ import annotations

import fnmatch
import re
import threading
import time
import uuid
from concurrent import futures

import grpc
from google.protobuf import empty_pb2, wrappers_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from python_pachyderm.proto.v2.pfs import pfs_pb2, pfs_pb2_grpc
from python_pachyderm.proto.v2.pps import pps_pb2_grpc
from python_pachyderm.proto.v2.version.versionpb import version_pb2, version_pb2_grpc

from tests.standins.pachd_state import StandinCommit, StandinRepo, clean_path, seed, timestamp

REPO_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")
CHUNK = 1 << 20  # GetFile sends the content in chunks of this size
FINISHING_S = 0.05  # how long a finished commit stays FINISHING before it is FINISHED (asynchronously, as on pachd 2.x)


class _Abort(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code, self.details = code, details


class PfsStandinServicer(pfs_pb2_grpc.APIServicer):
    """The PFS calls python-pachyderm makes for repos, branches, commits and files."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.finishing = threading.Condition(self.lock)
        self.reset()

    def reset(self) -> None:
        """Back to the fixed state (pachd_state.seed), with auth off."""
        with self.lock:
            self.repos = seed()
            self.required_token: str | None = None  # when set, every PFS call needs it as `authn-token`

    # --- plumbing --------------------------------------------------------------

    def _run(self, context, fn):
        try:
            with self.lock:
                if self.required_token and dict(context.invocation_metadata()).get("authn-token") != self.required_token:
                    raise _Abort(grpc.StatusCode.UNAUTHENTICATED, "provided auth token is corrupted or has expired (try logging in again)")
                return fn()
        except _Abort as e:
            context.abort(e.code, e.details)

    def _repo(self, name: str) -> StandinRepo:
        if name not in self.repos:
            raise _Abort(grpc.StatusCode.NOT_FOUND, f"repo {name} not found in project default")
        return self.repos[name]

    def _find(self, commit: pfs_pb2.Commit) -> StandinCommit:
        repo = self._repo(commit.branch.repo.name or commit.repo.name)
        if commit.id:
            if commit.id not in repo.commits:
                raise _Abort(grpc.StatusCode.NOT_FOUND, f"commit {repo.name}@{commit.id} not found")
            return repo.commits[commit.id]
        if commit.branch.name not in repo.branches:
            raise _Abort(grpc.StatusCode.NOT_FOUND, f"branch {commit.branch.name} not found in repo {repo.name}")
        return repo.commits[repo.branches[commit.branch.name]]

    def _commit_pb(self, c: StandinCommit) -> pfs_pb2.Commit:
        repo = pfs_pb2.Repo(name=c.repo, type="user", project=pfs_pb2.Project(name="default"))
        return pfs_pb2.Commit(id=c.id, repo=repo, branch=pfs_pb2.Branch(repo=repo, name=c.branch))

    def _commit_info(self, c: StandinCommit) -> pfs_pb2.CommitInfo:
        repo = self.repos[c.repo]
        size = sum(len(v) for v in c.files.values()) if c.finished is not None else 0  # pachd knows it once FINISHED
        return pfs_pb2.CommitInfo(
            commit=self._commit_pb(c),
            origin=pfs_pb2.CommitOrigin(kind=pfs_pb2.OriginKind.USER),
            description=c.description,
            parent_commit=self._commit_pb(repo.commits[c.parent]) if c.parent else None,
            child_commits=[self._commit_pb(x) for x in repo.commits.values() if x.parent == c.id],
            started=timestamp(c.started),
            finishing=timestamp(c.finishing or c.finished),
            finished=timestamp(c.finished),
            error=c.error,
            direct_provenance=[self._commit_pb(self.repos[r].commits[i]) for r, i in c.provenance
                               if r in self.repos and i in self.repos[r].commits],
            size_bytes_upper_bound=size,
            details=pfs_pb2.CommitInfo.Details(size_bytes=size),
        )

    def _repo_info(self, r: StandinRepo) -> pfs_pb2.RepoInfo:
        repo = pfs_pb2.Repo(name=r.name, type="user", project=pfs_pb2.Project(name="default"))
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
            file=pfs_pb2.File(commit=self._commit_pb(c), path=shown),
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
            raise _Abort(grpc.StatusCode.NOT_FOUND, f"file {path} not found in repo {c.repo} at commit {c.id}")
        prefix = path.rstrip("/") + "/"
        names = sorted((p, False) for p in c.files if p.startswith(prefix))
        names += sorted((d, True) for d in dirs if d.startswith(prefix) and d != path)
        if not recursive:
            names = [(p, d) for p, d in names if "/" not in p[len(prefix) :]]
        else:  # like pachd, a walk starts with the folder itself
            names.append((path, True))
        return [self._file_info(c, p, d) for p, d in sorted(names)]

    # --- repos and branches ----------------------------------------------------

    def CreateRepo(self, request, context):
        def create():
            name = request.repo.name
            if not REPO_NAME.match(name):
                raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"repo name ({name}) invalid: only alphanumeric characters, underscores, and dashes are allowed")
            if name in self.repos and not request.update:
                raise _Abort(grpc.StatusCode.ALREADY_EXISTS, f"repo {name} already exists")
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
            self.repos.pop(request.repo.name, None)
            return empty_pb2.Empty()

        return self._run(context, delete)

    def ListBranch(self, request, context):
        def branches():
            r = self._repo(request.repo.name)
            return [
                pfs_pb2.BranchInfo(
                    branch=pfs_pb2.Branch(repo=pfs_pb2.Repo(name=r.name, type="user"), name=b),
                    head=self._commit_pb(r.commits[head]),
                )
                for b, head in sorted(r.branches.items())
            ]

        yield from self._run(context, branches)

    # --- commits ----------------------------------------------------------------

    def StartCommit(self, request, context):
        def start():
            r = self._repo(request.branch.repo.name)
            branch = request.branch.name
            if not REPO_NAME.match(branch):
                raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"branch name ({branch}) invalid")
            parent = r.commits.get(r.branches.get(branch, ""))
            if parent and parent.finished is None and parent.finishing is None:
                raise _Abort(grpc.StatusCode.FAILED_PRECONDITION, f"parent commit {parent.id} has not been finished")
            c = StandinCommit(
                id=uuid.uuid4().hex,
                repo=r.name,
                branch=branch,
                parent=parent.id if parent else None,
                description=request.description,
                started=time.time(),
                files=dict(parent.files) if parent else {},
            )
            r.commits[c.id] = c
            r.branches[branch] = c.id
            return self._commit_pb(c)

        return self._run(context, start)

    def FinishCommit(self, request, context):
        def finish():
            c = self._find(request.commit)
            if c.finished is not None or c.finishing is not None:
                raise _Abort(grpc.StatusCode.FAILED_PRECONDITION, f"commit {c.id} has already been finished")
            if request.description:
                c.description = request.description
            c.error = request.error
            c.finishing = time.time()
            threading.Timer(FINISHING_S, self._finished, (c,)).start()  # FINISHING, then FINISHED a moment later
            return empty_pb2.Empty()

        return self._run(context, finish)

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
            if request.reverse:
                chain.reverse()
            if request.number:
                chain = chain[: request.number]
            return [self._commit_info(c) for c in chain]

        yield from self._run(context, commits)

    def DropCommitSet(self, request, context):
        def drop():
            for r in self.repos.values():
                c = r.commits.get(request.commit_set.id)
                if c is None:
                    continue
                if any(x.parent == c.id for x in r.commits.values()):
                    raise _Abort(grpc.StatusCode.FAILED_PRECONDITION, f"commit {c.id} has children")
                del r.commits[c.id]
                if r.branches.get(c.branch) == c.id:
                    if c.parent:
                        r.branches[c.branch] = c.parent
                    else:
                        del r.branches[c.branch]
                return empty_pb2.Empty()
            raise _Abort(grpc.StatusCode.NOT_FOUND, f"commit set {request.commit_set.id} not found")

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
                raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "no commit set for ModifyFile")
            c = self._find(commit)
            if c.finished is not None or c.finishing is not None:
                raise _Abort(grpc.StatusCode.FAILED_PRECONDITION, f"commit {c.id} is finished; start a new commit")
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
                    raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"{path} is a directory; use GetFileTAR")
                raise _Abort(grpc.StatusCode.NOT_FOUND, f"file {path} not found in repo {c.repo} at commit {c.id}")
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


class VersionStandinServicer(version_pb2_grpc.APIServicer):
    def GetVersion(self, request, context):
        return version_pb2.Version(major=2, minor=7, micro=0, additional="-standin")


class PachdStandin:
    """The stand-in server on 127.0.0.1 with a free port."""

    def __init__(self) -> None:
        from tests.standins.pachd_pps import PpsStandinServicer

        self.pfs = PfsStandinServicer()
        self.pps = PpsStandinServicer(self.pfs)
        self._server: grpc.Server | None = None
        self.port = 0

    @property
    def address(self) -> str:
        return f"grpc://127.0.0.1:{self.port}"

    def reset(self) -> None:
        self.pfs.reset()
        self.pps.reset()

    def start(self) -> PachdStandin:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        pfs_pb2_grpc.add_APIServicer_to_server(self.pfs, server)
        pps_pb2_grpc.add_APIServicer_to_server(self.pps, server)
        version_pb2_grpc.add_APIServicer_to_server(VersionStandinServicer(), server)
        checker = health.HealthServicer()
        checker.set("", health_pb2.HealthCheckResponse.SERVING)
        health_pb2_grpc.add_HealthServicer_to_server(checker, server)
        self.port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None).wait()
            self._server = None
        self.pps.close()
