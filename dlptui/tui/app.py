"""The console's frame and keymap: one mode per screen, a header with the platform's health, keys, palette, jump.

Conventions of the frame (the screens in `screens/` plug into it):

- `SCREENS` lists the top-level screens: mode name, number key, title and where
  the screen class lives ("module:Class"). Each becomes an `App.MODES` entry (its own
  screen stack: `Enter` pushes a detail screen, `Esc` pops it), imported when first shown.
  A module that is not there, or fails to import, gives an `UnavailableScreen` saying so.
- The platform is `app.platform` (built from the config unless one is given, and then
  closed on exit). Nothing heavy is imported before the first frame: the platform's parts
  are built in workers, on first use; a screen module imports numpy or PIL only where it
  draws with them (the live view's charts, a picture).
- `app.health` (`status.HealthPoller`) checks each part's health in its own thread, after
  the first frame and then round after round; the header of every screen subscribes to it.
- First start on an empty local platform: a notification offers F2, which loads the sample
  data set and starts the demo experiment (`actions.onboarding`), in a worker.
- Every modal is a `dialogs.base.Dialog`; `?` shows the keys of the current screen and
  `ctrl+p` the command palette lists the same actions (`keys.screen_actions`).
- `config.read_only` hides every action a screen lists in `MUTATING` from the footer, the
  help and the palette; the Platform itself refuses a change when read-only.

Keys: the same verb has the same key (and the same action name) on every screen, and no
key means two verbs (`tests/test_tui_keys.py` checks both). In the spirit of k9s:

    key      verb                                     where
    1 - 7    switch screen                            everywhere
    :        jump to a screen by name or alias; :q quits
    ?        the keys of this screen
    ctrl+p   command palette
    q        quit
    f2       load the sample (an empty local platform)
    /        filter the focused list or tree (regex, ! inverts)  lists, trees
    tab      focus the next pane (the footer names it; the focused pane is marked ▶)  screens with several panes
    esc      back (clear the filter, close, pop)      everywhere
    r        reload now                               every screen
    enter    open (drill down)                        Data, Commits, Experiments, Experiment (a trial), Models, Pipelines (a job); the Predict tree predicts; a commit's file: preview
    ctrl+s   save the file to this machine (as data get -o) a commit's files
    j / k    cursor down / up (as the arrows)         every list and tree
    n        new: repo, experiment, version (register; on Experiment the best trial first), deployment, pipeline (from a spec file)
    ctrl+d   delete: repo, deployment (undeploy), pipeline; asks, "No" focused
    ctrl+k   kill an experiment; asks, "No" focused
    p        pause an experiment / stop a pipeline    Experiments, Experiment, Pipelines
    c        continue (resume) / start a pipeline     Experiments, Experiment, Pipelines
    R        restart a job's failed datums            Pipelines, Job
    T        trigger: retrain on commit (the shipped pipeline) Pipelines
    G        the gated loop on / off: retrain, then a gated canary Pipelines
    L        the log of a datum                       Job
    u        upload a file or folder                  Data
    i        import a Kaggle split                    Data
    s        promote to staging                       Versions
    P        promote to production                    Versions
    m        mark a version / trial / experiment      Versions, Experiment, Experiments
    v        compare ("versus") with the marked ones  Versions, Experiment (trials, with a scatter), Experiments
    d        deploy this version                      Versions
    l        lineage                                  Versions, Deployments
    e        edit: switch to another version          Deployments
    t        canary traffic (a version and its share) Deployments
    g        promote the canary (all traffic to it)   Deployments
    A        abort the canary                         Deployments
    h        shadow: mirror every request to a version Deployments
    b        roll back to the version served before   Deployments
    w        the prediction log (Enter: its lineage)  Deployments
    x        predict the highlighted image            Predict
    f        predict a whole folder                   Predict
    o        open another folder                      Predict
    a        ask which deployment (the selector)      Predict
    E        explain: where the model looked (Grad-CAM over the image) Predict

In a dialog: Esc cancels, Enter confirms (on a focused button: presses it), `y` / `n`
answer a yes/no question; the frame's keys (1-7, :, ?, q, f2) wait until it is closed. Every Binding has an id ("app.quit", "data.delete",
"experiments.kill", "list.down", ...); the `[keymap]` of the config maps ids to keys
(`App.set_keymap`). Ids are kept when a key changes, so a keymap written for an older
version keeps working (`data.delete` is now ctrl+d by default, and still `data.delete`).
"""

