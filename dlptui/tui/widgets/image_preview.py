"""An image shown in the terminal, or one sentence saying why it cannot be.

    image = open_image(path)        # in a thread: PIL image, or InvalidInput with one sentence
    preview.show_image(image, caption="cat.1.jpg  500x374")
    preview.show_message("cat.1.jpg is not an image (...).")

Where the terminal draws pixels (kitty graphics protocol or sixel, as `graphics.probe()`
found before the console started), the picture is drawn with textual-image's widget;
everywhere else, and always in headless tests, with coloured half blocks (`HalfBlockImage`:
each cell shows two pixels, the upper one as the colour of "▀", the lower one as its
background), which every colour terminal shows. Importing this module is light: PIL is
imported by `open_image` (a worker) and by the first drawing of a picture.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Static

from dlptui.errors import InvalidInput
from dlptui.tui import graphics
from dlptui.tui.shown import shown

__all__ = ["HalfBlockImage", "ImagePreview", "fit", "open_image"]

MAX_SIDE = 512  # the preview never needs more pixels than this; bigger photos are scaled down first
FORMATS = ("JPEG", "PNG")  # what the model takes (a camera's MPO opens as JPEG); no other parser runs on a file
MAX_PIXELS = 60_000_000  # a bigger picture is refused before a pixel is decoded (a decompression bomb)


def open_image(path: Path | bytes, name: str | None = None) -> Any:
    """The decoded image of a file (or of its bytes, `name` saying which file), scaled down for the terminal
    (`info["original_size"]` keeps its size); InvalidInput in one sentence otherwise. Runs in a thread."""
    import io

    from PIL import Image, UnidentifiedImageError

    name = name or (path.name if isinstance(path, Path) else "the image")
    try:
        with Image.open(io.BytesIO(path) if isinstance(path, bytes) else path, formats=FORMATS) as image:
            size = image.size
            if size[0] * size[1] > MAX_PIXELS:
                raise InvalidInput(f"{name} is {size[0]}x{size[1]} pixels, more than a preview decodes; pick a smaller image.")
            image.draft("RGB", (MAX_SIDE, MAX_SIDE))  # a JPEG decodes straight at a fraction of its size
            image.load()
            picture = image.convert("RGB")
    except FileNotFoundError:
        raise InvalidInput(f"{name} does not exist any more; pick another file.") from None
    except IsADirectoryError:
        raise InvalidInput(f"{name} is a folder; pick an image file.") from None
    except Image.DecompressionBombError:
        raise InvalidInput(f"{name} claims more pixels than a preview decodes; pick a smaller image.") from None
    except UnidentifiedImageError:
        raise InvalidInput(f"{name} is not an image the preview reads (JPEG or PNG); pick a JPEG or PNG file.") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise InvalidInput(f"{name} is damaged and cannot be decoded ({e}); pick another file.") from None
    picture.thumbnail((MAX_SIDE, MAX_SIDE))
    picture.info["original_size"] = size
    return picture


def fit(width: int, height: int, cells: int, rows: int) -> tuple[int, int]:
    """(columns, pixel rows) of a picture scaled to fit `cells` x `rows` half-block cells, keeping its shape.

    A cell holds one pixel across and two down, which are about square, so the pixel rows
    are twice the cell rows; the result is never empty and the pixel rows are even."""
    if width <= 0 or height <= 0 or cells <= 0 or rows <= 0:
        return 0, 0
    scale = min(cells / width, 2 * rows / height)
    columns = max(1, min(cells, round(width * scale)))
    pixel_rows = max(2, min(2 * rows, 2 * round(height * scale / 2)))
    return columns, pixel_rows


class HalfBlockImage(Widget):
    """A PIL image drawn with coloured half blocks, scaled to fit the widget and kept in shape."""

    DEFAULT_CSS = """
    HalfBlockImage { width: 1fr; height: 1fr; }
    """

    image: reactive[Any] = reactive(None, layout=False)

    def __init__(self, image: Any = None, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.set_reactive(HalfBlockImage.image, image)
        self._drawn: tuple[int, int, int] | None = None  # (id of the image, width, height) of `_lines`
        self._lines: list[Strip] = []

    def watch_image(self) -> None:
        self._drawn = None
        self.refresh()

    def _draw(self) -> list[Strip]:
        width, height = self.size
        key = (id(self.image), width, height)
        if self._drawn == key:
            return self._lines
        self._drawn, self._lines = key, []
        if self.image is None:
            return self._lines
        columns, pixel_rows = fit(*self.image.size, width, height)
        if not columns:
            return self._lines
        from PIL import Image

        pixels = self.image.convert("RGB").resize((columns, pixel_rows), Image.Resampling.BILINEAR).load()
        for y in range(0, pixel_rows, 2):
            segments = [
                Segment("▀", Style(color=Color.from_rgb(*pixels[x, y]), bgcolor=Color.from_rgb(*pixels[x, y + 1])))
                for x in range(columns)
            ]
            self._lines.append(Strip(segments, columns).adjust_cell_length(width, self.rich_style))
        return self._lines

    def render_line(self, y: int) -> Strip:
        lines = self._draw()
        return lines[y] if y < len(lines) else Strip.blank(self.size.width, self.rich_style)


class ImagePreview(Vertical):
    """A picture with a caption under it; or a message in its place."""

    DEFAULT_CSS = """
    ImagePreview { height: 1fr; }
    ImagePreview > #picture { height: 1fr; }
    ImagePreview > #caption { height: auto; color: $text-muted; padding: 0 1; }
    """

    def __init__(self, message: str = "", *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._first_message = message
        self._picture_type = graphics.pixel_widget() or HalfBlockImage

    def compose(self) -> ComposeResult:
        yield self._picture_type(None, id="picture")
        yield Static(shown(self._first_message), id="caption", markup=False)

    @property
    def picture(self) -> Widget:
        return self.query_one("#picture")

    @property
    def caption(self) -> str:
        return str(self.query_one("#caption", Static).content)

    def show_image(self, image: Any, caption: str = "") -> None:
        self.picture.image = image
        self.query_one("#caption", Static).update(shown(caption))

    def set_caption(self, caption: str) -> None:
        """A new caption under the picture on show (a progress line, or why an overlay could not be drawn)."""
        self.query_one("#caption", Static).update(shown(caption))

    def show_message(self, message: str) -> None:
        self.picture.image = None
        self.query_one("#caption", Static).update(shown(message))
