"""How far the students who labelled the same images agree, per image and overall.

- Labels (classification): Cohen's kappa for two raters, Fleiss' kappa for any number of raters
  per image (the same number for every image counted); per image, the share of rater pairs that
  gave the same label (Fleiss' P_i: 1 when all agree).
- Boxes and masks: each pair of students' objects of an image are matched greedily, the pair
  with the highest IoU first, only within a class and only when they overlap at all; the image's
  agreement is the mean IoU over the matched pairs and the objects left unmatched (each counting
  0), so one student's extra box lowers it. IoU comes from pycocotools (boxes as boxes, polygons
  and brush masks as masks). Two students who both drew nothing agree fully (1).
- Keypoints: the same matching with COCO's object keypoint similarity (OKS) instead of IoU.
- More than two students on an image: the mean over every pair of them.

Everything here is plain arithmetic on the annotation JSON of the studio contract; nothing reads
the database (webapp.labelling.queries gathers the students' versions).
"""

import math
from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np

from trainer import kinds as trainer_kinds
from webapp.datasets import masks

Annotation = dict[str, Any]  # the studio contract's annotation JSON
EPS = float(np.spacing(1))  # pycocotools' guard against a zero area in OKS
DEFAULT_SIGMA = 0.05  # a keypoint's OKS spread when its class names none (trainer's default)


# --- labels ----------------------------------------------------------------------------------


def cohen_kappa(first: Sequence[Hashable], second: Sequence[Hashable]) -> float | None:
    """Cohen's kappa of two raters' labels of the same items (None when it is undefined: no
    items, or both raters used one and the same class for everything, so chance explains all)."""
    if len(first) != len(second):
        raise ValueError("both raters must label the same items")
    n = len(first)
    if not n:
        return None
    observed = sum(a == b for a, b in zip(first, second, strict=True)) / n
    count_a, count_b = Counter(first), Counter(second)
    expected = sum(count_a[c] * count_b[c] for c in count_a) / (n * n)
    if expected >= 1:
        return None
    return (observed - expected) / (1 - expected)


def fleiss_table(ratings: Sequence[Sequence[Hashable]]) -> list[list[int]]:
    """Items × classes counts (how many raters put item i in class j) from each item's labels."""
    classes = sorted({label for labels in ratings for label in labels}, key=repr)
    column = {label: j for j, label in enumerate(classes)}
    table = [[0] * len(classes) for _ in ratings]
    for i, labels in enumerate(ratings):
        for label in labels:
            table[i][column[label]] += 1
    return table


def pair_agreement(labels: Sequence[Hashable]) -> float:
    """Fleiss' P_i: the share of the item's rater pairs that agree (1.0 for a single rater)."""
    n = len(labels)
    if n < 2:
        return 1.0
    return (sum(k * k for k in Counter(labels).values()) - n) / (n * (n - 1))


def fleiss_kappa(table: Sequence[Sequence[int]]) -> float | None:
    """Fleiss' kappa of an items × classes table of counts; every row must add up to the same
    number of raters n ≥ 2 (None when undefined: no items, or every rating in one class)."""
    if not table:
        return None
    n = sum(table[0])
    if n < 2 or any(sum(row) != n for row in table):
        raise ValueError("every item needs the same number (at least 2) of ratings")
    items = len(table)
    p_bar = sum((sum(k * k for k in row) - n) / (n * (n - 1)) for row in table) / items
    shares = [sum(row[j] for row in table) / (items * n) for j in range(len(table[0]))]
    p_expected = sum(p * p for p in shares)
    if p_expected >= 1:
        return None
    return (p_bar - p_expected) / (1 - p_expected)


# --- objects: IoU and OKS ------------------------------------------------------------------


def _box_rle(bbox, height: int, width: int):
    from pycocotools import mask as coco_mask

    x, y, w, h = bbox
    return coco_mask.frPyObjects([[x, y, x + w, y, x + w, y + h, x, y + h]], height, width)[0]