from __future__ import annotations

import importlib
import logging
import time

from textual import on
from textual.app import App
from textual.binding import Binding
from textual.keys import format_key, key_to_character
from textual.worker import Worker, WorkerState

from dlptui.platform import Platform
from dlptui.tui.commands import ScreenActions
from dlptui.tui.dialogs.base import Dialog
from dlptui.tui.keys import screen_actions
from dlptui.tui.screens.base import UnavailableScreen, describe_error
from dlptui.tui.shown import plain
from dlptui.tui.status import HealthPoller
from dlptui.tui.work import InFlight

# mode -> (number key, title, "module:Class")
SCREENS: dict[str, tuple[str, str, str]] = {
    "cluster": ("1", "Cluster", "dlptui.tui.screens.cluster:ClusterScreen"),
    "data": ("2", "Data", "dlptui.tui.screens.data:DataScreen"),
    "experiments": ("3", "Experiments", "dlptui.tui.screens.experiments:ExperimentsScreen"),
    "models": ("4", "Models", "dlptui.tui.screens.models:ModelsScreen"),
    "deployments": ("5", "Deployments", "dlptui.tui.screens.deployments:DeploymentsScreen"),
    "predict": ("6", "Predict", "dlptui.tui.screens.predict:PredictScreen"),
    "pipelines": ("7", "Pipelines", "dlptui.tui.screens.pipelines:PipelinesScreen"),
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
    "pp": "pipelines", "pipeline": "pipelines", "jobs": "pipelines", "job": "pipelines", "pps": "pipelines",
}
QUIT_WORDS = frozenset({"q", "quit", "q!", "quit!"})  # `:q` in the jump prompt, as in k9s and vi
FRAME_ACTIONS = frozenset({"switch_mode", "jump", "help", "load_sample", "quit"})  # not while a dialog is open

