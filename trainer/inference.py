"""A finished run's model on new images, for every kind: "try it", the pose view, scoring.

Each kind's loop module answers (`trainer/loops/<kind>.py`: `predict(model_dir, images)` and
`score(model_dir, items, classes, keypoints)`); this module picks the loop by kind and keeps the
last few models a worker process loaded, so that a student trying photo after photo does not
wait for the model to be rebuilt each time. Models come from `model.safetensors` and
`model_card.json` only (`trainer.scoring.load_model`): nothing is unpickled.
"""

from __future__ import annotations

import importlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from trainer import kinds

CACHED_MODELS = 4  # per process; the small models are a few MB, torchvision's 100+ MB
_models: OrderedDict = OrderedDict()  # (folder, weights mtime) → (model, card), last used last
_lock = threading.Lock()  # an eager Celery runs tasks in the web server's threads


def loop(kind: str) -> Any:
    """The loop module of a kind the trainer can train (KeyError for any other)."""
    if not kinds.can_train(kind):
        raise KeyError(kind)
    return importlib.import_module(f"trainer.loops.{kind}")


def load(model_dir: str | Path, kind: str) -> tuple[Any, dict[str, Any]]:
    """The run's model in eval mode on the CPU and its card, from this process's small cache;
    `ModelUnavailable` when the files are gone or the model is not of `kind`."""
    from trainer import scoring  # torch

    folder = Path(model_dir)
    try:
        key = (str(folder.resolve()), (folder / scoring.WEIGHTS).stat().st_mtime_ns)
    except OSError as exc:
        raise scoring.ModelUnavailable(f"{scoring.WEIGHTS} cannot be read ({exc})") from None
    with _lock:
        if key in _models:
            _models.move_to_end(key)
            return _models[key]
        card = scoring.load_card(folder)
        if card.get("kind", "classification") != kind:
            raise scoring.ModelUnavailable(f"the model of this run is not a {kind} model")
        loaded = scoring.load_model(folder, card), card
        _models[key] = loaded
        while len(_models) > CACHED_MODELS:
            _models.popitem(last=False)
        return loaded


def predict(kind: str, model_dir: str | Path, images: Sequence[Image.Image]) -> list[dict]:
    """One JSON-ready answer per image, in its own pixels (the shapes: docs/architecture.md,
    "Try it answers")."""
    return loop(kind).predict(Path(model_dir), list(images))


def score(
    kind: str,
    model_dir: str | Path,
    items: Sequence[Any],
    classes: Sequence[str],
    keypoints: Any = None,
) -> Any:
    """A run's figures on a hidden test set (manifest items with their labels or objects);
    `.to_dict()` holds what an assignment of the kind ranks by."""
    return loop(kind).score(Path(model_dir), list(items), list(classes), keypoints)
