"""MNIST-style IDX files (MNIST, Fashion-MNIST, KMNIST, EMNIST), gzipped or not.

Images and labels pair by their prefix (train-images-idx3-ubyte.gz with train-labels-idx1-ubyte.gz);
t10k/test → split "test", train → "train". Headers are read first and checked (at most 10 million
images, 1 GB of pixels, data length equal to what the header claims) before any pixel is unpacked.
Class names are "0", "1", …, up to the largest label (at least "0"–"9").
"""

import gzip
import io
import posixpath
import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from django.utils.translation import gettext as _

from trainer import kinds as trainer_kinds
from webapp.datasets.archive import Entry, EntryUnreadable, SafeZip
from webapp.datasets.importers._common import UnsupportedArchive, not_used, wrong_kind
from webapp.datasets.records import CategoryInfo, ImportResult, Rejection, SourceImage

FORMAT = "idx"
NAME = re.compile(
    r"^(?P<prefix>.*?)[-_.]?(?P<what>images|labels)[-_.]idx(?P<dims>[13])[-_.]ubyte(?P<gz>\.gz)?$",
    re.IGNORECASE,
)
MAX_IMAGES = 10_000_000
MAX_PIXEL_BYTES = 1024**3
MAX_SIDE = 4096
IDX_UBYTE = 0x08


class _BadIdx(Exception):
    """An IDX file that cannot be used; the message is the reason."""


@dataclass
class _Pair:
    images: Entry
    shape: tuple[int, ...]  # (count, rows, cols)
    labels: bytes
    split: str | None


def detect(entries: list[Entry]) -> bool:
    """True when some file is named like an IDX file."""
    return any(NAME.match(posixpath.basename(e.name)) for e in entries)


def read(zf: SafeZip, entries: list[Entry], kind: str) -> ImportResult:
    """Check every pair's headers now; unpack the pixels lazily."""
    if not trainer_kinds.shape(kind).one_label_per_image:  # a class per image: all IDX holds
        raise wrong_kind("MNIST IDX", "classification", kind)
    found: dict[tuple[str, str], dict[str, Entry]] = {}
    for entry in entries:
        match = NAME.match(posixpath.basename(entry.name))
        if match:
            key = (posixpath.dirname(entry.name), match["prefix"].lower())
            found.setdefault(key, {})[match["what"].lower()] = entry
    pairs: list[_Pair] = []
    rejected: list[Rejection] = []
    for (_folder, prefix), files in found.items():
        if len(files) == 1:
            (entry,) = files.values()
            rejected.append(
                Rejection(entry.name, _("Its images or labels partner file is missing."))
            )
            continue
        try:
            pairs.append(_pair(zf, files["images"], files["labels"], prefix))
        except _BadIdx as exc:
            rejected.append(Rejection(files["images"].name, str(exc)))
    if not pairs:
        detail = "; ".join(f"{r.path}: {r.reason}" for r in rejected)
        raise UnsupportedArchive(_("No pair of IDX image and label files is usable. ") + detail)
    largest = max(int(max(p.labels, default=0)) for p in pairs)
    categories = [CategoryInfo(str(i)) for i in range(max(10, largest + 1))]
    return ImportResult(FORMAT, _records(zf, entries, pairs, rejected), categories)


def _pair(zf: SafeZip, images: Entry, labels: Entry, prefix: str) -> _Pair:
    with _open(zf, images) as stream:
        shape = _header(stream, 3, images.name)
    with _open(zf, labels) as stream:
        (count,) = _header(stream, 1, labels.name)
        data = _read_exactly(stream, count, labels.name)
    if count != shape[0]:
        raise UnsupportedArchive(
            _("%(images)s holds %(n)s images but %(labels)s holds %(m)s labels; they must match.")
            % {"images": images.name, "n": shape[0], "labels": labels.name, "m": count}
        )
    split = "test" if ("t10k" in prefix or "test" in prefix) else None
    split = split or ("train" if "train" in prefix else None)
    return _Pair(images, shape, data, split)


def _open(zf: SafeZip, entry: Entry) -> io.BufferedIOBase:
    try:
        data = zf.read(entry)
    except EntryUnreadable as exc:
        raise _BadIdx(str(exc)) from None
    if entry.name.lower().endswith(".gz"):
        return gzip.GzipFile(fileobj=io.BytesIO(data))  # read only as far as asked
    return io.BytesIO(data)


def _read(stream: io.BufferedIOBase, size: int, name: str) -> bytes:
    """Up to `size` bytes; a damaged gzip stream becomes _BadIdx."""
    try:
        return stream.read(size)
    except (OSError, EOFError, zlib.error) as exc:
        raise _BadIdx(
            _("%(file)s is damaged (%(error)s).") % {"file": name, "error": exc}
        ) from None


def _read_exactly(stream: io.BufferedIOBase, size: int, name: str) -> bytes:
    """Exactly `size` bytes, never decompressing more than one byte past them."""
    data = _read(stream, size + 1, name)
    if len(data) != size:
        raise _BadIdx(
            _("%(file)s holds %(got)s bytes of data where its header says %(want)s.")
            % {"file": name, "got": len(data), "want": size}
        )
    return data


def _header(stream: io.BufferedIOBase, dims: int, name: str) -> tuple[int, ...]:
    """The dimensions an IDX header declares, after checking they are sane."""
    magic = _read(stream, 4, name)
    if len(magic) != 4 or magic[:2] != b"\0\0" or magic[2] != IDX_UBYTE or magic[3] != dims:
        raise _BadIdx(_("%(file)s is not an IDX file of unsigned bytes.") % {"file": name})
    shape = struct.unpack(">" + "I" * dims, _read(stream, 4 * dims, name).ljust(4 * dims, b"\0"))
    if shape[0] > MAX_IMAGES or any(s > MAX_SIDE for s in shape[1:]):
        raise _BadIdx(
            _("%(file)s claims %(n)s images; Manabi reads at most %(limit)s.")
            % {"file": name, "n": shape[0], "limit": MAX_IMAGES}
        )
    if int(np.prod(shape, dtype=np.int64)) > MAX_PIXEL_BYTES:
        raise _BadIdx(_("%(file)s claims more than 1 GB of pixels.") % {"file": name})
    return shape


def _records(
    zf: SafeZip, entries: list[Entry], pairs: list[_Pair], rejected: list[Rejection]
) -> Iterator[SourceImage | Rejection]:
    for pair in pairs:
        count, rows, cols = pair.shape
        try:
            with _open(zf, pair.images) as stream:
                _header(stream, 3, pair.images.name)
                data = _read_exactly(stream, count * rows * cols, pair.images.name)
        except _BadIdx as exc:
            yield Rejection(pair.images.name, str(exc))
            continue
        pixels = np.frombuffer(data, dtype=np.uint8).reshape(count, rows, cols)  # (N, H, W)
        for i in range(count):
            path = f"{pair.images.name}#{i}"
            yield SourceImage(path, pixels=pixels[i], label=str(pair.labels[i]), split=pair.split)
    yield from rejected
    for entry in entries:
        if not NAME.match(posixpath.basename(entry.name)):
            yield not_used(entry, "MNIST IDX")
