"""One image decoder for every study: files as real datasets ship them -> ``uint8`` arrays.

Every reader, pipeline and ``data check`` decodes through :func:`open_image`, so what ``check``
accepts, ``load`` and the studies can use. Formats (PIL-based: TensorFlow's decoders handle
neither WebP, CMYK nor EXIF orientation):

- JPEG (baseline, progressive, grayscale, CMYK / Adobe YCCK), with the EXIF orientation of phone
  photos applied (as ``PIL.ImageOps.exif_transpose``);
- PNG (RGB, grey, palette with or without transparency, 16-bit), WebP (also RGBA), GIF (first
  frame), BMP, TIFF;
- transparent pixels are composited on white; 16-bit samples are scaled to 8 bits.

Large JPEGs are decoded at a reduced DCT scale (PIL ``draft``) when the target is at most half
their size, which makes 224 px -> 32 px decoding several times faster at equal quality.

Errors: :class:`ImageDecodeError` (a :class:`~kerasmt.datasets.base.DatasetError`) naming the file
and what was expected. Paths may be ``str``, ``bytes`` or ``os.PathLike``; file names that are not
valid UTF-8 (``surrogateescape``) work and are shown escaped.
"""
from __future__ import annotations

import io
import os
import stat
from typing import Sequence, Union

import numpy as np

from kerasmt.datasets.base import DatasetError

PathLike = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]

#: file name extensions of the formats below (a file is recognised by its header, not its name)
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".gif", ".bmp", ".dib", ".tif", ".tiff"}
)
#: what a file must be, for error messages
EXPECTED = "a JPEG, PNG, WebP, GIF, BMP or TIFF image"
_RESIZE_MODES = ("stretch", "pad")


class ImageDecodeError(DatasetError):
    """An image file cannot be read or decoded; ``path`` is the file, the message says why."""

    def __init__(self, path: PathLike, reason: str):
        self.path = as_path(path)
        self.reason = reason
        super().__init__(f"{show_path(self.path)}: {reason}")

    def __reduce__(self):  # picklable (process pools, tf.numpy_function re-raises)
        return (type(self), (self.path, self.reason))


def as_path(path: PathLike) -> str:
    """``str`` path of ``path`` (``bytes`` are decoded with the file system encoding and
    ``surrogateescape``, so non-UTF-8 file names round-trip)."""
    return os.fsdecode(os.fspath(path))


def show_path(path: PathLike) -> str:
    """A printable form of a path: undecodable bytes of a non-UTF-8 name appear as ``\\xNN``."""
    text = as_path(path)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return os.fsencode(text).decode("utf-8", "backslashreplace")


