"""Keypoint metrics: PCK@0.1, OKS-based AP (COCO's, through pycocotools) and per-keypoint error.

- PCK@0.1 ("percentage of correct keypoints"): the share of labelled keypoints (v > 0) whose
  predicted point lies within 0.1 × max(box width, box height) of the truth, the box being the
  figure's annotated box, else the extent of its labelled keypoints. Per keypoint too, with the
  mean distance as a share of that box size ("error").
- OKS AP: COCO's keypoint AP. The object keypoint similarity of a predicted person to a true
  one is the mean over the true person's labelled keypoints of exp(−d² / (2 · area · (2σ)²)),
  d the distance, area the true box's w × h (COCO uses the person's segment area; a box is what
  a keypoint dataset here has) and σ the keypoint's own spread (a hip is harder to place
  exactly than an eye). AP averages precision over OKS thresholds 0.5, 0.55, …, 0.95 like box
  AP does over IoU; AP50 is at 0.5 alone. pycocotools assumes COCO's 17 keypoints unless told:
  its `kpt_oks_sigmas` is set to the dataset's sigmas, COCO's own when the names are COCO's 17,
  else 0.05 each (the "sigmas" of a data set's KeypointSchema override both).

The default model finds one figure per image, the first annotated one (the image's "target"):
PCK, the error and the predictions rows are about that figure; OKS AP counts every annotated
person, so a one-figure model misses the others. Every coordinate here is in the ORIGINAL
image's pixels.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trainer.evaluation import RowsApart

PCK_SHARE = 0.1  # of the box's longer side
DEFAULT_SIGMA = 0.05
COCO_NAMES = [
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
]  # fmt: skip
COCO_SIGMAS = [
    0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107,
    0.087, 0.087, 0.089, 0.089,
]  # fmt: skip

Person = dict[str, Any]  # {"keypoints": [[x, y, v or score], ...], "box": [x, y, w, h], "score"}


@dataclass
class KeypointsEvaluation(RowsApart):
    """Everything the results page shows about one evaluated split."""

    loss: float | None  # None when the model computes no loss in eval mode
    pck: float | None  # None when the split has no labelled keypoint
    oks_ap: float | None
    oks_ap50: float | None
    per_keypoint: list[dict[str, Any]] = field(default_factory=list)
    images: int = 0
    people: int = 0
    # One row per image (see `prediction_row`): written to its own file, not into the result.
    predictions: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def figures(self) -> dict[str, float | None]:
        return {"loss": self.loss, "pck": self.pck, "oks_ap": self.oks_ap}


def default_sigmas(names: Sequence[str]) -> list[float]:
    """COCO's 17 sigmas when the names are COCO's 17 (in its order), else 0.05 each."""
    if list(names) == COCO_NAMES:
        return list(COCO_SIGMAS)
    return [DEFAULT_SIGMA] * len(names)


def box_size(person: Person) -> float:
    """max(box w, box h) of a true person (its box is the annotation's or the points' extent)."""
    return float(max(person["box"][2], person["box"][3]))


def oks(
    predicted: Sequence[Sequence[float]], truth: Person, sigmas: Sequence[float]
) -> float | None:
    """COCO's object keypoint similarity of predicted points to a true person (None when the
    truth labels no keypoint); pycocotools' formula, with area = the true box's w × h."""
    area = truth["box"][2] * truth["box"][3]
    terms = []
    for (px, py, *_), (tx, ty, v), sigma in zip(predicted, truth["keypoints"], sigmas, strict=True):
        if v > 0:
            squared = (px - tx) ** 2 + (py - ty) ** 2
            terms.append(math.exp(-squared / (2 * (area + np.spacing(1)) * (2 * sigma) ** 2)))
    return sum(terms) / len(terms) if terms else None


def _distances(predicted: Sequence[Sequence[float]], truth: Person) -> list[float | None]:
    """Per keypoint, the distance to the truth as a share of the box size (None: unlabelled)."""
    size = box_size(truth)
    out: list[float | None] = []
    for (px, py, *_), (tx, ty, v) in zip(predicted, truth["keypoints"], strict=True):
        out.append(math.hypot(px - tx, py - ty) / size if v > 0 and size > 0 else None)
    return out


def match(found: Sequence[Person], truth: Person, sigmas: Sequence[float]) -> Person | None:
    """The predicted person that is this true one: the highest OKS (None when none is found)."""
    if not found:
        return None
    return max(found, key=lambda person: oks(person["keypoints"], truth, sigmas) or 0.0)


def prediction_row(
    image_id: Any, width: float, height: float, truth: Sequence[Person], found: Sequence[Person],
    sigmas: Sequence[float],
) -> dict[str, Any]:  # fmt: skip
    """One image's row of predictions_<split>.json: its target figure and the model's answer."""
    target = truth[0] if truth else None
    chosen = match(found, target, sigmas) if target else (found[0] if found else None)
    predicted = [list(point) for point in chosen["keypoints"]] if chosen else []
    errors: list[float | None] = []
    pck = oks_value = error = None
    if target is not None:
        errors = _distances(predicted, target) if chosen else [None] * len(target["keypoints"])
        labelled = [v for _, _, v in target["keypoints"] if v > 0]
        if box_size(target) > 0 and labelled:
            hits = sum(1 for e in errors if e is not None and e <= PCK_SHARE)
            pck = hits / len(labelled)
        known = [e for e in errors if e is not None]
        error = sum(known) / len(known) if known else None
        oks_value = oks(predicted, target, sigmas) if chosen else 0.0
    return {
        "id": image_id,
        "width": int(round(width)),
        "height": int(round(height)),
        "pck": _round(pck),
        "oks": _round(oks_value),
        "error": _round(error),
        "truth": [list(point) for point in target["keypoints"]] if target else None,
        "predicted": predicted,
        "errors": [_round(e) for e in errors],
        "box": list(target["box"]) if target else None,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def evaluate_keypoints(
    ids: Sequence[Any],
    sizes: Sequence[Sequence[float]],
    truth: Sequence[Sequence[Person]],
    found: Sequence[Sequence[Person]],
    names: Sequence[str],
    sigmas: Sequence[float],
    *,
    loss: float | None = None,
) -> KeypointsEvaluation:
    """PCK@0.1, OKS AP and AP50, per-keypoint PCK and error, and the per-image rows of a split.

    `truth[i]` are image i's people {"keypoints": [[x, y, v], ...], "box": [x, y, w, h]} (the
    first is the one-figure model's target); `found[i]` the predicted people {"keypoints":
    [[x, y, score], ...], "score", "box"}; all in original pixels.
    """
    rows = [
        prediction_row(image_id, width, height, true, seen, sigmas)
        for image_id, (width, height), true, seen in zip(ids, sizes, truth, found, strict=True)
    ]
    count = len(names)
    hits, labelled = [0] * count, [0] * count
    error_sums, error_counts = [0.0] * count, [0] * count
    for row in rows:
        if row["truth"] is None or row["pck"] is None:
            continue
        for k, ((_, _, v), e) in enumerate(zip(row["truth"], row["errors"], strict=True)):
            if v > 0:
                labelled[k] += 1
                hits[k] += int(e is not None and e <= PCK_SHARE)
            if e is not None:
                error_sums[k] += e
                error_counts[k] += 1
    per_keypoint = [
        {
            "name": name,
            "pck": hits[k] / labelled[k] if labelled[k] else None,
            "error": error_sums[k] / error_counts[k] if error_counts[k] else None,
            "labelled": labelled[k],
        }
        for k, name in enumerate(names)
    ]
    total = sum(labelled)
    ap, ap50 = coco_keypoint_ap(truth, found, sigmas)
    return KeypointsEvaluation(
        loss=loss,
        pck=sum(hits) / total if total else None,
        oks_ap=ap,
        oks_ap50=ap50,
        per_keypoint=per_keypoint,
        images=len(rows),
        people=sum(len(people) for people in truth),
        predictions=rows,
    )


def coco_keypoint_ap(
    truth: Sequence[Sequence[Person]], found: Sequence[Sequence[Person]], sigmas: Sequence[float]
) -> tuple[float | None, float | None]:
    """pycocotools' keypoint AP@[.5:.95] and AP@.5 with these sigmas (None: no true person)."""
    from pycocotools.coco import COCO

    from trainer.detection_metrics import coco_precision

    images = [{"id": i} for i in range(1, len(truth) + 1)]
    gt_annotations: list[dict[str, Any]] = []
    dt_annotations: list[dict[str, Any]] = []
    for image_id, (people, seen) in enumerate(zip(truth, found, strict=True), start=1):
        for person in people:
            gt_annotations.append(_annotation(person, image_id, len(gt_annotations) + 1))
        for person in seen:
            one = _annotation(person, image_id, len(dt_annotations) + 1)
            one["score"] = float(person["score"])
            dt_annotations.append(one)
    if not gt_annotations:
        return None, None
    coco = []
    for listed in (gt_annotations, dt_annotations):
        dataset = COCO()
        dataset.dataset = {
            "images": images,
            "categories": [{"id": 1, "name": "person"}],
            "annotations": listed,
        }
        with contextlib.redirect_stdout(io.StringIO()):
            dataset.createIndex()
        coco.append(dataset)
    # COCO's keypoint evaluation keeps the 20 most confident people of an image
    precision = coco_precision(coco[0], coco[1], "keypoints", max_detections=20, sigmas=sigmas)[
        :, :, 0
    ]  # (OKS thresholds 10, recall levels 101): the one category
    return _mean(precision), _mean(precision[0])


def _annotation(person: Person, image_id: int, number: int) -> dict[str, Any]:
    """A person as a COCO annotation: flat keypoints, box, area (w × h), num_keypoints."""
    points = person["keypoints"]
    x, y, w, h = (float(v) for v in person["box"])
    return {
        "id": number,
        "image_id": image_id,
        "category_id": 1,
        "keypoints": [float(value) for point in points for value in point[:3]],
        "num_keypoints": sum(1 for point in points if point[2] > 0),
        "bbox": [x, y, w, h],
        "area": w * h,
        "iscrowd": 0,
    }


def _mean(values: np.ndarray) -> float | None:
    """The mean of COCO's precision entries that are defined (-1 marks "no people")."""
    defined = values[values > -1]
    return float(defined.mean()) if defined.size else None
