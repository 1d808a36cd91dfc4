"""An image shown in the terminal, or one sentence saying why it cannot be.

    image = open_image(path)        # PIL image, or InvalidInput with one sentence
    preview.show_image(image, caption="cat.1.jpg  500x374")
    preview.show_message("cat.1.jpg is not an image (...).")

Where the terminal speaks the kitty graphics protocol or sixel, the picture is drawn
with it (textual-image's auto widget); elsewhere, and always in headless tests, it is
drawn with coloured half blocks, which every terminal with colour can show.
`textual_image.widget` asks the terminal what it supports when it is imported, so this
module must be imported before the app runs (the frame imports the screens first).
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image as PILImage
from PIL import UnidentifiedImageError
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static
from textual_image.renderable import Image as AutoRenderable
from textual_image.renderable.sixel import Image as SixelRenderable
from textual_image.renderable.tgp import Image as TGPRenderable
from textual_image.widget import HalfcellImage
from textual_image.widget import Image as AutoImage

from dlptui.errors import InvalidInput

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"})
MAX_SIDE = 512  # the preview never needs more pixels than this; bigger photos are scaled down first

# pixel graphics where the terminal has them, else half blocks (never the coarse unicode fallback)
ImageWidget = AutoImage if AutoRenderable in (SixelRenderable, TGPRenderable) else HalfcellImage


def is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def open_image(path: Path) -> PILImage.Image:
    """The decoded image, scaled down for the terminal (`info["original_size"]` keeps its size);
    InvalidInput in one sentence otherwise."""
    try:
        with PILImage.open(path) as image:
            image.load()
            picture = image.convert("RGB")
            size = image.size
    except FileNotFoundError:
        raise InvalidInput(f"{path.name} does not exist any more; pick another file.") from None
    except IsADirectoryError:
        raise InvalidInput(f"{path.name} is a folder; pick an image file.") from None
    except UnidentifiedImageError:
        raise InvalidInput(f"{path.name} is not an image that can be read; pick a JPEG, PNG, BMP, GIF or WebP file.") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise InvalidInput(f"{path.name} is damaged and cannot be decoded ({e}); pick another file.") from None
    picture.thumbnail((MAX_SIDE, MAX_SIDE))
    picture.info["original_size"] = size
    return picture


class ImagePreview(Vertical):
    """A picture with a caption under it; or a message in its place."""

    DEFAULT_CSS = """
    ImagePreview { height: 1fr; }
    ImagePreview > #picture { width: auto; height: 1fr; }
    ImagePreview > #caption { height: auto; color: $text-muted; padding: 0 1; }
    """

    def __init__(self, message: str = "", *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._first_message = message

    def compose(self) -> ComposeResult:
        yield ImageWidget(None, id="picture")
        yield Static(self._first_message, id="caption")

    @property
    def caption(self) -> str:
        return str(self.query_one("#caption", Static).content)

    def show_image(self, image: PILImage.Image, caption: str = "") -> None:
        self.query_one("#picture", ImageWidget).image = image
        self.query_one("#caption", Static).update(caption)

    def show_message(self, message: str) -> None:
        self.query_one("#picture", ImageWidget).image = None
        self.query_one("#caption", Static).update(message)
