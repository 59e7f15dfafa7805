"""COCO JSON: boxes, polygons and keypoints, plus images resolved by file_name.

A JSON anywhere in the ZIP with "images" and "annotations" lists is a COCO file; its name sets
the split (…val… → val, …test… → test, …train… → train). An image's file_name is looked for
next to the JSON, in an images/ folder beside it or one level up, from the ZIP's root, then by
its base name anywhere. RLE masks (usually iscrowd regions) are not decoded: the annotation keeps
its box and iscrowd, with no polygon. Manabi's classification extension: annotations without a
"bbox" give an image its class (one category per image).
"""

import json
import math
import posixpath
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from django.utils.translation import gettext as _

from webapp.datasets.archive import Entry, EntryUnreadable, SafeZip
from webapp.datasets.importers._common import (
    KINDS_RICHEST_FIRST,
    UnsupportedArchive,
    by_basename,
    clean_path,
    lazy_read,
    not_used,
    split_of_file_name,
    wrong_kind,
)
from webapp.datasets.records import (
    CategoryInfo,
    ImportResult,
    Rejection,
    SourceAnnotation,
    SourceImage,
)

FORMAT = "coco"
MAX_JSON_BYTES = 512 * 1024**2
KEYS = ("images", "annotations")


@dataclass
class CocoFile:
    entry: Entry
    doc: dict


class _BadAnnotation(Exception):
    """An annotation that cannot be used; the message is the reason for the image."""


