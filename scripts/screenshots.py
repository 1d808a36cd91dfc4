"""Write an SVG screenshot of each console screen to docs/screenshots/<screen>.svg.

Also `compare.svg` (two versions side by side), `lineage.svg` (the lineage dialog of a version),
`explain.svg` (the Predict screen after `E`: Grad-CAM over the image) and `explain-overlay.png` (what
`dlptui predict IMAGE --explain OUT.png` writes, for scikit-image's CC0 cat photo where scikit-image is
installed, else for a sample image).

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--size 120x36] [--only NAME ...]

It builds a demo platform in a temporary DLPTUI_HOME, the whole reference workflow on the
SYNTHETIC sample: the data set committed to `dogs-and-cats`, the demo trial trained (the one F2
starts: efficientnet_lite0 from ImageNet, a minute or two on a CPU; `--tiny` trains the tiny CNN in seconds),
two versions of `dogcat-model` registered and promoted in turn, `dogcat-deploy` serving production
on the real seldon-core microservice. Then it drives the console with Textual's pilot, as
the tests do, saves one picture per screen, and undeploys. Nothing outside the temporary
folder is touched.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GIVE_UP_S = 300.0


def build_demo(home: Path, config: Path):
    """The demo platform over `home`: data, a trained experiment, two versions, a live deployment."""
    from dlptui.config import load_config
    from dlptui.platform import Platform
    from dlptui.actions.datasets import import_sample

    platform = Platform(load_config(profile="local", env={"DLPTUI_HOME": str(home), "XDG_CONFIG_HOME": str(home / "config")}))
    ref = import_sample(platform.data, repo="dogs-and-cats").ref
    print(f"data: {ref}", flush=True)
    experiment = platform.training.create_experiment(config, ref)
    deadline = time.monotonic() + GIVE_UP_S
    while not (experiment := platform.training.get_experiment(experiment.id)).state.terminal:
        if time.monotonic() > deadline:
            raise SystemExit(f"experiment {experiment.id} did not finish in {GIVE_UP_S:.0f} s")
        time.sleep(0.5)
    print(f"experiment {experiment.id}: {experiment.state.value}", flush=True)
    checkpoints = sorted(platform.training.checkpoints(experiment.id), key=lambda c: c.batch)
    registry = platform.registry
    registry.register("dogcat-model", experiment.id, checkpoints[0].uuid, notes="first checkpoint")
    registry.register("dogcat-model", experiment.id, notes="best checkpoint")
    for version in (1, 2):  # each version through staging to production: the history shows the aliases moving
        registry.promote("dogcat-model", version, "staging")
        registry.promote("dogcat-model", version, "production")
    platform.serving.deploy("dogcat-deploy", registry.get_version("dogcat-model", "production"))
    deadline = time.monotonic() + GIVE_UP_S
    while (deployment := platform.serving.get_deployment("dogcat-deploy")).state.value == "starting":
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    print(f"deployment dogcat-deploy: {deployment.state.value}", flush=True)
    return platform


def write_images(folder: Path) -> Path:
    from dlptui.actions.sample import draw

    folder.mkdir(parents=True, exist_ok=True)
    for label in ("cat", "dog"):
        for seed in range(1, 5):
            (folder / f"{label}.{seed}.jpg").write_bytes(draw(label, 100 + seed, size=160))
    return folder


async def until(pilot, predicate, what: str) -> None:
    deadline = time.monotonic() + GIVE_UP_S
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:  # not mounted yet
            pass
        await pilot.pause(0.1)
    raise SystemExit(f"{what} did not happen within {GIVE_UP_S:.0f} s")


async def shoot(platform, out: Path, size: tuple[int, int], only: set[str] | None = None) -> list[Path]:
    from dlptui.tui.app import DlpApp

    app = DlpApp(platform.config, platform=platform, start="cluster")
    written: list[Path] = []

    def save(name: str) -> None:
        if only and name not in only:
            return
        path = out / f"{name}.svg"
        app.save_screenshot(filename=path.name, path=str(out))
        written.append(path)
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}", flush=True)

    def rows(selector: str) -> int:
        return app.screen.query_one(selector).row_count

    from dlptui.platform import PARTS

    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: len(app.health.services) == len(PARTS) and app.health.context, "the health poll")
        await until(pilot, lambda: rows("#nodes") and rows("#workloads"), "the cluster screen")
        await pilot.pause(0.5)
        save("cluster")

        await pilot.press("2")
        await until(pilot, lambda: app.screen.query_one("ResourceTable").row_count == 1, "the data screen")
        save("data")

        await pilot.press("3")
        await until(pilot, lambda: app.screen.query_one("ResourceTable").row_count == 1, "the experiments screen")
        await pilot.pause(1.0)  # its chart
        save("experiments")

        await pilot.press("4")
        await until(pilot, lambda: rows("#models") == 1, "the models screen")
        app.screen.query_one("#models").focus()
        await pilot.press("enter")
        await until(pilot, lambda: rows("#versions") == 2 and rows("#history") == 4, "the versions of dogcat-model")
        save("models")

        versions = app.screen.query_one("#versions")
        versions.focus()
        versions.move_cursor(row=1)  # v1
        await pilot.press("m")
        versions.move_cursor(row=0)  # v2
        await pilot.press("v")
        await until(pilot, lambda: type(app.screen).__name__ == "CompareDialog", "the comparison")
        save("compare")
        await pilot.press("escape")
        await pilot.press("l")
        await until(pilot, lambda: type(app.screen).__name__ == "LineageDialog", "the lineage dialog")
        save("lineage")
        await pilot.press("escape")

        # a gated canary with some traffic: the verdicts, the gate's next step and the timeline have something to show
        from dlptui.actions import serving as serving_actions
        from dlptui.actions.sample import draw

        serving_actions.deploy(platform, "dogcat-deploy", "dogcat-model", "production", canary=1, traffic=25, gate="auto")
        serving_actions.wait_until_settled(platform, "dogcat-deploy", GIVE_UP_S)
        for seed in range(80):
            platform.serving.predict("dogcat-deploy", draw(("cat", "dog")[seed % 2], 500 + seed, size=96))
        await pilot.press("5")
        await until(pilot, lambda: rows("#deployments") == 1 and app.screen.query_one("#log").line_count
                    and "Canary v1 against v2" in str(app.screen.query_one("#verdicts").content), "the deployments screen")
        save("deployments")

        await pilot.press("6")
        screen = app.screen
        await until(pilot, lambda: screen.deployment == "dogcat-deploy", "the deployment in the predict screen")
        tree = screen.query_one("#tree")
        await until(pilot, lambda: len(tree.root.children) == 8, "the images in the tree")
        tree.focus()
        tree.move_cursor(tree.root.children[1])  # cat.2.jpg
        await pilot.press("x")
        await until(pilot, lambda: screen.query_one("#bars").prediction is not None, "the prediction")
        await pilot.press("f")
        await until(pilot, lambda: "images)" in str(screen.query_one("#counts").content), "the folder's predictions")
        save("predict")

        tree.focus()
        tree.move_cursor(tree.root.children[1])  # cat.2.jpg: its answer, then why
        await pilot.press("x")
        await until(pilot, lambda: screen.query_one("#bars").prediction is not None, "the prediction")
        await pilot.press("E")
        await until(pilot, lambda: screen.explained is not None, "the explanation")
        await pilot.pause(0.5)
        save("explain")
    return written


def write_overlay(platform, out: Path, images: Path) -> Path:
    """What `dlptui predict IMAGE --explain OUT.png` writes: the CC0 cat photo where scikit-image is here."""
    from dlptui.actions import explain

    image = images / "cat.2.jpg"
    try:
        from PIL import Image
        from skimage import data

        image = images.parent / "chelsea.jpg"
        Image.fromarray(data.chelsea()).save(image, "JPEG", quality=90)
    except ImportError:
        pass
    found = explain.explain_file(platform, "dogcat-deploy", image)
    path = explain.write_overlay(found, out / "explain-overlay.png")
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {explain.caption(found)}", flush=True)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--size", default="120x36", help="terminal size, COLUMNSxROWS")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="write only these pictures (e.g. explain explain-overlay)")
    parser.add_argument(
        "--tiny", action="store_true", help="train trial/tiny.yaml (seconds) instead of the demo's trial/local.yaml (a minute or two)"
    )
    args = parser.parse_args(argv)
    columns, rows = (int(v) for v in args.size.lower().split("x"))
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out.resolve()

    from dlptui.tui import graphics

    graphics.probe()  # as the console does: a terminal that may draw pixels is asked before the app starts

    with tempfile.TemporaryDirectory(prefix="dlptui-demo-") as tmp:
        home = Path(tmp) / "home"
        platform = build_demo(home, ROOT / "trial" / ("tiny.yaml" if args.tiny else "local.yaml"))
        cwd = Path.cwd()
        images = write_images(Path(tmp) / "images")
        os.chdir(images)  # the predict screen starts in the current directory
        try:
            only = set(args.only) if args.only else None
            asyncio.run(shoot(platform, out, (columns, rows), only))
            if not only or "explain-overlay" in only:
                write_overlay(platform, out, images)
        finally:
            os.chdir(cwd)
            from dlptui.platform import gate_runner

            gate_runner.stop(platform.config)  # the demo's gated canary started one
            for deployment in platform.serving.list_deployments():
                platform.serving.undeploy(deployment.name)
            platform.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
