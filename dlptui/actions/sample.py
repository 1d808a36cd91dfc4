"""A synthetic, labelled stand-in for Kaggle's Dogs-vs-Cats images, in the same layout.

The real set cannot be downloaded on these machines, so the demo and the tests use these
drawings instead: `cat.N.jpg` and `dog.N.jpg`, small JPEGs that are clearly SYNTHETIC
(flat cartoon faces on noisy backgrounds), not photos. The two classes differ in palette
and shape (warm round faces with pointed ears against cool, square faces with hanging
ears) with random size, position, tint and noise, so a classifier has something real to
learn but no single pixel gives the answer. Seeded: the same arguments give the same
bytes on every run.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

from dlptui.errors import InvalidInput

CAT_PALETTE = [(222, 140, 60), (190, 110, 50), (240, 200, 140), (150, 90, 40), (230, 170, 90)]
DOG_PALETTE = [(110, 120, 140), (70, 90, 130), (160, 170, 180), (90, 110, 100), (130, 140, 170)]


def _jitter(rng: random.Random, colour: tuple[int, int, int], amount: int = 25) -> tuple[int, int, int]:
    return tuple(max(0, min(255, c + rng.randint(-amount, amount))) for c in colour)


def draw(label: str, seed: int, size: int = 96) -> bytes:
    """One synthetic JPEG of `label` ("cat" or "dog"), fully determined by `seed`."""
    import numpy as np
    from PIL import Image, ImageDraw

    if label not in ("cat", "dog"):
        raise InvalidInput(f"The synthetic sample has cats and dogs only, not {label!r}.")
    rng = random.Random(f"{label}-{seed}")
    cat = label == "cat"
    own, other = (CAT_PALETTE, DOG_PALETTE) if cat else (DOG_PALETTE, CAT_PALETTE)
    background = _jitter(rng, rng.choice(other), 40)
    image = Image.new("RGB", (size, size), background)
    pen = ImageDraw.Draw(image)
    for _ in range(rng.randint(2, 5)):  # clutter in both palettes
        x, y, r = rng.randint(0, size), rng.randint(0, size), rng.randint(size // 16, size // 5)
        pen.ellipse((x - r, y - r, x + r, y + r), fill=_jitter(rng, rng.choice(CAT_PALETTE + DOG_PALETTE), 30))

    face = _jitter(rng, rng.choice(own))
    r = int(size * rng.uniform(0.22, 0.32))
    cx = int(size * rng.uniform(0.38, 0.62))
    cy = int(size * rng.uniform(0.45, 0.62))
    if cat:
        for side in (-1, 1):  # pointed ears above a round face
            base = cx + side * int(r * 0.6)
            pen.polygon([(base - r // 2, cy - r // 2), (base + r // 2, cy - r // 2),
                         (base + side * r // 4, cy - int(r * rng.uniform(1.4, 1.8)))], fill=face)
        pen.ellipse((cx - r, cy - r, cx + r, cy + r), fill=face)
        for side in (-1, 1):  # whiskers
            for dy in (-3, 0, 3):
                pen.line((cx + side * r // 3, cy + r // 4, cx + side * int(r * 1.3), cy + r // 4 + dy * 2), fill=(40, 30, 20))
    else:
        pen.rounded_rectangle((cx - r, cy - int(r * 0.9), cx + r, cy + int(r * 1.1)), radius=r // 3, fill=face)
        ear = _jitter(rng, (60, 50, 45), 20)
        for side in (-1, 1):  # long ears hanging at the sides
            ex = cx + side * r
            pen.ellipse((ex - r // 3, cy - int(r * 0.8), ex + r // 3, cy + int(r * rng.uniform(0.6, 1.0))), fill=ear)
        pen.ellipse((cx - r // 4, cy + r // 3, cx + r // 4, cy + int(r * 0.75)), fill=(25, 20, 20))  # nose
    eye = (20, 20, 20) if rng.random() < 0.5 else (60, 140, 60)
    for side in (-1, 1):
        ex, ey, er = cx + side * r // 2 - 2, cy - r // 4, max(2, r // 7)
        pen.ellipse((ex - er, ey - er, ex + er, ey + er), fill=eye)

    pixels = np.asarray(image, dtype=np.int16)
    noise = np.random.default_rng(rng.randrange(2**32)).normal(0, 12, pixels.shape)
    noisy = np.clip(pixels + noise, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noisy).save(buf, "JPEG", quality=88)
    return buf.getvalue()


def generate_sample(dest: Path, count: int = 300, size: int = 96, seed: int = 0) -> Path:
    """Write `count` SYNTHETIC images (half cats, half dogs) into `dest` as Kaggle names it:
    `cat.0.jpg` ... `dog.N.jpg`. Byte-identical for the same arguments. Returns `dest`."""
    if count < 2:
        raise InvalidInput(f"A sample needs at least 2 images (one per class), not {count}.")
    if not 16 <= size <= 1024:
        raise InvalidInput(f"An image side of {size} pixels is out of range; use 16 to 1024.")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for label, n in (("cat", (count + 1) // 2), ("dog", count // 2)):
        for i in range(n):
            (dest / f"{label}.{i}.jpg").write_bytes(draw(label, seed * 1_000_003 + i, size))
    return dest