def find(zf: SafeZip, entries: list[Entry]) -> list[CocoFile]:
    """Every COCO annotation file in the ZIP, parsed; invalid JSON raises UnsupportedArchive."""
    found = []
    for entry in entries:
        if not entry.name.lower().endswith(".json"):
            continue
        if entry.size > MAX_JSON_BYTES:
            raise UnsupportedArchive(
                _("%(file)s is larger than %(limit)s MB; split it into one file per split.")
                % {"file": entry.name, "limit": MAX_JSON_BYTES // 1024**2}
            )
        try:
            data = zf.read(entry)
        except EntryUnreadable:
            continue  # not readable: reported by whichever reader ends up with it
        if b'"images"' not in data or b'"annotations"' not in data:
            continue  # cheap test: not COCO, so a broken unrelated JSON is not an error
        doc = _parse(entry, data)
        if isinstance(doc, dict) and all(isinstance(doc.get(k), list) for k in KEYS):
            found.append(CocoFile(entry, doc))
    return found


def _parse(entry: Entry, data: bytes) -> object:
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        detail = _("%(error)s on line %(line)s") % {"error": exc.msg, "line": exc.lineno}
    except (UnicodeDecodeError, RecursionError) as exc:
        detail = str(exc) if isinstance(exc, UnicodeDecodeError) else _("nested too deeply")
    raise UnsupportedArchive(
        _("%(file)s is not valid JSON (%(detail)s). Fix the file and upload the ZIP again.")
        % {"file": entry.name, "detail": detail}
    )


def read(zf: SafeZip, entries: list[Entry], kind: str, files: list[CocoFile]) -> ImportResult:
    """Check the files suit the kind, then yield their images lazily."""
    kinds = set().union(*(_kinds(f.doc) for f in files))
    if kinds and kind not in kinds:
        looks = next(k for k in KINDS_RICHEST_FIRST if k in kinds)
        raise wrong_kind("COCO", looks, kind)
    per_file = [_categories(f) for f in files]
    merged: dict[str, CategoryInfo] = {}
    for categories in per_file:
        for info in categories.values():
            merged.setdefault(info.name, info)
    records = _records(zf, entries, kind, files, per_file)
    return ImportResult(FORMAT, records, list(merged.values()))


def _kinds(doc: dict) -> set[str]:
    """The kinds a COCO document can serve."""
    kinds: set[str] = set()
    categories = doc.get("categories")
    categories = categories if isinstance(categories, list) else []
    if any(isinstance(c, dict) and c.get("keypoints") for c in categories):
        kinds.add("keypoints")
    plain = False
    for ann in doc["annotations"]:
        if not isinstance(ann, dict):
            continue
        if ann.get("bbox") is None and not _polygons_in(ann):
            plain = True
        else:
            kinds.add("detection")
        if _polygons_in(ann):
            kinds.add("segmentation")
        if ann.get("keypoints"):
            kinds.add("keypoints")
    if plain and "detection" not in kinds:
        kinds.add("classification")
    return kinds


def _polygons_in(ann: dict) -> bool:
    seg = ann.get("segmentation")
    return isinstance(seg, list) and any(isinstance(p, list) and p for p in seg)


def _categories(coco: CocoFile) -> dict[object, CategoryInfo]:
    """Category id → CategoryInfo, in the order the file lists them."""
    result = {}
    listed = coco.doc.get("categories") or []
    for i, cat in enumerate(listed if isinstance(listed, list) else [None]):
        name = cat.get("name") if isinstance(cat, dict) else None
        if not isinstance(name, str) or not name.strip() or _id(cat.get("id")) is None:
            raise UnsupportedArchive(
                _("In %(file)s, categories[%(i)s] needs an id and a name.")
                % {"file": coco.entry.name, "i": i}
            )
        points = cat.get("keypoints") or []
        skeleton = cat.get("skeleton") or []
        if not isinstance(points, list) or not isinstance(skeleton, list):
            points, skeleton = [None], []  # reported as malformed just below
        if not all(isinstance(p, str) for p in points) or not all(
            isinstance(s, list) and len(s) == 2 and all(isinstance(v, int) for v in s)
            for s in skeleton
        ):
            raise UnsupportedArchive(
                _("In %(file)s, the keypoints or skeleton of category %(name)s are malformed.")
                % {"file": coco.entry.name, "name": name}
            )
        result[cat["id"]] = CategoryInfo(name.strip(), list(points), [list(s) for s in skeleton])
    return result


def _records(
    zf: SafeZip,
    entries: list[Entry],
    kind: str,
    files: list[CocoFile],
    per_file: list[dict[object, CategoryInfo]],
) -> Iterator[SourceImage | Rejection]:
    names = {e.name: e for e in entries}
    basenames = by_basename(entries)
    used = {f.entry.name for f in files}
    for coco, categories in zip(files, per_file, strict=True):
        annotations = defaultdict(list)
        for ann in coco.doc["annotations"]:
            if isinstance(ann, dict):
                annotations[_id(ann.get("image_id"))].append(ann)
        split = split_of_file_name(coco.entry.name)
        for i, image in enumerate(coco.doc["images"]):
            file_name = image.get("file_name") if isinstance(image, dict) else None
            if not isinstance(file_name, str) or _id(image.get("id")) is None:
                reason = _("images[%(i)s] needs an id and a file_name.") % {"i": i}
                yield Rejection(coco.entry.name, reason)
                continue
            found = _resolve(file_name, coco.entry.name, names, basenames)
            if isinstance(found, Rejection):
                yield found
                continue
            if found.name in used:
                yield Rejection(found.name, _("Another annotation entry already used this image."))
                continue
            used.add(found.name)
            yield _image(zf, found, annotations[image["id"]], categories, kind, split)
    for entry in entries:
        if entry.name not in used:
            yield not_used(entry, "COCO")


def _resolve(
    file_name: str, json_name: str, names: dict[str, Entry], basenames: dict[str, list[Entry]]
) -> Entry | Rejection:
    """The entry an image's file_name means, or why there is none."""
    path = clean_path(file_name)
    here = posixpath.dirname(json_name)
    up = posixpath.dirname(here)
    for folder in (here, posixpath.join(here, "images"), up, posixpath.join(up, "images"), ""):
        candidate = posixpath.normpath(posixpath.join(folder, path)) if folder else path
        if candidate in names:
            return names[candidate]
    matches = basenames.get(posixpath.basename(path), [])
    if len(matches) == 1:
        return matches[0]
    if matches:
        return Rejection(
            file_name,
            _("Several files in the ZIP are named like this; write its folder in file_name."),
        )
    return Rejection(
        file_name,
        _("%(file)s lists this image, but it is not in the ZIP.") % {"file": json_name},
    )


def _image(
    zf: SafeZip,
    entry: Entry,
    anns: list[dict],
    categories: dict[object, CategoryInfo],
    kind: str,
    split: str | None,
) -> SourceImage | Rejection:
    try:
        converted = [_annotation(a, categories, kind) for a in anns]
    except _BadAnnotation as exc:
        return Rejection(entry.name, str(exc))
    label = None
    if kind == "classification":
        classes = sorted({a.category for a in converted})
        if not classes:
            return Rejection(entry.name, _("No annotation gives this image a class."))
        if len(classes) > 1:
            reason = _("This image has several classes (%(names)s); give it one.")
            return Rejection(entry.name, reason % {"names": ", ".join(classes)})
        label, converted = classes[0], []
    read = lazy_read(zf, entry)
    return SourceImage(entry.name, read=read, label=label, annotations=converted, split=split)


def _annotation(ann: dict, categories: dict[object, CategoryInfo], kind: str) -> SourceAnnotation:
    info = categories.get(_id(ann.get("category_id")))
    if info is None:
        raise _BadAnnotation(
            _("An annotation names category %(id)s, which the file's categories do not list.")
            % {"id": ann.get("category_id")}
        )
    if kind == "classification":
        return SourceAnnotation(info.name)
    polygons = _polygons(ann.get("segmentation")) if kind == "segmentation" else None
    bbox = _numbers(ann.get("bbox"), 4, "bbox") if ann.get("bbox") is not None else None
    if bbox is None and polygons:
        xs = [v for p in polygons for v in p[0::2]]
        ys = [v for p in polygons for v in p[1::2]]
        bbox = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
    if bbox is None or bbox[2] < 0 or bbox[3] < 0:
        raise _BadAnnotation(_("An annotation has no usable bbox [x, y, width, height]."))
    keypoints = None
    if kind == "keypoints" and ann.get("keypoints"):
        keypoints = _numbers(ann["keypoints"], 3 * len(info.keypoints) or None, "keypoints")
        if len(keypoints) % 3 or any(v not in (0, 1, 2) for v in keypoints[2::3]):
            raise _BadAnnotation(_("An annotation's keypoints are not x, y, v triples."))
    return SourceAnnotation(info.name, bbox, polygons, keypoints, bool(ann.get("iscrowd", 0)))


def _id(value: object) -> int | str | None:
    """An id usable as a key (COCO ids are numbers; strings are tolerated), else None."""
    return value if isinstance(value, int | str) and not isinstance(value, bool) else None


def _polygons(seg: object) -> list[list[float]] | None:
    """Polygons of a segmentation; None for RLE or none (the annotation keeps only its box)."""
    if not isinstance(seg, list) or not seg:
        return None
    polygons = [_numbers(p, None, "segmentation") for p in seg]
    if any(len(p) < 6 or len(p) % 2 for p in polygons):
        raise _BadAnnotation(_("A polygon needs at least three x, y points."))
    return polygons


def _numbers(value: object, length: int | None, field: str) -> list[float]:
    ok = isinstance(value, list) and (length is None or len(value) == length)
    if ok and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        numbers = [float(v) for v in value]
        if all(math.isfinite(v) for v in numbers):
            return numbers
    raise _BadAnnotation(_("An annotation's %(field)s is malformed.") % {"field": field})
