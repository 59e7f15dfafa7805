"""What the format readers share: the error they raise, image names, splits, lazy reads."""

import posixpath
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable

from django.utils.translation import gettext as _

from webapp.datasets.archive import Entry, SafeZip
from webapp.datasets.records import Rejection

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
SPLIT_FOLDERS = {
    "train": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
}
# The kind a file "looks like" when it can serve several: the richest first.
KINDS_RICHEST_FIRST = ("keypoints", "segmentation", "detection", "classification")


class UnsupportedArchive(Exception):
    """Nothing in the ZIP is usable for the chosen kind; the message says what Manabi reads."""


def is_image(name: str) -> bool:
    """True when the name ends like a picture file."""
    return name.lower().endswith(IMAGE_SUFFIXES)


def stem(name: str) -> str:
    """The file name without its folders and its last extension."""
    return posixpath.splitext(posixpath.basename(name))[0]


def lazy_read(zf: SafeZip, entry: Entry) -> Callable[[], bytes]:
    """A function that reads the entry only when called, so memory stays bounded."""
    return lambda: zf.read(entry)


def read_bytes(data: bytes) -> Callable[[], bytes]:
    """A function returning bytes already read (when the reader needed them anyway)."""
    return lambda: data


def split_of_folders(name: str) -> str | None:
    """The split a folder on the path names (train/, valid/, ...); the deepest one wins."""
    for part in reversed(name.split("/")[:-1]):
        if part.lower() in SPLIT_FOLDERS:
            return SPLIT_FOLDERS[part.lower()]
    return None


def split_of_file_name(name: str) -> str | None:
    """The split a file's own name says (instances_val2017.json → val)."""
    base = posixpath.basename(name).lower()
    for word, split in (("val", "val"), ("test", "test"), ("train", "train")):
        if word in base:
            return split
    return None


def clean_path(name: str) -> str:
    """A path written inside an annotation file, in the form SafeZip gives entry names."""
    name = unicodedata.normalize("NFC", name.replace("\\", "/"))
    return posixpath.normpath(name).lstrip("/") if name else ""


def by_basename(entries: Iterable[Entry]) -> dict[str, list[Entry]]:
    """Entries grouped by their file name without folders."""
    grouped: dict[str, list[Entry]] = defaultdict(list)
    for entry in entries:
        grouped[posixpath.basename(entry.name)].append(entry)
    return grouped


def kind_label(kind: str) -> str:
    """The kind's name as a student reads it."""
    labels = {
        "classification": _("classification"),
        "detection": _("object detection"),
        "segmentation": _("segmentation"),
        "keypoints": _("keypoints"),
    }
    return labels.get(kind, kind)


def layouts(kind: str) -> str:
    """The layouts Manabi reads for a kind, for error messages (a row per kind)."""
    said = {
        "classification": _(
            "For classification Manabi reads: one folder per class (cat/1.png, dog/2.png), "
            "optionally inside train/, val/ and test/ folders; MNIST-style IDX files "
            "(train-images-idx3-ubyte.gz …); the CIFAR-10 binary version (data_batch_1.bin …); "
            "or a COCO JSON file giving each image one category."
        ),
        "detection": _(
            "For object detection Manabi reads: COCO (a JSON file such as "
            "annotations/instances_train.json, plus the images); Pascal VOC (Annotations/*.xml "
            "plus JPEGImages/); or YOLO (images/, labels/*.txt and data.yaml or classes.txt)."
        ),
        "segmentation": _(
            "For segmentation Manabi reads COCO JSON files with polygon or RLE segmentations."
        ),
        "keypoints": _(
            "For keypoints Manabi reads COCO JSON files with keypoints and categories[].keypoints."
        ),
    }
    return said.get(kind) or said["keypoints"]


def unsupported(kind: str, detail: str = "") -> UnsupportedArchive:
    """The error for a ZIP with nothing usable for the kind."""
    lead = detail or _("Manabi found nothing it can use in this ZIP.")
    return UnsupportedArchive(f"{lead} {layouts(kind)}")


def wrong_kind(format_name: str, looks_like: str, chosen: str) -> UnsupportedArchive:
    """The error for a ZIP in a known format made for another kind than the one chosen."""
    return UnsupportedArchive(
        _(
            "This ZIP looks like a dataset for %(looks)s (%(format)s), but this dataset was "
            "created for %(chosen)s. Create a dataset for %(looks)s to upload it, or upload a ZIP "
            "made for %(chosen)s."
        )
        % {"looks": kind_label(looks_like), "format": format_name, "chosen": kind_label(chosen)}
    )


def not_used(entry: Entry, format_name: str) -> Rejection:
    """A file the recognised format has no place for."""
    if is_image(entry.name):
        return Rejection(entry.name, _("No annotation file mentions this image."))
    return Rejection(
        entry.name,
        _("Manabi does not use this file in a %(format)s dataset.") % {"format": format_name},
    )
