"""Score a saved classifier on images it never saw (a teacher's hidden test set).

The model is rebuilt from its model card and its safetensors weights (nothing is unpickled),
the images are decoded and normalised exactly as training did (`data.decode`, `data.Normalise`),
and the model's classes are matched to the test set's classes by name.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from trainer import data, registry

CARD = "model_card.json"
WEIGHTS = "model.safetensors"
COMPILED_PREFIX = "_orig_mod."
# Builder arguments a model card may set under "build" (trainer.loops.<kind>.export writes them).
BUILD_KEYS = ("num_classes", "width")  # torch.compile wraps the model; its keys carry this prefix


class ScoringError(ValueError):
    """The model cannot be scored; the message says why."""


class ModelUnavailable(ScoringError):
    """The run's model files are missing or do not describe a model this trainer can build."""


class ClassMismatch(ScoringError):
    """The test set has classes the model never learnt; `missing` names them."""

    def __init__(self, missing: list[str]) -> None:
        self.missing = missing
        super().__init__("the model has no class named " + ", ".join(map(repr, missing)))


@dataclass
class Score:
    """The figures of one scoring: accuracy, macro-averaged F1 and how many images were used."""

    accuracy: float
    macro_f1: float
    images: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def same_name(name: str) -> str:
    """The form class names are compared in: NFKC (full-width → half-width), trimmed, casefolded."""
    return unicodedata.normalize("NFKC", name).strip().casefold()


def load_card(model_dir: str | Path) -> dict[str, Any]:
    """The run's model card (classes, input size, channels, mean, std, spec)."""
    path = Path(model_dir) / CARD
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelUnavailable(f"{CARD} cannot be read ({exc})") from None
    if not isinstance(card, dict) or not card.get("classes") or "input" not in card:
        raise ModelUnavailable(f"{CARD} does not describe a classifier")
    return card


def class_map(model_classes: Sequence[str], test_classes: Sequence[str]) -> list[int]:
    """For each model output, the index of the test class of that name (-1 when there is none).

    Raises ClassMismatch when a test class has no model output of its name: such images could
    never be right, and the student should hear it rather than read a low score.
    """
    by_name: dict[str, int] = {}
    for index, name in enumerate(test_classes):
        by_name.setdefault(same_name(name), index)
    known = {same_name(name) for name in model_classes}
    missing = [name for name in test_classes if same_name(name) not in known]
    if missing:
        raise ClassMismatch(missing)
    return [by_name.get(same_name(name), -1) for name in model_classes]


def load_model(model_dir: str | Path, card: dict[str, Any]) -> nn.Module:
    """Rebuild the card's architecture and load its safetensors weights (CPU, eval mode)."""
    size, channels = int(card["input"]["size"][0]), int(card["input"]["channels"])
    count = len(card["classes"])
    architecture = card.get("spec", {}).get("model")
    # What a kind's builder needs beyond the class count (a U-Net's width; a pose network's
    # heat maps, one per keypoint): the card's "build", whole numbers only.
    build = card.get("build")
    extra = {
        k: v
        for k, v in (build.items() if isinstance(build, dict) else ())
        if k in BUILD_KEYS and type(v) is int
    }
    classes = extra.pop("num_classes", count)  # a pose network's: its keypoints
    model: nn.Module
    try:
        if isinstance(architecture, list):
            model = registry.build_layers(
                architecture, num_classes=count, in_channels=channels, input_size=size
            )
        elif isinstance(architecture, str):
            model = registry.build(
                architecture,
                num_classes=classes,
                in_channels=channels,
                input_size=size,
                **extra,  # type: ignore[arg-type]  # whole numbers for the builder's options
            )
        else:
            raise ModelUnavailable(f"{CARD} names no model")
    except (KeyError, ValueError) as exc:
        if isinstance(exc, ModelUnavailable):
            raise
        raise ModelUnavailable(f"the model of {CARD} cannot be built ({exc})") from None
    try:
        state = load_file(str(Path(model_dir) / WEIGHTS), device="cpu")
    except (OSError, SafetensorError) as exc:
        raise ModelUnavailable(f"{WEIGHTS} cannot be read ({exc})") from None
    state = {key.removeprefix(COMPILED_PREFIX): tensor for key, tensor in state.items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0][:200]
        raise ModelUnavailable(f"{WEIGHTS} does not fit its model ({first})") from None
    return model.eval()


@torch.no_grad()
def predict(
    model: nn.Module, paths: Sequence[str], card: dict[str, Any], *, batch_size: int = 256
) -> torch.Tensor:
    """The model's class index for each image (N,), decoded and normalised like in training."""
    size, channels = int(card["input"]["size"][0]), int(card["input"]["channels"])
    device = torch.device("cpu")
    normalise = data.Normalise(card["input"]["mean"], card["input"]["std"], device)
    predicted: list[torch.Tensor] = []
    for start in range(0, len(paths), batch_size):
        chunk = paths[start : start + batch_size]
        decoded = np.stack([data.decode(Path(p), size, channels) for p in chunk])
        images = torch.from_numpy(decoded)  # (B, C, H, W) uint8
        predicted.append(model(normalise(images)).argmax(dim=1))  # (B,)
    return torch.cat(predicted) if predicted else torch.empty(0, dtype=torch.int64)


def macro_f1(predicted: torch.Tensor, truth: torch.Tensor) -> float:
    """F1 averaged over the classes present in `truth`; a prediction of -1 is never right."""
    scores = []
    for label in truth.unique().tolist():
        hit = int(((predicted == label) & (truth == label)).sum())
        false_alarm = int(((predicted == label) & (truth != label)).sum())
        missed = int(((predicted != label) & (truth == label)).sum())
        scores.append(2 * hit / (2 * hit + false_alarm + missed))
    return sum(scores) / len(scores) if scores else 0.0


def score_model(
    model_dir: str | Path,
    paths: Sequence[str],
    labels: Sequence[int],
    classes: Sequence[str],
) -> Score:
    """Score the model saved in `model_dir` on images `paths` whose classes are `labels`.

    `labels` index `classes`, the test set's class names; the model's own classes are matched
    to them by name, so its output order does not matter.
    """
    if len(paths) != len(labels):
        raise ValueError(f"{len(paths)} images for {len(labels)} labels")
    if not paths:
        raise ScoringError("the test set has no labelled images")
    card = load_card(model_dir)
    mapping = torch.tensor(class_map(card["classes"], classes), dtype=torch.int64)
    model = load_model(model_dir, card)
    predicted = mapping[predict(model, paths, card)]  # (N,) test-class indices, -1 = unknown
    truth = torch.tensor(list(labels), dtype=torch.int64)  # (N,)
    accuracy = float((predicted == truth).float().mean())
    return Score(accuracy=accuracy, macro_f1=macro_f1(predicted, truth), images=len(paths))


def score_detection_model(
    model_dir: str | Path,
    items: Sequence[Any],
    classes: Sequence[str],
    *,
    root: str | None = None,
) -> Any:
    """Score the detector saved in `model_dir` on manifest items with boxes (their
    `annotations`; categories index `classes`): a `DetectionScore` with mAP@0.5, what a
    detection assignment ranks by, and mAP@0.5:0.95. Classes are matched by name."""
    from trainer.detection.inference import score_detector

    return score_detector(model_dir, items, classes, root=root)