def _mask_rle(annotation: Annotation, height: int, width: int):
    """The annotation's region as a pycocotools RLE: its polygons or brush mask, else its box."""
    from pycocotools import mask as coco_mask

    segmentation = annotation.get("segmentation")
    if masks.is_rle(segmentation):
        try:
            masks.check_rle(segmentation)  # pycocotools trusts the runs; never hand it bad ones
        except masks.MaskError:
            return None
        counts = segmentation["counts"]
        if isinstance(counts, str):
            return {"size": list(segmentation["size"]), "counts": counts.encode("ascii")}
        return coco_mask.frPyObjects(segmentation, *segmentation["size"])
    polygons = [p for p in segmentation or [] if len(p) >= 6]
    if polygons:
        return coco_mask.merge(coco_mask.frPyObjects(polygons, height, width))
    if annotation.get("bbox"):
        return _box_rle(annotation["bbox"], height, width)
    return None


def iou_matrix(
    first: Sequence[Annotation], second: Sequence[Annotation], *, masks_too: bool, size=(1, 1)
) -> np.ndarray:
    """(len(first), len(second)) IoU of every pair: by box, or by region when `masks_too`
    (`size` = the image's (height, width), which polygons are drawn into)."""
    from pycocotools import mask as coco_mask

    out = np.zeros((len(first), len(second)))  # (A, B)
    if not len(first) or not len(second):
        return out
    if not masks_too:
        boxes_a = np.array([a.get("bbox") or [0, 0, 0, 0] for a in first], dtype=float)
        boxes_b = np.array([b.get("bbox") or [0, 0, 0, 0] for b in second], dtype=float)
        return np.asarray(coco_mask.iou(boxes_a, boxes_b, [0] * len(second))).reshape(out.shape)
    height, width = size
    rles_a = [_mask_rle(a, height, width) for a in first]
    rles_b = [_mask_rle(b, height, width) for b in second]
    for i, ra in enumerate(rles_a):
        for j, rb in enumerate(rles_b):
            if ra is not None and rb is not None and ra["size"] == rb["size"]:
                out[i, j] = float(np.asarray(coco_mask.iou([ra], [rb], [0])).reshape(-1)[0])
    return out


def _extent(annotation: Annotation) -> float:
    """The area OKS scales by: the annotation's box, else its labelled points' extent."""
    if annotation.get("bbox"):
        return float(annotation["bbox"][2] * annotation["bbox"][3])
    points = annotation.get("keypoints") or []
    xs = [points[i] for i in range(0, len(points) - 2, 3) if points[i + 2] > 0]
    ys = [points[i + 1] for i in range(0, len(points) - 2, 3) if points[i + 2] > 0]
    return float((max(xs) - min(xs)) * (max(ys) - min(ys))) if xs else 0.0


def oks(first: Annotation, second: Annotation, sigmas: Sequence[float]) -> float:
    """COCO's object keypoint similarity between two people's annotations of one figure (σ per
    keypoint; DEFAULT_SIGMA for those `sigmas` does not reach), made symmetric: area = the mean
    of their two box areas; a keypoint labelled (v > 0) by both adds exp(−d² / (2 · area ·
    (2σ)²)), one labelled by only one of them adds 0, one labelled by neither is left out; the
    mean of the terms (1.0 when neither labelled any keypoint)."""
    a, b = first.get("keypoints") or [], second.get("keypoints") or []
    area = (_extent(first) + _extent(second)) / 2
    count = max(len(a), len(b)) // 3
    sigmas = list(sigmas)[:count] + [DEFAULT_SIGMA] * (count - len(sigmas))
    terms = []
    for k, sigma in enumerate(sigmas):
        ax, ay, av = a[3 * k : 3 * k + 3] if len(a) >= 3 * k + 3 else (0, 0, 0)
        bx, by, bv = b[3 * k : 3 * k + 3] if len(b) >= 3 * k + 3 else (0, 0, 0)
        if av > 0 and bv > 0:
            squared = (ax - bx) ** 2 + (ay - by) ** 2
            terms.append(math.exp(-squared / (2 * (area + EPS) * (2 * sigma) ** 2)))
        elif av > 0 or bv > 0:
            terms.append(0.0)
    return sum(terms) / len(terms) if terms else 1.0


