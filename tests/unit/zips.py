"""Build small test ZIPs in memory: tiny PNGs, IDX files, names as Japanese Windows writes them."""

import gzip
import io
import struct
import zipfile

import numpy as np
from PIL import Image

from webapp.datasets.archive import SafeZip
from webapp.datasets.records import ImportResult, Rejection, SourceImage


def png(width: int = 4, height: int = 3, seed: int = 0) -> bytes:
    """A small PNG whose pixels depend on `seed`."""
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def zip_bytes(files: dict[str, bytes | str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def safe_zip(files: dict[str, bytes | str] | bytes) -> SafeZip:
    data = files if isinstance(files, bytes) else zip_bytes(files)
    return SafeZip(io.BytesIO(data))


def cp932_zip(files: dict[str, bytes]) -> bytes:
    """A ZIP whose names are raw cp932 bytes without the UTF-8 flag, as Japanese Windows makes."""
    placeholders = {}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for i, (name, data) in enumerate(files.items()):
            raw = name.encode("cp932")
            placeholder = f"{i:03d}".encode().ljust(len(raw), b"~")
            placeholders[placeholder] = raw
            archive.writestr(placeholder.decode("ascii"), data)
    data = out.getvalue()
    for placeholder, raw in placeholders.items():
        assert data.count(placeholder) == 2  # local header and central directory
        data = data.replace(placeholder, raw)
    return data


def idx_images(pixels: np.ndarray, *, gz: bool = False) -> bytes:
    """An idx3-ubyte file of (N, H, W) uint8 images."""
    data = struct.pack(">4B3I", 0, 0, 8, 3, *pixels.shape) + pixels.astype(np.uint8).tobytes()
    return gzip.compress(data) if gz else data


def idx_labels(labels: list[int], *, gz: bool = False) -> bytes:
    data = struct.pack(">4BI", 0, 0, 8, 1, len(labels)) + bytes(labels)
    return gzip.compress(data) if gz else data


def split_records(result: ImportResult) -> tuple[list[SourceImage], list[Rejection]]:
    """The result's images and rejections, read to the end."""
    records = list(result.records)
    images = [r for r in records if isinstance(r, SourceImage)]
    return images, [r for r in records if isinstance(r, Rejection)]
