"""Datum rate of the local pipeline runner against a plain loop spawning the same command, with the same parallelism.

    .venv/bin/python bench/pipelines.py [--datums 2000] [--parallelism 2]

A raw repo gets one small file per datum; a pipeline with glob `/*` copies each to its output
(`sh -c 'cp /pfs/raw/* /pfs/out/'`). The job's time runs from the input commit to the job's
success (its output commit made). The loop runs `sh -c 'cp IN/* OUT/'` once per file in a
folder of its own, `parallelism` at a time, as plain `subprocess.run` calls. Rounds alternate
loop and job (each round's files have new content, so no datum is skipped), and the best of
each counts: on shared cores a lone pair moves by 1.5x either way. Then one more file is put
and the time until its job is running is taken. The last line is one JSON object:
{"datum_rate_ratio": <runner rate / loop rate>, "job_start_s": <commit to running>, ...}.

    .venv/bin/python bench/pipelines.py [--datums 2000] [--parallelism 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def plain_loop(root: Path, count: int, parallelism: int, round_: int) -> float:
    def one(i: int) -> None:
        folder = root / f"r{round_}" / f"d{i}"
        (folder / "in").mkdir(parents=True)
        (folder / "out").mkdir()
        (folder / "in" / f"f{i:05d}.txt").write_bytes(b"r%d-x%d" % (round_, i))
        subprocess.run(["sh", "-c", f"cp {folder}/in/* {folder}/out/"], check=True)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=parallelism) as pool:
        list(pool.map(one, range(count)))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datums", type=int, default=2000)
    parser.add_argument("--parallelism", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="dlptui-bench-pp-") as tmp:
        tmp = Path(tmp)
        os.environ["DLPTUI_HOME"] = str(tmp / "home")
        from dlptui.config import load_config
        from dlptui.platform import Platform

        platform = Platform(load_config(profile="local"))
        try:
            platform.data.create_repo("raw")
            spec = {"pipeline": {"name": "copy"}, "input": {"pfs": {"repo": "raw", "glob": "/*"}},
                    "transform": {"cmd": ["sh", "-c", "cp /pfs/raw/* /pfs/out/"]},
                    "parallelism_spec": {"constant": args.parallelism}, "datum_tries": 1}
            platform.pipelines.create_pipeline(spec)
            runner_runs, loop_runs = [], []
            for r in range(args.rounds):
                loop_s = plain_loop(tmp / "loop", args.datums, args.parallelism, r)
                loop_runs.append(loop_s)
                files = {f"/f{i:05d}.txt": b"r%d-x%d" % (r, i) for i in range(args.datums)}
                put = time.perf_counter()
                commit = platform.data.put_files("raw", "master", files)
                job = None
                while job is None or not job.state.terminal:
                    time.sleep(0.05)
                    jobs = [j for j in platform.pipelines.list_jobs("copy") if f"raw@{commit.id}" in j.input_commits]
                    job = jobs[0] if jobs else None
                runner_s = time.perf_counter() - put
                runner_runs.append(runner_s)
                if job.state.value != "success":
                    sys.exit(f"the job failed: {job.reason}")
                print(f"round {r}: plain loop {args.datums} spawns in {loop_s:.2f} s ({args.datums / loop_s:.0f}/s); "
                      f"runner {args.datums} datums in {runner_s:.2f} s ({args.datums / runner_s:.0f}/s), the job itself "
                      f"{job.finished - job.started:.2f} s, {job.datums['processed']} processed, parallelism {args.parallelism}")
            runner_s, loop_s = min(runner_runs), min(loop_runs)

            put = time.perf_counter()
            second = platform.data.put_files("raw", "master", {"/late.txt": b"late"})
            start_s = None
            while start_s is None:
                for j in platform.pipelines.list_jobs("copy"):
                    if f"raw@{second.id}" in j.input_commits and j.state.value != "created":
                        start_s = time.perf_counter() - put
                time.sleep(0.01)
            latest = platform.pipelines.list_jobs("copy")[0]
            while not latest.state.terminal:
                time.sleep(0.05)
                latest = platform.pipelines.inspect_job(latest.id)
            print(f"a new input commit had its job running after {start_s * 1000:.0f} ms; "
                  f"it skipped {latest.datums['skipped']} of {latest.datums['total']} datums")
            print(json.dumps({"datum_rate_ratio": round(loop_s / runner_s, 3), "job_start_s": round(start_s, 3),
                              "datums": args.datums, "parallelism": args.parallelism,
                              "skipped_on_second_job": latest.datums["skipped"]}))
        finally:
            for p in platform.pipelines.list_pipelines():
                platform.pipelines.stop_pipeline(p.name)
            platform.close()


if __name__ == "__main__":
    main()
