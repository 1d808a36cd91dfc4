"""The command palette's list of the current screen's actions (ctrl+p).

`ScreenActions` yields one command per binding the screen offers now (its own, its
focused widget's and the app's, as `keys.screen_actions` collects them), so the
palette, the footer and `?` always agree, and read-only mode leaves out the same actions.
"""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from dlptui.tui.keys import screen_actions


class ScreenActions(Provider):
    def _commands(self):
        app = self.app
        for key, description, binding_id, action, namespace in screen_actions(self.screen):
            if action == "command_palette" or binding_id.startswith("list."):  # cursor keys are no commands
                continue
            title = f"{description} ({key})"
            yield title, partial(app.run_action, action, namespace), f"{binding_id}"

    async def discover(self) -> Hits:
        for title, run, help_text in self._commands():
            yield DiscoveryHit(title, run, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, run, help_text in self._commands():
            score = max(matcher.match(title), matcher.match(help_text))
            if score > 0:
                yield Hit(score, matcher.highlight(title), run, help=help_text)
