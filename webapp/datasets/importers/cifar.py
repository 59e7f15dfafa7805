"""CIFAR-10, binary version: data_batch_1.bin … data_batch_5.bin and test_batch.bin.

Each record is 1 label byte and 3072 pixel bytes (red, green, blue planes of 32×32). Names come
from batches.meta.txt, else the standard ten. The Python version is pickled and never opened:
its files are refused with a pointer to the binary version. CIFAR-100 (2 label bytes) is not read.
"""

import posixpath
import re
from collections.abc import Iterator

import numpy as np
from django.utils.translation import gettext as _

from trainer.kinds import shape
from webapp.datasets.archive import Entry, EntryUnreadable, SafeZip
from webapp.datasets.importers._common import not_used, wrong_kind
from webapp.datasets.records import CategoryInfo, ImportResult, Rejection, SourceImage

FORMAT = "cifar10"
BINARY = re.compile(r"^(data_batch_\d+|test_batch)\.bin$", re.IGNORECASE)
PICKLED = re.compile(r"^(data_batch_\d+|test_batch|batches\.meta)$", re.IGNORECASE)
PYTHON_FOLDERS = {"cifar-10-batches-py", "cifar-100-python"}
META = "batches.meta.txt"
RECORD = 1 + 3 * 32 * 32
DEFAULT_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


def is_python_version(name: str) -> bool:
    """True for files of the pickled CIFAR download, which Manabi never unpickles."""
    parts = name.lower().split("/")
    return bool(PICKLED.match(parts[-1])) or any(p in PYTHON_FOLDERS for p in parts[:-1])


def python_version_reason() -> str:
    """Why a pickled CIFAR file is refused, and what to upload instead."""
    return _(
        "This is the Python (pickled) version of CIFAR, which Manabi does not open because loading "
        "it could run code. Download the “CIFAR-10 binary version” (cifar-10-binary.tar.gz), "
        "unpack it and put its .bin files (data_batch_1.bin … test_batch.bin) in a ZIP."
    )


def detect(entries: list[Entry]) -> bool:
    """True when some file is a CIFAR-10 binary batch."""
    return any(BINARY.match(posixpath.basename(e.name)) for e in entries)


def read(zf: SafeZip, entries: list[Entry], kind: str) -> ImportResult:
    """Read the class names now and the batches lazily, one file at a time."""
    if not shape(kind).one_label_per_image:  # a class per image is all the format holds
        raise wrong_kind("CIFAR-10", "classification", kind)
    names = list(DEFAULT_NAMES)
    for entry in entries:
        if posixpath.basename(entry.name).lower() == META:
            try:
                text = zf.read(entry).decode("utf-8", errors="replace")
            except EntryUnreadable:
                continue
            names = [line.strip() for line in text.splitlines() if line.strip()] or names
            break
    return ImportResult(FORMAT, _records(zf, entries, names), [CategoryInfo(n) for n in names])


def _records(
    zf: SafeZip, entries: list[Entry], names: list[str]
) -> Iterator[SourceImage | Rejection]:
    for entry in entries:
        base = posixpath.basename(entry.name).lower()
        if BINARY.match(base):
            yield from _batch(zf, entry, names, "test" if base.startswith("test") else "train")
        elif base != META:
            yield not_used(entry, "CIFAR-10")


def _batch(
    zf: SafeZip, entry: Entry, names: list[str], split: str
) -> Iterator[SourceImage | Rejection]:
    if entry.size % RECORD:
        yield Rejection(
            entry.name,
            _("The file's size is not a whole number of CIFAR-10 records (%(size)s bytes each).")
            % {"size": RECORD},
        )
        return
    try:
        data = zf.read(entry)
    except EntryUnreadable as exc:
        yield Rejection(entry.name, str(exc))
        return
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, RECORD)  # (N, 3073)
    planes = records[:, 1:].reshape(-1, 3, 32, 32)  # (N, C, H, W)
    pixels = np.ascontiguousarray(planes.transpose(0, 2, 3, 1))  # (N, H, W, C)
    for i, label in enumerate(records[:, 0]):
        path = f"{entry.name}#{i}"
        if label >= len(names):
            reason = _("The record's label %(label)s has no class name.") % {"label": int(label)}
            yield Rejection(path, reason)
            continue
        yield SourceImage(path, pixels=pixels[i], label=names[label], split=split)
