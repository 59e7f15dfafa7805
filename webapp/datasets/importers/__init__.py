"""Recognise what an uploaded ZIP holds and read it: one module per format.

`read_archive` tries, in order: MNIST IDX, CIFAR-10 binary, COCO JSON, Pascal VOC XML, YOLO txt,
and last a folder per class. Pickled files (.npz, .npy, .pkl, the Python CIFAR) are never opened.
"""

from itertools import chain

from django.utils.translation import gettext as _

from webapp.datasets.archive import Entry, SafeZip
from webapp.datasets.importers import cifar, coco, idx, imagefolder, voc, yolo
from webapp.datasets.importers._common import UnsupportedArchive, unsupported
from webapp.datasets.records import KINDS, ImportResult, Rejection

__all__ = ["UnsupportedArchive", "read_archive"]

PICKLE_SUFFIXES = (".npz", ".npy", ".pkl", ".pickle")


def read_archive(zf: SafeZip, kind: str) -> ImportResult:
    """Detect the ZIP's format and return its records for the kind."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    refused, entries = _refuse_pickles(zf.entries)
    if not entries:
        raise UnsupportedArchive(refused[0].reason) if refused else unsupported(kind)
    try:
        result = _read(zf, entries, kind)
    except UnsupportedArchive:
        if refused:  # the pickled files are most likely what the student meant to upload
            raise UnsupportedArchive(refused[0].reason) from None
        raise
    if refused:
        result.records = chain(refused, result.records)
    return result


def _read(zf: SafeZip, entries: list[Entry], kind: str) -> ImportResult:
    if idx.detect(entries):
        return idx.read(zf, entries, kind)
    if cifar.detect(entries):
        return cifar.read(zf, entries, kind)
    coco_files = coco.find(zf, entries)
    if coco_files:
        return coco.read(zf, entries, kind, coco_files)
    if voc.detect(zf, entries):
        return voc.read(zf, entries, kind)
    if yolo.detect(entries):
        return yolo.read(zf, entries, kind)
    return imagefolder.read(zf, entries, kind)


def _refuse_pickles(entries: list[Entry]) -> tuple[list[Rejection], list[Entry]]:
    """Split off files that only unpickling could read; Python CIFAR reasons come first."""
    refused: list[Rejection] = []
    usable: list[Entry] = []
    for entry in entries:
        if cifar.is_python_version(entry.name):
            refused.insert(0, Rejection(entry.name, cifar.python_version_reason()))
        elif entry.name.lower().endswith(PICKLE_SUFFIXES):
            refused.append(Rejection(entry.name, _pickle_reason()))
        else:
            usable.append(entry)
    return refused, usable


def _pickle_reason() -> str:
    return _(
        "Manabi does not open .npz, .npy or .pkl files, because loading them could run code. "
        "For MNIST, Fashion-MNIST or KMNIST, put the IDX files (train-images-idx3-ubyte.gz, "
        "train-labels-idx1-ubyte.gz, t10k-…) in the ZIP instead."
    )
