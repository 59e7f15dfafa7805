"""YOLO txt detection: images/…/x.jpg with labels/…/x.txt; names from data.yaml or classes.txt.

Each label line is "class cx cy w h", normalised to [0, 1]; boxes become pixels, so an image with
boxes is read during iteration to learn its size (the bytes are kept for ingest, not re-read). An
image without a label file is a background image. Split from a train/, val/ or test/ folder on the
path (images/train/… or Roboflow's train/images/…). Not read: YOLO segmentation and pose lines.
"""

import io
import math
import posixpath
from collections.abc import Iterator

import yaml
from django.utils.translation import gettext as _
from PIL import Image, UnidentifiedImageError

from trainer.kinds import shape
from webapp.datasets.archive import Entry, EntryUnreadable, SafeZip
from webapp.datasets.importers._common import (
    UnsupportedArchive,
    is_image,
    lazy_read,
    not_used,
    read_bytes,
    split_of_folders,
    stem,
    wrong_kind,
)
from webapp.datasets.records import (
    CategoryInfo,
    ImportResult,
    Rejection,
    SourceAnnotation,
    SourceImage,
)

FORMAT = "yolo"
YAML_NAMES = ("data.yaml", "dataset.yaml", "data.yml", "dataset.yml")
TEXT_NAMES = ("classes.txt", "obj.names", "classes.names")
MAX_NAMES_BYTES = 1024**2
ROTATED = (5, 6, 7, 8)  # EXIF orientations that swap width and height
EXIF_ORIENTATION = 0x0112


def _key(name: str, folder: str) -> tuple[str, ...] | None:
    """The image/label pairing key: the path with its last images/ or labels/ folder taken out."""
    parts = name.lower().split("/")
    folders = parts[:-1]
    if folder not in folders:
        return None
    i = len(folders) - 1 - folders[::-1].index(folder)
    return (*parts[:i], *parts[i + 1 : -1], stem(parts[-1]))


def _is_label(name: str) -> bool:
    base = posixpath.basename(name).lower()
    return base.endswith(".txt") and base not in TEXT_NAMES and _key(name, "labels") is not None


def detect(entries: list[Entry]) -> bool:
    """True when the ZIP has labels/*.txt and a names file or an images/ folder."""
    if not any(_is_label(e.name) for e in entries):
        return False
    return any(
        posixpath.basename(e.name).lower() in YAML_NAMES + TEXT_NAMES
        or (is_image(e.name) and _key(e.name, "images") is not None)
        for e in entries
    )


def read(zf: SafeZip, entries: list[Entry], kind: str) -> ImportResult:
    """Read the class names, then pair images with label files lazily."""
    if not shape(kind).boxes_only:  # boxes are all the format holds
        raise wrong_kind("YOLO", "detection", kind)
    names, names_entry = _class_names(zf, entries)
    categories = [CategoryInfo(n) for n in names]
    return ImportResult(FORMAT, _records(zf, entries, names, names_entry), categories)


def _class_names(zf: SafeZip, entries: list[Entry]) -> tuple[list[str], Entry]:
    order = YAML_NAMES + TEXT_NAMES
    candidates = sorted(
        (e for e in entries if posixpath.basename(e.name).lower() in order),
        key=lambda e: (order.index(posixpath.basename(e.name).lower()), e.name.count("/")),
    )
    for entry in candidates:
        names = _names_from(zf, entry)
        if names:
            return names, entry
    raise UnsupportedArchive(
        _(
            "This ZIP looks like YOLO (labels/*.txt) but has no class names. Add data.yaml with "
            "names: [cat, dog, …] or classes.txt with one name a line."
        )
    )


