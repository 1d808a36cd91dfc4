"""`dlptui data ...`: versioned data repos, their commits and files, and the Dogs-vs-Cats data set.

    dlptui data repos | create REPO | put REPO[@BRANCH] PATH... [--to DEST] [-m MSG]
    dlptui data ls REPO[@REF] [PATH] | commits REPO | get REPO[@REF]:PATH [-o FILE]
    dlptui data delete REPO [--yes] | sample [--repo R] [--count N] [--tar]
    (`data delete` asks on a terminal; --yes answers for scripts)
    dlptui data import-kaggle ZIP_OR_FOLDER [--repo R] [--eval-fraction F] [--seed S] [--tar]
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dlptui import text
from dlptui.actions import refs
from dlptui.actions.defaults import DATA_REPO
from dlptui.cli.output import confirm, emit_json, emit_object, emit_table, say
from dlptui.errors import InvalidInput
from dlptui.render import data as render


@contextmanager
def progress_bar(description: str):
    """A rich progress bar when stdout is a terminal; yields a `progress(done, total)` callback or None."""
    if not sys.stdout.isatty():
        yield None
        return
    from rich.markup import escape
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                  transient=True) as bar:
        task = bar.add_task(escape(text.plain(description)), total=None)  # a file name is words, not markup
        yield lambda done, total: bar.update(task, completed=done, total=total)


def register(sub) -> None:
    data = sub.add_parser("data", help="versioned data: repos, commits, files, the Dogs-vs-Cats set")
    verbs = data.add_subparsers(dest="verb", metavar="VERB", required=True)

    def verb(name: str, func, help: str, listing: bool = False, description: str | None = None):
        p = verbs.add_parser(name, help=help, description=description)
        if listing:
            p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(func=func)
        return p

    verb("repos", repos, "list the repos", listing=True)
    p = verb("create", create, "create an empty repo", listing=True)
    p.add_argument("repo")
    p.add_argument("-d", "--description", default="")
    p = verb("put", put, "commit local files or folders to a branch (like cp -r; with --to, a folder's contents go there, "
                         "as pachctl put file -r)", listing=True)
    p.add_argument("target", metavar="REPO[@BRANCH]")
    p.add_argument("paths", metavar="PATH", nargs="+", type=Path)
    p.add_argument("--to", metavar="DEST",
                   help="the folder inside the repo; a folder's contents land below it (default: / with the folder's name)")
    p.add_argument("-m", "--message", default="")
    p = verb("ls", ls, "list the files of a commit", listing=True)
    p.add_argument("target", metavar="REPO[@REF]")
    p.add_argument("path", nargs="?", default="/")
    p.add_argument("-r", "--recursive", action="store_true", help="every file below PATH")
    p = verb("commits", commits, "list a repo's commits, newest first", listing=True)
    p.add_argument("target", metavar="REPO[@BRANCH]")
    p.add_argument("-n", "--limit", type=int)
    p = verb("get", get, "print a file (or write it with -o)", description=GET_HELP)
    p.add_argument("target", metavar="REPO[@REF]:PATH")
    p.add_argument("-o", "--output", type=Path, metavar="FILE")
    p = verb("delete", delete, "delete a repo, its commits and the data only it held (asks first)", listing=True)
    p.add_argument("repo")
    p.add_argument("--yes", action="store_true", help="do not ask")
    p = verb("sample", sample, "commit the SYNTHETIC Dogs-vs-Cats sample, split into train/ and eval/", listing=True)
    p.add_argument("--repo", default=DATA_REPO)
    p.add_argument("--count", type=int, default=300)
    p.add_argument("--tar", action="store_true", help="commit one data.tar.gz instead of files")
    p = verb("import-kaggle", import_kaggle, "split Kaggle's train.zip (or a folder of its images) and commit it",
             listing=True)
    p.add_argument("source", metavar="ZIP_OR_FOLDER", type=Path)
    p.add_argument("--repo", default=DATA_REPO)
    p.add_argument("--eval-fraction", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--tar", action="store_true", help="commit one data.tar.gz instead of files")


# --- commands ---------------------------------------------------------------------


def repos(args, platform) -> int:
    emit_table(platform.data.list_repos(), render.REPO_COLUMNS, args.json)
    return 0


def create(args, platform) -> int:
    emit_object(platform.data.create_repo(args.repo, args.description), args.json)
    return 0


def put(args, platform) -> int:
    repo, branch = refs.data_ref(args.target)
    files = put_sources(args.paths, args.to)
    with progress_bar(f"put {len(files)} files") as progress:
        commit = platform.data.put_files(repo, branch, files, message=args.message, progress=progress)
    emit_object(commit, args.json)
    return 0


def put_sources(paths: list[Path], to: str | None) -> dict[str, Path]:
    """Repo path -> local file. Without DEST, as `cp -r PATHS /`: a folder keeps its name. With DEST, as
    `pachctl put file -r REPO@BRANCH:DEST -f DIR`: a folder's contents land below DEST, a file at DEST/<name>."""
    from dlptui.platform.rules import clean_path, collect, join

    if to is None:
        return collect(paths, "/")
    folder = clean_path(to, folder=True)
    files: dict[str, Path] = {}
    for source in paths:
        source = Path(source).expanduser()
        if not source.is_dir():
            files.update(collect([source], folder))
            continue
        top = "/" + (source.resolve().name or "root") + "/"
        files.update({join(folder, *path[len(top):].split("/")): local for path, local in collect([source], "/").items()})
    return files


