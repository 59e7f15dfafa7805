"""Detection metrics: COCO's mAP and precision–recall curves, and what went wrong per image.

mAP is computed by pycocotools, COCO's own evaluator, so a student's "mAP@0.5" means what
papers and leaderboards mean by it: per class, precision is read at 101 recall levels
(0, 0.01, …, 1; interpolated: the best precision at that recall or beyond), averaged to the
class's AP; mAP is the mean over the classes that have objects in the split. mAP@0.5 counts a
box as found when it overlaps a true box of its class with IoU ≥ 0.5; mAP (0.5:0.95) averages
that over the thresholds 0.5, 0.55, …, 0.95, so it also rewards tight boxes.

Every box here is [x, y, w, h] in the ORIGINAL image's pixels, as the predictions file has it.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torchvision.ops import box_iou

from trainer.evaluation import RowsApart

# The per-image error analysis (the results page's "what went wrong").
ERROR_SCORE = 0.3  # only boxes this confident count as the model's answer
MATCH_IOU = 0.5  # a box this close to a true box of its class found it
POOR_IOU = 0.1  # between this and MATCH_IOU on the right class: found, but badly placed
# What each error adds to an image's severity ("false_positive" adds the box's score instead:
# a confident false alarm is worse than a hesitant one).
SEVERITY = {"missed": 1.0, "wrong_class": 1.0, "poor_localisation": 0.5}


@dataclass
class DetectionEvaluation(RowsApart):
    """Everything the results page shows about one evaluated split."""

    loss: float | None  # None when the detector computes no loss in eval mode
    map50: float
    map: float
    per_class: list[dict[str, Any]] = field(default_factory=list)
    pr_curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    images: int = 0
    objects: int = 0
    # One row per image (see `prediction_rows`): written to its own file, not into the result.
    predictions: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def figures(self) -> dict[str, float | None]:
        return {"loss": self.loss, "map50": self.map50, "map": self.map}


def _xyxy(boxes: Sequence[Sequence[float]]) -> torch.Tensor:
    xywh = torch.tensor(boxes, dtype=torch.float64).reshape(-1, 4)
    return torch.cat([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], dim=1)  # (n, 4)


def _coco(images: list[dict], classes: Sequence[str], annotations: list[dict]):
    """An in-memory pycocotools COCO object (its progress messages silenced)."""
    from pycocotools.coco import COCO  # imported on use: no work at import time

    coco = COCO()
    coco.dataset = {
        "images": images,
        "categories": [{"id": i + 1, "name": name} for i, name in enumerate(classes)],
        "annotations": annotations,
    }
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def coco_precision(
    gt, dt, iou_type: str, *, max_detections: int, sigmas: Sequence[float] | None = None
) -> np.ndarray:
    """pycocotools' interpolated precision of every object, whatever its size, with the top
    `max_detections` per image: (IoU or OKS thresholds 0.5…0.95, 101 recall levels, classes);
    -1 where a class has no object.

    COCOeval's defaults also evaluate small, medium and large objects apart and two more
    detection limits, which no figure here shows and which cost three times the work: this
    asks for the one area range ("all") and the one limit the figures read, which gives the
    same numbers for them."""
    from pycocotools.cocoeval import COCOeval

    evaluator = COCOeval(gt, dt, iou_type)
    evaluator.params.imgIds = sorted(gt.getImgIds())
    evaluator.params.areaRng = [[0.0, 1e10]]
    evaluator.params.areaRngLbl = ["all"]
    evaluator.params.maxDets = [max_detections]
    if sigmas is not None:
        evaluator.params.kpt_oks_sigmas = np.array(sigmas, dtype=np.float64)
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator.evaluate()
        evaluator.accumulate()
    return evaluator.eval["precision"][:, :, :, 0, 0]


def _annotations(rows: Sequence[dict], with_scores: bool) -> list[dict]:
    out: list[dict] = []
    for image_id, row in enumerate(rows, start=1):
        scores = row.get("scores") if with_scores else None
        for j, (box, label) in enumerate(zip(row["boxes"], row["labels"], strict=True)):
            w, h = float(box[2]), float(box[3])
            annotation = {
                "id": len(out) + 1,
                "image_id": image_id,
                "category_id": int(label) + 1,
                "bbox": [float(box[0]), float(box[1]), w, h],
                "area": w * h,
                "iscrowd": 0,
            }
            if scores is not None:
                annotation["score"] = float(scores[j])
            out.append(annotation)
    return out


RECALL_LEVELS = np.linspace(0.0, 1.0, 101)  # pycocotools' recThrs: 0, 0.01, …, 1


def _mean(values: np.ndarray) -> float | None:
    """The mean of COCO's precision entries that are defined (-1 marks "no objects")."""
    defined = values[values > -1]
    return float(defined.mean()) if defined.size else None


def _thin(recall: np.ndarray, precision: np.ndarray) -> dict[str, list[float]]:
    """A curve's points where precision changes (and the ends): the same line, fewer points."""
    n = len(precision)
    keep = [
        i
        for i in range(n)
        if i in (0, n - 1) or precision[i] != precision[i - 1] or precision[i] != precision[i + 1]
    ]
    return {
        "recall": [round(float(recall[i]), 4) for i in keep],
        "precision": [round(float(precision[i]), 4) for i in keep],
    }


