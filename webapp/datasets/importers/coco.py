"""COCO JSON: boxes, polygons and keypoints, plus images resolved by file_name.

A JSON anywhere in the ZIP with "images" and "annotations" lists is a COCO file; its name sets
the split (…val… → val, …test… → test, …train… → train). An image's file_name is looked for
next to the JSON, in an images/ folder beside it or one level up, from the ZIP's root, then by
its base name anywhere. A segmentation is kept as uploaded: polygons, or an RLE mask (iscrowd
regions usually are; compressed or not), checked by webapp/datasets/masks.py and sized like its
image. Keypoints keep their visibility flags (0 not labelled, 1 hidden, 2 visible); an
annotation's num_keypoints is not read (export counts it again). Manabi's classification
extension: annotations without a "bbox" give an image its class (one category per image).
A keypoint category's optional "sigmas" (one OKS sigma per keypoint, as COCO's evaluation uses
them) are kept with its keypoints; sigmas that are not one number above 0 and at most 1 per
keypoint are not used (the trainer's defaults are), and the JSON file's row in the report says
why, the rest of the file being read as usual.

An annotation that cannot be used refuses its image only, with a reason naming the JSON file,
the annotation's id and the field; a malformed category refuses the whole file.
"""

import itertools
import json
import math
import posixpath
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from django.utils.translation import gettext as _

from trainer import limits
from trainer.kinds import SHAPES, Shape, shape
from webapp.datasets import masks
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
    sigmas_problem,
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
    problems: list[Rejection] = []
    per_file = [_categories(f, problems) for f in files]
    merged: dict[str, CategoryInfo] = {}
    for categories in per_file:
        for info in categories.values():
            merged.setdefault(info.name, info)
    records = _records(zf, entries, kind, files, per_file)
    if problems:
        records = itertools.chain(problems, records)
    return ImportResult(FORMAT, records, list(merged.values()))


def _kinds(doc: dict) -> set[str]:
    """The kinds a COCO document can serve: those whose shape (trainer.kinds.SHAPES) it has.
    Whole-image labels (annotations without a box or mask) serve a kind of one label per
    image when no annotation has an object; boxes or masks serve one of objects, masks one
    with masks too; keypoints (an annotation's, or named by a category) one with keypoints."""
    categories = doc.get("categories")
    categories = categories if isinstance(categories, list) else []
    keypoints = any(isinstance(c, dict) and c.get("keypoints") for c in categories)
    plain = objects = regions = False
    for ann in doc["annotations"]:
        if not isinstance(ann, dict):
            continue
        mask = _mask_in(ann)
        objects |= ann.get("bbox") is not None or mask
        plain |= ann.get("bbox") is None and not mask
        regions |= mask
        keypoints |= bool(ann.get("keypoints"))

    def serves(its: Shape) -> bool:
        if its.one_label_per_image:
            return plain and not objects
        return (keypoints if its.has_keypoints else objects) and (regions or not its.has_masks)

    return {kind for kind, its in SHAPES.items() if serves(its)}


def _mask_in(ann: dict) -> bool:
    """Whether an annotation has a segmentation: polygons or an RLE dict."""
    seg = ann.get("segmentation")
    return masks.is_rle(seg) or (
        isinstance(seg, list) and any(isinstance(p, list) and p for p in seg)
    )


def _categories(coco: CocoFile, problems: list[Rejection]) -> dict[object, CategoryInfo]:
    """Category id → CategoryInfo, in the order the file lists them; unusable sigmas are left
    out, with a row for `problems` naming the field."""
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
        if not all(isinstance(p, str) and p.strip() for p in points) or not all(
            isinstance(s, list)
            and len(s) == 2
            and all(isinstance(v, int) and 1 <= v <= len(points) for v in s)
            for s in skeleton
        ):
            raise UnsupportedArchive(
                _("In %(file)s, the keypoints or skeleton of category %(name)s are malformed.")
                % {"file": coco.entry.name, "name": name}
                + " "
                + _(
                    "categories[].keypoints lists the names; skeleton lists pairs of their "
                    "1-based numbers, such as [1, 2]."
                )
            )
        if len(points) > limits.MAX_KEYPOINTS or len(set(points)) != len(points):
            raise UnsupportedArchive(
                _(
                    "In %(file)s, category %(name)s lists %(count)s keypoints; Manabi reads at "
                    "most %(limit)s, each name once."
                )
                % {
                    "file": coco.entry.name,
                    "name": name,
                    "count": len(points),
                    "limit": limits.MAX_KEYPOINTS,
                }
            )
        sigmas = cat.get("sigmas")
        if sigmas is not None and points:
            problem = sigmas_problem(sigmas, len(points))
            if problem is not None:
                reason = _(
                    "categories[%(i)s].sigmas of %(name)s were not used (%(problem)s); OKS uses "
                    "the default sigmas. The rest of the file was read."
                ) % {"i": i, "name": name, "problem": problem}
                problems.append(Rejection(coco.entry.name, reason))
                sigmas = None
        usable = [float(s) for s in sigmas] if sigmas is not None and points else []
        result[cat["id"]] = CategoryInfo(
            name.strip(), list(points), [list(s) for s in skeleton], usable
        )
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
            where = (coco.entry.name, image)
            yield _image(zf, found, annotations[image["id"]], categories, kind, split, where)
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
    where: tuple[str, dict],
) -> SourceImage | Rejection:
    """One image with its annotations, or its refusal naming the JSON file and annotation."""
    json_name, image = where
    converted = []
    for ann in anns:
        try:
            converted.append(_annotation(ann, categories, kind, image))
        except _BadAnnotation as exc:
            reason = _("%(file)s, annotation %(id)s: %(reason)s") % {
                "file": json_name,
                "id": ann.get("id", "?"),
                "reason": exc,
            }
            return Rejection(entry.name, reason)
    label = None
    if shape(kind).one_label_per_image:
        classes = sorted({a.category for a in converted})
        if not classes:
            return Rejection(entry.name, _("No annotation gives this image a class."))
        if len(classes) > 1:
            reason = _("This image has several classes (%(names)s); give it one.")
            return Rejection(entry.name, reason % {"names": ", ".join(classes)})
        label, converted = classes[0], []
    read = lazy_read(zf, entry)
    return SourceImage(entry.name, read=read, label=label, annotations=converted, split=split)


