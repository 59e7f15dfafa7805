"""What the trainer says while it runs: numbered events handed to a reporter callback.

A writer calls e.g. `stream.emit("log", **log("resumed"))`; the reporter (the
web app's, the CLI's JsonLinesReporter, a test's ListReporter) gets `Event.to_dict()`. What
`started`, `epoch` and `finished` carry differs by kind: their shapes are the typed models at
the end of this module (StartedEvent, EpochEvent, FinishedEvent), not payload helpers.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

KINDS = ("started", "batch", "epoch", "checkpoint", "finished", "failed", "log")


class Reporter(Protocol):
    """Receives each event as a plain, JSON-ready dict."""

    def __call__(self, event: dict[str, Any]) -> None: ...


@dataclass
class Event:
    """One event: its kind, its number in the job (1, 2, ...), wall-clock time and payload."""

    kind: str
    seq: int
    time: float
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The event as a JSON-ready dict: {"kind", "seq", "time", "data"}."""
        return {"kind": self.kind, "seq": self.seq, "time": self.time, "data": dict(self.data)}


class EventStream:
    """Numbers events without gaps and sends at most `max_batch_per_second` batch events."""

    def __init__(
        self,
        reporter: Reporter,
        *,
        max_batch_per_second: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        start_seq: int = 0,
    ) -> None:
        if max_batch_per_second < 0:
            raise ValueError("max_batch_per_second must be 0 or more")
        self._reporter = reporter
        # 0 sends only forced batch events; math.inf sends every one.
        self._interval = math.inf if max_batch_per_second == 0 else 1 / max_batch_per_second
        self._clock = clock
        self._wall_clock = wall_clock
        self._seq = start_seq  # a resumed job goes on after the last event it stored
        self._last_batch: float | None = None

    @property
    def seq(self) -> int:
        """The sequence number of the last event sent (0 before the first)."""
        return self._seq

    def emit(self, kind: str, /, *, force: bool = False, **data: Any) -> Event | None:
        """Send one event; None when a batch event was throttled away (force=True always sends)."""
        if kind not in KINDS:
            raise ValueError(f"unknown event kind {kind!r}; expected one of {', '.join(KINDS)}")
        if kind == "batch":
            now = self._clock()
            since = math.inf if self._last_batch is None else now - self._last_batch
            if not force and (self._interval == math.inf or since < self._interval):
                return None
            self._last_batch = now
        self._seq += 1
        event = Event(kind=kind, seq=self._seq, time=self._wall_clock(), data=data)
        self._reporter(event.to_dict())
        return event


class JsonLinesReporter:
    """Writes each event as one JSON line to a text file (the CLI's output)."""

    def __init__(self, file: TextIO) -> None:
        self.file = file

    def __call__(self, event: dict[str, Any]) -> None:
        # allow_nan=False: a NaN would make the line unreadable for strict JSON parsers.
        self.file.write(json.dumps(event, ensure_ascii=False, allow_nan=False, default=str) + "\n")
        self.file.flush()


class ListReporter:
    """Keeps every event in `.events` (for tests)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        """The payloads of the events of one kind, in order."""
        return [event["data"] for event in self.events if event["kind"] == kind]


# Payloads of the kind-neutral events: keyword arguments for EventStream.emit, e.g.
# emit("batch", **batch(...)). started, epoch and finished have typed models instead (below).
# Numbers go through _number so that tensors become floats and NaN becomes None (JSON null).


def batch(*, epoch: int, step: int, steps: int, loss: Any, images_per_s: Any) -> dict[str, Any]:
    """Progress inside an epoch: step of steps (1-based), the batch's loss and throughput."""
    return {
        "epoch": int(epoch),
        "step": int(step),
        "steps": int(steps),
        "loss": _number(loss),
        "images_per_s": _number(images_per_s),
    }


def checkpoint(*, epoch: int, path: str | Path) -> dict[str, Any]:
    """A checkpoint was written after `epoch`; a job resumes from the last one.

    Events are shown to students, so they name the file, never the folder it is in.
    """
    return {"epoch": int(epoch), "file": Path(path).name}


def failed(reason: str, *, detail: str | None = None) -> dict[str, Any]:
    """The job stopped: `reason` for a student, `detail` (e.g. the traceback) for a teacher."""
    return {"reason": reason, "detail": detail}


def log(message: str, *, level: str = "info") -> dict[str, Any]:
    """A line of text for the job's log."""
    return {"message": message, "level": level}