def sniff_format(header: bytes) -> str | None:
    """Image format from the first 16 bytes of a file (``"jpeg"``, ``"png"``, ``"webp"``,
    ``"gif"``, ``"bmp"``, ``"tiff"``), or None when they are no image header we decode."""
    if header[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if header[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if header[:4] == b"RIFF" and header[8:12] == b"WEBP":
        return "webp"
    if header[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if header[:2] == b"BM" and len(header) >= 14:
        return "bmp"
    if header[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    return None


def _regular_file(path: str) -> None:
    """Refuse what is not a regular file before opening it (a FIFO would block forever)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ImageDecodeError(path, f"image file not found (expected {EXPECTED})") from None
    except OSError as exc:
        raise ImageDecodeError(path, f"cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(info.st_mode):
        raise ImageDecodeError(path, f"not a regular file (expected {EXPECTED})")


def image_format(path: PathLike) -> str | None:
    """:func:`sniff_format` of a file, None when it is not a readable regular file."""
    path = as_path(path)
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        with open(path, "rb") as f:
            return sniff_format(f.read(16))
    except OSError:
        return None


def is_image_file(path: PathLike) -> bool:
    """Whether ``path`` is a regular file whose header is one of the decoded formats (whatever
    its extension: a WebP named ``.jpg`` is an image, a text file named ``.png`` is not)."""
    return image_format(path) is not None


def _flatten(img):
    """Any PIL mode -> ``"RGB"`` or ``"L"``: alpha composited on white, palette expanded,
    16/32-bit integer and float samples scaled to 8 bits, CMYK/YCbCr/LAB converted."""
    from PIL import Image

    mode = img.mode
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode == "PA":
        img = img.convert("RGBA")
    elif mode in ("L", "RGB"):
        if mode == "L" and "transparency" in img.info:
            img = img.convert("LA")
        elif mode == "RGB" and "transparency" in img.info:
            img = img.convert("RGBA")
    elif mode == "1":
        img = img.convert("L")
    elif mode.startswith("I;16") or mode in ("I", "F"):
        a = np.asarray(img)
        if mode == "F":
            a = np.clip(a, 0.0, 255.0)
        else:  # 16-bit samples (I;16*, or I holding 0..65535) -> 0..255
            top = 255 if mode == "I" and int(a.max(initial=0)) <= 255 else 65535
            a = np.clip(a.astype(np.float64), 0, top) * (255.0 / top)
        img = Image.fromarray(np.round(a).astype(np.uint8), "L")
    elif mode in ("La", "RGBa"):
        img = img.convert("RGBA")
    if img.mode in ("LA", "RGBA"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba).convert("RGB" if img.mode == "RGBA" else "L")
    if img.mode not in ("L", "RGB"):
        img = img.convert("RGB")  # CMYK (incl. Adobe inverted), YCbCr, LAB, HSV
    return img


def _orientation(img) -> int:
    try:
        return int(img.getexif().get(0x0112, 1) or 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block must not make the image unreadable
        return 1


def open_image(source: PathLike | bytes | io.BytesIO, mode: str = "RGB",
               draft_size: tuple[int, int] | None = None, name: PathLike | None = None):
    """Open, fully decode and normalise one image; returns a loaded PIL image in ``mode``
    (``"RGB"`` or ``"L"``), upright (EXIF orientation applied) and without alpha.

    ``source``: a path (``str``, ``bytes``, ``PathLike``) or the encoded bytes in a
    ``io.BytesIO`` (then ``name`` names it in errors). ``draft_size`` ``(width, height)``: a JPEG at
    least twice that size (after rotation) is decoded at a reduced DCT scale that stays >= it.
    Raises :class:`ImageDecodeError` naming the file and what was expected.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if mode not in ("RGB", "L"):
        raise ValueError(f"mode must be 'RGB' or 'L', got {mode!r}")
    if isinstance(source, io.BytesIO):
        where, handle = as_path(name) if name is not None else "<bytes>", source
    else:
        where = as_path(source)
        _regular_file(where)
        handle = where
    try:
        with Image.open(handle) as img:
            if img.format == "JPEG" and draft_size is not None:
                w, h = draft_size
                if _orientation(img) in (5, 6, 7, 8):
                    w, h = h, w
                # grey straight from the luminance channel, colour as RGB; CMYK is left as is
                if img.mode in ("L", "RGB", "YCbCr"):
                    img.draft(mode if img.mode != "L" else "L", (int(w), int(h)))
            img.load()
            upright = ImageOps.exif_transpose(img) if _orientation(img) != 1 else img
            out = _flatten(upright)
            out = out if out.mode == mode else out.convert(mode)
            out.load()
            return out
    except ImageDecodeError:
        raise
    except UnidentifiedImageError:
        header = b""
        try:
            if isinstance(handle, io.BytesIO):
                header = handle.getvalue()[:16]
            else:
                with open(handle, "rb") as f:
                    header = f.read(16)
        except OSError:
            pass
        known = sniff_format(header)
        if known:
            raise ImageDecodeError(where, f"cannot decode image (corrupt or truncated {known.upper()} "
                                          f"header; expected {EXPECTED})") from None
        what = "empty file" if not header else f"unknown format, header {header[:8]!r}"
        raise ImageDecodeError(where, f"not an image file ({what}; expected {EXPECTED})") from None
    except Exception as exc:  # noqa: BLE001 - PIL raises OSError (truncated), SyntaxError, ValueError, ...
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ImageDecodeError(
            where, f"cannot decode image ({type(exc).__name__}: {message}; expected {EXPECTED})"
        ) from exc


def _as_size(image_size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(image_size, (int, np.integer)):
        return (int(image_size), int(image_size))
    height, width = image_size
    return (int(height), int(width))


def pad_geometry(height: int, width: int, target: tuple[int, int]) -> tuple[int, int, int, int]:
    """``(new_h, new_w, top, left)`` of an aspect-keeping fit of ``height x width`` into
    ``target``, centred: the geometry of ``tf.image.resize_with_pad``."""
    th, tw = target
    ratio = max(width / tw, height / th)
    new_h = max(1, int(height / ratio))
    new_w = max(1, int(width / ratio))
    return new_h, new_w, (th - new_h) // 2, (tw - new_w) // 2


def to_array(img, image_size: int | Sequence[int] | None = None, resize: str = "stretch") -> np.ndarray:
    """A PIL image from :func:`open_image` -> ``uint8 (H, W, C)``, resized (bilinear,
    antialiased) to ``image_size`` ``(height, width)``: ``"stretch"`` or ``"pad"`` (aspect
    kept, zero padding, centred). ``None`` keeps the image's own size."""
    from PIL import Image

    if resize not in _RESIZE_MODES:
        raise ValueError(f"resize must be 'stretch' or 'pad', got {resize!r}")
    channels = 1 if img.mode == "L" else 3
    if image_size is None:
        return np.asarray(img, dtype=np.uint8).reshape(img.height, img.width, channels)
    th, tw = _as_size(image_size)
    if resize == "stretch":
        out = img if img.size == (tw, th) else img.resize((tw, th), Image.BILINEAR)
        return np.asarray(out, dtype=np.uint8).reshape(th, tw, channels)
    new_h, new_w, top, left = pad_geometry(img.height, img.width, (th, tw))
    small = img if img.size == (new_w, new_h) else img.resize((new_w, new_h), Image.BILINEAR)
    out = np.zeros((th, tw, channels), dtype=np.uint8)
    out[top:top + new_h, left:left + new_w] = np.asarray(small, dtype=np.uint8).reshape(new_h, new_w, channels)
    return out


def read_image(path: PathLike, image_size: int | Sequence[int] | None = None, channels: int = 3,
               resize: str = "stretch") -> np.ndarray:
    """Decode one image file to ``uint8 (H, W, channels)`` (``channels`` 1 = grey, 3 = RGB),
    resized to ``image_size`` (``(height, width)`` or one int; ``None``: own size) by
    ``resize`` (``"stretch"`` or ``"pad"``). Raises :class:`ImageDecodeError` naming the file."""
    return _read(path, None, image_size, channels, resize)


def decode_bytes(contents: bytes, image_size: int | Sequence[int] | None = None, channels: int = 3,
                 resize: str = "stretch", name: PathLike | None = None) -> np.ndarray:
    """:func:`read_image` of encoded bytes (``name`` names them in errors)."""
    return _read(None, bytes(contents), image_size, channels, resize, name)


def _read(path, contents, image_size, channels, resize, name=None) -> np.ndarray:
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels}")
    if resize not in _RESIZE_MODES:
        raise ValueError(f"resize must be 'stretch' or 'pad', got {resize!r}")
    draft = None
    if image_size is not None:
        th, tw = _as_size(image_size)
        draft = (tw, th)
    source = io.BytesIO(contents) if contents is not None else path
    img = open_image(source, "L" if channels == 1 else "RGB", draft, name=name)
    return to_array(img, image_size, resize)


def image_problem(path: PathLike) -> str | None:
    """Why ``path`` is not a usable image (header, then a full decode), without the path; None
    when it decodes. For ``data check`` functions (thread pools: PIL decodes without the GIL)."""
    try:
        open_image(path)
    except ImageDecodeError as exc:
        return exc.reason
    return None


def probe_image(path: PathLike) -> tuple[str | None, tuple[int, int] | None]:
    """``(problem, (width, height))``: :func:`image_problem` and the upright size of the decoded
    image (None when it cannot be decoded)."""
    try:
        img = open_image(path)
    except ImageDecodeError as exc:
        return exc.reason, None
    return None, img.size


def check_image(path: PathLike) -> str | None:
    """A message naming ``path`` and saying what is wrong with it (not a regular file, not an
    image by its header, truncated or corrupt data), or None when it decodes completely."""
    problem = image_problem(path)
    return None if problem is None else f"{show_path(path)}: {problem}"
