"""Image files in every format real datasets ship, generated for the tests (no file is committed).

Each fixture shows the same scene so a test can check orientation and colours after decoding:
the left half red (255, 0, 0), the right half blue (0, 0, 255), on a 48 x 32 (W x H) image; the
transparent ones are transparent on the right half instead (decoded: white there).
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

W, H = 48, 32
RED, BLUE, WHITE = (255, 0, 0), (0, 0, 255), (255, 255, 255)


def scene(width: int = W, height: int = H) -> np.ndarray:
    """``uint8 (height, width, 3)``: left half red, right half blue."""
    a = np.zeros((height, width, 3), np.uint8)
    a[:, : width // 2] = RED
    a[:, width // 2:] = BLUE
    return a


def _rgba() -> Image.Image:
    a = np.zeros((H, W, 4), np.uint8)
    a[:, : W // 2] = (*RED, 255)
    a[:, W // 2:] = (0, 0, 0, 0)  # fully transparent (black underneath)
    return Image.fromarray(a, "RGBA")


def write_formats(folder: Path) -> dict[str, tuple[Path, tuple]]:
    """Write one file per format into ``folder``; returns ``{name: (path, (left, right))}`` with
    the expected RGB colour of the left and right halves after decoding (``None``: grey scene
    checked separately)."""
    folder.mkdir(parents=True, exist_ok=True)
    rgb = Image.fromarray(scene())
    out: dict[str, tuple[Path, tuple]] = {}

    def save(name: str, image: Image.Image, expect, **kw):
        path = folder / name
        image.save(path, **kw)
        out[name] = (path, expect)

    save("plain.jpg", rgb, (RED, BLUE), quality=95)
    save("plain.png", rgb, (RED, BLUE))
    save("photo.webp", rgb, (RED, BLUE), lossless=True)
    save("alpha.webp", _rgba(), (RED, WHITE), lossless=True)
    save("cmyk.jpg", rgb.convert("CMYK"), (RED, BLUE), quality=95)
    # a phone photo: stored rotated 90 degrees clockwise with EXIF orientation 6 ("rotate 90 CW
    # to display"), so the stored pixels are the scene turned counter-clockwise
    stored = Image.fromarray(np.rot90(scene(), k=1).copy())
    exif = Image.Exif()
    exif[0x0112] = 6
    save("exif_rotated.jpg", stored, (RED, BLUE), quality=95, exif=exif.tobytes())
    pal = rgb.convert("P", palette=Image.ADAPTIVE, colors=4)
    index = np.asarray(pal)
    transparent = int(index[0, -1])  # palette entry of the right (blue) half
    save("palette_transparent.png", pal, (RED, WHITE), transparency=transparent)
    save("palette.png", rgb.convert("P", palette=Image.ADAPTIVE, colors=4), (RED, BLUE))
    grey16 = (np.asarray(rgb.convert("L"), np.uint16) * 257).astype(np.uint16)
    save("grey16.png", Image.fromarray(grey16), None)
    frames = [rgb.convert("P", palette=Image.ADAPTIVE), Image.new("RGB", (W, H), (0, 255, 0)).convert("P")]
    save("animated.gif", frames[0], (RED, BLUE), save_all=True, append_images=frames[1:], duration=100)
    save("plain.bmp", rgb, (RED, BLUE))
    save("grey.jpg", rgb.convert("L"), None, quality=95)
    save("rgba.png", _rgba(), (RED, WHITE))
    return out


def grey_levels() -> tuple[int, int]:
    """The expected grey levels of the left (red) and right (blue) halves (ITU-R 601-2 luma)."""
    return round(0.299 * 255), round(0.114 * 255)


def jpeg_bytes(array: np.ndarray, quality: int = 95) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
