"""ImageFolder: one folder per class (cat/1.png), optionally under train/, val/ and test/ folders.

Folders that every picture shares (mydata/ in mydata/cat/1.png) are skipped. Every file under a
class folder is yielded, pictures or not: ingest checks the bytes. Class names are kept as
written, in any script. A class folder with no file in it cannot be seen (SafeZip skips folders).
"""

from collections.abc import Iterator

from django.utils.translation import gettext as _

from trainer.kinds import shape
from webapp.datasets.archive import Entry, SafeZip
from webapp.datasets.importers._common import (
    SPLIT_FOLDERS,
    is_image,
    lazy_read,
    unsupported,
)
from webapp.datasets.records import CategoryInfo, ImportResult, Rejection, SourceImage

FORMAT = "imagefolder"

Placed = tuple[Entry, str | None, str]  # entry, split, class


def read(zf: SafeZip, entries: list[Entry], kind: str) -> ImportResult:
    """Read class folders; raise UnsupportedArchive when no file is inside one."""
    if not shape(kind).one_label_per_image:  # a folder gives its images one class each
        raise unsupported(kind)
    structure = [e.name.split("/") for e in entries if is_image(e.name)] or [
        e.name.split("/") for e in entries
    ]
    prefix = _common_folders(structure)
    split_mode = _has_split_folders(structure, len(prefix))
    placed: list[Placed] = []
    rejected: list[Rejection] = []
    for entry in entries:
        where = _place(entry.name.split("/"), prefix, split_mode)
        if isinstance(where, str):
            rejected.append(Rejection(entry.name, where))
        else:
            placed.append((entry, *where))
    if not placed:
        raise unsupported(kind, _("No file in the ZIP is inside a class folder."))
    names = sorted({label for _entry, _split, label in placed})
    return ImportResult(FORMAT, _records(zf, placed, rejected), [CategoryInfo(n) for n in names])


def _records(
    zf: SafeZip, placed: list[Placed], rejected: list[Rejection]
) -> Iterator[SourceImage | Rejection]:
    for entry, split, label in placed:
        yield SourceImage(path=entry.name, read=lazy_read(zf, entry), label=label, split=split)
    yield from rejected


def _common_folders(paths: list[list[str]]) -> list[str]:
    """Leading folders all paths share, keeping a class folder and stopping at a split folder."""
    prefix: list[str] = []
    depth = 0
    while paths and all(len(p) >= depth + 3 for p in paths):
        folder = paths[0][depth]
        if folder.lower() in SPLIT_FOLDERS or any(p[depth] != folder for p in paths):
            break
        prefix.append(folder)
        depth += 1
    return prefix


def _has_split_folders(paths: list[list[str]], depth: int) -> bool:
    """True when every top folder (after the shared ones) is train/, val/, test/ or the like."""
    tops = {p[depth].lower() for p in paths if len(p) > depth + 1}
    return bool(tops) and tops <= SPLIT_FOLDERS.keys()


def _place(parts: list[str], prefix: list[str], split_mode: bool) -> tuple[str | None, str] | str:
    """(split, class) for a path, or the reason it has none."""
    if parts[: len(prefix)] != prefix:
        return _("The file is outside the folder that holds the class folders (%(folder)s/).") % {
            "folder": "/".join(prefix)
        }
    rest = parts[len(prefix) :]
    if split_mode and rest[0].lower() in SPLIT_FOLDERS:
        if len(rest) < 3:
            return _("The file is not inside a class folder (put it in %(split)s/<class>/).") % {
                "split": rest[0]
            }
        return SPLIT_FOLDERS[rest[0].lower()], rest[1]
    if len(rest) < 2:
        return _(
            "The file is not inside a class folder; put each image in a folder named for its class."
        )
    return None, rest[0]
