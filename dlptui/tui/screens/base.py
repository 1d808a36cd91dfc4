"""The base of every console screen: header, body, footer; thread workers; polling; read-only.

Conventions (every screen of the console follows them):

- A screen subclasses `BaseScreen`, sets `TITLE` and yields its widgets from
  `compose_body()`; the header (context, versions, load, health of each part) and the
  footer come from here. The platform is `self.platform`, the config `self.config`.
- Backend calls never run on the event loop. `self.call(fn, *args, then=callback)`
  runs `fn(*args)` in a thread worker and calls `then(result)` back on the event loop
  (only if the screen is still mounted). A failure ends in one notification built by
  `describe_error`: a PlatformError's own sentence, anything else
  "Unexpected error: ..." (and the traceback goes to the log, never on screen).
  `on_error` (optional) is called with that sentence too, to show a state on screen.
  The work is counted by `app.work` (`tui/work.py`): on exit the platform is closed only
  once no thread still uses it.
- A live view sets `POLL_SECONDS` and implements `fetch()` (runs in a thread, calls the
  platform, returns data) and `show(data)` (event loop, updates widgets). The next poll
  is scheduled only when the last one finished (no stacked polls), polling stops while
  the screen is hidden (suspended) and restarts at once when it shows again. A failed
  poll calls `show_error(sentence)` (default: the state line under the body) and
  notifies once per new sentence, not every poll. `self.reload()` polls now (and shows
  what it gets, changed or not); `poll_seconds()` may return a longer wait when nothing
  moves (a finished run). A poll that finds nothing changed costs next to nothing:
  `fetch()` returns `self.unchanged_or(value)`, which is UNCHANGED when `value` is what the
  last poll fetched (the same object: the local stores hand back the same list when their
  records did not change; or an equal one), and then `show` is not called at all.
- Every Binding has an `id` "<screen>.<verb>" (e.g. "data.delete") so the user's
  `[keymap]` can remap it, and a key of the console's one scheme (the docstring of
  `app.py`): the same verb has the same key and the same action name on every screen
  (`new`, `delete`, `kill`, `open`, ...). Actions that change something are listed in
  `MUTATING` (action names without "action_"): in read-only mode `check_action` hides
  them from the footer, the help and the command palette (the Platform itself refuses
  the change anyway).
- A destructive action asks first: `self.confirm("Delete repo x?", then=callback)`
  shows `dialogs.confirm.ConfirmDialog` with "No" focused; `callback()` runs only on "Yes".
  Every other modal is a `dialogs.base.Dialog` too: `self.ask(dialog, then)` pushes it
  and calls `then(value)` only when it was answered (not cancelled).
- Tables are `ResourceTable`s: `table.update_rows(rows)` with `(key, cells)` pairs
  updates rows in place (the cursor survives); `j` / `k` move in them; `/` filters the
  focused list or tree (anything with `set_filter` and `filter_text`: tables, file trees;
  regex, `!` inverts), `Enter` drills down (push a screen), `Esc` goes back (pop it).
- Panes: every list, tree and log sits in a titled border (`ResourceTable(..., title=)`,
  `PaneTitle`); the focused one is drawn in the accent colour with "▶" before its title. On a
  screen with more than one, `tab` moves the focus on and the footer names where it goes
  ("tab → Checkpoints").
- `self.state(text)` writes the one-line state under the body (empty, loading,
  unreachable...). `self.set_focus_table()` is not needed: the first table gets focus.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Footer, Input, Static
from textual.worker import Worker, WorkerState

from dlptui.errors import PlatformError
from dlptui.tui.shown import plain, show_in, shown
from dlptui.tui.widgets.header import DlpHeader

log = logging.getLogger("dlptui.tui")


UNCHANGED = object()  # what `fetch` returns when the screen has nothing new to show (`unchanged_or`)


def is_filterable(widget: object) -> bool:
    """A list or tree that `/` can filter: it has `set_filter(text)` and `filter_text`."""
    return widget is not None and callable(getattr(widget, "set_filter", None)) and hasattr(widget, "filter_text")


def pane_name(widget: Widget) -> str:
    """What the footer calls a pane: its title, else its id in words."""
    title = getattr(widget, "pane_title", "") or ""
    if title:
        return plain(title)
    return (widget.id or type(widget).__name__).replace("-", " ").replace("_", " ")


def describe_error(error: BaseException) -> str:
    """One sentence for a person; unexpected errors are logged with their traceback."""
    if isinstance(error, PlatformError):
        return str(error)
    log.error("unexpected error in a worker", exc_info=error)
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"Unexpected error: {type(error).__name__}{': ' + text if text else ''}."


class BaseScreen(Screen):
    """A console screen. See the module docstring for the conventions."""

    TITLE: ClassVar[str] = ""
    POLL_SECONDS: ClassVar[float | None] = None
    MUTATING: ClassVar[frozenset[str]] = frozenset()

    BINDINGS = [
        # priority: "/" moves the focus before the keys typed after it are routed (a fast typist's "/cat" is the
        # filter "cat", not "/" and three keys to the list); in an input it is a character (check_action)
        Binding("slash", "filter", "Filter", id="screen.filter", priority=True),
        Binding("escape", "back", "Back", id="screen.back"),
        Binding("r", "reload", "Reload", id="screen.reload", show=False),
        Binding("tab", "next_pane", "Next pane", id="screen.next_pane"),
    ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._worker_then: dict[Worker, tuple[Callable | None, Callable | None]] = {}
        self._poll_timer: Timer | None = None
        self._polling = False  # a poll is in flight
        self._visible = False
        self._last_error: str | None = None
        self._filter_target: Widget | None = None
        self._fetched: Any = UNCHANGED  # what the last poll fetched (unchanged_or); UNCHANGED: show the next whatever it is
        self._must_show = False  # a reload asked for: the next poll shows what it fetches

    # -- composition -------------------------------------------------------------

    @property
    def platform(self):
        return self.app.platform

    @property
    def config(self):
        return self.app.config

    def compose(self) -> ComposeResult:
        yield DlpHeader(self.TITLE, self.app.health, self.app.config, self.app.tabs)
        box = Input(placeholder="filter (regex, ! inverts; Enter keeps, Esc clears)", id="filter")
        box.can_focus = False  # only while shown: a hidden input must not take the keys
        yield box
        yield from self.compose_body()
        yield Static("", id="state", markup=False)
        yield Footer()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def state(self, text: str) -> None:
        show_in(self.query_one("#state", Static), shown(text))  # a poll that says the same lays nothing out again

    # -- workers -----------------------------------------------------------------

    def call(
        self,
        fn: Callable[..., Any],
        *args: Any,
        then: Callable[[Any], Any] | None = None,
        on_error: Callable[[str], Any] | None = None,
        group: str = "default",
        exclusive: bool = False,
        description: str = "",
    ) -> Worker:
        """Run `fn(*args)` in a thread; `then(result)` on the event loop; errors notify."""
        worker = self.run_worker(
            self.app.work.track(lambda: fn(*args)),
            thread=True,
            group=group,
            exclusive=exclusive,
            exit_on_error=False,
            description=description or getattr(fn, "__name__", "call"),
        )
        self._worker_then[worker] = (then, on_error)
        return worker

    @on(Worker.StateChanged)
    def _worker_done(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.state not in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            return
        then, on_error = self._worker_then.pop(worker, (None, None))
        error = worker.error if worker.state == WorkerState.ERROR else None
        if worker.state == WorkerState.SUCCESS and then is not None:
            try:
                then(worker.result)
            except Exception as e:  # a bug in a screen: one sentence, the console stays up
                error = e
        if error is not None:
            sentence = describe_error(error)
            if on_error is not None:
                on_error(sentence)
            else:
                self.notify(sentence, severity="error", timeout=8)

    # -- polling -----------------------------------------------------------------

    def fetch(self) -> Any:
        """Runs in a thread: read what the screen shows from the platform."""
        return None

    def show(self, data: Any) -> None:
        """Runs on the event loop with what `fetch` returned."""

    def show_error(self, sentence: str) -> None:
        self.state(sentence)

    def unchanged_or(self, value: Any) -> Any:
        """Runs in `fetch`'s thread: UNCHANGED when `value` is what the last poll fetched (the same object, or an equal
        one), else `value` (kept for the next poll to compare with)."""
        last, self._fetched = self._fetched, value
        if last is not UNCHANGED and (value is last or value == last):
            return UNCHANGED
        return value

    def reload(self) -> None:
        """Fetch now and show what comes (a poll in flight is not doubled: its completion schedules the next)."""
        self._fetched = UNCHANGED
        self._must_show = True
        self._poll()

    def _poll(self) -> None:
        if self._poll_timer is not None:
            self._poll_timer.stop()
            self._poll_timer = None
        if self._polling:
            return
        self._polling = True
        self.call(self.fetch, then=self._polled, on_error=self._poll_failed, group="poll")

    def _polled(self, data: Any) -> None:
        self._polling = False
        if self._last_error is not None:  # (a failed poll forgot what it fetched: this one shows its data)
            self._last_error = None
            self.state("")
        if data is UNCHANGED and self._must_show:  # a reload came while this poll was under way: poll again, to show
            self._fetched = UNCHANGED
            self._poll()
            return
        self._must_show = False
        if data is not UNCHANGED:
            self.show(data)
        self._schedule()

    def _poll_failed(self, sentence: str) -> None:
        self._polling = False
        self._fetched = UNCHANGED
        if sentence != self._last_error:
            self._last_error = sentence
            self.notify(sentence, severity="error", timeout=8)
        self.show_error(sentence)
        self._schedule()

    def poll_seconds(self) -> float | None:
        """Seconds until the next poll; a screen may slow down when nothing is moving."""
        return self.POLL_SECONDS

    def _schedule(self) -> None:
        seconds = self.poll_seconds()
        if seconds and self._visible and self.is_attached:
            self._poll_timer = self.set_timer(seconds, self._poll)

    def on_screen_resume(self) -> None:
        self._visible = True
        self.reload()

    def on_screen_suspend(self) -> None:
        self._visible = False
        if self._poll_timer is not None:
            self._poll_timer.stop()
            self._poll_timer = None

    # -- read-only, confirmation ------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if self.app.config.read_only and action in self.MUTATING:
            return False
        if action == "next_pane":
            return len(self.focus_chain) > 1
        if action == "filter":
            return bool(self._filterables()) and not isinstance(self.focused, Input)
        return True

    # -- panes: the focus, and where tab takes it --------------------------------------

    def _next_pane(self) -> Widget | None:
        chain = self.focus_chain
        if len(chain) < 2:
            return None
        index = chain.index(self.focused) if self.focused in chain else -1
        return chain[(index + 1) % len(chain)]

    @property
    def active_bindings(self):
        """The screen's bindings, with tab's description naming the pane it moves the focus to."""
        bindings = super().active_bindings
        tab = bindings.get("tab")
        if tab is not None and tab.binding.id == "screen.next_pane" and (target := self._next_pane()) is not None:
            bindings["tab"] = tab._replace(binding=replace(tab.binding, description=f"→ {pane_name(target)}"))
        return bindings

    def action_next_pane(self) -> None:
        self.focus_next()

    def confirm(self, question: str, then: Callable[[], Any]) -> None:
        """Ask `question` with "No" focused; `then()` runs only on "Yes"."""
        from dlptui.tui.dialogs.confirm import ConfirmDialog

        self.ask(ConfirmDialog(question), lambda yes: then() if yes else None)

    def ask(self, dialog, then: Callable[[Any], Any]) -> None:
        """Push a dialog; `then(value)` runs with its answer, unless it was cancelled (None)."""

        def answered(value: Any) -> None:
            if value is not None:
                then(value)

        self.app.push_screen(dialog, answered)

    # -- filter, back, reload -------------------------------------------------------

    def _filterables(self) -> list[Widget]:
        return [w for w in self.query("*") if is_filterable(w) and w.display]

    def action_filter(self) -> None:
        found = self._filterables()
        if not found:
            return
        focused = self.focused
        self._filter_target = focused if is_filterable(focused) else found[0]
        box = self.query_one("#filter", Input)
        box.value = self._filter_target.filter_text
        box.add_class("-shown")
        box.can_focus = True
        self.set_focus(box)  # at once: the keys typed right after `/` are the filter's

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        if self._filter_target is not None:
            error = self._filter_target.set_filter(event.value)
            event.input.set_class(error is not None, "-invalid")
            event.input.tooltip = error

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._close_filter(keep=True)

    def _close_filter(self, keep: bool) -> None:
        box = self.query_one("#filter", Input)
        target = self._filter_target
        if target is not None and not keep:
            target.set_filter("")
        box.remove_class("-shown")
        box.can_focus = False
        if target is not None:
            target.focus()

    def action_back(self) -> None:
        box = self.query_one("#filter", Input)
        if box.has_class("-shown"):
            self._close_filter(keep=False)
        elif self._filter_target is not None and self._filter_target.filter_text:
            self._filter_target.set_filter("")
        elif len(self.app.screen_stack) > 1:
            self.dismiss()

    def action_reload(self) -> None:
        self.reload()


class UnavailableScreen(BaseScreen):
    """Stands in for a screen whose module is not there yet: says so, shows no data."""

    def __init__(self, title: str, reason: str) -> None:
        super().__init__()
        self.TITLE = title
        self.reason = reason

    def compose_body(self) -> ComposeResult:
        yield Static(shown(f"{self.TITLE}: not available yet. {self.reason}"), id="unavailable", markup=False)