def _names_from(zf: SafeZip, entry: Entry) -> list[str]:
    """Class names in a data.yaml (names: list or {id: name}) or one-a-line names file."""

    def refuse(detail: str) -> UnsupportedArchive:
        return UnsupportedArchive(
            _("%(file)s cannot be read: %(detail)s") % {"file": entry.name, "detail": detail}
        )

    if entry.size > MAX_NAMES_BYTES:
        raise refuse(_("it is larger than 1 MB."))
    try:
        text = zf.read(entry).decode("utf-8-sig")
    except (EntryUnreadable, UnicodeDecodeError) as exc:
        raise refuse(str(exc)) from None
    if not entry.name.lower().endswith((".yaml", ".yml")):
        return [line.strip() for line in text.splitlines() if line.strip()]
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else "?"
        raise refuse(_("it is not valid YAML (line %(line)s).") % {"line": line}) from None
    names = doc.get("names") if isinstance(doc, dict) else None
    if isinstance(names, dict) and set(names) == set(range(len(names))):
        names = [names[i] for i in range(len(names))]
    if names is None:
        return []
    if not isinstance(names, list) or not all(isinstance(n, str | int | float) for n in names):
        raise refuse(_("names: must be a list of class names, or {0: name, 1: name, …}."))
    return [str(n).strip() for n in names]


def _records(
    zf: SafeZip, entries: list[Entry], names: list[str], names_entry: Entry
) -> Iterator[SourceImage | Rejection]:
    labels = {_key(e.name, "labels"): e for e in entries if _is_label(e.name)}
    used = {names_entry.name}
    for entry in entries:
        key = _key(entry.name, "images") if is_image(entry.name) else None
        if key is None:
            continue
        used.add(entry.name)
        label = labels.get(key)
        if label is not None:
            used.add(label.name)
        yield _image(zf, entry, label, names)
    for entry in entries:
        if entry.name in used:
            continue
        if _is_label(entry.name):
            yield Rejection(entry.name, _("No image in images/ has the same name as this file."))
        elif posixpath.basename(entry.name).lower() not in YAML_NAMES + TEXT_NAMES:
            yield not_used(entry, "YOLO")


def _image(
    zf: SafeZip, entry: Entry, label: Entry | None, names: list[str]
) -> SourceImage | Rejection:
    split = split_of_folders(entry.name)
    background = SourceImage(entry.name, read=lazy_read(zf, entry), split=split)
    if label is None:
        return background
    try:
        boxes = _parse_label(zf.read(label).decode("utf-8-sig"), len(names))
    except (EntryUnreadable, UnicodeDecodeError, ValueError) as exc:
        return Rejection(entry.name, f"{label.name}: {exc}")
    if not boxes:
        return background
    try:
        data = zf.read(entry)
        width, height = _size(data)
    except (EntryUnreadable, OSError, UnidentifiedImageError, Image.DecompressionBombError):
        return Rejection(entry.name, _("Manabi cannot open this file as an image."))
    annotations = [
        SourceAnnotation(
            names[c], [(cx - w / 2) * width, (cy - h / 2) * height, w * width, h * height]
        )
        for c, cx, cy, w, h in boxes
    ]
    return SourceImage(entry.name, read=read_bytes(data), annotations=annotations, split=split)


def _parse_label(text: str, classes: int) -> list[tuple[int, float, float, float, float]]:
    """Boxes of a label file; ValueError naming the line when one is wrong."""
    boxes = []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 5:
            raise ValueError(
                _("line %(n)s has %(count)s values; a box line has 5 (class cx cy w h).")
                % {"n": number, "count": len(fields)}
            )
        if not fields[0].isdecimal() or int(fields[0]) >= classes:
            raise ValueError(
                _("line %(n)s names class %(id)s; the class ids here go from 0 to %(last)s.")
                % {"n": number, "id": fields[0], "last": classes - 1}
            )
        try:
            values = [float(v) for v in fields[1:]]
        except ValueError:
            values = [math.nan]
        if not all(0.0 <= v <= 1.0 for v in values):
            raise ValueError(
                _("line %(n)s has values outside 0–1; YOLO boxes are fractions of the image size.")
                % {"n": number}
            )
        boxes.append((int(fields[0]), *values))
    return boxes


def _size(data: bytes) -> tuple[int, int]:
    """(width, height) as displayed, from the header only (EXIF rotation applied)."""
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
        if image.getexif().get(EXIF_ORIENTATION) in ROTATED:
            return height, width
    return width, height