def oks_matrix(
    first: Sequence[Annotation],
    second: Sequence[Annotation],
    sigmas: Mapping[int, Sequence[float]],
) -> np.ndarray:
    """(len(first), len(second)) OKS of every pair, with the sigmas of the first one's class
    (DEFAULT_SIGMA for each keypoint of a class that names none)."""
    out = np.zeros((len(first), len(second)))  # (A, B)
    for i, a in enumerate(first):
        for j, b in enumerate(second):
            out[i, j] = oks(a, b, sigmas.get(a.get("category"), ()))
    return out


def match_mean(
    first: Sequence[Annotation], second: Sequence[Annotation], similarity: np.ndarray
) -> float:
    """Greedy matching, most similar pair first, within a class and above 0; the mean over the
    matched pairs' similarities and the unmatched objects of both sides (0 each)."""
    if not len(first) and not len(second):
        return 1.0
    pairs = sorted(
        (
            (-float(similarity[i, j]), i, j)
            for i, a in enumerate(first)
            for j, b in enumerate(second)
            if a.get("category") == b.get("category") and similarity[i, j] > 0
        )
    )
    used_a: set[int] = set()
    used_b: set[int] = set()
    total = 0.0
    for negative, i, j in pairs:
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            total -= negative
    units = len(first) + len(second) - len(used_a)  # matched pairs + the unmatched objects
    return total / units


def object_agreement(
    kind: str,
    first: Sequence[Annotation],
    second: Sequence[Annotation],
    *,
    size=(1, 1),
    sigmas: Mapping[int, Sequence[float]] | None = None,
) -> float:
    """Two students' objects of one image: mean IoU (detection: boxes; segmentation: regions)
    or mean OKS (keypoints), unmatched objects counting 0."""
    shape = trainer_kinds.shape(kind)
    if shape.has_keypoints:
        return match_mean(first, second, oks_matrix(first, second, sigmas or {}))
    similarity = iou_matrix(first, second, masks_too=shape.has_masks, size=size)
    return match_mean(first, second, similarity)


# --- an assignment ---------------------------------------------------------------------------


def image_agreement(versions: Sequence[Any], pairwise: Callable[[Any, Any], float]) -> float:
    """The mean of `pairwise` over every pair of the students' versions of one image."""
    scores = [pairwise(a, b) for a, b in combinations(versions, 2)]
    return sum(scores) / len(scores) if scores else 1.0


def label_summary(labels_by_image: dict[Any, dict[int, Hashable]]) -> dict:
    """Figures for the images whose students all labelled them: {image: {student: label}}.

    Returns {"kappa_images": n, "observed": mean P_i, "fleiss": κ | None, "cohen": κ | None (only
    when the same two students labelled every image counted), "raters": n per image | None}.
    Images with another number of labels than the most common one are left out of kappa.
    """
    rows = {image: labels for image, labels in labels_by_image.items() if len(labels) >= 2}
    if not rows:
        return {
            "kappa_images": 0,
            "observed": None,
            "fleiss": None,
            "cohen": None,
            "raters": None,
        }
    raters = Counter(len(labels) for labels in rows.values()).most_common(1)[0][0]
    rows = {image: labels for image, labels in rows.items() if len(labels) == raters}
    ratings = [list(labels.values()) for labels in rows.values()]
    observed = sum(pair_agreement(r) for r in ratings) / len(ratings)
    cohen = None
    pairs = {tuple(sorted(labels)) for labels in rows.values()}
    if raters == 2 and len(pairs) == 1:
        first, second = next(iter(pairs))
        cohen = cohen_kappa(
            [labels[first] for labels in rows.values()],
            [labels[second] for labels in rows.values()],
        )
    return {
        "kappa_images": len(rows),
        "observed": observed,
        "fleiss": fleiss_kappa(fleiss_table(ratings)),
        "cohen": cohen,
        "raters": raters,
    }
