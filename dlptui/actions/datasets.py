"""Dataset tools for the Dogs-vs-Cats layout, over any `ports.DataStore` (embedded store or Pachyderm).

- `label_of(path)`: "cat" / "dog" from the file's base name (`cat.123.jpg`), whatever folder it is in.
- `import_kaggle(store, source)`: split a folder of Kaggle images, or Kaggle's `train.zip`, into
  `train/` and `eval/` (stratified per label, seeded) and commit it, as files or as one
  `data.tar.gz` like the reference example's create-dataset.py.
- `import_sample(store)`: the same with the SYNTHETIC sample of `sample.generate_sample`.
- `materialize(store, ref, dest)`: a commit's `train/` and `eval/` in a local folder, cached by commit id.
"""

from __future__ import annotations

import gzip
import os
import random
import re
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from dlptui.actions.defaults import DATA_REPO
from dlptui.actions.sample import generate_sample
from dlptui.errors import Conflict, InvalidInput, NotFound
from dlptui.platform.rules import check_inside, local_target, space_checked
from dlptui.platform.model import DataRef
from dlptui.platform.ports import DataStore, Pipelines, Progress

__all__ = ["ImportResult", "generate_sample", "import_kaggle", "import_sample", "label_of", "materialize", "split"]

DEFAULT_REPO = DATA_REPO
SPLITS = ("train", "eval")
# caps on what an archive may unpack to, counted in bytes really written (a decompression bomb
# stops at the member that crosses them, with a sentence naming it)
MAX_MEMBER_BYTES = 64 << 20  # one image
MAX_ARCHIVE_BYTES = 16 << 30  # the whole data set (Kaggle's train.zip unpacks to about 0.55 GiB)
MAX_MEMBERS = 1_000_000  # files and folders in one archive (Kaggle's train.zip: 25,000)
TARBALL = "data.tar.gz"
_LABELLED = re.compile(r"^(cat|dog)\.[^/\\]+\.(jpe?g|png)$", re.IGNORECASE)
_NUMBER = re.compile(r"(\d+)")
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def label_of(path: str | os.PathLike) -> str | None:
    """"cat" or "dog" from the base name (`.../dogs/cat.12.jpg` is a cat), or None for anything else."""
    name = re.split(r"[/\\]", str(path))[-1]
    match = _LABELLED.match(name)
    return match.group(1).lower() if match else None


def _natural(name: str) -> list:
    return [int(p) if p.isdigit() else p for p in _NUMBER.split(name)]


def split(names: list[str], eval_fraction: float = 0.2, seed: int = 42) -> dict[str, str]:
    """Each labelled name -> "train" or "eval": per label, a seeded shuffle puts `eval_fraction` in eval."""
    if not 0.0 < eval_fraction < 1.0:
        raise InvalidInput(f"The eval fraction must be between 0 and 1 (exclusive), not {eval_fraction}.")
    by_label: dict[str, list[str]] = {}
    for name in names:
        label = label_of(name)
        if label:
            by_label.setdefault(label, []).append(name)
    plan: dict[str, str] = {}
    for label in sorted(by_label):
        group = sorted(by_label[label], key=_natural)
        random.Random(f"{seed}-{label}").shuffle(group)
        n_eval = round(len(group) * eval_fraction)
        if len(group) >= 2:
            n_eval = min(max(n_eval, 1), len(group) - 1)  # both sides get at least one of each label
        for i, name in enumerate(group):
            plan[name] = "eval" if i < n_eval else "train"
    return plan


@dataclass(frozen=True)
class ImportResult:
    ref: DataRef
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> label -> images
    skipped: int = 0  # files that are not cat/dog images, or repeat a name
    tarball: bool = False

    @property
    def images(self) -> int:
        return sum(sum(c.values()) for c in self.counts.values())


def find_images(folder: Path) -> tuple[dict[str, Path], int]:
    """Labelled images below `folder` by base name, and how many files were skipped; a link to a
    file outside `folder` is refused in one sentence."""
    images: dict[str, Path] = {}
    skipped = 0
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            if label_of(name) and name not in images:
                images[name] = check_inside(Path(dirpath) / name, folder)
            else:
                skipped += 1
    return images, skipped


def _ensure_repo(store: DataStore, repo: str) -> None:
    try:
        store.inspect_repo(repo)
    except NotFound:
        try:
            store.create_repo(repo, description="Dogs-vs-Cats images split into train/ and eval/")
        except Conflict:
            pass  # someone else made it in between


