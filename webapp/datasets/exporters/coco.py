"""COCO export: images/<file_name> and annotations/instances_<split>.json for each split present.

Image and annotation ids count from 1 across the whole export; category ids are 1-based in the
order of `categories`. Boxes, polygons, RLE masks (compressed or not, as uploaded), iscrowd and
keypoints with their visibility flags are written as stored; num_keypoints counts the labelled
ones (v > 0) and area is the polygons' or the mask's; a keypoint category carries its names and
1-based skeleton, and its OKS "sigmas" when it has its own. What this writes, the COCO
importer reads back to the same annotations.
Manabi's extension for classification: each image gets one annotation with its category_id and
no "bbox", which Manabi's COCO importer reads back as the image's class.
"""

import json
from collections.abc import Iterable, Iterator

from trainer.kinds import shape
from webapp.datasets import masks
from webapp.datasets.exporters._zipstream import ExportItem, ZipFile, zip_stream
from webapp.datasets.records import KINDS, CategoryInfo, SourceAnnotation


def export_coco(
    items: Iterable[ExportItem], categories: list[CategoryInfo], kind: str
) -> Iterator[bytes]:
    """Stream a COCO ZIP; the JSON files come last, once every image has been written."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    return zip_stream(_files(items, list(categories), kind))


def _files(
    items: Iterable[ExportItem], categories: list[CategoryInfo], kind: str
) -> Iterator[ZipFile]:
    ids = {c.name: i for i, c in enumerate(categories, 1)}
    docs: dict[str, dict[str, list]] = {}
    next_annotation = 1
    for image_id, item in enumerate(items, 1):
        yield f"images/{item.file_name}", item.read, False
        doc = docs.setdefault(item.split or "train", {"images": [], "annotations": []})
        doc["images"].append(
            {
                "id": image_id,
                "file_name": item.file_name,
                "width": item.width,
                "height": item.height,
            }
        )
        if shape(kind).one_label_per_image:
            labels = [item.label] if item.label is not None else []
            anns = [{"category_id": _category_id(name, ids, categories)} for name in labels]
        else:
            anns = [
                _annotation(a, _category_id(a.category, ids, categories)) for a in item.annotations
            ]
        for ann in anns:
            doc["annotations"].append(
                {"id": next_annotation, "image_id": image_id, "iscrowd": 0} | ann
            )
            next_annotation += 1
    for split, doc in docs.items():
        body = json.dumps(
            {
                "info": {"description": "Exported from Manabi"},
                "licenses": [],
                **doc,
                "categories": [_category(i, c) for i, c in enumerate(categories, 1)],
            },
            ensure_ascii=False,
        ).encode()
        yield f"annotations/instances_{split}.json", lambda body=body: body, True


def _category_id(name: str, ids: dict[str, int], categories: list[CategoryInfo]) -> int:
    """The name's 1-based id; a name missing from `categories` is added at the end."""
    if name not in ids:
        categories.append(CategoryInfo(name))
        ids[name] = len(categories)
    return ids[name]


def _category(category_id: int, info: CategoryInfo) -> dict:
    category = {"id": category_id, "name": info.name, "supercategory": ""}
    if info.keypoints:
        category |= {"keypoints": info.keypoints, "skeleton": info.skeleton}
        if info.sigmas and len(info.sigmas) == len(info.keypoints):
            category["sigmas"] = info.sigmas  # read back by the COCO importer
    return category


def _annotation(ann: SourceAnnotation, category_id: int) -> dict:
    segmentation = ann.segmentation or []  # polygons, or an RLE dict kept as uploaded
    polygons = [] if masks.is_rle(segmentation) else segmentation
    bbox = ann.bbox or _bbox_around(polygons, ann.keypoints or [])
    area = masks.area(segmentation) if segmentation else bbox[2] * bbox[3]
    fields = {
        "category_id": category_id,
        "bbox": bbox,
        "area": area,
        "iscrowd": int(ann.iscrowd),
        "segmentation": segmentation,
    }
    if ann.keypoints is not None:
        visible = sum(1 for v in ann.keypoints[2::3] if v > 0)
        fields |= {"keypoints": ann.keypoints, "num_keypoints": visible}
    return fields


def _bbox_around(polygons: list[list[float]], keypoints: list[float]) -> list[float]:
    """The box around the polygons, else around the labelled keypoints."""
    xs = [v for p in polygons for v in p[0::2]]
    ys = [v for p in polygons for v in p[1::2]]
    if not xs:
        labelled = [i for i in range(0, len(keypoints), 3) if keypoints[i + 2] > 0]
        xs, ys = [keypoints[i] for i in labelled], [keypoints[i + 1] for i in labelled]
    if not xs:
        raise ValueError("an annotation has no bbox, polygon or labelled keypoint")
    return [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