def _annotation(
    ann: dict, categories: dict[object, CategoryInfo], kind: str, image: dict
) -> SourceAnnotation:
    info = categories.get(_id(ann.get("category_id")))
    if info is None:
        raise _BadAnnotation(
            _("An annotation names category %(id)s, which the file's categories do not list.")
            % {"id": ann.get("category_id")}
        )
    wanted = shape(kind)
    if wanted.one_label_per_image:
        return SourceAnnotation(info.name)
    segmentation = _segmentation(ann.get("segmentation"), image) if wanted.has_masks else None
    bbox = _numbers(ann.get("bbox"), 4, "bbox") if ann.get("bbox") is not None else None
    keypoints = None
    if wanted.has_keypoints and ann.get("keypoints"):
        keypoints = _keypoints(ann["keypoints"], info)
    if bbox is None and segmentation:
        bbox = _box_around(segmentation)
    if bbox is None and keypoints:
        labelled = [
            v for i in range(0, len(keypoints), 3) if keypoints[i + 2] for v in keypoints[i : i + 2]
        ]
        bbox = _box_around([labelled])
    if bbox is None or bbox[2] < 0 or bbox[3] < 0:
        raise _BadAnnotation(_("An annotation has no usable bbox [x, y, width, height]."))
    return SourceAnnotation(info.name, bbox, segmentation, keypoints, bool(ann.get("iscrowd", 0)))


def _id(value: object) -> int | str | None:
    """An id usable as a key (COCO ids are numbers; strings are tolerated), else None."""
    return value if isinstance(value, int | str) and not isinstance(value, bool) else None


def _segmentation(seg: object, image: dict) -> masks.Segmentation | None:
    """A segmentation as it is kept: polygons, or an RLE {"size", "counts"} sized like its image
    (when images[] gives its width and height); None when there is none."""
    if masks.is_rle(seg):
        rle = {"size": seg.get("size"), "counts": seg.get("counts")}
        try:
            masks.check_rle(rle)
        except masks.MaskError as exc:
            raise _BadAnnotation(
                _("Its segmentation is not a valid RLE mask: %(error)s.") % {"error": exc}
            ) from None
        height, width = image.get("height"), image.get("width")
        if isinstance(height, int) and isinstance(width, int) and seg["size"] != [height, width]:
            raise _BadAnnotation(
                _(
                    "Its RLE mask is %(mask)s pixels (size [height, width]), but images[] says "
                    "the image is %(image)s."
                )
                % {
                    "mask": "×".join(map(str, seg["size"])),
                    "image": f"{height}×{width}",
                }
            )
        return rle
    if not isinstance(seg, list) or not seg:
        return None
    polygons = [_numbers(p, None, "segmentation") for p in seg]
    if any(len(p) < 6 or len(p) % 2 for p in polygons):
        raise _BadAnnotation(_("A polygon needs at least three x, y points."))
    if len(polygons) > limits.MAX_POLYGONS or any(
        len(p) > 2 * limits.MAX_POLYGON_POINTS for p in polygons
    ):
        raise _BadAnnotation(
            _("Its segmentation has more than %(polygons)s polygons or %(points)s points in one.")
            % {"polygons": limits.MAX_POLYGONS, "points": limits.MAX_POLYGON_POINTS}
        )
    return polygons


def _keypoints(value: object, info: CategoryInfo) -> list[float]:
    """x, y, v triples, as many as the category names keypoints; v is 0, 1 or 2."""
    expected = 3 * len(info.keypoints)
    if expected and isinstance(value, list) and len(value) != expected:
        raise _BadAnnotation(
            _(
                "Its keypoints hold %(got)s numbers; category %(name)s names %(count)s keypoints, "
                "so it needs %(expected)s (x, y, v for each)."
            )
            % {
                "got": len(value),
                "name": info.name,
                "count": len(info.keypoints),
                "expected": expected,
            }
        )
    keypoints = _numbers(value, expected or None, "keypoints")
    if len(keypoints) % 3 or any(v not in (0, 1, 2) for v in keypoints[2::3]):
        raise _BadAnnotation(_("An annotation's keypoints are not x, y, v triples."))
    return keypoints


def _box_around(segmentation: masks.Segmentation) -> list[float] | None:
    """The box around polygons or an RLE's foreground; None when they hold no point."""
    if masks.is_rle(segmentation):
        return masks.rle_bbox(segmentation)
    xs = [v for p in segmentation for v in p[0::2]]
    ys = [v for p in segmentation for v in p[1::2]]
    if not xs:
        return None
    return [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]


def _numbers(value: object, length: int | None, field: str) -> list[float]:
    ok = isinstance(value, list) and (length is None or len(value) == length)
    if ok and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        numbers = [float(v) for v in value]
        if all(math.isfinite(v) for v in numbers):
            return numbers
    raise _BadAnnotation(_("An annotation's %(field)s is malformed.") % {"field": field})
