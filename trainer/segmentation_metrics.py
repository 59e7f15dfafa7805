"""Segmentation metrics: IoU and Dice per class, their means, pixel accuracy; segm AP.

Everything is read off one confusion matrix of pixels accumulated over the split
(`torch.bincount` of truth × channels + prediction), rows the true class, columns the predicted
one, channel 0 the background:

- IoU of a class = true positives / (true + predicted − true positives): the overlap of the
  predicted region with the true one over their union (Jaccard). Dice = 2 TP / (true +
  predicted), the F1 score of the class's pixels; always ≥ its IoU.
- mIoU and mean Dice average over the FOREGROUND classes that occur in the split's truth or
  predictions: a class that is in neither has no IoU to count (0/0), and the background, usually
  most of the picture and easy, would flatter every model.
- Pixel accuracy counts every pixel, background included.

Pixels marked IGNORE in the truth (objects with a box but no outline) count for nothing. For
instance models (Mask R-CNN) `segm_ap` is COCO's mask AP@[.5:.95] and `segm_ap50` its AP@0.5,
computed by pycocotools like detection's mAP (trainer.detection_metrics) but on mask overlaps.

The per-image rows of predictions_val.json / predictions_test.json hold each image's figures and
its true and predicted class regions as COCO compressed RLE (pycocotools.mask.encode of the
Fortran-ordered uint8 mask at the evaluated size, counts as an ASCII string).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from trainer.evaluation import RowsApart


@dataclass
class SegmentationEvaluation(RowsApart):
    """Everything the results page shows about one evaluated split."""

    loss: float | None  # None for Mask R-CNN (torchvision computes no loss in eval mode)
    miou: float | None
    dice: float | None
    pixel_accuracy: float | None
    per_class: list[dict[str, Any]] = field(default_factory=list)
    images: int = 0
    segm_ap: float | None = None
    segm_ap50: float | None = None
    # One row per image (`prediction_row`): written to its own file, not into the result.
    predictions: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def figures(self) -> dict[str, float | None]:
        return {
            "loss": self.loss,
            "miou": self.miou,
            "dice": self.dice,
            "pixel_accuracy": self.pixel_accuracy,
        }


def confusion(truth: Tensor, predicted: Tensor, channels: int) -> Tensor:
    """(channels, channels) int64 pixel counts, rows true, columns predicted; IGNORE and
    anything outside 0..channels-1 in the truth are left out. Runs where the tensors are."""
    truth, predicted = truth.reshape(-1).long(), predicted.reshape(-1).long()
    valid = (truth >= 0) & (truth < channels)
    cells = truth[valid] * channels + predicted[valid].clamp(0, channels - 1)
    return torch.bincount(cells, minlength=channels * channels).reshape(channels, channels)


def class_figures(matrix: Tensor, names: Sequence[str]) -> dict[str, Any]:
    """IoU, Dice and pixels per channel; the foreground means; pixel accuracy.

    `names` are the channels' names, background first. The matrix may have more columns than
    names (a "predicted something the truth cannot be" column): they only count as wrong."""
    m = matrix.double().cpu()
    n = len(names)
    hits = m.diagonal()[:n]
    true = m[:n].sum(dim=1)  # (n,) pixels of each class in the truth
    found = m[:, :n].sum(dim=0)  # (n,) pixels predicted as each class
    union = true + found - hits
    per_class: list[dict] = []
    ious: list[float] = []
    dices: list[float] = []
    for c, name in enumerate(names):
        occurs = bool(union[c] > 0)
        iou = float(hits[c] / union[c]) if occurs else None
        dice = float(2 * hits[c] / (true[c] + found[c])) if occurs else None
        per_class.append(
            {
                "name": name,
                "iou": iou,
                "dice": dice,
                "pixels": int(true[c]),
                "background": c == 0,
            }
        )
        if c > 0 and iou is not None and dice is not None:  # a foreground class that occurs
            ious.append(iou)
            dices.append(dice)
    total = float(m.sum())
    return {
        "miou": sum(ious) / len(ious) if ious else None,
        "dice": sum(dices) / len(dices) if dices else None,
        "pixel_accuracy": float(hits.sum()) / total if total else None,
        "per_class": per_class,
    }


def encode(mask: np.ndarray) -> str:
    """A (h, w) bool/uint8 mask → COCO compressed RLE counts, as an ASCII string."""
    from pycocotools import mask as mask_util

    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    return rle["counts"].decode("ascii")


def regions(class_map: np.ndarray) -> dict[str, str]:
    """{"<channel>": RLE counts} for every class present in a (h, w) map, background left out."""
    present = [int(c) for c in np.unique(class_map) if c > 0]
    return {str(c): encode(class_map == c) for c in present}


def prediction_row(
    image_id: Any,
    original: Sequence[float],
    truth: np.ndarray,
    predicted: np.ndarray,
    channels: int,
) -> dict[str, Any]:
    """One image's row of the predictions file (docs/architecture.md, the seam)."""
    matrix = confusion(torch.from_numpy(truth), torch.from_numpy(predicted), channels)
    figures = class_figures(matrix, [str(c) for c in range(channels)])
    classes_iou = {
        row["name"]: round(row["iou"], 4)
        for row in figures["per_class"][1:]
        if row["iou"] is not None
    }
    width, height = original
    return {
        "id": image_id,
        "width": int(round(width)),
        "height": int(round(height)),
        "size": [int(truth.shape[0]), int(truth.shape[1])],
        "iou": _rounded(figures["miou"]),
        "dice": _rounded(figures["dice"]),
        "pixel_accuracy": _rounded(figures["pixel_accuracy"]) or 0.0,
        "truth": regions(truth),
        "predicted": regions(predicted),
        "classes_iou": classes_iou,
    }


