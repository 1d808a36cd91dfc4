"""The header on every screen: where the console points, versions, load, and each part's health.

It reads `app.context` (from `Cluster.context()`), `app.services` (part -> Service) and
`app.slow` (parts whose check is late) and repaints when the app publishes
`app.status_signal`. A part that is down shows in red with its reason in one sentence,
a slow one in yellow; the others keep working.
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

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

    def __init__(self, title: str) -> None:
        super().__init__()
        self.title = title

    def on_mount(self) -> None:
        signal = getattr(self.app, "status_signal", None)
        if signal is not None:
            signal.subscribe(self, lambda _: self.refresh(layout=True))

    def render(self) -> Text:
        app = self.app
        context: dict[str, str] = getattr(app, "context", {}) or {}
        services = getattr(app, "services", {}) or {}
        config = getattr(app, "config", None)
        line = Text()
        line.append("dlptui ", style="bold")
        current = getattr(app, "current_mode", None)
        for key, mode, title in getattr(app, "mode_titles", []):
            style = "bold reverse" if mode == current else "dim"
            line.append(f" {key} {title} ", style=style)
        if self.title not in {t for _, _, t in getattr(app, "mode_titles", [])}:
            line.append(f" {self.title} ", style="bold reverse")
        line.append("\n")
        profile = context.get("profile") or (config.profile if config else "?")
        line.append(f"profile {profile}")
        if config is not None and config.read_only:
            line.append("  READ-ONLY", style="bold yellow")
        for key, label in CONTEXT_KEYS:
            if context.get(key):
                line.append(f"  {label} {context[key]}", style="dim" if key != "load" else "")
        line.append("\n")
        reasons = []
        if not services:
            line.append("checking the platform's parts...", style="dim")
        for part, label in PART_LABELS.items():
            service = services.get(part)
            if part in getattr(app, "slow", ()):
                line.append(f"⧗ {label}  ", style="bold yellow")
                seconds = getattr(app, "SLOW_SECONDS", 0)
                reasons.append(f"{label}: no answer for {seconds:g} s or more; it is slow or hanging (still checking).")
                continue
            if service is None:
                continue
            if service.reachable:
                line.append(f"● {label} ", style="green")
                line.append(f"{service.backend}  ", style="dim")
            else:
                line.append(f"✖ {label}  ", style="bold red")
                reasons.append(f"{label}: {service.detail}")
        for reason in reasons:  # one line each, cut to the width: the Cluster screen has them whole
            line.append("\n")
            line.append(reason, style="red")
        line.no_wrap = True
        line.overflow = "ellipsis"
        return line
