"""Pascal VOC XML detection: Annotations/*.xml with JPEGImages/, or each .xml next to its image.

VOC boxes count pixels from 1 and include both ends, so [xmin, ymin, xmax, ymax] becomes
[xmin - 1, ymin - 1, xmax - xmin + 1, ymax - ymin + 1]. Splits come from ImageSets/Main/
train.txt, val.txt and test.txt when present. XML declaring a DOCTYPE or ENTITY is refused
unparsed (entity expansion bombs). Segmentation masks (SegmentationClass/) are not read.
"""

import math
import posixpath
import xml.etree.ElementTree as ET  # noqa: S405 - only on XML already checked free of DTDs
from collections.abc import Iterator
from dataclasses import dataclass

from django.utils.translation import gettext as _

from trainer.kinds import shape
from webapp.datasets.archive import Entry, EntryUnreadable, SafeZip
from webapp.datasets.importers._common import (
    IMAGE_SUFFIXES,
    by_basename,
    clean_path,
    is_image,
    lazy_read,
    not_used,
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

FORMAT = "voc"
MAX_XML_BYTES = 4 * 1024**2
SPLIT_FILES = {"train.txt": "train", "val.txt": "val", "test.txt": "test"}


@dataclass
class _VocFile:
    entry: Entry
    file_name: str
    objects: list[SourceAnnotation]


def _is_voc(data: bytes) -> bool:
    return b"<annotation" in data


def detect(zf: SafeZip, entries: list[Entry]) -> bool:
    """True when some .xml in the ZIP is a VOC <annotation>."""
    for entry in entries:
        if entry.name.lower().endswith(".xml") and entry.size <= MAX_XML_BYTES:
            try:
                if _is_voc(zf.read(entry)):
                    return True
            except EntryUnreadable:
                continue
    return False


def read(zf: SafeZip, entries: list[Entry], kind: str) -> ImportResult:
    """Parse every annotation XML (small), then yield images lazily."""
    if not shape(kind).boxes_only:  # boxes are all the format holds
        raise wrong_kind("Pascal VOC", "detection", kind)
    parsed: list[_VocFile | Rejection] = []
    for entry in entries:
        if entry.name.lower().endswith(".xml"):
            parsed.append(_parse(zf, entry))
    names = sorted({o.category for p in parsed if isinstance(p, _VocFile) for o in p.objects})
    splits = _splits(zf, entries)
    records = _records(zf, entries, parsed, splits)
    return ImportResult(FORMAT, records, [CategoryInfo(n) for n in names])


def _parse(zf: SafeZip, entry: Entry) -> _VocFile | Rejection:
    """One annotation XML, or why it was refused."""
    if entry.size > MAX_XML_BYTES:
        return Rejection(entry.name, _("The XML file is larger than 4 MB."))
    try:
        data = zf.read(entry)
    except EntryUnreadable as exc:
        return Rejection(entry.name, str(exc))
    upper = data.upper()
    if b"<!DOCTYPE" in upper or b"<!ENTITY" in upper:
        return Rejection(
            entry.name,
            _("The XML declares a DOCTYPE or ENTITY, which Manabi refuses for safety; remove it."),
        )
    try:
        root = ET.fromstring(data)  # noqa: S314 - DTDs refused above, so no entity expansion
    except ET.ParseError as exc:
        line = exc.position[0]
        return Rejection(entry.name, _("The XML is broken near line %(line)s.") % {"line": line})
    if root.tag != "annotation":
        return Rejection(entry.name, _("Manabi does not use this file in a Pascal VOC dataset."))
    try:
        objects = [_object(obj) for obj in root.iter("object")]
    except ValueError as exc:
        return Rejection(entry.name, str(exc))
    return _VocFile(entry, (root.findtext("filename") or "").strip(), objects)


def _object(obj: ET.Element) -> SourceAnnotation:
    name = (obj.findtext("name") or "").strip()
    box = obj.find("bndbox")
    if not name or box is None:
        raise ValueError(_("An <object> needs a <name> and a <bndbox>."))
    try:
        xmin, ymin, xmax, ymax = (float(box.findtext(k) or "") for k in _CORNERS)
    except ValueError:
        raise ValueError(
            _("The <bndbox> of %(name)s needs numbers in xmin, ymin, xmax and ymax.")
            % {"name": name}
        ) from None
    if not all(map(math.isfinite, (xmin, ymin, xmax, ymax))) or xmax < xmin or ymax < ymin:
        raise ValueError(
            _("The <bndbox> of %(name)s ends before it starts or is not finite.") % {"name": name}
        )
    bbox = [xmin - 1, ymin - 1, xmax - xmin + 1, ymax - ymin + 1]  # 1-based inclusive → 0-based
    return SourceAnnotation(name, bbox, iscrowd=False)


_CORNERS = ("xmin", "ymin", "xmax", "ymax")


def _splits(zf: SafeZip, entries: list[Entry]) -> dict[str, str]:
    """Image id → split, from ImageSets/Main/{train,val,test}.txt."""
    splits: dict[str, str] = {}
    for entry in entries:
        parts = entry.name.lower().split("/")
        if parts[-3:-1] != ["imagesets", "main"] or parts[-1] not in SPLIT_FILES:
            continue
        try:
            text = zf.read(entry).decode("utf-8-sig", errors="replace")
        except EntryUnreadable:
            continue
        for line in text.splitlines():
            if line.split():
                splits[line.split()[0]] = SPLIT_FILES[parts[-1]]
    return splits


def _records(
    zf: SafeZip,
    entries: list[Entry],
    parsed: list["_VocFile | Rejection"],
    splits: dict[str, str],
) -> Iterator[SourceImage | Rejection]:
    names = {e.name: e for e in entries}
    basenames = by_basename(e for e in entries if is_image(e.name))
    used = {e.name for e in entries if _in_image_sets(e.name)}
    for voc in parsed:
        if isinstance(voc, Rejection):
            used.add(voc.path)
            yield voc
            continue
        used.add(voc.entry.name)
        image = _resolve(voc, names, basenames)
        if image is None or image.name in used:
            reason = _("No image in the ZIP matches this file (<filename>%(name)s</filename>).")
            yield Rejection(voc.entry.name, reason % {"name": voc.file_name})
            continue
        used.add(image.name)
        split = splits.get(stem(voc.entry.name))
        yield SourceImage(
            image.name, read=lazy_read(zf, image), annotations=voc.objects, split=split
        )
    for entry in entries:
        if entry.name not in used:
            yield not_used(entry, "Pascal VOC")


def _in_image_sets(name: str) -> bool:
    return "imagesets" in name.lower().split("/")[:-1]


def _resolve(
    voc: _VocFile, names: dict[str, Entry], basenames: dict[str, list[Entry]]
) -> Entry | None:
    """The image an XML describes: JPEGImages/ beside Annotations/, next to the XML, or by name."""
    here = posixpath.dirname(voc.entry.name)
    folders = [here]
    if posixpath.basename(here).lower() == "annotations":
        folders.insert(0, posixpath.join(posixpath.dirname(here), "JPEGImages"))
    file_name = posixpath.basename(clean_path(voc.file_name)) if voc.file_name else ""
    tries = [file_name] if file_name else []
    tries += [stem(voc.entry.name) + suffix for suffix in IMAGE_SUFFIXES]
    for folder in folders:
        for name in tries:
            candidate = posixpath.join(folder, name) if folder else name
            if candidate in names:
                return names[candidate]
    matches = basenames.get(file_name, [])
    return matches[0] if len(matches) == 1 else None
