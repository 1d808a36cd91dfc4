"""The console: one mode per screen, a header with the platform's health, keys, palette, jump.

Conventions of the frame (the screens in `screens/` plug into it):

- `SCREENS` lists the six top-level screens: mode name, number key, title and where
  the screen class lives ("module:Class"). Each becomes an `App.MODES` entry (its own
  screen stack: `Enter` pushes a detail screen, `Esc` pops it). A module that is not
  there yet, or fails to import, gives an `UnavailableScreen` saying so: no fake data.
- Keys 1-6 switch screens; `:` opens the jump prompt, which takes a screen's name, an
  alias from `ALIASES` (k9s style: `:exp`, `:dp`, `:deploy`) or a unique prefix; `?`
  shows the keys of the current screen; `ctrl+p` the command palette with every
  action of the current screen (`commands.ScreenActions`); `q` quits.
- Every Binding has an `id` ("app.quit", "data.delete", ...). `config.keymap` maps ids
  to keys and is applied with `App.set_keymap`, so any key can be remapped.
- `config.read_only` hides every action a screen lists in `MUTATING` (see
  `screens/base.py`), from the footer, the help and the palette, and blocks it.
- The app checks the health of each of the five parts in its own thread (and reads
  `Cluster.context()`) into `app.services` / `app.context`, and publishes
  `app.status_signal` as each answers; the header of every screen repaints from it. The
  next round starts `STATUS_SECONDS` after the last answer (no stacked checks). A dead
  part shows its reason there; a part that has not answered after `SLOW_SECONDS` is in
  `app.slow` and shows as slow; nothing else stops.
- The platform is `app.platform` (built from the config unless one is given, and then
  closed on exit). Nothing heavy is imported before the first frame: the platform's
  parts are built in workers, on first use.
- First start on an empty local platform: a notification offers `app.sample` (F2),
  which generates the sample data set, commits it to `dogs-and-cats` and starts the
  demo experiment, all in a worker.
"""

from __future__ import annotations

import importlib
import logging
from functools import partial
from pathlib import Path
from typing import Any

from textual import on
from textual.app import App
from textual.binding import Binding
from textual.keys import format_key, key_to_character
from textual.signal import Signal
from textual.worker import Worker, WorkerState

from dlptui.platform import PARTS, Platform
from dlptui.errors import PlatformError
from dlptui.platform.model import Service
from dlptui.tui.commands import ScreenActions
from dlptui.tui.screens.base import UnavailableScreen, describe_error
from dlptui.tui.widgets.help import HelpScreen, screen_actions
from dlptui.tui.widgets.jump import JumpPrompt

# mode -> (number key, title, "module:Class")
SCREENS: dict[str, tuple[str, str, str]] = {
    "cluster": ("1", "Cluster", "dlptui.tui.screens.cluster:ClusterScreen"),
    "data": ("2", "Data", "dlptui.tui.screens.data:DataScreen"),
    "experiments": ("3", "Experiments", "dlptui.tui.screens.experiments:ExperimentsScreen"),
    "models": ("4", "Models", "dlptui.tui.screens.models:ModelsScreen"),
    "deployments": ("5", "Deployments", "dlptui.tui.screens.deployments:DeploymentsScreen"),
    "predict": ("6", "Predict", "dlptui.tui.screens.predict:PredictScreen"),
}

ALIASES: dict[str, str] = {
    "cl": "cluster", "node": "cluster", "nodes": "cluster", "no": "cluster", "host": "cluster",
    "pods": "cluster", "po": "cluster", "ps": "cluster",
    "repo": "data", "repos": "data", "pfs": "data", "pachyderm": "data", "ds": "data",
    "exp": "experiments", "xp": "experiments", "experiment": "experiments", "train": "experiments",
    "training": "experiments", "det": "experiments",
    "model": "models", "mo": "models", "reg": "models", "registry": "models",
    "deploy": "deployments", "dp": "deployments", "deployment": "deployments", "serving": "deployments",
    "seldon": "deployments", "sdep": "deployments",
    "pred": "predict", "pr": "predict", "infer": "predict",
}

log = logging.getLogger("dlptui.tui")

SAMPLE_REPO = "dogs-and-cats"


