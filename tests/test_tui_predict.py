"""The Predict screen: a tree of local images, the preview, predictions from a real deployment.

The images are SYNTHETIC cats and dogs (dlptui.actions.sample), a text file named .png and
a truncated JPEG. The deployment is the real seldon-core microservice serving a tiny model
trained in the session; its labels are whatever that model says, so the tests check the
shape and consistency of what is shown, not which animal it guessed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dlptui.tui.dialogs.files import FilePicker
from dlptui.render.serving import prediction_counts
from dlptui.tui.screens.predict import NO_DEPLOYMENT, NONE_PROMPT, PredictScreen
from dlptui.tui.widgets.image_preview import ImagePreview
from dlptui.tui.widgets.trees import ImageTree
from dlptui.tui.widgets.probabilities import Probabilities
from dlptui.tui.widgets.resource_table import ResourceTable
from tests.fixtures.console import DEPLOYMENT
from tests.fixtures.tui import SIZE, drawn, make_app, wait_for

IMAGES = ["cat.1.jpg", "cat.2.jpg", "cat.3.jpg", "dog.1.jpg", "dog.2.jpg", "fake.png", "truncated.jpg"]


async def start(pilot, app) -> tuple[PredictScreen, ImageTree]:
    await wait_for(pilot, lambda: isinstance(app.screen, PredictScreen) and app.screen.is_mounted, what="the screen")
    screen = app.screen
    tree = screen.query_one("#tree", ImageTree)
    await wait_for(pilot, lambda: len(tree.root.children) == len(IMAGES), what="the images in the tree")
    return screen, tree


async def highlight(pilot, tree: ImageTree, name: str) -> None:
    node = next(n for n in tree.root.children if n.data.path.name == name)
    tree.focus()
    tree.move_cursor(node)
    await pilot.pause()


def caption(screen) -> str:
    return screen.query_one("#preview", ImagePreview).caption


def bars_text(screen) -> str:
    return str(screen.query_one("#bars", Probabilities).render())


async def test_tree_lists_images_only_and_a_bad_image_is_one_sentence(platform, image_folder: Path, monkeypatch):
    monkeypatch.chdir(image_folder)
    app = make_app(platform.config, platform, start="predict")
    async with app.run_test(size=SIZE) as pilot:
        screen, tree = await start(pilot, app)
        assert sorted(n.data.path.name for n in tree.root.children) == IMAGES  # notes.txt is left out
        await highlight(pilot, tree, "cat.1.jpg")
        await wait_for(pilot, lambda: caption(screen) == "cat.1.jpg  96x96", what="the preview of cat.1.jpg")
        assert screen.query_one("#picture").image is not None
        assert NO_DEPLOYMENT in bars_text(screen)

        await highlight(pilot, tree, "fake.png")
        await wait_for(pilot, lambda: "fake.png is not an image" in caption(screen), what="the sentence for fake.png")
        assert screen.query_one("#picture").image is None
        await highlight(pilot, tree, "truncated.jpg")
        await wait_for(pilot, lambda: "truncated.jpg is damaged" in caption(screen), what="the sentence for the truncated JPEG")
        assert "\n" not in caption(screen)

        await pilot.press("x")  # x with no deployment: the same sentence, no request, no crash
        await pilot.pause()
        assert NO_DEPLOYMENT in bars_text(screen)
        await pilot.press("f")
        await pilot.pause()
        assert any(NO_DEPLOYMENT in n.message for n in app._notifications)

        # o: another folder, typed into the picker; the tree starts there
        other = image_folder.parent / "more"
        (other / "sub").mkdir(parents=True)
        (other / "sub" / "dog.7.jpg").write_bytes((image_folder / "dog.1.jpg").read_bytes())
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, FilePicker), what="the folder picker")
        app.screen.query_one("#path").value = str(other)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is screen and screen.folder == other.resolve(), what="the new folder")
        await wait_for(pilot, lambda: [n.data.path.name for n in tree.root.children] == ["sub"], what="the new tree")
        title = next(line for line in drawn(app)[0].splitlines() if "Images under" in line)  # the pane's title, drawn
        assert tree.pane_title.endswith("more") and tree.pane_title[:24] in title


@pytest.mark.slow
async def test_predict_an_image_then_a_folder_then_a_dead_deployment(deployed, image_folder: Path, monkeypatch):
    monkeypatch.chdir(image_folder)
    app = make_app(deployed.config, deployed, start="predict")
    async with app.run_test(size=SIZE) as pilot:
        screen, tree = await start(pilot, app)
        await wait_for(pilot, lambda: screen.deployment == DEPLOYMENT, what="the deployment in the selector")
        bars = screen.query_one("#bars", Probabilities)
        # the selector's list is the deployments that serve: no stale "no deployment available" among them
        await pilot.press("a", "enter")
        await pilot.pause()
        listed = drawn(app)[0]
        assert DEPLOYMENT in listed and NONE_PROMPT not in listed
        await pilot.press("escape")
        await pilot.pause()

        # one image: its label, a bar per class, the latency
        await highlight(pilot, tree, "dog.1.jpg")
        await pilot.press("enter")
        await wait_for(pilot, lambda: bars.prediction is not None, what="the prediction of dog.1.jpg")
        prediction = bars.prediction
        assert prediction.error is None and prediction.image == "dog.1.jpg"
        assert set(prediction.probabilities) == {"cat", "dog"}
        assert prediction.label == max(prediction.probabilities, key=prediction.probabilities.get)
        assert abs(sum(prediction.probabilities.values()) - 1.0) < 1e-3
        text = bars_text(screen)
        assert f"label  {prediction.label}" in text and "latency" in text and "█" in text
        for name, p in prediction.probabilities.items():
            assert f"{p:6.1%}" in text

        # a file that is not an image, sent anyway with x: the server's one sentence
        await highlight(pilot, tree, "fake.png")
        await pilot.press("x")
        await wait_for(pilot, lambda: bars.prediction is not None and bars.prediction.image == "fake.png",
                       what="the answer for fake.png")
        assert bars.prediction.error and bars.prediction.label is None
        assert bars.prediction.error in bars_text(screen) and "Traceback" not in bars_text(screen)

        # the whole folder: a row per image and a count per label
        await pilot.press("f")
        counts = screen.query_one("#counts")
        results = screen.query_one("#results", ResourceTable)
        await wait_for(pilot, lambda: "images)" in str(counts.content), what="the folder's counts")
        assert sorted(results.all_keys) == IMAGES
        labels = [str(results.get_row(k)[1]) for k in results.all_keys]
        assert labels.count("-") == 2  # fake.png and truncated.jpg
        assert str(counts.content) == prediction_counts(screen.results.values())
        for label in ("cat", "dog"):
            if labels.count(label):
                assert f"{label} {labels.count(label)}" in str(counts.content)
        assert "failed 2" in str(counts.content) and "(7 images)" in str(counts.content)

        # the deployment goes away behind the console's back, while the selector still names it
        await highlight(pilot, tree, "cat.2.jpg")
        deployed.serving.undeploy(DEPLOYMENT)  # blocks the event loop: no poll can run before the next line
        screen.action_predict()  # what x does
        await wait_for(pilot, lambda: bars.prediction is not None and bars.prediction.error is not None,
                       what="the sentence for the dead deployment")
        assert DEPLOYMENT in bars.prediction.error and "Traceback" not in bars_text(screen)
        # the next poll takes it out of the selector; x then says there is nothing to ask
        await wait_for(pilot, lambda: screen.deployment is None, what="the selector to drop the deployment")
        await pilot.press("x")
        await wait_for(pilot, lambda: NO_DEPLOYMENT in bars_text(screen), what="the no-deployment sentence")
        assert NONE_PROMPT in drawn(app)[0]  # the selector says so, rebuilt from the deployments there are


def test_bars_and_counts_say_what_the_prediction_says():
    from dlptui.platform.model import Prediction
    from dlptui.tui.widgets.probabilities import bar, render_prediction

    assert bar(0.5, 10) == "█████     "
    assert bar(1.0, 4) == "████" and bar(0.0, 4) == "    " and bar(2.0, 4) == "████"
    assert bar(0.55, 10) == "█████▌    "  # half a cell in eighths
    text = render_prediction(Prediction("x.jpg", "dog", {"cat": 0.25, "dog": 0.75}, latency_ms=12.4, version=3)).plain
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines[0] == "label  dog   (v3)"
    assert lines[1].startswith("dog  ") and lines[1].endswith(" 75.0%")  # most likely first
    assert lines[2].startswith("cat  ") and lines[2].endswith(" 25.0%")
    assert lines[3] == "latency  12.4 ms"
    assert render_prediction(Prediction("x.jpg", error="x.jpg is not an image.")).plain == "x.jpg is not an image."
    predictions = [Prediction("a", "cat"), Prediction("b", "dog"), Prediction("c", "cat"), Prediction("d", error="bad")]
    assert prediction_counts(predictions) == "cat 2, dog 1, failed 1 (4 images)"


def test_half_blocks_fit_the_picture_and_keep_its_shape():
    from dlptui.tui.widgets.image_preview import fit

    assert fit(96, 96, 40, 10) == (20, 20)  # 10 rows hold 20 pixel rows: a square picture is 20 cells wide
    assert fit(200, 100, 40, 30) == (40, 20)  # bound by the width
    assert fit(1, 1000, 40, 5) == (1, 10)  # never narrower than a cell
    assert fit(100, 100, 0, 5) == (0, 0)  # no room: nothing drawn


async def test_half_blocks_draw_the_upper_and_lower_pixel_of_each_cell():
    from PIL import Image
    from textual.app import App

    from dlptui.tui.widgets.image_preview import HalfBlockImage

    picture = Image.new("RGB", (4, 4), (255, 0, 0))
    for x in range(4):
        for y in range(2, 4):
            picture.putpixel((x, y), (0, 0, 255))  # the lower half blue

    class One(App):
        def compose(self):
            yield HalfBlockImage(picture)

    app = One()
    async with app.run_test(size=(4, 3)) as pilot:  # 4 cells across: the picture at its own size, in 2 rows
        await pilot.pause()
        widget = app.query_one(HalfBlockImage)
        top, bottom = (list(widget.render_line(y)) for y in (0, 1))
        assert [s.text for s in top] == ["▀"] * 4
        assert top[0].style.color.triplet == (255, 0, 0) and top[0].style.bgcolor.triplet == (255, 0, 0)
        assert bottom[0].style.color.triplet == (0, 0, 255) and bottom[0].style.bgcolor.triplet == (0, 0, 255)
        assert widget.render_line(2).text.strip() == ""  # below the picture: blank
        widget.image = None
        await pilot.pause()
        assert widget.render_line(0).text.strip() == ""
