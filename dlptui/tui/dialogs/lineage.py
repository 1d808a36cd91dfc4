"""Where a deployment or a model version came from, as a list of links.

    deployment -> model version -> checkpoint -> experiment -> data commit

    dialog = lineage_of(platform, deployment="dogcat-deploy")      # in a thread
    app.push_screen(dialog, lambda link: follow(app, link) if link else None)

Each entry is a `Link` to the screen that shows it (a mode of the app and the key of the
row there). Enter on one closes the dialog with that link; `follow(app, link)` then
switches to the mode and asks its screen to select the row.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.table import Table
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from dlptui.tui.dialogs.base import Dialog
from dlptui.tui.keys import MOVE_KEYS
from dlptui.tui.shown import plain, shown


@dataclass(frozen=True)
class Link:
    kind: str  # "deployment", "version", "checkpoint", "experiment", "data commit"
    title: str  # what the entry says: "dogcat-model@2"
    detail: str  # one more line of facts: metrics, state, a date
    mode: str  # the app mode that shows it: "deployments", "models", "experiments", "data"
    key: str  # the row to select there


MODES = {  # where each kind of step is shown
    "prediction": "deployments",
    "deployment": "deployments",
    "verdict": "deployments",  # the gate's, on the deployment whose history keeps it
    "canary": "deployments",  # the canary the retrain loop made of the version
    "version": "models",
    "checkpoint": "experiments",
    "experiment": "experiments",
    "data commit": "data",
}


def follow(app: App, link: Link, tries: int = 50) -> None:
    """Switch to the link's screen and select its row once the screen has loaded it.

    A screen with `reveal(key) -> bool` selects the row itself; on any other screen the row
    is looked up by key in its tables (for "repo@commit", the repo's row). The screen loads
    its rows in a worker, so the lookup is tried again a few times while they arrive.
    """
    from dlptui.tui.widgets.resource_table import ResourceTable

    app.switch_mode(link.mode)

    def select(left: int) -> None:
        screen = app.screen
        reveal = getattr(screen, "reveal", None)
        if reveal is not None:
            found = reveal(link.key)
        else:
            found = False
            for table in screen.query(ResourceTable):
                key = next((k for k in (link.key, link.key.partition("@")[0]) if k in table.shown_keys), None)
                if key is not None:
                    table.move_cursor(row=table.shown_keys.index(key))
                    table.focus()
                    found = True
                    break
        if not found and left > 0:
            app.set_timer(0.1, lambda: select(left - 1))

    app.call_later(select, tries)


def _entry(link: Link, last: bool) -> Table:
    """Kind on the left; title, facts and an arrow to the next step on the right, wrapped in their column."""
    body = shown(link.title, style="bold")
    if link.detail:
        body.append(f"\n{plain(link.detail)}", style="dim")
    if not last:
        body.append("\n↓")
    grid = Table.grid(padding=(0, 1))
    grid.add_column(width=11, style="dim")
    grid.add_column(ratio=1)
    grid.add_row(link.kind, body)
    return grid


class LinkList(OptionList):
    BINDINGS = MOVE_KEYS


class LineageDialog(Dialog["Link | None"]):
    """The chain of one deployment or version; Enter follows the highlighted link."""

    DEFAULT_CSS = """
    LineageDialog LinkList, LineageDialog LinkList:focus { height: auto; max-height: 24; border: none; }
    LineageDialog #lineage-missing { color: $warning; padding-top: 1; }
    """
    OK = ("ok", "Follow")
    CANCEL = ("close", "Close")
    FOCUS = "#lineage-links"
    BINDINGS = [Binding("q", "cancel", "Close", id="lineage.close")]

    def __init__(self, title: str, links: list[Link], missing: str = "") -> None:
        super().__init__(title)
        self.links = links
        self.missing = missing

    def compose_body(self) -> ComposeResult:
        yield LinkList(
            *(Option(_entry(link, i == len(self.links) - 1), id=str(i)) for i, link in enumerate(self.links)),
            id="lineage-links",
        )
        if self.missing:
            yield Static(shown(self.missing), id="lineage-missing", markup=False)

    def result(self) -> Link | None:
        highlighted = self.query_one(LinkList).highlighted
        return self.links[highlighted] if highlighted is not None and self.links else None

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(self.links[int(event.option.id or 0)])


def lineage_of(platform, deployment: str | None = None, version=None) -> LineageDialog:
    """Runs in a thread: the dialog for a deployment (by name) or a ModelVersion (actions/lineage.py)."""
    from dlptui.actions import lineage

    if deployment and "#" in deployment:  # a logged prediction: DEPLOYMENT#ID
        chain = lineage.trace(platform, deployment)
    else:
        chain = lineage.of_deployment(platform, deployment) if deployment else lineage.of_version(platform, version, serving=True)
    experiment = next((s.id for s in chain.steps if s.kind == "experiment"), None)
    links = [
        # a checkpoint is shown with its experiment
        Link(s.kind, s.id, s.detail, MODES.get(s.kind, "cluster"),
             (experiment or s.id) if s.kind == "checkpoint" else s.id.partition("#")[0] if s.kind == "prediction" else s.id)
        for s in chain.steps
    ]
    return LineageDialog(f"Lineage of {chain.target}", links, chain.missing)
