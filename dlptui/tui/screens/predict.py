"""Predict: local images sent to a deployment; the picture, its label, a bar per class, the latency.

The tree lists the folders and images (jpg, jpeg, png, bmp, gif, webp) under the current
directory (`o` opens another folder). Moving onto an image previews it; Enter or `x` sends
it to the deployment chosen in the selector (`a` goes to the selector: which deployment to
ask); `f` sends every image of the highlighted folder (or of the highlighted image's
folder) and fills the results table with a count per label. `E` explains: the version that
answered (or the one the deployment serves) runs here, on its checkpoint, and the preview shows
where it looked (Grad-CAM) for the class it answered, with that class in the caption
(`actions.explain`, in a worker: the first one imports torch). A file that is not an image,
or is damaged, is said in one sentence.
"""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DirectoryTree, Label, Select, Static, Tree

from dlptui.actions import explain as explaining
from dlptui.actions.predict import read_image
from dlptui.errors import InvalidInput, NotFound, PlatformError
from dlptui.platform.model import Deployment, DeploymentState, Prediction
from dlptui.render import pick
from dlptui.render import serving as render
from dlptui.text import model_ref
from dlptui.tui.dialogs.files import FilePicker
from dlptui.tui.screens.base import BaseScreen
from dlptui.tui.shown import shown
from dlptui.tui.widgets.image_preview import MAX_SIDE, ImagePreview, open_image
from dlptui.tui.widgets.probabilities import Probabilities
from dlptui.tui.widgets.resource_table import ResourceTable, rendered
from dlptui.tui.widgets.trees import ImageTree, is_image_name

NO_DEPLOYMENT = "No deployment is available: deploy a model version on the Deployments screen (5) first."
NONE_PROMPT, CHOOSE_PROMPT = "no deployment available", "choose a deployment"
RESULTS = pick(render.PREDICTION_COLUMNS, "image", "label", "p-cat", "p-dog", "latency", "error")


def shown_path(path: Path) -> str:
    """A path as short as it can be said: relative to the current directory, or with ~ for home."""
    try:
        relative = path.relative_to(Path.cwd())
        return "./" if str(relative) == "." else f"./{relative}"
    except ValueError:
        pass
    try:
        return f"~/{path.relative_to(Path.home())}"
    except ValueError:
        return str(path)


def images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image_name(p) and not p.name.startswith("."))


