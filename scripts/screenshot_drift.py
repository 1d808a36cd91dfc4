"""Write docs/screenshots/drift.svg: the Deployments screen with its drift line, a version drifting on inverted images.

    .venv/bin/python scripts/screenshot_drift.py [--out docs/screenshots] [--size 120x36] [--tiny]

The demo platform of scripts/screenshots.py (the SYNTHETIC sample, the demo trial, `dogcat-deploy` serving
production), then the version's drift reference from its training commit, 100 held-back sample images and 200
inverted ones through the endpoint, and the Deployments screen once its drift line says `drifting`. Nothing outside
a temporary folder is touched.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from screenshots import ROOT, build_demo, until  # noqa: E402


def traffic(endpoint: str) -> None:
    import httpx
    from PIL import Image, ImageOps

    from dlptui.actions.sample import draw

    images = [draw("cat" if i % 2 else "dog", 1000 + i) for i in range(100)]
    for i in range(200):
        buf = io.BytesIO()
        ImageOps.invert(Image.open(io.BytesIO(draw("cat" if i % 2 else "dog", 5000 + i))).convert("RGB")).save(buf, "JPEG")
        images.append(buf.getvalue())
    with httpx.Client(timeout=60) as client:
        for image in images:
            client.post(endpoint, json={"binData": base64.b64encode(image).decode()}).raise_for_status()


async def shoot(platform, out: Path, size: tuple[int, int]) -> Path:
    from dlptui.tui.app import DlpApp

    app = DlpApp(platform.config, platform=platform, start="deployments")
    async with app.run_test(size=size) as pilot:
        line = app.screen.query_one("#drift")
        await until(pilot, lambda: "drifting" in str(line.content) and app.screen.query_one("#log").line_count, "the drift line")
        await pilot.pause(0.5)
        app.save_screenshot(filename="drift.svg", path=str(out))
    return out / "drift.svg"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--size", default="120x36", help="terminal size, COLUMNSxROWS")
    parser.add_argument("--tiny", action="store_true", help="train trial/tiny.yaml (seconds) instead of trial/local.yaml")
    args = parser.parse_args(argv)
    columns, rows = (int(v) for v in args.size.lower().split("x"))
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)

    from dlptui.actions import drift_reference
    from dlptui.tui import graphics

    graphics.probe()
    with tempfile.TemporaryDirectory(prefix="dlptui-drift-demo-") as tmp:
        platform = build_demo(Path(tmp) / "home", ROOT / "trial" / ("tiny.yaml" if args.tiny else "local.yaml"))
        try:
            drift_reference.compute(platform, "dogcat-deploy")
            traffic(platform.serving.get_deployment("dogcat-deploy").endpoint)
            path = asyncio.run(shoot(platform, out, (columns, rows)))
            print(f"wrote {path}", flush=True)
        finally:
            for deployment in platform.serving.list_deployments():
                platform.serving.undeploy(deployment.name)
            platform.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