log = logging.getLogger("dlptui.tui")


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
    CLOSE_WAIT_SECONDS = 3.0  # on exit, how long the platform waits for the threads still using it
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
        self.work = InFlight()  # every thread worker of the console runs through self.work.track
        self.health = HealthPoller(self, self.platform, self.work, self.STATUS_SECONDS, self.SLOW_SECONDS)
        self.empty_platform = False  # set after the first look at the local platform
        self.gate_seen = time.time()  # the gate's actions after this are told (those before the console opened are not)
        self.sample_loading = False
        if config.keymap:
            self.set_keymap(config.keymap)

    def notify(self, message: str, *, title: str = "", severity="information", timeout: float | None = None,
               markup: bool = False) -> None:
        """Every notification of the console (screens' and dialogs' too: theirs come here): its words as written,
        never read as markup ([/x] would crash the console, [@click=...] would run an action), no escape
        sequence (`tui.shown`). `markup` is taken for Textual's signature and ignored."""
        super().notify(plain(message), title=plain(title), severity=severity, timeout=timeout, markup=False)

    @property
    def tabs(self) -> list[tuple[str, str, str]]:
        """(key, mode, title) of each top-level screen, for the header's tab line."""
        return [(key, mode, title) for mode, (key, title, _) in SCREENS.items()]

    # -- life cycle ------------------------------------------------------------

    def on_mount(self) -> None:
        self.switch_mode(self.start_mode)
        self.call_after_refresh(self._after_first_frame)
        if self.config.keymap:
            self._tell_keymap_clashes()

    def _after_first_frame(self) -> None:
        """The first backend calls wait for the first frame: it paints before any part is built."""
        self.health.start()
        self.set_interval(self.STATUS_SECONDS, self._look_at_gates)
        if self.config.kind == "local":
            self.run_worker(self.work.track(self._is_empty), thread=True, group="first-start", exit_on_error=False)

    def on_unmount(self) -> None:
        self.health.stop()
        if not self._own_platform:
            return
        if not self.work.wait_idle(self.CLOSE_WAIT_SECONDS):  # closing under a thread can crash SQLite (work.py)
            log.warning("%d platform calls were still running on exit; the platform is left to the process exit",
                        self.work.running)
            return
        try:
            self.platform.close()
        except Exception:  # nothing to lose on exit: say nothing on screen
            log.warning("closing the platform failed", exc_info=True)

    def _look_at_gates(self) -> None:
        """What the gate did since the last look, told as notifications on whatever screen is shown (and its runner
        started where a gated canary waits without one)."""
        if not any(w.group == "gates" and not w.is_finished for w in self.workers):
            self.run_worker(self.work.track(self._gate_news), thread=True, group="gates", exit_on_error=False)

    def _gate_news(self) -> list[str]:
        from dlptui.actions import gate

        said, self.gate_seen = gate.news(self.platform, self.gate_seen)
        return said

    def _is_empty(self) -> bool:
        from dlptui.actions.onboarding import is_empty

        return is_empty(self.platform)

    @on(Worker.StateChanged)
    def _worker_done(self, event: Worker.StateChanged) -> None:
        worker, state = event.worker, event.state
        if state not in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED) or not self.is_running:
            return  # (a worker that ends while the console shuts down has no screen left to tell)
        if self.health.owns(worker):
            self.health.finished(worker)
        elif worker.group == "gates":  # a platform that does not answer shows in the header already
            if state == WorkerState.SUCCESS:
                for sentence in worker.result or []:
                    self.notify(sentence, title="Gate", timeout=20)
        elif worker.group == "first-start":  # a part that cannot answer shows in the header already
            if state == WorkerState.SUCCESS and worker.result:
                self._offer_sample()
        elif worker.group == "sample":
            self.sample_loading = False
            self.refresh_bindings()
            if state == WorkerState.SUCCESS:
                self.empty_platform = False
                self._show_again()
                self.notify(worker.result, title="Sample loaded", timeout=10)
            elif state == WorkerState.ERROR:
                self.notify(describe_error(worker.error), severity="error", timeout=10)
        elif state == WorkerState.ERROR and worker.error is not None:
            self.notify(describe_error(worker.error), severity="error")

    def platform_used(self) -> None:
        """A screen found repos or experiments: the platform is not empty any more, F2 is not offered."""
        if self.empty_platform:
            self.empty_platform = False
            self.refresh_bindings()

    def _show_again(self) -> None:
        """The screen on show polls now and shows what it finds even if its data did not change: what it says
        depends on the frame too (the F2 offer of an empty platform)."""
        screen = self.screen
        if hasattr(screen, "reload") and screen.is_mounted:
            screen.reload()

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
        self._show_again()
        self.notify(
            "This platform is empty: press F2 to load the sample Dogs-vs-Cats data set and start the demo experiment.",
            title="Welcome",
            timeout=30,
        )

    # -- actions -----------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in FRAME_ACTIONS and isinstance(self.screen, Dialog):
            return False  # a key typed in a dialog (q, 3, ?) answers the dialog, never the frame behind it
        if action == "load_sample":
            if self.config.read_only or self.config.kind != "local" or not self.empty_platform:
                return False
            return not self.sample_loading
        return True

    def action_jump(self) -> None:
        from dlptui.tui.dialogs.prompt import JumpPrompt

        def jumped(text: str | None) -> None:
            if not text:
                return
            if text.lower() in QUIT_WORDS:
                self.exit()
                return
            mode = resolve_jump(text)
            if mode is None:
                names = ", ".join(SCREENS)
                self.notify(f"There is no screen named {text!r}; try {names} (or q to quit).", severity="warning")
            else:
                self.switch_mode(mode)

        self.push_screen(JumpPrompt(sorted(set(SCREENS) | set(ALIASES) | {"quit"})), jumped)

    def action_help(self) -> None:
        from dlptui.tui.dialogs.help import HelpDialog

        screen = self.screen
        title = getattr(screen, "TITLE", "") or "this screen"
        self.push_screen(HelpDialog(title, screen_actions(screen)))

    def action_load_sample(self) -> None:
        self.sample_loading = True
        self.refresh_bindings()
        self.notify("Loading the sample data set and starting the demo experiment...", timeout=5)
        self.run_worker(self.work.track(self._load_sample), thread=True, group="sample", exit_on_error=False)

    def _load_sample(self) -> str:
        """Runs in a thread: the sample data set into dogs-and-cats, then the demo experiment on it."""
        from dlptui.actions.onboarding import load_sample

        return load_sample(self.platform)
