"""Check, normalise, hash and thumbnail one image. Pure functions: no database, no storage.

Accepted: PNG, JPEG, GIF (first frame), BMP, WebP, TIFF, judged by content, never by name.
EXIF orientation is applied once here; grayscale stays grayscale, every other mode becomes RGB.
PNG and JPEG files that need no change are stored byte for byte; others are re-encoded.
"""

import hashlib
import io
import warnings
from dataclasses import dataclass

import imagehash
import numpy as np
from django.utils.translation import gettext as _
from PIL import Image, UnidentifiedImageError

ACCEPTED_FORMATS = {"PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF", "MPO"}
THUMB_SIZE = 128
EXIF_ORIENTATION = 0x0112
# How to turn an image for each EXIF orientation (as ImageOps.exif_transpose does).
TURNS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class ImageRejected(Exception):
    """The bytes are not an image Manabi keeps; the message says why."""


@dataclass
class CheckedImage:
    data: bytes  # what gets stored
    extension: str  # "png" or "jpg"
    content_type: str
    image: Image.Image  # loaded, mode "L" or "RGB", orientation applied
    sha256: str

    @property
    def width(self) -> int:
        return self.image.width

    @property
    def height(self) -> int:
        return self.image.height

    @property
    def channels(self) -> int:
        return 1 if self.image.mode == "L" else 3


def _looks_like_markup(data: bytes) -> bool:
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith((b"<", b"<?xml", b"<svg", b"<!doctype", b"<html"))


def _normalise_mode(image: Image.Image) -> Image.Image:
    """Return an "L" or "RGB" image: transparency on white, 16-bit scaled to 8-bit."""
    mode = image.mode
    if mode in ("L", "RGB"):
        return image
    if mode in ("1",):
        return image.convert("L")
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        array = np.asarray(image, dtype=np.float64)  # (H, W)
        top = array.max() or 1.0
        return Image.fromarray(np.clip(array / top * 255.0, 0, 255).astype(np.uint8), "L")
    if mode in ("LA", "La") or (mode == "P" and _palette_is_gray(image)):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("L")
    if mode in ("RGBA", "RGBa", "P", "PA") or "A" in mode:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")  # CMYK, YCbCr, LAB, HSV, ...


def _palette_is_gray(image: Image.Image) -> bool:
    palette = image.getpalette() or []
    triples = zip(palette[0::3], palette[1::3], palette[2::3], strict=False)
    return all(r == g == b for r, g, b in triples)


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation; 1 when there is none or the metadata cannot be read."""
    try:
        return int(image.getexif().get(EXIF_ORIENTATION, 1))
    except Exception:  # noqa: BLE001 - damaged metadata must not lose an image whose pixels are fine
        return 1


def check_image(data: bytes, max_pixels: int) -> CheckedImage:
    """Validate encoded image bytes and return what to store, or raise ImageRejected."""
    if not data:
        raise ImageRejected(_("The file is empty."))
    if _looks_like_markup(data):
        raise ImageRejected(_("SVG, HTML and XML files are not accepted as images."))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(data))
            source_format = opened.format
            if source_format not in ACCEPTED_FORMATS:
                raise ImageRejected(
                    _("%(format)s files are not accepted; use PNG or JPEG.")
                    % {"format": source_format}
                )
            width, height = opened.size
            if width * height > max_pixels:
                raise ImageRejected(
                    _("The image has %(pixels)s pixels; the limit is %(limit)s.")
                    % {"pixels": f"{width * height:,}", "limit": f"{max_pixels:,}"}
                )
            if width == 0 or height == 0:
                raise ImageRejected(_("The image has no pixels."))
            opened.seek(0)
            opened.load()
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected(_("The image is too large to open safely.")) from None
    except UnidentifiedImageError:
        raise ImageRejected(
            _("This is not an image (its content is not PNG, JPEG, GIF, BMP, WebP or TIFF).")
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageRejected(
            _("The image is truncated or damaged (%(error)s).") % {"error": exc}
        ) from None
    turn = TURNS.get(_orientation(opened))
    transposed = opened.transpose(turn) if turn is not None else opened  # saved without EXIF
    normalised = _normalise_mode(transposed)
    unchanged = transposed is opened and normalised is transposed
    if unchanged and source_format == "PNG":
        return _checked(data, "png", normalised)
    if unchanged and source_format in ("JPEG", "MPO"):
        return _checked(data, "jpg", normalised)
    if source_format in ("JPEG", "MPO"):
        return _checked(_encode(normalised, "JPEG"), "jpg", normalised)
    return _checked(_encode(normalised, "PNG"), "png", normalised)


def from_pixels(pixels: np.ndarray) -> CheckedImage:
    """Encode a uint8 array — (H, W) grayscale or (H, W, 3) RGB — as a PNG to store."""
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3):
        raise ImageRejected(_("The record is not an 8-bit image."))
    image = Image.fromarray(pixels, "L" if pixels.ndim == 2 else "RGB")
    return _checked(_encode(image, "PNG"), "png", image)


def _encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    if fmt == "JPEG":
        image.save(buffer, "JPEG", quality=95)
    else:
        image.save(buffer, "PNG", compress_level=1)  # fast; these files are small
    return buffer.getvalue()


def _checked(data: bytes, extension: str, image: Image.Image) -> CheckedImage:
    content_type = "image/png" if extension == "png" else "image/jpeg"
    return CheckedImage(data, extension, content_type, image, hashlib.sha256(data).hexdigest())


def thumbnail(image: Image.Image) -> bytes | None:
    """Return a JPEG thumbnail, or None when the image is small enough to be its own."""
    if image.width <= THUMB_SIZE and image.height <= THUMB_SIZE:
        return None
    small = image.copy()
    small.thumbnail((THUMB_SIZE, THUMB_SIZE))
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def perceptual_hash(image: Image.Image) -> str:
    """Return the 64-bit difference hash as 16 hex digits (near-duplicates differ in few bits)."""
    return str(imagehash.dhash(image, hash_size=8))


def hash_distance(a: str, b: str) -> int:
    """Number of differing bits between two hex hashes."""
    return (int(a, 16) ^ int(b, 16)).bit_count()
