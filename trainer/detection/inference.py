"""A finished detection run's model on new images: "try it" and scoring a hidden test set.

The model is rebuilt from its model card and safetensors weights (`trainer.scoring.load_model`:
nothing is unpickled); each image is decoded and normalised exactly as training did, and the
boxes come back in the image's own pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from trainer import data
from trainer.detection.data import decode_image, load_split, to_original

TRY_IT_SCORE = 0.3  # "try it" shows the boxes a student would believe, not every 5% guess


def load(model_dir: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """The run's detector in eval mode on the CPU, and its model card."""
    from trainer import scoring

    card = scoring.load_card(model_dir)
    if card.get("kind") != "detection":
        raise scoring.ModelUnavailable("the model of this run is not a detector")
    return scoring.load_model(model_dir, card), card


def _limits(card: dict[str, Any], score_threshold: float | None) -> dict[str, Any]:
    boxes = card.get("boxes", {})
    return {
        "score_threshold": boxes.get("score_threshold", 0.05)
        if score_threshold is None
        else score_threshold,
        "max_detections": int(boxes.get("max_detections", 100)),
    }


@torch.no_grad()
def detect_images(
    model: nn.Module,
    card: dict[str, Any],
    images: Sequence[Image.Image],
    *,
    score_threshold: float | None = None,
) -> list[list[dict[str, Any]]]:
    """Per image, its boxes highest score first: {"box": [x, y, w, h] original pixels,
    "score", "label" (class index), "class" (its name)}."""
    size, channels = int(card["input"]["size"][0]), int(card["input"]["channels"])
    normalise = data.Normalise(card["input"]["mean"], card["input"]["std"], torch.device("cpu"))
    decoded = [decode_image(image, size, channels) for image in images]
    if not decoded:
        return []
    batch = torch.from_numpy(np.stack([pixels for pixels, _ in decoded]))  # (B, C, S, S) uint8
    found = model.detect(normalise(batch), **_limits(card, score_threshold))  # type: ignore[operator]
    classes = card["classes"]
    answers = []
    for (_, (width, height)), one in zip(decoded, found, strict=True):
        boxes = to_original(one["boxes"], width, height, size)
        answers.append(
            [
                {"box": box, "score": round(score, 4), "label": label, "class": classes[label]}
                for box, score, label in zip(
                    boxes, one["scores"].tolist(), one["labels"].tolist(), strict=True
                )
            ]
        )
    return answers


def predict(
    model_dir: str | Path, image: Image.Image, *, score_threshold: float = TRY_IT_SCORE
) -> list[dict[str, Any]]:
    """The objects a run's detector finds in one photo (the web app's "try it")."""
    model, card = load(model_dir)
    return detect_images(model, card, [image], score_threshold=score_threshold)[0]


@dataclass
class DetectionScore:
    """The figures of scoring a detector: mAP@0.5 (what assignments rank by), mAP@0.5:0.95."""

    map50: float
    map: float
    images: int
    objects: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def score_detector(
    model_dir: str | Path, items: Sequence, classes: Sequence[str], *, root: str | None = None
) -> DetectionScore:
    """Score a run's detector on manifest items (with `annotations`) of a hidden test set.

    The items' categories index `classes`, the test set's class names; the model's classes
    are matched to them by name (`trainer.scoring.class_map`), so their order does not matter.
    """
    from trainer import scoring
    from trainer.detection_metrics import coco_metrics

    if not items:
        raise scoring.ScoringError("the test set has no images")
    model, card = load(model_dir)
    mapping = scoring.class_map(card["classes"], classes)  # model class → test class (-1: none)
    size, channels = int(card["input"]["size"][0]), int(card["input"]["channels"])
    split = load_split(items, root, size, channels)
    normalise = data.Normalise(card["input"]["mean"], card["input"]["std"], torch.device("cpu"))
    limits = _limits(card, None)
    truth, found = [], []
    with torch.no_grad():
        for start in range(0, len(split), 64):
            index = torch.arange(start, min(start + 64, len(split)))
            detections = model.detect(normalise(split.images[index]), **limits)  # type: ignore[operator]
            for i, one in zip(index.tolist(), detections, strict=True):
                width, height = split.sizes[i].tolist()
                labels = [mapping[label] for label in one["labels"].tolist()]
                keep = [j for j, label in enumerate(labels) if label >= 0]
                boxes = to_original(one["boxes"], width, height, size)
                found.append(
                    {
                        "boxes": [boxes[j] for j in keep],
                        "scores": [float(one["scores"][j]) for j in keep],
                        "labels": [labels[j] for j in keep],
                    }
                )
                truth.append(
                    {
                        "boxes": to_original(split.boxes[i], width, height, size),
                        "labels": split.labels[i].tolist(),
                    }
                )
    figures = coco_metrics(truth, found, classes, max_detections=limits["max_detections"])
    return DetectionScore(
        map50=figures["map50"],
        map=figures["map"],
        images=len(split),
        objects=split.objects,
    )
