"""Console figures: time to first frame, idle CPU on the Experiments screen, chart redraw.

    .venv/bin/python bench/console.py [--idle-seconds 60] [--runs 3]

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
    args = parser.parse_args()
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
    print(json.dumps({
        "first_frame_s": round(first, 3),
        "first_frame_cpu_s": round(first_cpu, 3),
        "idle_cpu_pct": round(idle, 2),
        "chart_redraw_ms": round(redraw, 2),
        "heavy_modules_at_first_frame": heavy,
        "idle_seconds": args.idle_seconds,
    }))


if __name__ == "__main__":
    main()