def coco_metrics(
    truth: Sequence[dict], found: Sequence[dict], classes: Sequence[str], *, max_detections: int
) -> dict[str, Any]:
    """mAP@0.5, mAP@0.5:0.95, per-class AP and PR curves (IoU 0.5) of one split.

    `truth[i]` and `found[i]` describe image i: {"boxes": [[x, y, w, h], ...], "labels": [...]}
    (and "scores" for what was found).
    """
    images = [{"id": i} for i in range(1, len(truth) + 1)]
    gt = _coco(images, classes, _annotations(truth, with_scores=False))
    dt = _coco(images, classes, _annotations(found, with_scores=True))
    precision = coco_precision(gt, dt, "bbox", max_detections=max_detections)  # (10, 101, C)
    counts = np.bincount(
        [int(label) for row in truth for label in row["labels"]], minlength=len(classes)
    )
    per_class, curves = [], {}
    for k, name in enumerate(classes):
        per_class.append(
            {
                "name": name,
                "ap50": _mean(precision[0, :, k]),
                "ap": _mean(precision[:, :, k]),
                "objects": int(counts[k]),
            }
        )
        if counts[k]:
            curves[name] = _thin(RECALL_LEVELS, precision[0, :, k])
    return {
        "map50": _mean(precision[0]) or 0.0,
        "map": _mean(precision) or 0.0,
        "per_class": per_class,
        "pr_curves": curves,
    }


def image_errors(truth: dict, found: dict) -> tuple[list[dict[str, Any]], float]:
    """What the model got wrong in one image, and how bad that is (the sum of the weights).

    Boxes scoring at least ERROR_SCORE are taken, most confident first. One that overlaps an
    unclaimed true box of its class with IoU ≥ MATCH_IOU found it. Otherwise it is a
    "wrong_class" (IoU ≥ MATCH_IOU with a box of another class), a "poor_localisation" (IoU
    between POOR_IOU and MATCH_IOU with an unclaimed box of its class) or a "false_positive".
    A true box nothing found, and no error above already points at, is "missed".
    """
    truth_boxes, truth_labels = _xyxy(truth["boxes"]), list(truth["labels"])
    picked = [i for i, score in enumerate(found["scores"]) if score >= ERROR_SCORE]
    picked.sort(key=lambda i: -found["scores"][i])
    boxes = _xyxy([found["boxes"][i] for i in picked])
    ious = box_iou(boxes, truth_boxes)  # (picked, truth)
    claimed: set[int] = set()  # true boxes found
    explained: set[int] = set()  # true boxes an error already points at
    errors: list[dict[str, Any]] = []
    for row, i in enumerate(picked):
        label, score = int(found["labels"][i]), float(found["scores"][i])
        same = [g for g, t in enumerate(truth_labels) if t == label and g not in claimed]
        other = [g for g, t in enumerate(truth_labels) if t != label]
        best_same = max(same, key=lambda g: ious[row, g], default=None)
        best_other = max(other, key=lambda g: ious[row, g], default=None)
        iou_same = float(ious[row, best_same]) if best_same is not None else 0.0
        iou_other = float(ious[row, best_other]) if best_other is not None else 0.0
        if best_same is not None and iou_same >= MATCH_IOU:
            claimed.add(best_same)
            continue
        iou: float | None
        if best_other is not None and iou_other >= MATCH_IOU:
            kind, iou = "wrong_class", iou_other
            explained.add(best_other)
        elif best_same is not None and iou_same >= POOR_IOU:
            kind, iou = "poor_localisation", iou_same
            explained.add(best_same)
        else:
            # The overlap with the closest true box of any class, e.g. one already found.
            kind = "false_positive"
            iou = float(ious[row].max()) if truth_labels else None
        errors.append(
            {
                "type": kind,
                "box": list(found["boxes"][i]),
                "label": label,
                "score": round(score, 4),
                "iou": round(iou, 4) if iou is not None else None,
            }
        )
    for g, label in enumerate(truth_labels):
        if g not in claimed and g not in explained:
            errors.append(
                {
                    "type": "missed",
                    "box": list(truth["boxes"][g]),
                    "label": int(label),
                    "score": None,
                    "iou": None,
                }
            )
    severity = sum(
        error["score"] if error["type"] == "false_positive" else SEVERITY[error["type"]]
        for error in errors
    )
    return errors, round(severity, 4)


def prediction_rows(
    ids: Sequence[Any],
    sizes: Sequence[Sequence[float]],
    truth: Sequence[dict],
    found: Sequence[dict],
) -> list[dict[str, Any]]:
    """One row per image for predictions_val.json / predictions_test.json (docs: the seam)."""
    rows = []
    for image_id, (width, height), true, seen in zip(ids, sizes, truth, found, strict=True):
        errors, severity = image_errors(true, seen)
        rows.append(
            {
                "id": image_id,
                "width": int(round(width)),
                "height": int(round(height)),
                "boxes": seen["boxes"],
                "scores": [round(float(s), 4) for s in seen["scores"]],
                "labels": [int(label) for label in seen["labels"]],
                "truth": {"boxes": true["boxes"], "labels": [int(x) for x in true["labels"]]},
                "errors": errors,
                "severity": severity,
            }
        )
    return rows


def evaluate_detections(
    ids: Sequence[Any],
    sizes: Sequence[Sequence[float]],
    truth: Sequence[dict],
    found: Sequence[dict],
    classes: Sequence[str],
    *,
    loss: float | None,
    max_detections: int = 100,
) -> DetectionEvaluation:
    """All figures of one split, and its per-image rows, from its true and found boxes."""
    figures = coco_metrics(truth, found, classes, max_detections=max_detections)
    return DetectionEvaluation(
        loss=loss,
        map50=figures["map50"],
        map=figures["map"],
        per_class=figures["per_class"],
        pr_curves=figures["pr_curves"],
        images=len(truth),
        objects=sum(len(row["labels"]) for row in truth),
        predictions=prediction_rows(ids, sizes, truth, found),
    )