def _write_tarball(layout: Mapping[str, Path], target: Path) -> None:
    """A reproducible data.tar.gz: sorted members, no times or owners, so the same split gives the same bytes."""
    with open(target, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for folder in SPLITS:
                info = tarfile.TarInfo(folder)
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            for path in sorted(layout):
                source = layout[path]
                info = tarfile.TarInfo(path.lstrip("/"))
                info.size, info.mode = source.stat().st_size, 0o644
                with open(source, "rb") as f:
                    tar.addfile(info, f)


def commit_split(
    store: DataStore,
    images: Mapping[str, Path],
    repo: str = DEFAULT_REPO,
    branch: str = "master",
    eval_fraction: float = 0.2,
    seed: int = 42,
    tar: bool = False,
    skipped: int = 0,
    message: str | None = None,
    progress: Progress | None = None,
    pipelines: Pipelines | None = None,
) -> ImportResult:
    """Commit labelled `images` (base name -> local file) to `repo` as /train/... and /eval/... or /data.tar.gz.

    What a previous import left (/train, /eval, /data.tar.gz) is removed in the same commit, so an image
    is never in both splits and no commit in between holds no data (a retrain on commit would train on it). Given `pipelines`, a files split into a repo that is new or already made by the
    split pipeline goes through it instead (`split_by_pipeline`)."""
    plan = split(list(images), eval_fraction, seed)
    if not plan:
        raise InvalidInput("There are no cat or dog images (cat.N.jpg, dog.N.jpg) to import.")
    if pipelines is not None and not tar and branch == "master" and _pipeline_made(store, pipelines, repo):
        return split_by_pipeline(store, pipelines, images, repo, eval_fraction, seed, skipped, message, progress)
    counts: dict[str, dict[str, int]] = {s: {"cat": 0, "dog": 0} for s in SPLITS}
    layout: dict[str, Path] = {}
    for name, part in plan.items():
        counts[part][label_of(name)] += 1
        layout[f"/{part}/{name}"] = images[name]
    _ensure_repo(store, repo)
    previous = [f"/{p}" for p in (*SPLITS, TARBALL)]  # what an earlier import left goes in the same commit
    summary = ", ".join(f"{s} {counts[s]['cat']} cats + {counts[s]['dog']} dogs" for s in SPLITS)
    message = message or f"Dogs-vs-Cats split (seed {seed}, eval {eval_fraction:g}): {summary}"
    if tar:
        with tempfile.TemporaryDirectory(prefix="dlptui-tar-") as tmp:
            tarball = Path(tmp) / TARBALL
            _write_tarball(layout, tarball)
            commit = store.put_files(repo, branch, {f"/{TARBALL}": tarball}, message=message, progress=progress,
                                     delete=previous)
    else:
        commit = store.put_files(repo, branch, layout, message=message, progress=progress, delete=previous)
    return ImportResult(DataRef(repo, commit.id, branch), counts, skipped, tar)


RAW_SUFFIX = "-raw"
SPLIT_SPEC = "dogs-and-cats-split.json"


def _pipeline_made(store: DataStore, pipelines: Pipelines, repo: str) -> bool:
    """Whether `repo` is (or can become) the output of the split pipeline: a pipeline of that name, or no repo yet."""
    try:
        pipelines.inspect_pipeline(repo)
        return True
    except NotFound:
        pass
    try:
        store.inspect_repo(repo)
        return False  # an earlier direct import: keep committing to it as before
    except NotFound:
        return True


def split_spec(repo: str = DEFAULT_REPO, eval_fraction: float = 0.2, seed: int = 42) -> dict:
    """The shipped split pipeline for `repo`, reading `<repo>-raw`, with the seed and fraction given."""
    import json

    from dlptui import resources

    spec = json.loads((resources.pipelines_dir() / SPLIT_SPEC).read_text())
    spec["pipeline"]["name"] = repo
    spec["input"]["pfs"]["repo"] = repo + RAW_SUFFIX
    spec["transform"]["env"] = {"SEED": str(seed), "EVAL_FRACTION": repr(float(eval_fraction))}
    return spec


def split_by_pipeline(
    store: DataStore,
    pipelines: Pipelines,
    images: Mapping[str, Path],
    repo: str = DEFAULT_REPO,
    eval_fraction: float = 0.2,
    seed: int = 42,
    skipped: int = 0,
    message: str | None = None,
    progress: Progress | None = None,
    timeout_s: float = 900.0,
) -> ImportResult:
    """The raw images go to `<repo>-raw` under /train/ (Kaggle's layout, added to what is there); the shipped split
    pipeline (made on first use) turns that commit into `repo`'s train/eval split, and this waits for its job."""
    from dlptui.actions.pipelines import wait_for_input
    from dlptui.errors import Conflict as _Conflict
    from dlptui.errors import PlatformError

    raw = repo + RAW_SUFFIX
    wanted = split_spec(repo, eval_fraction, seed)
    try:
        existing = pipelines.inspect_pipeline(repo)
        env = (existing.spec.get("transform") or {}).get("env") or {}
        if env and env != wanted["transform"]["env"]:
            raise _Conflict(
                f"Pipeline {repo!r} splits with seed {env.get('SEED')} and eval fraction {env.get('EVAL_FRACTION')}; "
                f"delete it (`dlptui pipeline delete {repo}`) to split another way."
            )
    except NotFound:
        existing = None
    try:
        store.inspect_repo(raw)
    except NotFound:
        store.create_repo(raw, description="Raw Dogs-vs-Cats images (Kaggle's train/ layout); the split pipeline reads it")
    commit = store.put_files(raw, "master", {f"/train/{name}": path for name, path in images.items()},
                             message=message or f"{len(images)} raw Dogs-vs-Cats images", progress=progress)
    if existing is None:
        pipelines.create_pipeline(wanted)
    job = wait_for_input(pipelines, repo, f"{raw}@{commit.id}", timeout_s=timeout_s)
    if job.state.value != "success" or not job.output_commit:
        raise PlatformError(f"The split job {job.id} of pipeline {repo!r} ended {job.state.value}: {job.reason or 'no output'}")
    out = job.output_commit.ref
    counts: dict[str, dict[str, int]] = {s: {"cat": 0, "dog": 0} for s in SPLITS}
    for entry in store.list_files(repo, out, "/", recursive=True):
        part, label = entry.path.strip("/").split("/")[0], label_of(entry.path)
        if part in counts and label:
            counts[part][label] += 1
    return ImportResult(DataRef(repo, out, "master"), counts, skipped, False)


def import_kaggle(store: DataStore, source: Path, repo: str = DEFAULT_REPO, **options) -> ImportResult:
    """Split and commit Kaggle's images from a folder (searched recursively) or from `train.zip`."""
    source = Path(source).expanduser()
    if not source.exists():
        raise NotFound(f"There is no file or folder {source} on this machine; give Kaggle's train.zip or a folder of its images.")
    if source.is_dir():
        images, skipped = find_images(source)
        return commit_split(store, images, repo, skipped=skipped, **options)
    if not zipfile.is_zipfile(source):
        raise InvalidInput(f"{source} is neither a folder nor a zip file; give Kaggle's train.zip or a folder of its images.")
    with tempfile.TemporaryDirectory(prefix="dlptui-kaggle-") as tmp:
        images, skipped = _unzip_images(source, Path(tmp))
        return commit_split(store, images, repo, skipped=skipped, **options)


def _unzip_images(archive: Path, into: Path) -> tuple[dict[str, Path], int]:
    """Extract the labelled images of the zip, flat by base name (no member path is trusted)."""
    images: dict[str, Path] = {}
    skipped = total = 0
    try:
        with zipfile.ZipFile(archive) as z:
            if len(z.infolist()) > MAX_MEMBERS:
                raise InvalidInput(f"{archive.name} holds more than {MAX_MEMBERS:,} files; nothing was imported.")
            for member in z.infolist():
                if member.is_dir():
                    continue
                name = member.filename.replace("\\", "/").rsplit("/", 1)[-1]
                if not label_of(name) or name in images:
                    skipped += 1
                    continue
                target = into / name
                with z.open(member) as src, open(target, "wb") as dst:
                    written = _copy_capped(src, dst, MAX_MEMBER_BYTES)
                total += written
                if written > MAX_MEMBER_BYTES:
                    raise InvalidInput(f"{member.filename} in {archive.name} unpacks to more than "
                                       f"{MAX_MEMBER_BYTES >> 20} MiB, too big for an image; nothing was imported.")
                if total > MAX_ARCHIVE_BYTES:
                    raise InvalidInput(f"{archive.name} unpacks to more than {MAX_ARCHIVE_BYTES >> 30} GiB "
                                       f"(reached at {member.filename}); nothing was imported.")
                images[name] = target
    except (zipfile.BadZipFile, OSError) as e:
        raise InvalidInput(f"{archive} cannot be read as a zip file ({e}); download it again.") from None
    return images, skipped


def _copy_capped(src, dst, cap: int) -> int:
    """Copy until done or one byte past `cap`; the bytes really written (a zip's header may lie)."""
    written = 0
    while written <= cap:
        block = src.read(min(1 << 20, cap + 1 - written))
        if not block:
            break
        dst.write(block)
        written += len(block)
    return written


def import_sample(
    store: DataStore, repo: str = DEFAULT_REPO, count: int = 300, size: int = 96, sample_seed: int = 0, **options
) -> ImportResult:
    """Generate the SYNTHETIC sample and commit its split, like `import_kaggle` does with the real images."""
    with tempfile.TemporaryDirectory(prefix="dlptui-sample-") as tmp:
        folder = generate_sample(Path(tmp), count=count, size=size, seed=sample_seed)
        images, skipped = find_images(folder)
        options.setdefault("message", f"SYNTHETIC Dogs-vs-Cats sample: {count} generated images (not photos)")
        return commit_split(store, images, repo, skipped=skipped, **options)


# --- materialize ------------------------------------------------------------------


def _has_splits(folder: Path) -> bool:
    return all((folder / s).is_dir() for s in SPLITS)


def _find_splits(folder: Path) -> Path | None:
    if _has_splits(folder):
        return folder
    subs = [p for p in sorted(folder.iterdir()) if p.is_dir() and _has_splits(p)]
    return subs[0] if subs else None


def materialize(store: DataStore, ref: DataRef, dest: Path, progress: Progress | None = None) -> Path:
    """The commit `ref` as a local folder holding `train/` and `eval/`; returns that folder.

    The files go to `dest/<commit id>/` (a `data.tar.gz` in the commit is unpacked there). The
    folder appears whole or not at all (written aside, then renamed), and a second call for the
    same commit returns it at once."""
    if not _SAFE_ID.match(ref.commit or ""):
        raise InvalidInput(f"{ref.commit!r} is not a commit id; pin the data with `resolve` first.")
    dest = Path(dest)
    target = dest / ref.commit
    if target.is_dir() and (found := _find_splits(target)):
        return found
    with space_checked(dest):  # a full disk: one sentence, and the half-written folder removed first
        return _materialize(store, ref, dest, target, progress)


def _materialize(store: DataStore, ref: DataRef, dest: Path, target: Path, progress: Progress | None) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{ref.commit}.", dir=dest))
    try:
        entries = store.list_files(ref.repo, ref.commit, "/", recursive=True)
        for i, entry in enumerate(entries, 1):
            path = local_target(work, entry.path)
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as out:  # streamed, chunk by chunk
                for chunk in store.iter_file(ref.repo, ref.commit, entry.path):
                    out.write(chunk)
            if progress:
                progress(i, len(entries))
        if not _has_splits(work):
            for archive in sorted(work.glob("*.tar.gz")):
                _unpack(archive, work)
        found = _find_splits(work)
        if found is None:
            raise InvalidInput(
                f"Commit {ref} holds neither train/ and eval/ folders nor a data.tar.gz with them; "
                "import a data set with `dlptui data import-kaggle` or `dlptui data sample`."
            )
        relative = found.relative_to(work)
        try:
            os.rename(work, target)
        except OSError:  # another process materialized it meanwhile
            if not target.is_dir():
                raise
            shutil.rmtree(work, ignore_errors=True)
        return target / relative
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _unpack(archive: Path, into: Path) -> None:
    """A commit's tarball into `into` (a folder of its own, removed by the caller on failure), member by member as
    the stream gives them: files and folders only, inside the folder, within the caps; else one sentence."""
    total = count = 0
    try:
        with tarfile.open(archive) as tar:
            for member in tar:
                count += 1
                parts = PurePosixPath(member.name).parts
                what = (
                    f"it holds more than {MAX_MEMBERS:,} files" if count > MAX_MEMBERS
                    else f"{member.name} would land outside its folder" if member.name.startswith("/") or ".." in parts
                    else f"{member.name} is a link or a device, not a file" if not (member.isfile() or member.isdir())
                    else f"{member.name} is over {MAX_MEMBER_BYTES >> 20} MiB" if member.size > MAX_MEMBER_BYTES
                    else f"it holds over {MAX_ARCHIVE_BYTES >> 30} GiB" if (total := total + member.size) > MAX_ARCHIVE_BYTES
                    else None
                )
                if what:
                    raise InvalidInput(f"The archive {archive.name} in the commit is not unpacked: {what}.")
                tar.extract(member, into, filter="data")
    except (tarfile.TarError, OSError, EOFError) as e:
        raise InvalidInput(f"The archive {archive.name} in the commit cannot be unpacked ({e}).") from None
    archive.unlink()
