"""A finished segmentation run's model on new images: "try it" and scoring a hidden test set.

The model is rebuilt from its model card and safetensors weights (`trainer.inference.load`, which
keeps the last few a worker used; nothing is unpickled); each image is decoded and normalised
exactly as training did, at the model's input size, and the class maps come back at that size
(the card's `masks.size`): a page scales them onto the photo.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from trainer import data
from trainer.detection.data import decode_image
from trainer.segmentation.data import load_split

INSTANCE_SCORE = 0.5  # Mask R-CNN: objects at least this sure are painted into the class map
MASK_THRESHOLD = 0.5  # … over the pixels where their mask's probability is at least this
EVAL_BATCH = 32


def paint(objects: dict[str, Tensor], size: int, *, score: float = INSTANCE_SCORE) -> Tensor:
    """An instance model's objects of one image → (size, size) int64 class map: the surer
    object wins where two overlap (painted last)."""
    class_map = torch.zeros(size, size, dtype=torch.int64, device=objects["masks"].device)
    order = objects["scores"].argsort()  # least sure first
    for k in order.tolist():
        if float(objects["scores"][k]) >= score:
            class_map[objects["masks"][k] >= MASK_THRESHOLD] = int(objects["labels"][k]) + 1
    return class_map


@torch.no_grad()
def class_maps(model: nn.Module, x: Tensor) -> Tensor:
    """A normalised batch (B, C, S, S) → class maps (B, S, S) int64, 0 the background."""
    segment = getattr(model, "segment", None)
    if segment is not None:  # an instance model
        found = segment(x, score_threshold=0.05, max_detections=100)
        return torch.stack([paint(one, x.shape[-1]) for one in found])
    return model(x).argmax(dim=1)  # (B, classes + 1, S, S) → (B, S, S)


@torch.no_grad()
def maps_and_confidence(model: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
    """A normalised batch (B, C, S, S) → class maps (B, S, S) int64 and, per pixel, how sure the
    model is of its class (B, S, S) float: the softmax probability of a semantic model, the
    score of the object painted there for an instance model (1 on its background)."""
    segment = getattr(model, "segment", None)
    if segment is None:
        confidence, maps = model(x).softmax(dim=1).max(dim=1)  # (B, classes + 1, S, S) → (B, S, S)
        return maps, confidence
    found = segment(x, score_threshold=0.05, max_detections=100)
    maps = torch.stack([paint(one, x.shape[-1]) for one in found])  # (B, S, S)
    confidence = torch.ones(maps.shape, dtype=torch.float32, device=maps.device)
    for b, objects in enumerate(found):
        for k in objects["scores"].argsort().tolist():  # painted in the same order as `paint`
            score = float(objects["scores"][k])
            if score >= INSTANCE_SCORE:
                confidence[b][objects["masks"][k] >= MASK_THRESHOLD] = score
    return maps, confidence


def _normalise(card: dict[str, Any]) -> data.Normalise:
    return data.Normalise(card["input"]["mean"], card["input"]["std"], torch.device("cpu"))


def segment_images(
    model: nn.Module, card: dict[str, Any], images: Sequence[Image.Image]
) -> list[dict[str, Any]]:
    """Try it: per image {"width", "height", "size": [h, w] of the masks, "classes": [{"index"
    (channel), "name", "share" of the pixels, "score": the model's mean confidence over them}]
    for the classes present, "masks": {"<channel>": COCO RLE counts}}."""
    from trainer.segmentation_metrics import regions

    size, channels = int(card["input"]["size"][0]), int(card["input"]["channels"])
    if not images:
        return []
    decoded = [decode_image(image, size, channels) for image in images]
    batch = torch.from_numpy(np.stack([pixels for pixels, _ in decoded]))  # (B, C, S, S) uint8
    found, confidence = maps_and_confidence(model, _normalise(card)(batch))  # (B, S, S) each
    maps, sures = found.numpy(), confidence.numpy()
    names = list(card["classes"])
    answers = []
    for (_, (width, height)), one, sure in zip(decoded, maps, sures, strict=True):
        counts = np.bincount(one.reshape(-1), minlength=len(names) + 1)
        sums = np.bincount(one.reshape(-1), weights=sure.reshape(-1), minlength=len(names) + 1)
        answers.append(
            {
                "width": width,
                "height": height,
                "size": [size, size],
                "classes": [
                    {
                        "index": c,
                        "name": names[c - 1],
                        "share": round(float(counts[c]) / one.size, 4),
                        "score": round(float(sums[c] / counts[c]), 4),
                    }
                    for c in range(1, len(names) + 1)
                    if counts[c]
                ],
                "masks": regions(one),
            }
        )
    return answers


def score_segmenter(
    model: nn.Module,
    card: dict[str, Any],
    items: Sequence,
    classes: Sequence[str],
    *,
    root: str | None = None,
):
    """Score a run's model on manifest items (with outlines) of a hidden test set: mIoU (what
    assignments rank by), mean Dice, pixel accuracy and IoU per class, at the model's input size.

    The items' categories index `classes`, the test set's names; the model's classes are matched
    to them by name (`trainer.scoring.class_map`, order does not matter). A pixel predicted as a
    class the test set does not have is simply wrong."""
    from trainer import scoring
    from trainer.segmentation_metrics import SegmentationEvaluation, class_figures, confusion

    if not items:
        raise scoring.ScoringError("the test set has no images")
    mapping = scoring.class_map(card["classes"], classes)  # model class → test class (-1: none)
    channels = len(classes) + 1
    other = channels  # the column of "a class the test set does not have"
    # model channel → test channel: the background stays 0
    to_test = torch.tensor([0, *(t + 1 if t >= 0 else other for t in mapping)])
    size, depth = int(card["input"]["size"][0]), int(card["input"]["channels"])
    split = load_split(items, root, size, depth)
    normalise = _normalise(card)
    matrix = torch.zeros(channels + 1, channels + 1, dtype=torch.int64)
    for start in range(0, len(split), EVAL_BATCH):
        index = torch.arange(start, min(start + EVAL_BATCH, len(split)))
        predicted = to_test[class_maps(model, normalise(split.images[index]))]  # (B, S, S)
        matrix += confusion(split.masks[index], predicted, channels + 1)
    figures = class_figures(matrix, ["background", *classes])
    return SegmentationEvaluation(loss=None, images=len(split), **figures)