def _number(value: Any) -> float | None:
    """A float from a Python number or a 0-d tensor; None for None, NaN and infinity."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


# --- the typed shapes the web app reads (one per kind) ----------------------------------------
# A loop emits plain dicts; these models are the contract: what `started`, `epoch` and
# `finished` carry for each kind. The web app parses through them (webapp/jobs/kinds.py), and
# tests check that every loop's events fit them. Unknown extra keys are allowed (a newer trainer
# may add figures); missing or mistyped ones are errors.

from pydantic import BaseModel, ConfigDict  # noqa: E402

Figure = float | None  # NaN and infinity arrive as None


class _Shape(BaseModel):
    model_config = ConfigDict(extra="allow")


class ClassificationEvaluation(_Shape):
    """A split evaluated by a classifier (trainer.metrics.Evaluation.to_dict())."""

    loss: Figure
    accuracy: Figure
    top5: Figure = None
    confusion: list[list[int]] = []
    per_class: list[dict[str, Any]] = []
    misclassified: list[dict[str, Any]] = []


class ClassAP(_Shape):
    name: str
    ap50: Figure  # None: no object of the class in the split
    ap: Figure
    objects: int


class PRCurve(_Shape):
    recall: list[float]
    precision: list[float]


class DetectionEvaluation(_Shape):
    """A split evaluated by a detector: COCO mAP@0.5 and @0.5:0.95 (pycocotools)."""

    loss: Figure = None  # torchvision's detectors give no loss in evaluation
    map50: Figure
    map: Figure
    per_class: list[ClassAP] = []
    pr_curves: dict[str, PRCurve] = {}
    images: int = 0
    objects: int = 0


class ClassIoU(_Shape):
    name: str
    iou: Figure  # None: the class is in neither the truth nor the predictions of the split
    dice: Figure
    pixels: int  # true pixels of the class, at the evaluated resolution
    background: bool = False


class SegmentationEvaluation(_Shape):
    """A split evaluated by a segmenter: IoU and Dice per class; their means over the
    foreground classes that occur; pixel accuracy; segm AP for instance models."""

    loss: Figure = None
    miou: Figure
    dice: Figure
    pixel_accuracy: Figure
    per_class: list[ClassIoU] = []
    images: int = 0
    segm_ap: Figure = None  # pycocotools' segm AP@[.5:.95], instance models (Mask R-CNN) only
    segm_ap50: Figure = None


class KeypointError(_Shape):
    name: str
    pck: Figure  # None: the keypoint is never labelled in the split
    error: Figure  # mean distance to the truth, as a share of the figure's box size
    labelled: int


class KeypointsEvaluation(_Shape):
    """A split evaluated by a pose network: PCK@0.1, OKS AP (pycocotools, the dataset's
    sigmas), per-keypoint error."""

    loss: Figure = None
    pck: Figure
    oks_ap: Figure
    oks_ap50: Figure = None
    per_keypoint: list[KeypointError] = []
    images: int = 0
    people: int = 0


EVALUATIONS: dict[str, type[_Shape]] = {
    "classification": ClassificationEvaluation,
    "detection": DetectionEvaluation,
    "segmentation": SegmentationEvaluation,
    "keypoints": KeypointsEvaluation,
}


class StartedEvent(_Shape):
    kind: str = "classification"  # events stored before kinds had names were classification's
    model: str
    parameters: int
    device: str
    classes: list[str]
    sizes: dict[str, int]


class EpochEvent(_Shape):
    """One epoch: the shared fields; the kind's figures (trainer.kinds.EPOCH_FIGURES) ride
    along as extra keys, e.g. val_acc or val_map50."""

    epoch: int
    fold: int = 0
    lr: Figure = None
    seconds: Figure = None
    images_per_s: Figure = None
    train_loss: Figure

    def figures(self) -> dict[str, float | None]:
        """Every number of the epoch but its bookkeeping: what a chart can draw."""
        skip = {"epoch", "fold", "lr", "seconds", "images_per_s", "val_metrics"}
        return {
            k: v
            for k, v in self.model_dump().items()
            if k not in skip and (v is None or isinstance(v, int | float))
        }


class FinishedEvent(_Shape):
    kind: str = "classification"
    test: dict[str, Any] | None = None
    val: dict[str, Any] | None = None
    kfold: dict[str, Any] | None = None

    def evaluation(self, split: str) -> _Shape | None:
        """The test or val evaluation in its kind's shape (None when there was no such split)."""
        found = getattr(self, split)
        return None if found is None else EVALUATIONS[self.kind].model_validate(found)


def parse_evaluation(kind: str, data: Mapping[str, Any]) -> _Shape:
    """A stored evaluation dict in its kind's shape (pydantic.ValidationError if it is not)."""
    return EVALUATIONS[kind].model_validate(dict(data))
