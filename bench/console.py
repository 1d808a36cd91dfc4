"""Console figures: time to first frame, idle CPU on the Experiments screen, chart redraw, and the console at a
real team's scale.

    .venv/bin/python bench/console.py [--idle-seconds 60] [--runs 3] [--scale-idle-seconds 20] [--no-scale]

- first_frame_s: from the start of a fresh Python process to the first frame of a console
  screen handed to the display (as `dlptui` starts it: the terminal's graphics probe, which
  asks only a terminal that may draw pixels, then the app), the median of `--runs`, with the
  CPU time the process had used by then (wall time grows on a busy machine, CPU time much
  less) and which heavy modules were loaded (target: none, <= 0.5 s).
- idle_cpu_pct: CPU time of a console left on the Experiments screen with its polls on (the
  list every 2 s, the parts' health every 5 s) over `--idle-seconds`, as a percentage of one
  core (target <= 2 %). The platform holds one repo and no running experiment.
- chart_redraw_ms: the median time to draw the metric chart (100 x 20 cells) with 100,000
  points in two series, after new points arrived (target <= 30 ms).

- scale (bench/scale.py builds the home: 5,000 experiments of which one search of 200 trials, 200 model versions, a
  repo of 100,000 files in 1,000 folders, a deployment that died with 1,000,000 logged predictions): one console
  (160x45) goes through every screen, as a person would with the keys (1-7, Enter into the repo's files, the
  search, the model's versions). Per screen: `first_table_s` from the key to the screen's full table on screen (the
  whole list behind a windowed table, the repo's 1,000 folders in the tree, the search's 200 trials), with the CPU
  the console spent meanwhile (`first_table_cpu_s`: the wall time grows on a busy machine, the CPU much less), then
  `idle_cpu_pct` (CPU of the console as a share of one core, left on the screen for `--scale-idle-seconds` with its
  polls and the header's health checks running) and `cpu_ms_per_poll` (that CPU over the screen's polls), and the
  console's resident memory after it (`rss_mib`). Targets: first table <= 1.0 s, idle CPU <= 2 %, memory <= 400 MiB.
  And the CLI on the same home (a fresh process each, the median of 3): `experiment list --json` (target <= 0.5 s),
  `data ls big-repo` and `predictions dogcat-deploy --limit 100` (<= 1.0 s each).

Each figure is printed as it is measured; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "torchvision", "determined", "kubernetes", "python_pachyderm", "seldon_core", "grpc",
         "numpy", "PIL", "textual_image")

CHILD = r"""
import asyncio, json, sys, time
started = float(sys.argv[1]); mode = sys.argv[2]; idle = float(sys.argv[3])
from dlptui.tui import graphics
graphics.probe()  # as run_console does
from dlptui.config import load_config
from dlptui.tui.app import DlpApp
from dlptui.tui.screens.base import BaseScreen
HEAVY = %r
first = {}

def display(self, screen, renderable):  # the first frame of a console screen handed to the driver
    if renderable is not None and isinstance(screen, BaseScreen) and "t" not in first:
        first["t"] = time.time()
        first["cpu"] = time.process_time()
        first["heavy"] = sorted(m for m in HEAVY if m in sys.modules)
    return shown(self, screen, renderable)

shown = DlpApp._display
DlpApp._display = display

async def pilot_first_frame(pilot):
    while "t" not in first:
        await asyncio.sleep(0.01)
    print(json.dumps({"first_frame_s": first["t"] - started, "cpu_s": first["cpu"], "heavy": first["heavy"]}), flush=True)
    pilot.app.exit()

async def pilot_idle(pilot):
    await pilot.pause(3.0)  # let the first polls and the first-start check settle
    cpu0, wall0 = time.process_time(), time.monotonic()
    await asyncio.sleep(idle)
    cpu1, wall1 = time.process_time(), time.monotonic()
    print(json.dumps({"idle_cpu_pct": 100 * (cpu1 - cpu0) / (wall1 - wall0)}), flush=True)
    pilot.app.exit()

app = DlpApp(load_config(), start="experiments" if mode == "idle" else "cluster")
app.run(headless=True, size=(150, 45), auto_pilot=pilot_idle if mode == "idle" else pilot_first_frame)
""" % (HEAVY,)


def child(mode: str, home: Path, idle: float = 0.0) -> dict:
    env = {**os.environ, "DLPTUI_HOME": str(home), "XDG_CONFIG_HOME": str(home / "config"), "TERM": "xterm-256color"}
    env.pop("DLPTUI_PROFILE", None)
    env.pop("DLPTUI_CONFIG", None)
    started = time.time()
    out = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", CHILD, repr(started), mode, str(idle)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=idle + 120,
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        raise SystemExit(f"the console child ({mode}) failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(lines[-1])


SCALE_CHILD = r"""
import asyncio, json, resource, sys, time
idle = float(sys.argv[1])
from dlptui.config import load_config
from dlptui.tui.app import DlpApp
from dlptui.tui.screens import base