class PredictScreen(BaseScreen):
    TITLE = "Predict"
    POLL_SECONDS = 5.0  # the deployment selector follows deployments coming and going

    BINDINGS = [
        Binding("x", "predict", "Predict", id="predict.run"),
        Binding("f", "predict_folder", "Predict folder", id="predict.folder"),
        Binding("o", "open_folder", "Open folder", id="predict.open"),
        Binding("a", "choose_deployment", "Ask which deployment", id="predict.deployment"),
        Binding("E", "explain", "Explain", id="predict.explain"),
    ]

    DEFAULT_CSS = """
    PredictScreen #predict-body { height: 1fr; }
    PredictScreen #files { width: 40%; min-width: 30; }
    PredictScreen #files ImageTree { height: 1fr; }
    PredictScreen #result { width: 1fr; padding-left: 1; }
    PredictScreen #chooser { height: auto; }
    PredictScreen #chooser Label { padding: 1 1 0 0; }
    PredictScreen #deployment { width: 1fr; }
    PredictScreen #folder-results { height: auto; max-height: 50%; display: none; }
    PredictScreen #folder-results.-shown { display: block; }
    PredictScreen #results { height: auto; max-height: 14; }
    PredictScreen #counts { padding: 0 1; text-style: bold; }
    """

    def __init__(self, folder: Path | None = None) -> None:
        super().__init__()
        self.folder = (folder or Path.cwd()).resolve()
        self.current: Path | None = None  # the image on show
        self.results: dict[str, Prediction] = {}
        self.explained: explaining.Explanation | None = None  # the explanation on show, if one is
        self._explaining: Path | None = None  # the image whose caption an explanation owns (in flight, shown or failed)
        self._prewarmed = False
        self._options: list[tuple[str, str]] = []  # the selector's (label, deployment) pairs

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="predict-body"):
            with Vertical(id="files"):
                tree = ImageTree(self.folder, id="tree")
                tree.pane_title = f"Images under {shown_path(self.folder)}"
                yield tree
            with Vertical(id="result"):
                with Horizontal(id="chooser"):
                    yield Label("deployment", markup=False)
                    yield Select([], prompt=NONE_PROMPT, id="deployment")
                yield ImagePreview("Move onto an image to see it; Enter or x predicts it.", id="preview")
                yield Probabilities(id="bars")
                with Vertical(id="folder-results"):
                    yield ResourceTable.of(RESULTS, title="Folder results", id="results")
                    yield Static("", id="counts", markup=False)

    def on_mount(self) -> None:
        tree = self.query_one("#tree", ImageTree)
        tree.root.set_label(shown(shown_path(self.folder)))
        tree.focus()

    # -- the deployment selector ------------------------------------------------------

    @property
    def deployment(self) -> str | None:
        select = self.query_one("#deployment", Select)
        return None if select.is_blank() else str(select.value)

    def fetch(self) -> list[Deployment]:
        return self.platform.serving.list_deployments()

    def show(self, deployments: list[Deployment]) -> None:
        select = self.query_one("#deployment", Select)
        ready = [d for d in deployments if d.state is DeploymentState.AVAILABLE]
        options = [(f"{d.name}  ({model_ref(d.model, d.version)})", d.name) for d in ready]
        if options != self._options:  # rebuilt: the deployments that serve now, and a prompt that says so
            keep = self.deployment
            self._options = options
            with self.prevent(Select.Changed):
                select.prompt = CHOOSE_PROMPT if options else NONE_PROMPT
                select.set_options(options)
                if keep in {v for _, v in options}:
                    select.value = keep
                elif options:
                    select.value = options[0][1]
        if not ready and self.query_one("#bars", Probabilities).prediction is None:
            self.query_one("#bars", Probabilities).show_message(NO_DEPLOYMENT)
        if ready and not self._prewarmed:  # E can explain now: its libraries load in a worker while the person looks
            self._prewarmed = True
            self.call(explaining.prewarm, group="prewarm")

    def action_choose_deployment(self) -> None:
        self.query_one("#deployment", Select).focus()

    # -- one image ---------------------------------------------------------------------

    @on(Tree.NodeHighlighted, "#tree")
    def _highlighted_node(self, event: Tree.NodeHighlighted) -> None:
        entry = event.node.data
        if entry is not None and entry.path.is_file():
            self.preview(entry.path)

    def on_directory_tree_file_selected(self, event: DirectoryTree.FileSelected) -> None:
        event.stop()
        self.preview(event.path)
        self.predict(event.path)

    def preview(self, path: Path) -> None:
        if path == self.current:
            return
        self.current = path
        self.explained, self._explaining = None, None
        preview = self.query_one("#preview", ImagePreview)
        preview.show_message(f"Loading {path.name}...")
        self.query_one("#bars", Probabilities).show_message(
            "Enter or x predicts this image." if self.deployment else NO_DEPLOYMENT
        )

        def shown(image) -> None:
            if self.current != path or self.explained is not None:
                return  # another image, or its explanation came first
            if self._explaining == path:
                preview.picture.image = image  # the caption says how the explanation goes
            else:
                width, height = image.info["original_size"]
                preview.show_image(image, f"{path.name}  {width}x{height}")

        def failed(sentence: str) -> None:
            if self.current == path:
                preview.show_message(sentence)

        self.call(open_image, path, then=shown, on_error=failed, group="preview", exclusive=True)

    def _highlighted(self) -> Path | None:
        node = self.query_one("#tree", ImageTree).cursor_node
        return node.data.path if node is not None and node.data is not None else None

    def action_predict(self) -> None:
        path = self._highlighted()
        if path is None or not path.is_file():
            self.notify("Move onto an image first.", severity="warning")
            return
        self.preview(path)
        self.predict(path)

    def predict(self, path: Path) -> None:
        name = self.deployment
        bars = self.query_one("#bars", Probabilities)
        if name is None:
            bars.show_message(NO_DEPLOYMENT)
            return
        bars.show_message(f"Asking {name} about {path.name}...")

        def answered(prediction: Prediction) -> None:
            if self.current == path:
                bars.show(prediction)

        def failed(sentence: str) -> None:
            if self.current == path:
                bars.show(Prediction(image=path.name, error=sentence))

        self.call(_predict, self.platform, name, path, then=answered, on_error=failed, group="predict")

    # -- why: the saliency map over the image --------------------------------------------

    def action_explain(self) -> None:
        path = self._highlighted()
        if path is None or not path.is_file():
            self.notify("Move onto an image first.", severity="warning")
            return
        name = self.deployment
        if name is None:
            self.notify(NO_DEPLOYMENT, severity="warning")
            return
        self.preview(path)
        preview = self.query_one("#preview", ImagePreview)
        answered = self.query_one("#bars", Probabilities).prediction
        version = label = None
        if answered is not None and answered.image == path.name and not answered.error:
            version, label = answered.version, answered.label  # explain the answer on show
        self._explaining = path
        preview.set_caption(f"Explaining {path.name} with the model of {name} (the first time loads torch)...")

        def shown(result) -> None:
            explanation, picture = result
            if self.current == path:
                self.explained = explanation
                preview.show_image(picture, explaining.caption(explanation))

        def failed(sentence: str) -> None:
            if self.current == path:
                preview.set_caption(sentence)

        self.call(_explain, self.platform, name, path, version, label, then=shown, on_error=failed, group="explain",
                  exclusive=True)

    # -- a whole folder ------------------------------------------------------------------

    def action_predict_folder(self) -> None:
        name = self.deployment
        if name is None:
            self.notify(NO_DEPLOYMENT, severity="warning")
            return
        path = self._highlighted() or self.folder
        folder = path if path.is_dir() else path.parent
        self.results = {}
        box = self.query_one("#folder-results")
        box.add_class("-shown")
        self.query_one("#results", ResourceTable).set_title(f"Predictions of {name} for {shown_path(folder)}")
        self.query_one("#results", ResourceTable).update_rows([])
        self.query_one("#counts", Static).update("predicting...")
        self.call(self._predict_folder, name, folder, then=self._folder_done, group="folder", exclusive=True)

    def _predict_folder(self, name: str, folder: Path) -> int:
        """Runs in a thread: one prediction per image, each shown as it comes back."""
        images = images_in(folder)
        for path in images:
            try:
                prediction = _predict(self.platform, name, path)
            except PlatformError as e:
                if not still_available(name, self.platform):
                    raise
                prediction = Prediction(image=path.name, error=str(e))
            self.app.call_from_thread(self._folder_row, prediction)
        return len(images)

    def _folder_row(self, prediction: Prediction) -> None:
        self.results[prediction.image] = prediction
        self.query_one("#results", ResourceTable).update_rows(
            rendered(RESULTS, list(self.results.values()), key=lambda p: p.image))

    def _folder_done(self, total: int) -> None:
        counts = self.query_one("#counts", Static)
        counts.update(shown(render.prediction_counts(self.results.values()) if total else "This folder holds no images."))

    # -- another folder ------------------------------------------------------------------

    def action_open_folder(self) -> None:
        self.ask(FilePicker("Open a folder of images", want="dir", start=self.folder), self.open_folder)

    def open_folder(self, path: Path) -> None:
        self.folder = path.resolve()
        self.current = None
        tree = self.query_one("#tree", ImageTree)
        tree.path = self.folder
        tree.root.set_label(shown(shown_path(self.folder)))
        tree.set_title(f"Images under {shown_path(self.folder)}")
        self.query_one("#preview", ImagePreview).show_message("Move onto an image to see it; Enter or x predicts it.")


def still_available(name: str, platform) -> bool:
    """Whether the deployment is still up (if not, a folder run stops at the first failure)."""
    try:
        return platform.serving.get_deployment(name).state is DeploymentState.AVAILABLE
    except PlatformError:
        return False


def _predict(platform, name: str, path: Path) -> Prediction:
    """Runs in a thread: one image sent to the deployment; a file that cannot be read is one sentence."""
    try:
        data = read_image(path)
    except (InvalidInput, NotFound) as e:
        return Prediction(image=path.name, error=str(e))
    return platform.serving.predict(name, data, path.name)


def _explain(platform, name: str, path: Path, version: int | None, label: str | None):
    """Runs in a thread: the explanation, and its overlay scaled down for the terminal."""
    explanation = explaining.explain_file(platform, name, path, version=version, label=label)
    picture = explanation.saliency.overlay.copy()
    picture.thumbnail((MAX_SIDE, MAX_SIDE))
    return explanation, picture