def ls(args, platform) -> int:
    repo, ref = refs.data_ref(args.target)
    entries = platform.data.list_files(repo, ref, args.path, recursive=args.recursive)
    emit_table(entries if args.json else render.sort_files(entries), render.FILE_COLUMNS, args.json)
    return 0


def commits(args, platform) -> int:
    repo, _, branch = args.target.partition("@")
    rows = platform.data.list_commits(repo, branch or None, limit=args.limit)
    emit_table(rows, render.COMMIT_COLUMNS, args.json)
    return 0


WHOLE_BYTES = 64 << 20  # up to this size `data get` reads a file whole, checked, before it writes its first byte
GET_HELP = (
    "Print a file of a commit, or write it to FILE with -o. Every byte is checked against the hash the store "
    f"recorded. To stdout a file of up to {WHOLE_BYTES >> 20} MiB is read and checked whole before its first byte is "
    "written; a larger one is checked in a first pass over the store, then streamed and checked again. So a pipe "
    "gets no byte of a file found corrupt: the command writes nothing, says so in one sentence and exits 1. Only "
    "were the stored bytes to change between the two passes of a large file would the pipe get a first part of it, "
    "and the command would still end with that sentence and exit 1. With -o the file takes its name only once it "
    "is whole and checked."
)


def get(args, platform) -> int:
    repo, ref, path = refs.file_ref(args.target)
    if args.output:
        from dlptui.actions.files import save

        save(platform.data, repo, ref, path, Path(args.output))  # streamed, checked, renamed once whole
        return 0
    chunks = checked_chunks(platform.data, repo, ref, path)
    first_chunk = next(chunks, b"")  # the file is known good (or refused) before anything is written
    sys.stdout.flush()
    terminal = sys.stdout.isatty()
    first = True
    for chunk in itertools.chain([first_chunk], chunks):
        if first and terminal and b"\x00" in chunk:
            raise InvalidInput(f"{path} is binary; write it to a file with -o FILE.")
        first = False
        if terminal:  # a file's escape sequences never reach the terminal (piped, the bytes go as they are)
            chunk = text.plain(chunk.decode("utf-8", errors="replace")).encode("utf-8")
        sys.stdout.buffer.write(chunk)
    sys.stdout.buffer.flush()
    return 0


def checked_chunks(store, repo: str, ref: str, path: str) -> Iterator[bytes]:
    """The file's bytes for a writer that cannot take them back (a pipe): a file of up to WHOLE_BYTES in one chunk
    read and checked whole; a larger one streamed after a first pass has checked it (see GET_HELP). The store's
    errors (no such file, a folder, corrupt) come before the first chunk."""
    from dlptui.platform.rules import clean_path

    from dlptui.errors import NotFound

    wanted = clean_path(path)
    try:
        sizes = [e.size_bytes for e in store.list_files(repo, ref, wanted) if e.type == "file" and e.path == wanted]
    except NotFound:
        sizes = []  # get_file says what is missing, in its own words
    if not sizes or sizes[0] <= WHOLE_BYTES:
        yield store.get_file(repo, ref, wanted)  # a folder or a missing file: get_file says so
        return
    for _ in store.iter_file(repo, ref, wanted):  # the first pass: CorruptBlob after its last chunk, nothing written
        pass
    yield from store.iter_file(repo, ref, wanted)


def delete(args, platform) -> int:
    repo = platform.data.inspect_repo(args.repo)
    if not confirm(f"Delete repo {repo.name!r} with its {repo.commits} commits?", args.yes, f"Not deleting repo {repo.name!r}"):
        say(f"Repo {repo.name!r} kept.", file=sys.stderr)
        return 1
    platform.data.delete_repo(repo.name)
    if args.json:
        emit_json({"deleted": repo.name, "commits": repo.commits})
    else:
        say(f"Deleted repo {repo.name!r}.", file=sys.stderr)
    return 0


def _report(result, as_json: bool) -> None:
    if as_json:
        emit_object(result, True)
        return
    for part, counts in result.counts.items():
        say(f"{part:>5}: {counts.get('cat', 0)} cats, {counts.get('dog', 0)} dogs")
    if result.skipped:
        say(f"skipped {result.skipped} files that are not cat/dog images (or repeat a name)")
    say(f"committed {result.ref}" + (" as data.tar.gz" if result.tarball else ""))


def _pipelines(platform):
    """The pipelines part where this install has one (the split runs through it), else None (a direct commit)."""
    from dlptui.errors import NotAvailable

    try:
        return platform.pipelines
    except NotAvailable:
        return None


def sample(args, platform) -> int:
    from dlptui.actions.datasets import import_sample

    with progress_bar(f"SYNTHETIC sample of {args.count} images") as progress:
        result = import_sample(platform.data, repo=args.repo, count=args.count, tar=args.tar, progress=progress,
                               pipelines=_pipelines(platform))
    _report(result, args.json)
    return 0


def import_kaggle(args, platform) -> int:
    from dlptui.actions import datasets as dataset

    with progress_bar(f"import {args.source.name}") as progress:
        result = dataset.import_kaggle(platform.data, args.source, repo=args.repo, eval_fraction=args.eval_fraction,
                                       seed=args.seed, tar=args.tar, progress=progress, pipelines=_pipelines(platform))
    _report(result, args.json)
    return 0