polls = [0]
shown = base.BaseScreen._polled
def counted(self, data):
    polls[0] += 1
    return shown(self, data)
base.BaseScreen._polled = counted

def rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024

def table(app, name):
    return app.screen.query_one(name)

def tree_children(app):
    return len(app.screen.query_one("#files").root.children)

STEPS = [  # (screen, keys, predicate: the full table is there)
    ("cluster", [], lambda app: table(app, "#nodes").row_count == 1 and table(app, "#workloads").row_count >= 1),
    ("data", ["2"], lambda app: "big-repo" in table(app, "#repos").all_keys),
    ("files", ["enter", "WAIT_COMMITS", "enter"], lambda app: tree_children(app) == 1000),
    ("experiments", ["3"], lambda app: len(table(app, "#experiments").all_keys) == 5000),
    ("search", ["OPEN_SEARCH"], lambda app: len(table(app, "#trials").all_keys) == 200),
    ("models", ["4"], lambda app: "dogcat-model" in table(app, "#models").all_keys),
    ("versions", ["enter"], lambda app: len(table(app, "#versions").all_keys) == 200),
    ("deployments", ["5"], lambda app: "dogcat-deploy" in table(app, "#deployments").all_keys
                                       and len(table(app, "#versions").all_keys) >= 1),
    ("predict", ["6"], lambda app: app.screen.query_one("#tree").root.children is not None),
    ("pipelines", ["7"], lambda app: "No pipelines yet" in str(app.screen.query_one("#state").render())),
]

async def until(pilot, predicate, limit=120.0):
    app = pilot.app
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            if predicate(app):
                return True
        except Exception:
            pass
        await asyncio.sleep(0.005)
    return False

async def run(pilot):
    app = pilot.app
    await until(pilot, lambda app: app.health.services and len(app.health.services) >= 6)
    results = {}
    for name, keys, ready in STEPS:
        t0, c0 = time.perf_counter(), time.process_time()
        for key in keys:
            if key == "WAIT_COMMITS":
                await until(pilot, lambda app: table(app, "#commits").row_count == 1)
            elif key == "OPEN_SEARCH":
                from dlptui.tui.screens.experiment import ExperimentScreen
                search = next(k for k in table(app, "#experiments").all_keys
                              if app.screen.shown[k].name == "dogcat-search")
                table(app, "#experiments").select_key(search)
                await pilot.press("enter")
            else:
                await pilot.press(key)
        ok = await until(pilot, ready)
        await pilot.pause()  # the frame with it drawn
        first, first_cpu = time.perf_counter() - t0, time.process_time() - c0
        polls0, cpu0, wall0 = polls[0], time.process_time(), time.monotonic()
        await asyncio.sleep(idle)
        cpu, wall, n = time.process_time() - cpu0, time.monotonic() - wall0, polls[0] - polls0
        results[name] = {"first_table_s": round(first, 3) if ok else None, "first_table_cpu_s": round(first_cpu, 3),
                         "idle_cpu_pct": round(100 * cpu / wall, 2),
                         "cpu_ms_per_poll": round(1000 * cpu / n, 1) if n else None, "polls": n,
                         "rss_mib": round(rss_mib(), 1)}
        print(json.dumps({name: results[name]}), flush=True)
    print(json.dumps({"scale": results}), flush=True)
    app.exit()

