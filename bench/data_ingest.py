"""Ingest speed of the embedded data store against `shutil.copytree`, in the same process, on the same files.

    .venv/bin/python bench/data_ingest.py [--files 2000] [--rounds 3]
    .venv/bin/python bench/data_ingest.py --files 25000 --rounds 2   # the real data set's size: ingest_ratio_25k

Generates small synthetic JPEGs, then alternates rounds of copytree and of a commit of the whole
folder into a fresh store (best round of each counts). Then puts the unchanged folder again and
counts the blob bytes that adds (dedup: should be 0). The last line is one JSON object:
{"ingest_ratio": <store speed / copytree speed>, "ingest_ratio_25k" (at 25,000 files; else
"ingest_ratio_cp_sync_N"): <store speed / `cp -r && sync` speed>, "reput_new_bytes": N}.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from dlptui.platform.local.datastore import LocalDataStore
from dlptui.platform.rules import collect
from dlptui.actions.sample import draw


@dataclass(frozen=True)
class Home:
    home: Path


def blob_bytes(store: LocalDataStore) -> int:
    """The bytes of the blobs on disk: loose files and packs."""
    return sum(p.stat().st_size for p in [*store.blobs.root.glob("??/*"), *store.blobs.packs.glob("*.pack")])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="dlptui-bench-") as tmp:
        root = Path(tmp)
        src = root / "images"
        src.mkdir()
        for i in range(args.files):
            label = "cat" if i % 2 else "dog"
            (src / f"{label}.{i}.jpg").write_bytes(draw(label, i, size=64))
        total = sum(p.stat().st_size for p in src.iterdir())
        print(f"{args.files} JPEGs, {total / 1e6:.1f} MB")

        copy_s, store_s, cp_sync_s = [], [], []
        for r in range(args.rounds):
            t = time.perf_counter()
            shutil.copytree(src, root / f"copy{r}")
            copy_s.append(time.perf_counter() - t)
            t = time.perf_counter()  # what FACTS.md measured by hand: `cp -r && sync` (the store's commit is durable)
            subprocess.run(f"cp -r '{src}' '{root / f'cp{r}'}' && sync", shell=True, check=True)
            cp_sync_s.append(time.perf_counter() - t)

            store = LocalDataStore(Home(root / f"home{r}"))
            store.create_repo("bench")
            t = time.perf_counter()
            commit = store.put_files("bench", "master", collect([src]), message="bench")
            store_s.append(time.perf_counter() - t)
            assert commit.files == args.files
            print(f"round {r}: copytree {copy_s[-1] * 1000:.0f} ms, cp -r && sync {cp_sync_s[-1] * 1000:.0f} ms, "
                  f"store {store_s[-1] * 1000:.0f} ms")

        before = blob_bytes(store)
        store.put_files("bench", "master", collect([src]), message="unchanged re-put")
        reput_new = blob_bytes(store) - before
        ratio = min(copy_s) / min(store_s)
        print(f"best: copytree {min(copy_s) * 1000:.0f} ms, store {min(store_s) * 1000:.0f} ms; "
              f"store speed is {ratio:.2f}x copytree's; an unchanged re-put stored {reput_new} new bytes")
        versus_cp = min(cp_sync_s) / min(store_s)
        key = "ingest_ratio_25k" if args.files >= 25_000 else f"ingest_ratio_cp_sync_{args.files}"
        print(json.dumps({"ingest_ratio": round(ratio, 3), key: round(versus_cp, 3), "reput_new_bytes": reput_new}))


if __name__ == "__main__":
    main()
