"""A keypoint model's people, for evaluation, "try it" and scoring a hidden test set.

`find_people` is the one place that turns a model's output into people: the heat-map model
(`pose_unet`) gives one figure per image (its keypoints decoded from the heat maps, its score
the mean of theirs, its box their extent); Keypoint R-CNN gives every person it finds. The
model is rebuilt from its model card and safetensors weights (`trainer.inference.load`:
nothing is unpickled); each image is decoded and normalised exactly as training did, and the
points come back in the image's own pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from trainer import data
from trainer.detection.data import decode_image
from trainer.keypoint_metrics import KeypointsEvaluation, default_sigmas, evaluate_keypoints
from trainer.keypoints.data import load_split, to_original
from trainer.models.pose_net import decode

KIND = "keypoints"
EVAL_SCORE = 0.05  # Keypoint R-CNN's people kept for evaluation (AP wants the hesitant ones too)
MAX_PEOPLE = 20  # per image: COCO's keypoint evaluation reads at most 20
TRY_IT_SCORE = 0.3  # "try it" shows the people a student would believe

Person = dict[str, Any]


def _extent(points: list[list[float]]) -> list[float]:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return [round(min(xs), 2), round(min(ys), 2), round(max(xs) - min(xs), 2),
            round(max(ys) - min(ys), 2)]  # fmt: skip


@torch.no_grad()
def find_people(
    model: nn.Module,
    x: Tensor,
    sizes: Sequence[Sequence[float]],
    *,
    score_threshold: float = EVAL_SCORE,
    heatmaps: Tensor | None = None,
) -> list[list[Person]]:
    """Per image of the normalised batch x (B, C, S, S), its people in original pixels:
    {"keypoints": [[x, y, score], ...], "score", "box": [x, y, w, h]}. `heatmaps`: the
    heat-map model's output for x when the caller already has it."""
    size = x.shape[-1]
    people: list[list[Person]] = []
    detect = getattr(model, "detect", None)
    if detect is not None:  # Keypoint R-CNN: every person it finds
        found = detect(x, score_threshold=score_threshold, max_detections=MAX_PEOPLE)
        for (width, height), one in zip(sizes, found, strict=True):
            scale = torch.tensor([width / size, height / size] * 2, dtype=torch.float64)
            boxes = one["boxes"].detach().cpu().double() * scale  # (n, 4) xyxy original
            people.append(
                [
                    {
                        "keypoints": to_original(points, width, height, size),
                        "score": round(float(score), 4),
                        "box": [round(v, 2) for v in (*box[:2], box[2] - box[0], box[3] - box[1])],
                    }
                    for points, score, box in zip(
                        one["keypoints"], one["scores"].tolist(), boxes.tolist(), strict=True
                    )
                ]
            )
        return people
    logits = model(x) if heatmaps is None else heatmaps  # (B, K, S/2, S/2)
    decoded = decode(logits)  # (B, K, 3) input pixels and scores
    for (width, height), points in zip(sizes, decoded, strict=True):
        shown = to_original(points, width, height, size)
        score = sum(p[2] for p in shown) / len(shown)
        people.append([{"keypoints": shown, "score": round(score, 4), "box": _extent(shown)}])
    return people


def _schema(card: dict[str, Any]) -> dict[str, Any]:
    from trainer import scoring

    schema = card.get("keypoints")
    if not isinstance(schema, dict) or not schema.get("names"):
        raise scoring.ModelUnavailable("the model card names no keypoints")
    return schema


def _batch(card: dict[str, Any], images: Sequence[Image.Image]) -> tuple[Tensor, list[tuple]]:
    size, channels = int(card["input"]["size"][0]), int(card["input"]["channels"])
    normalise = data.Normalise(card["input"]["mean"], card["input"]["std"], torch.device("cpu"))
    decoded = [decode_image(image, size, channels) for image in images]
    batch = torch.from_numpy(np.stack([pixels for pixels, _ in decoded]))  # (B, C, S, S) uint8
    return normalise(batch), [original for _, original in decoded]


def predict(model_dir: str | Path, images: Sequence[Image.Image]) -> list[dict[str, Any]]:
    """Per photo: {"width", "height", "names", "skeleton" (0-based pairs), "people": [{"score",
    "box": [x, y, w, h], "keypoints": [{"name", "x", "y", "score"}]}]} in the photo's pixels."""
    from trainer import inference

    if not images:
        return []
    model, card = inference.load(model_dir, KIND)
    schema = _schema(card)
    names = list(schema["names"])
    x, sizes = _batch(card, images)
    answers = []
    for (width, height), people in zip(sizes, find_people(model, x, sizes), strict=True):
        kept = [person for person in people if person["score"] >= TRY_IT_SCORE]
        if getattr(model, "detect", None) is None:
            kept = people  # the heat-map model always answers with its one figure
        answers.append(
            {
                "width": width,
                "height": height,
                "names": names,
                "skeleton": [list(pair) for pair in schema.get("edges", [])],
                "people": [
                    {
                        "score": person["score"],
                        "box": person["box"],
                        "keypoints": [
                            {"name": name, "x": px, "y": py, "score": ps}
                            for name, (px, py, ps) in zip(names, person["keypoints"], strict=True)
                        ],
                    }
                    for person in kept
                ],
            }
        )
    return answers


def score(
    model_dir: str | Path, items: Sequence, classes: Sequence[str], keypoints: Any = None
) -> KeypointsEvaluation:
    """OKS AP (what a keypoints assignment ranks by), PCK@0.1 and per-keypoint error of a run's
    model on a hidden test set: manifest items whose annotations carry keypoints.

    `keypoints` is the test set's KeypointSchema (or its DataSpec, whose `keypoints` and `root`
    are read); without one the test set is taken to have the model's keypoints in its order.
    They are matched to the model's by name, so their order does not matter, and a test
    keypoint the model never learnt is a ClassMismatch.
    """
    from trainer import inference, scoring

    if not items:
        raise scoring.ScoringError("the test set has no images")
    model, card = inference.load(model_dir, KIND)
    schema = _schema(card)
    own = [scoring.same_name(name) for name in schema["names"]]
    given = getattr(keypoints, "keypoints", keypoints)  # a DataSpec's schema, or the schema
    names = list(given.names) if given is not None else list(schema["names"])
    missing = [name for name in names if scoring.same_name(name) not in own]
    if missing:
        raise scoring.ClassMismatch(missing)
    order = torch.tensor([own.index(scoring.same_name(name)) for name in names])  # (K_test,)
    sigmas = list(given.sigmas) if given is not None and given.sigmas else default_sigmas(names)
    size, channels = int(card["input"]["size"][0]), int(card["input"]["channels"])
    root = getattr(keypoints, "root", None)
    try:
        split = load_split(items, root, size, channels, len(names))
    except data.DataError as exc:
        raise scoring.ScoringError(str(exc)) from None
    normalise = data.Normalise(card["input"]["mean"], card["input"]["std"], torch.device("cpu"))
    found: list[list[Person]] = []
    for start in range(0, len(split), 64):
        index = torch.arange(start, min(start + 64, len(split)))
        sizes = split.sizes[index].tolist()
        for people in find_people(model, normalise(split.images[index]), sizes):
            for person in people:  # the model's keypoints in the test set's order
                person["keypoints"] = [person["keypoints"][k] for k in order.tolist()]
            found.append(people)
    return evaluate_keypoints(
        split.ids, split.sizes.tolist(), split.truth, found, names, sigmas, loss=None
    )