app = DlpApp(load_config(), start="cluster")
app.run(headless=True, size=(160, 45), auto_pilot=run)
"""


def scale_console(home: Path, idle: float) -> dict:
    env = {**os.environ, "DLPTUI_HOME": str(home), "XDG_CONFIG_HOME": str(home / "config"), "TERM": "xterm-256color"}
    env.pop("DLPTUI_PROFILE", None)
    env.pop("DLPTUI_CONFIG", None)
    out = subprocess.run([sys.executable, "-X", "faulthandler", "-c", SCALE_CHILD, str(idle)], capture_output=True,
                         text=True, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, timeout=20 * (idle + 120))
    for line in out.stdout.splitlines():
        if line.startswith("{") and not line.startswith('{"scale"'):
            print("  " + line)
    found = [json.loads(line)["scale"] for line in out.stdout.splitlines() if line.startswith('{"scale"')]
    if out.returncode != 0 or not found:
        raise SystemExit(f"the console child (scale) failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return found[-1]


def cli_seconds(home: Path, *argv: str, runs: int = 3) -> float:
    env = {**os.environ, "DLPTUI_HOME": str(home), "XDG_CONFIG_HOME": str(home / "config")}
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "dlptui", *argv], capture_output=True, env=env, cwd=ROOT,
                              stdin=subprocess.DEVNULL, timeout=120)
        times.append(time.perf_counter() - t0)
        if done.returncode != 0:
            raise SystemExit(f"dlptui {' '.join(argv)} failed: {done.stderr.decode()[-2000:]}")
    return statistics.median(times)


def scale(idle: float) -> dict:
    sys.path.insert(0, str(ROOT / "bench"))
    import scale as builder

    with tempfile.TemporaryDirectory(prefix="dlptui-scale-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir(mode=0o700)
        t0 = time.monotonic()
        took = builder.build(home)
        print(f"scale home built in {time.monotonic() - t0:.0f} s ({took})")
        screens = scale_console(home, idle)
        cli = {
            "experiment_list_json_s": cli_seconds(home, "experiment", "list", "--json"),
            "data_ls_s": cli_seconds(home, "data", "ls", "big-repo"),
            "predictions_limit_100_s": cli_seconds(home, "predictions", "dogcat-deploy", "--limit", "100"),
        }
        print(f"CLI at scale: {json.dumps({k: round(v, 3) for k, v in cli.items()})}")
    return {"screens": screens, "cli": {k: round(v, 3) for k, v in cli.items()},
            "max_first_table_s": max(v["first_table_s"] or 999 for v in screens.values()),
            "max_idle_cpu_pct": max(v["idle_cpu_pct"] for v in screens.values()),
            "max_rss_mib": max(v["rss_mib"] for v in screens.values()), "idle_seconds": idle}


def chart_redraw_ms(points: int = 100_000, width: int = 100, height: int = 20, repeats: int = 20) -> float:
    import numpy as np

    from dlptui.tui.widgets.metric_chart import MetricChart

    chart = MetricChart("loss")
    x = np.arange(points, dtype=float)
    chart.series.clear()
    chart.add_points("training loss", x, np.exp(-x / 30_000) + 0.05 * np.random.default_rng(0).random(points))
    chart.add_points("validation loss", x[::100], np.exp(-x[::100] / 30_000) + 0.1)
    times = []
    for i in range(repeats):
        chart.add_points("validation loss", [points + i], [0.1])  # new data: the cache is stale
        t0 = time.perf_counter()
        chart.draw(width, height)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scale-idle-seconds", type=float, default=20.0)
    parser.add_argument("--no-scale", action="store_true", help="leave out the scale case")
    parser.add_argument("--scale-only", action="store_true", help="the scale case alone")
    args = parser.parse_args()
    if args.scale_only:
        sys.path.insert(0, str(ROOT))
        print(json.dumps({"scale": scale(args.scale_idle_seconds)}))
        return
    sys.path.insert(0, str(ROOT))

    with tempfile.TemporaryDirectory(prefix="dlptui-bench-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        frames = [child("first", home) for _ in range(args.runs)]
        first = statistics.median(f["first_frame_s"] for f in frames)
        first_cpu = statistics.median(f["cpu_s"] for f in frames)
        heavy = sorted({m for f in frames for m in f["heavy"]})
        runs = ", ".join(f"{f['first_frame_s']:.3f}" for f in frames)
        print(f"first frame: {first:.3f} s (runs: {runs}), {first_cpu:.3f} s of CPU; "
              f"heavy modules loaded by then: {heavy or 'none'}")

        from dlptui.config import load_config
        from dlptui.platform import Platform

        env = {"DLPTUI_HOME": str(home), "XDG_CONFIG_HOME": str(home / "config")}
        platform = Platform(load_config(env=env))
        platform.data.create_repo("dogs-and-cats")
        platform.data.put_files("dogs-and-cats", "master", {"/train/cat.1.jpg": b"x" * 1000})
        platform.close()
        idle = child("idle", home, args.idle_seconds)["idle_cpu_pct"]
        print(f"idle CPU on the Experiments screen over {args.idle_seconds:g} s: {idle:.2f} % of one core")

    redraw = chart_redraw_ms()
    print(f"metric chart redraw with 100,000 points: {redraw:.2f} ms")
    at_scale = None if args.no_scale else scale(args.scale_idle_seconds)
    print(json.dumps({
        "first_frame_s": round(first, 3),
        "first_frame_cpu_s": round(first_cpu, 3),
        "idle_cpu_pct": round(idle, 2),
        "chart_redraw_ms": round(redraw, 2),
        "heavy_modules_at_first_frame": heavy,
        "idle_seconds": args.idle_seconds,
        **({"scale": at_scale} if at_scale else {}),
    }))


if __name__ == "__main__":
    main()