def resolve_jump(text: str) -> str | None:
    """The mode a jump prompt's text names: a mode, an alias, or a unique prefix of one."""
    word = text.strip().lower()
    if not word:
        return None
    if word in SCREENS:
        return word
    if word in ALIASES:
        return ALIASES[word]
    matches = {m for m in SCREENS if m.startswith(word)} | {v for k, v in ALIASES.items() if k.startswith(word)}
    return matches.pop() if len(matches) == 1 else None


def load_screen(mode: str):
    """The screen of a mode; an UnavailableScreen with the reason if its module is not there."""
    _, title, target = SCREENS[mode]
    module_name, class_name = target.split(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except ModuleNotFoundError as e:
        if e.name == module_name:
            return UnavailableScreen(title, "This screen has not been built into this version of dlptui.")
        return UnavailableScreen(title, f"It needs the Python package {e.name!r}, which is not installed.")
    except Exception as e:  # a broken screen must not take the console down
        return UnavailableScreen(title, f"Its module failed to load: {describe_error(e)}")
    return cls()


class DlpApp(App):
    """The dlptui console over one Platform (see the module docstring)."""

    TITLE = "dlptui"
    CSS_PATH = "app.tcss"
    COMMANDS = App.COMMANDS | {ScreenActions}
    STATUS_SECONDS = 5.0  # between the end of one health round and the next
    SLOW_SECONDS = 3.0  # a part that has not answered by then shows as slow
    MODES = {mode: (lambda mode=mode: load_screen(mode)) for mode in SCREENS}

    BINDINGS = [
        *(
            Binding(key, f"switch_mode('{mode}')", title, id=f"app.{mode}", show=False)
            for mode, (key, title, _) in SCREENS.items()
        ),
        Binding("colon", "jump", "Jump", id="app.jump"),
        Binding("question_mark", "help", "Keys", id="app.help"),
        Binding("ctrl+p", "command_palette", "Palette", id="app.palette", show=False, priority=True),
        Binding("f2", "load_sample", "Load sample", id="app.sample"),
        Binding("q", "quit", "Quit", id="app.quit"),
    ]

    def __init__(self, config, platform: Platform | None = None, start: str = "cluster") -> None:
        super().__init__()
        self.config = config
        self._own_platform = platform is None
        self.platform = platform or Platform(config)
        self.start_mode = start if start in SCREENS else "cluster"
        self.services: dict[str, Service] = {}
        self.slow: set[str] = set()  # parts whose health check has not answered for SLOW_SECONDS
        self._pending: set[str] = set()
        self.context: dict[str, str] = {}
        self.status_signal: Signal[None] = Signal(self, "status")
        self.empty_platform = False  # set after the first look at the local platform
        self.sample_loading = False
        if config.keymap:
            self.set_keymap(config.keymap)

    # -- life cycle ------------------------------------------------------------

    def on_mount(self) -> None:
        self.switch_mode(self.start_mode)
        self.call_after_refresh(self._after_first_frame)
        if self.config.keymap:
            self._tell_keymap_clashes()

    def _after_first_frame(self) -> None:
        """The first backend calls wait for the first frame: it paints before any part is built."""
        self._poll_status()
        if self.config.kind == "local":
            self.run_worker(self._is_empty, thread=True, group="first-start", exit_on_error=False)

    def on_unmount(self) -> None:
        if self._own_platform:
            try:
                self.platform.close()
            except Exception:  # a part still being built by a worker: nothing to lose, say nothing on exit
                log.warning("closing the platform failed", exc_info=True)

    def _poll_status(self) -> None:
        """Each part's health in its own thread: a slow part shows as slow, the others answer."""
        self._pending = set(PARTS)
        for part in PARTS:
            self.run_worker(partial(self._check, part), thread=True, group="health", name=part, exit_on_error=False)
        self._slow_timer = self.set_timer(self.SLOW_SECONDS, self._mark_slow)

    def _check(self, part: str) -> tuple[Service, dict[str, str] | None]:
        service = self.platform.health(part)  # never raises
        context = None
        if part == "cluster" and service.reachable:
            try:
                context = self.platform.cluster.context()
            except PlatformError:  # the header then shows the profile alone
                pass
        return service, context

    def _checked(self, part: str, result: tuple[Service, dict[str, str] | None] | None) -> None:
        if result is not None:
            service, context = result
            self.services[part] = service
            if context is not None:
                self.context = context
        self.slow.discard(part)
        self._pending.discard(part)
        self.status_signal.publish(None)
        if not self._pending:
            self._slow_timer.stop()
            if self.is_running:
                self.set_timer(self.STATUS_SECONDS, self._poll_status)

    def _mark_slow(self) -> None:
        self.slow = set(self._pending)
        if self.slow:
            self.status_signal.publish(None)

    def _is_empty(self) -> bool:
        from dlptui.actions.onboarding import is_empty

        return is_empty(self.platform)

    @on(Worker.StateChanged)
    def _worker_done(self, event: Worker.StateChanged) -> None:
        worker, state = event.worker, event.state
        if state not in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            return
        if worker.group == "health":
            self._checked(worker.name, worker.result if state == WorkerState.SUCCESS else None)
        elif worker.group == "first-start":  # a part that cannot answer shows in the header already
            if state == WorkerState.SUCCESS and worker.result:
                self._offer_sample()
        elif worker.group == "sample":
            self.sample_loading = False
            self.refresh_bindings()
            if state == WorkerState.SUCCESS:
                self.empty_platform = False
                self.notify(worker.result, title="Sample loaded", timeout=10)
            elif state == WorkerState.ERROR:
                self.notify(describe_error(worker.error), severity="error", timeout=10)
        elif state == WorkerState.ERROR and worker.error is not None:
            self.notify(describe_error(worker.error), severity="error")

    def _tell_keymap_clashes(self) -> None:
        """A [keymap] that gives one key to two of the app's actions: say so, in one sentence each."""
        owners: dict[str, list[str]] = {}
        for binding in Binding.make_bindings(self.BINDINGS):
            keys = self.config.keymap.get(binding.id, binding.key)
            for key in (k.strip() for k in keys.split(",")):
                owners.setdefault(key_to_character(key) or key, []).append(binding.id)  # "?" is question_mark
        for key, ids in owners.items():
            if len(ids) > 1:
                self.notify(
                    f"The [keymap] of your config gives {format_key(key)} to {' and '.join(ids)}; "
                    "only one of them answers it, so give the other a free key in the config file.",
                    severity="warning",
                    timeout=15,
                )

    def _offer_sample(self) -> None:
        self.empty_platform = True
        self.refresh_bindings()
        self.notify(
            "This platform is empty: press F2 to load the sample Dogs-vs-Cats data set and start the demo experiment.",
            title="Welcome",
            timeout=30,
        )

    # -- actions -----------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "load_sample":
            if self.config.read_only or self.config.kind != "local" or not self.empty_platform:
                return False
            return not self.sample_loading
        return True

    def action_jump(self) -> None:
        def jumped(text: str | None) -> None:
            if text is None:
                return
            mode = resolve_jump(text)
            if mode is None:
                names = ", ".join(SCREENS)
                self.notify(f"There is no screen named {text!r}; try {names}.", severity="warning")
            else:
                self.switch_mode(mode)

        self.push_screen(JumpPrompt(sorted(set(SCREENS) | set(ALIASES))), jumped)

    def action_help(self) -> None:
        screen = self.screen
        title = getattr(screen, "TITLE", "") or "this screen"
        self.push_screen(HelpScreen(title, screen_actions(screen)))

    def action_load_sample(self) -> None:
        self.sample_loading = True
        self.refresh_bindings()
        self.notify("Loading the sample data set and starting the demo experiment...", timeout=5)
        self.run_worker(self._load_sample, thread=True, group="sample", exit_on_error=False)

    def _load_sample(self) -> str:
        """Runs in a thread: the sample data set into dogs-and-cats, then the demo experiment on it."""
        from dlptui.actions.onboarding import load_sample

        return load_sample(self.platform)

    @property
    def mode_titles(self) -> list[tuple[str, str, str]]:
        """(key, mode, title) of each screen, for the header's tab line."""
        return [(key, mode, title) for mode, (key, title, _) in SCREENS.items()]


def make_app(config: Any, platform: Platform | None = None, start: str = "cluster") -> DlpApp:
    return DlpApp(config, platform=platform, start=start)
