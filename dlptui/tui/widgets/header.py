"""The header on every screen: the screens' tabs, where the console points, versions, load, each part's health.

    DlpHeader(title, health, config, tabs)

It subscribes to `health.signal` (a `status.HealthPoller`) and repaints from
`health.context` (from `Cluster.context()`), `health.services` (part -> Service) and
`health.slow` (parts whose check is late). A part that is down shows in red with its reason
in one sentence, a slow one in yellow; the others keep working. `tabs` are the top-level
screens as (key, mode, title); the app's current mode is shown reversed.
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from dlptui.tui.shown import plain

# what Cluster.context() gives (local: host and versions; cluster: kube context, server, its version) -> label
CONTEXT_KEYS = (
    ("host", "host"), ("kube_context", "context"), ("server", "server"), ("version", "kubernetes"),
    ("dlptui", "dlptui"), ("python", "python"), ("textual", "textual"), ("load", "load"),
)
PART_LABELS = {"cluster": "cluster", "data": "data", "training": "training", "registry": "registry", "serving": "serving"}


class DlpHeader(Widget):
    DEFAULT_CSS = """
    DlpHeader { height: auto; max-height: 8; background: $panel; color: $text; padding: 0 1; dock: top; }
    """

    def __init__(self, title: str, health, config, tabs: list[tuple[str, str, str]]) -> None:
        super().__init__()
        self.title = title
        self.health = health
        self.config = config
        self.tabs = tabs

    def on_mount(self) -> None:
        self._drawn: Text | None = None
        self.health.signal.subscribe(self, lambda _: self._changed())

    def _changed(self) -> None:
        """Repaint only when what it says changed (a health round that finds every part as before costs nothing);
        lay the screen out again only when its number of lines did."""
        now = self.describe()
        before, self._drawn = self._drawn, now
        if before is None or now.plain != before.plain or now.spans != before.spans:
            self.refresh(layout=before is None or now.plain.count("\n") != before.plain.count("\n"))

    def render(self) -> Text:
        return self.describe()

    def describe(self) -> Text:
        health, config = self.health, self.config
        line = Text()
        line.append("dlptui ", style="bold")
        current = self.app.current_mode
        for key, mode, title in self.tabs:
            line.append(f" {key} {title} ", style="bold reverse" if mode == current else "dim")
        if self.title not in {title for _, _, title in self.tabs}:
            line.append(f" {plain(self.title)} ", style="bold reverse")
        line.append("\n")
        line.append(f"profile {health.context.get('profile') or config.profile}")
        if config.read_only:
            line.append("  READ-ONLY", style="bold yellow")
        for key, label in CONTEXT_KEYS:
            if health.context.get(key):
                line.append(f"  {label} {plain(health.context[key])}", style="dim" if key != "load" else "")
        line.append("\n")
        reasons = []
        if not health.services:
            line.append("checking the platform's parts...", style="dim")
        for part, label in PART_LABELS.items():
            service = health.services.get(part)
            if part in health.slow:
                line.append(f"⧗ {label}  ", style="bold yellow")
                reasons.append(
                    f"{label}: no answer for {health.slow_after:g} s or more; it is slow or hanging (still checking)."
                )
                continue
            if service is None:
                continue
            if service.reachable:
                line.append(f"● {label} ", style="green")
                line.append(f"{plain(service.backend)}  ", style="dim")
            else:
                line.append(f"✖ {label}  ", style="bold red")
                reasons.append(f"{label}: {plain(service.detail)}")
        for reason in reasons:  # one line each, cut to the width: the Cluster screen has them whole
            line.append("\n")
            line.append(reason, style="red")
        line.no_wrap = True
        line.overflow = "ellipsis"
        width = self.content_size.width
        if not width:
            return line
        lines = line.split("\n")  # each cut to the width: the header's height is its number of lines, never a wrap
        for part in lines:
            part.truncate(width, overflow="ellipsis")
        cut = Text("\n").join(lines)
        cut.no_wrap = True
        return cut
