"""Build hostile and broken uploads in memory: escaping paths, links, bombs, fake images."""

import io
import stat
import struct
import tarfile
import zipfile
import zlib

import numpy as np
from PIL import Image


def png(width: int = 8, height: int = 8, seed: int = 0, mode: str = "RGB") -> bytes:
    """A small noisy PNG whose pixels depend on `seed`."""
    rng = np.random.default_rng(seed)
    bands = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    pixels = rng.integers(0, 256, (height, width, bands), dtype=np.uint8)
    image = Image.fromarray(pixels[:, :, 0] if bands == 1 else pixels, mode)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width × height 1-bit pixels but carries almost no data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit grayscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )


def bilevel_png(side: int) -> bytes:
    """A real, fully decodable side × side 1-bit PNG: a few kilobytes for millions of pixels."""
    out = io.BytesIO()
    Image.new("1", (side, side), 0).save(out, format="PNG", optimize=True)
    return out.getvalue()


def jpeg_with_orientation(width: int, height: int, orientation: int) -> bytes:
    """A JPEG whose left half is red and right half blue, with an EXIF Orientation tag."""
    image = Image.new("RGB", (width, height), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, width // 2, height))
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=95, exif=exif.tobytes())
    return out.getvalue()


def zip_bytes(files: dict, *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A ZIP of {name or ZipInfo: bytes}; ZipInfo keys keep their own attributes."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as archive:
        for name, data in files.items():
            if isinstance(name, zipfile.ZipInfo):
                name.compress_type = compression
            archive.writestr(name, data)
    return out.getvalue()


def symlink(name: str) -> zipfile.ZipInfo:
    """A ZipInfo that unzip would create as a symbolic link (its content is the target)."""
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix, so the mode in external_attr counts
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def cp932_zip(files: dict[str, bytes]) -> bytes:
    """A ZIP whose names are raw cp932 bytes without the UTF-8 flag, as Japanese Windows makes.

    zipfile always writes non-ASCII names as flagged UTF-8, so ASCII placeholders of the same
    length are written and then replaced by the cp932 bytes in both headers.
    """
    placeholders = {}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for i, (name, data) in enumerate(files.items()):
            raw = name.encode("cp932")
            placeholder = f"@{i:03d}".encode().ljust(len(raw), b"~")
            placeholders[placeholder] = raw
            archive.writestr(placeholder.decode("ascii"), data)
    data = out.getvalue()
    for placeholder, raw in placeholders.items():
        assert data.count(placeholder) == 2  # the local header and the central directory
        data = data.replace(placeholder, raw)
    return data


def tar_gz(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def exif_bad_header() -> bytes:
    """EXIF bytes whose TIFF header is broken (Pillow raises SyntaxError reading them)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return exif.tobytes().replace(b"MM\x00*", b"MM\x00K", 1).replace(b"II*\x00", b"IIK\x00", 1)


def exif_rational_as_text() -> bytes:
    """EXIF with Orientation 6 and XResolution (a rational) stored as text: Pillow's
    exif_transpose raises TypeError writing it back."""
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "abcdefgh"  # Make, ASCII; renumbered below as XResolution
    data = exif.tobytes()
    renamed = data.replace(b"\x01\x0f\x00\x02", b"\x01\x1a\x00\x02")  # big-endian
    renamed = renamed.replace(b"\x0f\x01\x02\x00", b"\x1a\x01\x02\x00")  # little-endian
    assert renamed != data
    return renamed


def with_exif(fmt: str, exif: bytes, width: int = 40, height: int = 20) -> bytes:
    """A red/blue image (left half red) saved as `fmt` carrying the given raw EXIF bytes."""
    image = Image.new("RGB", (width, height), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, width // 2, height))
    out = io.BytesIO()
    image.save(out, format=fmt, exif=exif)
    return out.getvalue()
