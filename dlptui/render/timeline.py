"""What served when, in words: the sentence that answers `deployment history NAME --at TIME`, and the timeline of a
deployment (its versions as bands over time, the shares, the automatic changes and the drift verdicts marked) that
both the CLI (`--timeline`) and the Deployments screen show.

    served(name, t, history)                      # "At 2026-12-06 10:15:02, dogcat-deploy served dogcat-model ..."
    timeline(history, now, width=80, drift=...)   # ["v1 ████████90%███████", "v2          ▒10%▒▒▒▒", ...]

The timeline is plain text: one glyph per role (PRIMARY, CANARY, SHADOW) and per mark (AUTOMATIC, DRIFT), so the
console colours it by glyph (GLYPHS) and a terminal without colours still reads it.
"""

from __future__ import annotations

from collections.abc import Sequence

from dlptui import text
from dlptui.platform.deployment_policy import HISTORY_KEEP, ROLES, serving_at
from dlptui.platform.model import DeploymentChange

PRIMARY, CANARY, SHADOW = "█", "▒", "░"
AUTOMATIC, DRIFT = "▲", "◆"
GLYPHS = {"primary": PRIMARY, "canary": CANARY, "shadow": SHADOW, "automatic": AUTOMATIC, "drift": DRIFT}
LEGEND = f"{PRIMARY} primary  {CANARY} canary  {SHADOW} shadow  {AUTOMATIC} automatic change  {DRIFT} drift verdict"
NO_HISTORY = "No history yet: the timeline starts with the deployment's first change."
MIN_BAND = 10  # the fewest columns a band gets, however narrow the pane


def _shares(change: DeploymentChange) -> str:
    model = change.model
    if change.canary is None:
        said = f"served {model} version {change.to_version} on all its requests"
    else:
        said = (f"served {model} version {change.to_version} on {100 - change.share}% and version {change.canary} "
                f"(canary) on {change.share}%")
    if change.shadow is not None:
        said += f"; version {change.shadow} shadowed every request"
    return said


def _sentence(said: str) -> str:
    said = said.strip()
    return said if said.endswith((".", "!", "?")) else said + "."


def served(name: str, t: float, history: Sequence[DeploymentChange]) -> str:
    """The answer to "what did NAME serve at t", in one or two sentences: the routing in effect then and the entry
    that set it (who, when and, for an automatic change, why); before its first entry, that it was not deployed yet
    (or, where older entries were dropped, that what served is not known)."""
    at = text.timestamp(t)
    change = serving_at(history, t)
    if change is None:
        if not history:
            return f"{name} has no history; what it served at {at} is not known."
        first = min(history, key=lambda c: c.time)
        if first.from_version is None:
            return (f"At {at}, {name} was not deployed yet: its history begins when {first.by or 'someone'} deployed it "
                    f"at {text.timestamp(first.time)}.")
        return (f"At {at}, what {name} served is not known: its history keeps its last {HISTORY_KEEP} changes, the "
                f"oldest at {text.timestamp(first.time)}.")
    by = f" (by {change.by})" if change.by else ""
    told = f'At {at}, {name} {_shares(change)}. Set by "{change.change}"{by} at {text.timestamp(change.time)}.'
    if change.reason:
        told += " Why: " + _sentence(change.reason)
    return told


def _roles(change: DeploymentChange | None) -> dict[int, tuple[str, int | None]]:
    """version -> (its role, its share of the requests; None for a shadow) under the routing an entry left."""
    if change is None:
        return {}
    out: dict[int, tuple[str, int | None]] = {}
    for role in ROLES:
        version = change.to_version if role == "primary" else getattr(change, role)
        if version is not None:
            out[version] = (role, None if role == "shadow" else (100 - change.share if role == "primary" else change.share))
    return out


def _band(cells: list[tuple[str, int | None] | None]) -> str:
    """A version's row: its role's glyph where it held one, its share written into each run where it fits (a
    primary's only while a canary takes part of the requests)."""
    out: list[str] = []
    i = 0
    while i < len(cells):
        j = i
        while j < len(cells) and cells[j] == cells[i]:
            j += 1
        run = j - i
        if cells[i] is None:
            out.append(" " * run)
        else:
            role, share = cells[i]
            band = [GLYPHS[role]] * run
            label = f"{share}%" if share is not None and share != 100 else ""
            if label and run >= len(label) + 2:
                band[1:1 + len(label)] = label
            out.append("".join(band))
        i = j
    return "".join(out)


def _clip(line: str, width: int) -> str:
    return line if len(line) <= width else line[:max(width - 1, 0)] + "…"


def timeline(history: Sequence[DeploymentChange], now: float, width: int = 80,
             drift: Sequence[DeploymentChange] = (), start: float | None = None, marks: int = 3) -> list[str]:
    """The deployment's timeline in `width` columns, from `start` (default: its first entry) to `now`: a row per
    version that served in that window (the band where it held a role, its share written in), a row of marks
    (AUTOMATIC where an entry has a reason, DRIFT where a version's drift verdict changed: `drift`, entries as
    `actions.drift.history_entry` writes them), the time axis, the legend, and the last `marks` marked events in
    words. One line, NO_HISTORY, without entries."""
    entries = sorted(history, key=lambda c: c.time)
    if not entries:
        return [NO_HISTORY]
    start = entries[0].time if start is None else start
    end = max(now, start)
    versions = sorted({v for c in [serving_at(entries, start), *[c for c in entries if start <= c.time <= end]]
                       for v in _roles(c)})
    label_w = max(len(text.version_tag(v)) for v in versions) + 1
    cols = max(MIN_BAND, width - label_w)
    span = max(end - start, 1e-6)

    def column(t: float) -> int:
        return min(cols - 1, max(0, int((t - start) * cols / span)))

    grid = {v: [None] * cols for v in versions}
    for c in range(cols):  # each column shows what served at its end
        for v, cell in _roles(serving_at(entries, start + (c + 1) * span / cols)).items():
            if v in grid:
                grid[v][c] = cell
    for change in entries:  # a role held for less than a column still shows, at the column it began in
        if change.time < start:
            continue
        for v, cell in _roles(change).items():
            if not any(grid[v]):
                grid[v][column(change.time)] = cell
    lines = [f"{text.version_tag(v):<{label_w}}{_band(grid[v])}".rstrip() for v in versions]

    marked = [("automatic", c) for c in entries if c.reason and start <= c.time <= end]
    marked += [("drift", c) for c in drift if start <= c.time <= end]
    marked.sort(key=lambda m: m[1].time)
    if marked:
        row = [" "] * cols
        for kind, c in marked:
            if row[column(c.time)] != AUTOMATIC:  # an automatic change outranks a drift verdict in one column
                row[column(c.time)] = GLYPHS[kind]
        lines.append((" " * label_w + "".join(row)).rstrip())

    left, right = text.timestamp(start), "now" if end == now else text.timestamp(end)
    if len(left) + len(right) + 1 > cols:
        left = text.clock(start)
    lines.append(" " * label_w + left + right.rjust(cols - len(left)))
    lines.append(_clip(LEGEND, width))
    for kind, c in marked[-marks:] if marks else []:
        what = (f"{text.version_tag(c.to_version)} {c.change}" if kind == "drift"
                else f"{c.change}: {c.reason}")
        lines.append(_clip(f"{GLYPHS[kind]} {text.timestamp(c.time)} {what}", width))
    return lines
