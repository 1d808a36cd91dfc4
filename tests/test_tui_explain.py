"""The Predict screen's `E`: where the model looked, drawn over the image in the preview, with the class it explains.

The deployment is the real seldon-core microservice serving the tiny model trained in the session
(SYNTHETIC cats and dogs); the explanation runs in the console's worker on that version's checkpoint.
Where the map is bright is tested in tests/test_explain.py (a model trained to look at one patch);
here: what the screen draws, and the sentences.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from dlptui.tui.screens.predict import NO_DEPLOYMENT, PredictScreen
from dlptui.tui.widgets.image_preview import ImagePreview
from dlptui.tui.widgets.probabilities import Probabilities
from dlptui.tui.widgets.trees import ImageTree
from tests.fixtures.console import DEPLOYMENT
from tests.fixtures.tui import SIZE, make_app, wait_for


async def start(pilot, app) -> tuple[PredictScreen, ImageTree]:
    await wait_for(pilot, lambda: isinstance(app.screen, PredictScreen) and app.screen.is_mounted, what="the screen")
    tree = app.screen.query_one("#tree", ImageTree)
    await wait_for(pilot, lambda: len(tree.root.children) > 0, what="the images in the tree")
    return app.screen, tree


async def highlight(pilot, tree: ImageTree, name: str) -> None:
    tree.focus()
    tree.move_cursor(next(n for n in tree.root.children if n.data.path.name == name))
    await pilot.pause()


def caption(screen) -> str:
    return screen.query_one("#preview", ImagePreview).caption


def cells_of(screen, image) -> list[tuple]:
    """What the preview draws of `image` at its present size: (upper pixel, lower pixel) per cell."""
    from PIL import Image

    from dlptui.tui.widgets.image_preview import fit

    size = screen.query_one("#picture").size
    columns, rows = fit(*image.size, size.width, size.height)
    pixels = image.convert("RGB").resize((columns, rows), Image.Resampling.BILINEAR).load()
    return [(pixels[x, y], pixels[x, y + 1]) for y in range(0, rows, 2) for x in range(columns)]


def drawn_colours(screen) -> list[tuple]:
    """The colours of every half-block cell the preview draws: (upper pixel, lower pixel) per cell."""
    picture = screen.query_one("#picture")
    cells = []
    for y in range(picture.size.height):
        for segment in picture.render_line(y):
            if segment.text.strip() and segment.style is not None and segment.style.color is not None:
                cells.append((segment.style.color.triplet, segment.style.bgcolor.triplet))
    return cells


@pytest.mark.slow
async def test_E_draws_where_the_model_looked_and_names_the_class(deployed, image_folder: Path, monkeypatch):
    monkeypatch.chdir(image_folder)
    app = make_app(deployed.config, deployed, start="predict")
    async with app.run_test(size=SIZE) as pilot:
        screen, tree = await start(pilot, app)
        await wait_for(pilot, lambda: screen.deployment == DEPLOYMENT, what="the deployment in the selector")
        bars = screen.query_one("#bars", Probabilities)

        # the answer first, then why: the class explained is the one the deployment gave
        await highlight(pilot, tree, "dog.1.jpg")
        await wait_for(pilot, lambda: caption(screen) == "dog.1.jpg  96x96", what="the preview of dog.1.jpg")
        await pilot.press("x")
        await wait_for(pilot, lambda: bars.prediction is not None, what="the prediction of dog.1.jpg")
        answer = bars.prediction
        await pilot.press("E")
        await wait_for(pilot, lambda: screen.explained is not None, timeout=120, what="the explanation of dog.1.jpg")
        said = caption(screen)
        assert said.startswith(f"Grad-CAM for {answer.label} (") and "dogcat-model@1" in said, said
        assert f"{answer.probabilities[answer.label]:.1%}" in said  # the served answer's probability, from the same weights
        await pilot.pause()
        drawn = drawn_colours(screen)
        assert len(drawn) > 100 and drawn == cells_of(screen, screen.explained.saliency.overlay)  # the overlay is drawn...
        plain = cells_of(screen, Image.open(image_folder / "dog.1.jpg"))
        assert sum(1 for a, b in zip(drawn, plain) if a != b) > 0.9 * len(drawn)  # ...not the plain picture
        assert screen.explained.saliency.overlay.size == (96, 96)
        assert bars.prediction is answer  # the bars still show the answer

        # another image and back: the plain picture again
        await highlight(pilot, tree, "cat.1.jpg")
        await wait_for(pilot, lambda: caption(screen) == "cat.1.jpg  96x96", what="the preview of cat.1.jpg")
        assert screen.explained is None

        # E with no answer on show: the class the model gives the most
        await pilot.press("E")
        await wait_for(pilot, lambda: screen.explained is not None, timeout=120, what="the explanation of cat.1.jpg")
        probabilities = screen.explained.saliency.probabilities
        assert screen.explained.label == max(probabilities, key=probabilities.get)
        assert caption(screen).startswith(f"Grad-CAM for {screen.explained.label} (")

        # a file that is not an image: one sentence under the preview, no traceback
        await highlight(pilot, tree, "fake.png")
        await wait_for(pilot, lambda: "fake.png is not an image" in caption(screen), what="the preview's sentence")
        await pilot.press("E")
        await wait_for(pilot, lambda: "fake.png is not an image (JPEG or PNG)" in caption(screen),
                       what="the explanation's sentence for fake.png")
        text = caption(screen)
        assert "\n" not in text and "Traceback" not in text and screen.explained is None


async def test_E_with_no_deployment_or_no_image_says_so(platform, image_folder: Path, monkeypatch):
    monkeypatch.chdir(image_folder)
    app = make_app(platform.config, platform, start="predict")
    async with app.run_test(size=SIZE) as pilot:
        screen, tree = await start(pilot, app)
        await highlight(pilot, tree, "cat.1.jpg")
        await wait_for(pilot, lambda: caption(screen) == "cat.1.jpg  96x96", what="the preview of cat.1.jpg")
        await pilot.press("E")
        await wait_for(pilot, lambda: any(NO_DEPLOYMENT in n.message for n in app._notifications),
                       what="the no-deployment sentence")
        assert caption(screen) == "cat.1.jpg  96x96" and screen.explained is None


async def test_E_can_be_remapped_to_e_on_the_predict_screen(config, platform, image_folder: Path, monkeypatch):
    """`e` switches a deployment's version on Deployments; a keymap may still give it to the explanation here."""
    from dataclasses import replace

    monkeypatch.chdir(image_folder)
    app = make_app(replace(config, keymap={"predict.explain": "e"}), platform, start="predict")
    async with app.run_test(size=SIZE) as pilot:
        screen, tree = await start(pilot, app)
        await highlight(pilot, tree, "cat.1.jpg")
        await pilot.press("E")
        await pilot.press("e")
        await wait_for(pilot, lambda: any(NO_DEPLOYMENT in n.message for n in app._notifications),
                       what="the no-deployment sentence")
        assert sum(NO_DEPLOYMENT in n.message for n in app._notifications) == 1  # from e; E does nothing now