def _rounded(value: float | None) -> float | None:
    return round(value, 4) if value is not None else None


def segm_ap(
    truth: Sequence[list[dict[str, Any]]],
    found: Sequence[list[dict[str, Any]]],
    classes: Sequence[str],
    *,
    max_detections: int = 100,
) -> tuple[float | None, float | None]:
    """COCO mask AP@[.5:.95] and AP@0.5 (pycocotools, iouType "segm") of one split.

    `truth[i]` and `found[i]` list image i's objects: {"rle": COCO RLE dict (counts bytes),
    "label": 0-based class, "crowd": bool} and {"rle", "label", "score"}."""
    from pycocotools import mask as mask_util

    from trainer.detection_metrics import _coco, coco_precision

    def annotations(rows: Sequence[list[dict[str, Any]]], scored: bool) -> list[dict]:
        out: list[dict] = []
        for image_id, objects in enumerate(rows, start=1):
            for one in objects:
                annotation = {
                    "id": len(out) + 1,
                    "image_id": image_id,
                    "category_id": int(one["label"]) + 1,
                    "segmentation": one["rle"],
                    "area": float(mask_util.area(one["rle"])),
                    "bbox": [float(v) for v in mask_util.toBbox(one["rle"])],
                    "iscrowd": int(one.get("crowd", False)),
                }
                if scored:
                    annotation["score"] = float(one["score"])
                out.append(annotation)
        return out

    if not any(truth):
        return None, None
    images = []  # pycocotools reads each image's size (any will do for one without objects)
    for i, objects in enumerate(zip(truth, found, strict=True), start=1):
        sized = [one["rle"]["size"] for part in objects for one in part] or [[1, 1]]
        images.append({"id": i, "height": int(sized[0][0]), "width": int(sized[0][1])})
    gt = _coco(images, classes, annotations(truth, scored=False))
    dt = _coco(images, classes, annotations(found, scored=True))
    precision = coco_precision(gt, dt, "segm", max_detections=max_detections)  # (10, 101, C)
    every, at50 = precision[precision > -1], precision[0][precision[0] > -1]
    return (
        float(every.mean()) if every.size else 0.0,
        float(at50.mean()) if at50.size else 0.0,
    )


def instance_rle(mask: Tensor) -> dict[str, Any]:
    """One object's (S, S) mask as a COCO RLE dict (counts bytes, as pycocotools wants them)."""
    from pycocotools import mask as mask_util

    return mask_util.encode(np.asfortranarray(mask.to("cpu", torch.uint8).numpy()))
