"""What the terminal can draw a picture with: pixels (kitty graphics protocol, sixel) or half blocks.

    probe()            # before App.run(), once: only where the terminal may draw pixels
    pixel_widget()     # textual_image's widget if the terminal draws pixels, else None

`textual_image` finds out what a terminal supports by writing queries to it and reading the
answers from stdin when it is imported (FACTS.md), which works only before Textual takes the
terminal over, and costs an import of PIL, numpy and textual_image before the first frame.
So `probe()` imports it only where the environment says the terminal may draw pixels (kitty,
WezTerm, iTerm2, ghostty, foot, mlterm, Konsole, contour, a TERM naming sixel); everywhere
else, and always when stdout is not a terminal (tests, pipes), nothing is imported and
pictures are drawn with coloured half blocks (`widgets/image_preview.HalfBlockImage`), which
every colour terminal shows. `textual_image` is never imported after the probe, so it never
writes a query while the console runs.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping

log = logging.getLogger("dlptui.tui")

# TERM_PROGRAM values of terminals that draw pixels (kitty graphics protocol or sixel)
PIXEL_PROGRAMS = frozenset({"iTerm.app", "WezTerm", "ghostty", "mintty", "Konsole", "contour", "rio"})
PIXEL_TERMS = ("kitty", "wezterm", "ghostty", "foot", "mlterm", "contour", "sixel", "yaft", "rio")
PIXEL_VARIABLES = ("KITTY_WINDOW_ID", "WEZTERM_EXECUTABLE", "GHOSTTY_RESOURCES_DIR", "KONSOLE_VERSION", "ITERM_SESSION_ID")

_pixels: type | None = None  # textual_image's widget, when the probe found pixel graphics


def may_draw_pixels(env: Mapping[str, str] | None = None) -> bool:
    """Whether the environment names a terminal that may draw pixels (then it is worth asking it)."""
    env = os.environ if env is None else env
    term = env.get("TERM", "").lower()
    if env.get("TERM_PROGRAM", "") in PIXEL_PROGRAMS or any(v in env for v in PIXEL_VARIABLES):
        return True
    return any(name in term for name in PIXEL_TERMS)


def probe(env: Mapping[str, str] | None = None) -> bool:
    """Ask the terminal whether it draws pixels, where it may; True when it does. Call before App.run()."""
    global _pixels
    if _pixels is not None:
        return True
    stdout = sys.__stdout__
    if not may_draw_pixels(env) or stdout is None or not stdout.isatty():
        return False
    try:  # the import itself asks the terminal (sixel first, then the kitty protocol)
        from textual_image.renderable import Image as Chosen
        from textual_image.renderable.sixel import Image as Sixel
        from textual_image.renderable.tgp import Image as TGP
        from textual_image.widget import Image as PixelImage
    except Exception:  # no textual_image, or the terminal did not answer: half blocks
        log.info("textual_image could not probe the terminal; pictures are drawn with half blocks", exc_info=True)
        return False
    if Chosen in (Sixel, TGP):
        _pixels = PixelImage
    return _pixels is not None


def pixel_widget() -> type | None:
    """textual_image's widget where the probe found pixel graphics; None: draw with half blocks."""
    return _pixels
