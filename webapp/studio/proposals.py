"""A run's answers (the seam's `predict`, docs/architecture.md "Try it answers") → proposals.

A proposal is what `webapp.datasets.drafts.write_proposals` takes: an annotation's fields in the
studio's JSON shape (`item`, `category`, `bbox`, `segmentation`, `keypoints`, `iscrowd`) with
its `score`, or for classification an image's proposed label (`item`, `category`, `score`) with
the per-class `scores` ({category index: score}). The run's classes are matched to the
dataset's by name; a class the dataset does not have proposes nothing. Everything here is plain
Python and numpy (pycocotools for the masks): it runs on a worker, after the trainer answered.
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from webapp.datasets import masks

DETECTION_FLOOR = 0.3  # boxes less sure than this are not worth a student's look
KEYPOINT_FLOOR = 0.1  # a point the model is less sure of than this is proposed as absent
MAX_PER_IMAGE = 100  # proposals of one image at most, surest first
SCORES_KEPT = 10  # a classification proposal's per-class scores, highest first


@dataclass
class Classes:
    """The dataset's classes as a run's answers are read: name → category index, and the
    keypoint names of each class that has a keypoint set."""

    index: dict[str, int]
    keypoints: dict[int, list[str]] = field(default_factory=dict)


def _round(value: float) -> float:
    return round(float(value), 4)


def classification(answer: dict, item: str, classes: Classes) -> list[dict]:
    """The top class as the image's proposed label, with the per-class scores it beat."""
    top = [row for row in answer.get("top", []) if row.get("class") in classes.index]
    if not top:
        return []
    top.sort(key=lambda row: -row["probability"])
    scores = {str(classes.index[row["class"]]): _round(row["probability"]) for row in top}
    best = top[0]
    return [
        {
            "item": item,
            "category": classes.index[best["class"]],
            "score": _round(best["probability"]),
            "scores": dict(list(scores.items())[:SCORES_KEPT]),
        }
    ]


def detection(answer: dict, item: str, classes: Classes) -> list[dict]:
    """One box per object found at DETECTION_FLOOR or surer, in the image's pixels."""
    found = []
    for row in sorted(answer.get("boxes", []), key=lambda row: -row["score"]):
        if row["score"] < DETECTION_FLOOR or row.get("class") not in classes.index:
            continue
        x, y, w, h = (float(v) for v in row["box"])
        if w <= 0 or h <= 0:
            continue
        found.append(
            {
                "item": item,
                "category": classes.index[row["class"]],
                "bbox": [round(x, 2), round(y, 2), round(w, 2), round(h, 2)],
                "segmentation": None,
                "keypoints": None,
                "iscrowd": False,
                "score": _round(row["score"]),
            }
        )
    return found[:MAX_PER_IMAGE]


def _resized(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """A (S, S) mask at the model's input size → (height, width), nearest pixel: the image was
    squashed to S × S, so each photo pixel reads the input pixel under its centre."""
    size_y, size_x = mask.shape
    rows = np.minimum(((np.arange(height) + 0.5) * size_y / height).astype(np.int64), size_y - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * size_x / width).astype(np.int64), size_x - 1)
    return mask[rows[:, None], cols[None, :]]  # (height, width)


def encode_rle(mask: np.ndarray) -> dict[str, Any]:
    """A (h, w) mask → COCO compressed RLE {"size": [h, w], "counts": str}."""
    from pycocotools import mask as mask_util

    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def segmentation(answer: dict, item: str, classes: Classes) -> list[dict]:
    """One mask per class found, as COCO compressed RLE at the image's size, with its box; the
    score is the model's mean confidence over the class's pixels where the answer gives one."""
    width, height = int(answer["width"]), int(answer["height"])
    size = [int(v) for v in answer["size"]]
    found = []
    for row in answer.get("classes", []):
        name, channel = row.get("name"), str(row.get("index"))
        counts = answer.get("masks", {}).get(channel)
        if name not in classes.index or counts is None:
            continue
        mask = _resized(masks.rle_mask({"size": size, "counts": counts}), height, width)
        if not mask.any():
            continue
        rle = encode_rle(mask)
        found.append(
            {
                "item": item,
                "category": classes.index[name],
                "bbox": masks.rle_bbox(rle),
                "segmentation": rle,
                "keypoints": None,
                "iscrowd": False,
                "score": _round(row.get("score", 1.0)),
            }
        )
    return found[:MAX_PER_IMAGE]


def _keypoint_class(names: list[str], classes: Classes) -> int | None:
    """The dataset's class whose keypoint set shares the most names with the run's."""
    best, shared = None, 0
    for index, kept in classes.keypoints.items():
        common = len(set(kept) & set(names))
        if common > shared:
            best, shared = index, common
    return best


def keypoints(answer: dict, item: str, classes: Classes) -> list[dict]:
    """One skeleton per person, its points in the dataset's keypoint order (matched by name):
    visible where the model is at least KEYPOINT_FLOOR sure, absent elsewhere."""
    names = list(answer.get("names", []))
    category = _keypoint_class(names, classes)
    if category is None:
        return []
    order = classes.keypoints[category]
    found = []
    for person in sorted(answer.get("people", []), key=lambda p: -p["score"]):
        at = {point["name"]: point for point in person.get("keypoints", [])}
        flat: list[float] = []
        for name in order:
            point = at.get(name)
            if point is None or point["score"] < KEYPOINT_FLOOR:
                flat += [0.0, 0.0, 0]
            else:
                flat += [round(float(point["x"]), 2), round(float(point["y"]), 2), 2]
        if not any(flat[2::3]):
            continue
        x, y, w, h = (float(v) for v in person["box"])
        found.append(
            {
                "item": item,
                "category": category,
                "bbox": [round(x, 2), round(y, 2), round(w, 2), round(h, 2)],
                "segmentation": None,
                "keypoints": flat,
                "iscrowd": False,
                "score": _round(person["score"]),
            }
        )
    return found[:MAX_PER_IMAGE]


CONVERT = {
    "classification": classification,
    "detection": detection,
    "segmentation": segmentation,
    "keypoints": keypoints,
}


def proposals_of(kind: str, answer: dict, item: str, classes: Classes) -> list[dict]:
    """The proposals of one image from the run's answer for it."""
    return CONVERT[kind](answer, item, classes)
