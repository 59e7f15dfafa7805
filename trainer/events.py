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
# `finished` carry for each kind, what a run returns (trainer.driver.run; the web app keeps it
# as Job.result) and what a row of predictions_<split>.json holds. The web app parses through
# them (webapp/jobs/kinds.py, webapp/jobs/<kind>_results.py), and tests check that every loop's
# events and files fit them. Unknown extra keys are allowed (a newer trainer may add figures);
# missing or mistyped ones are errors for `model_validate`. `read` is the forgiving reader of
# stored files and rows: what does not fit reads as None, so a page shows what it can.

from types import UnionType  # noqa: E402
from typing import Annotated, Literal, Union, get_args, get_origin  # noqa: E402

from annotated_types import Ge, Len  # noqa: E402
from pydantic import (  # noqa: E402
    AllowInfNan,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    TypeAdapter,
    ValidationError,
    model_validator,
)

Number = Annotated[float, Strict(), AllowInfNan(False)]  # an int or a float, never a bool or text
Figure = Number | None  # NaN and infinity arrive as None
Count = Annotated[int, Strict(), Ge(0)]
Label = Annotated[int, Strict()]  # a class's index in the run's class list
ItemId = Annotated[int, Strict()] | Annotated[str, Strict()]  # the web app's item ids are ints
Box = Annotated[list[Number], Len(4, 4)]  # [x, y, width, height] in the image's pixels
Point = Annotated[list[Number], Len(2, 3)]  # [x, y] or [x, y, visibility | score]
_UNFIT = object()


class _Shape(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    @classmethod
    def read(cls, data: Any) -> Any:
        """A stored dict in this shape as far as it fits (never an error): a field that does not
        fit reads as its default, or None when it has none; an entry of a list that does not
        fit reads as None in its place (places mean classes, keypoints, boxes and their
        scores); a mapping that does not fit reads as a whole. `data` that is no dict: None."""
        if not isinstance(data, Mapping):
            return None
        try:
            return cls.model_validate(data)
        except ValidationError:
            pass
        values: dict[str, Any] = {}
        for name, info in cls.model_fields.items():
            key = info.alias or name
            found = _read_value(_field_type(cls, name), data[key]) if key in data else _UNFIT
            if found is not _UNFIT:
                values[name] = found
            elif info.is_required():
                values[name] = None
        declared = {info.alias or name for name, info in cls.model_fields.items()}
        extra = {k: v for k, v in data.items() if isinstance(k, str) and k not in declared}
        return cls.model_construct(**values, **extra)


_ADAPTERS: dict[Any, TypeAdapter] = {}


def _adapter(annotation: Any) -> TypeAdapter:
    key = repr(annotation)
    if key not in _ADAPTERS:
        _ADAPTERS[key] = TypeAdapter(annotation)
    return _ADAPTERS[key]


def _field_type(shape: type[_Shape], name: str) -> Any:
    info = shape.model_fields[name]
    return Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation


def _read_value(annotation: Any, value: Any) -> Any:
    """`value` as `annotation` says, or as far as it goes (see _Shape.read), else _UNFIT."""
    try:
        return _adapter(annotation).validate_python(value)
    except ValidationError:
        pass
    options = get_args(annotation) if get_origin(annotation) in (Union, UnionType) else ()
    for option in options or (annotation,):
        if isinstance(option, type) and issubclass(option, _Shape):
            if isinstance(value, Mapping):
                return option.read(value)
        elif get_origin(option) is list and isinstance(value, list):  # not a constrained list
            (item,) = get_args(option) or (Any,)
            return [None if (v := _read_value(item, one)) is _UNFIT else v for one in value]
    return _UNFIT


# Classification


class ClassFigures(_Shape):
    """A class's row of a classifier's per-class table (trainer.metrics.per_class)."""

    class_: Count = Field(alias="class")  # the class's index
    precision: Figure
    recall: Figure
    f1: Figure
    support: Count  # true images of the class in the split


class ClassificationPrediction(_Shape):
    """A row of a classifier's predictions_<split>.json (trainer.metrics.predictions): one per
    image of the split, in its order."""

    id: ItemId
    true: Label
    predicted: Label
    confidence: Figure  # the predicted class's probability


class Misclassified(ClassificationPrediction):
    """A wrongly predicted image of an evaluation (trainer.metrics.misclassified, the most
    confident first): a prediction row and every class's probability."""

    probabilities: list[Figure] = []


class ClassificationEvaluation(_Shape):
    """A split evaluated by a classifier (trainer.metrics.Evaluation.to_dict())."""

    loss: Figure
    accuracy: Figure
    top5: Figure = None
    confusion: list[list[Count]] = []  # rows: true class, columns: predicted
    per_class: list[ClassFigures] = []
    misclassified: list[Misclassified] = []


# Detection


class ClassAP(_Shape):
    name: str
    ap50: Figure  # None: no object of the class in the split
    ap: Figure
    objects: Count


class PRCurve(_Shape):
    recall: list[Figure]
    precision: list[Figure]  # COCO writes -1 where precision is undefined


class DetectionEvaluation(_Shape):
    """A split evaluated by a detector: COCO mAP@0.5 and @0.5:0.95 (pycocotools)."""

    loss: Figure = None  # torchvision's detectors give no loss in evaluation
    map50: Figure
    map: Figure
    per_class: list[ClassAP] = []
    pr_curves: dict[str, PRCurve] = {}  # by class name
    images: Count = 0
    objects: Count = 0


class BoxError(_Shape):
    """One error of an image (trainer.detection_metrics.image_errors)."""

    type: Literal["false_positive", "missed", "wrong_class", "poor_localisation"]
    box: Box | None = None  # the predicted box, or the true one for "missed"
    label: Label
    score: Figure = None  # None for "missed"
    iou: Figure = None  # the overlap the error was judged by


class TrueBoxes(_Shape):
    boxes: list[Box] = []
    labels: list[Label] = []


class DetectionPrediction(_Shape):
    """A row of a detector's predictions_<split>.json (trainer.detection_metrics.
    prediction_rows): one per image, boxes in the original image's pixels."""

    id: ItemId
    width: Count | None = None
    height: Count | None = None
    boxes: list[Box] = []  # predicted, with their scores and labels in the same places
    scores: list[Figure] = []
    labels: list[Label] = []
    truth: TrueBoxes = TrueBoxes()
    errors: list[BoxError] = []
    severity: Figure = None  # the sum of the errors' weights: what the page orders by


# Segmentation


class ClassIoU(_Shape):
    name: str
    iou: Figure  # None: the class is in neither the truth nor the predictions of the split
    dice: Figure
    pixels: Count  # true pixels of the class, at the evaluated resolution
    background: bool = False


class SegmentationEvaluation(_Shape):
    """A split evaluated by a segmenter: IoU and Dice per class; their means over the
    foreground classes that occur; pixel accuracy; segm AP for instance models."""

    loss: Figure = None
    miou: Figure
    dice: Figure
    pixel_accuracy: Figure
    per_class: list[ClassIoU] = []  # a row's place is its channel: 0 is the background
    images: Count = 0
    segm_ap: Figure = None  # pycocotools' segm AP@[.5:.95], instance models (Mask R-CNN) only
    segm_ap50: Figure = None


class SegmentationPrediction(_Shape):
    """A row of a segmenter's predictions_<split>.json (trainer.segmentation_metrics.
    prediction_row): one per image; masks at the model's input size, class channel i + 1 for
    class i, the background left out."""

    id: ItemId
    width: Count | None = None  # the original image's
    height: Count | None = None
    size: Annotated[list[Count], Len(2, 2)] | None = None  # [height, width] of the masks
    iou: Figure = None
    dice: Figure = None
    pixel_accuracy: Figure = None
    truth: dict[str, str] | None = None  # {"<channel>": COCO compressed RLE counts}
    predicted: dict[str, str] | None = None
    classes_iou: dict[str, Figure] = {}  # {"<channel>": IoU}


# Keypoints


class KeypointError(_Shape):
    name: str
    pck: Figure  # None: the keypoint is never labelled in the split
    error: Figure  # mean distance to the truth, as a share of the figure's box size
    labelled: Count


class KeypointsEvaluation(_Shape):
    """A split evaluated by a pose network: PCK@0.1, OKS AP (pycocotools, the dataset's
    sigmas), per-keypoint error."""

    loss: Figure = None
    pck: Figure
    oks_ap: Figure
    oks_ap50: Figure = None
    per_keypoint: list[KeypointError] = []
    images: Count = 0
    people: Count = 0


class KeypointsPrediction(_Shape):
    """A row of a pose network's predictions_<split>.json (trainer.keypoint_metrics.
    prediction_row): one per image, its target figure, points in the original pixels."""

    id: ItemId
    width: Count | None = None
    height: Count | None = None
    pck: Figure = None
    oks: Figure = None
    error: Figure = None  # the mean of `errors`
    truth: list[Point] | None = None  # [[x, y, visibility]…]; None: no figure in the image
    predicted: list[Point] = []  # [[x, y, score]…]
    errors: list[Figure] = []  # per keypoint: distance over the box size (None: unlabelled)
    box: Box | None = None  # the target figure's


EVALUATIONS: dict[str, type[_Shape]] = {
    "classification": ClassificationEvaluation,
    "detection": DetectionEvaluation,
    "segmentation": SegmentationEvaluation,
    "keypoints": KeypointsEvaluation,
}
PREDICTIONS: dict[str, type[_Shape]] = {
    "classification": ClassificationPrediction,
    "detection": DetectionPrediction,
    "segmentation": SegmentationPrediction,
    "keypoints": KeypointsPrediction,
}


class StartedEvent(_Shape):
    kind: str = "classification"  # events stored before kinds had names were classification's
    model: str
    parameters: int
    device: str
    classes: list[str]
    sizes: dict[str, int]


class EpochEvent(_Shape):
    """One epoch: the shared fields; the kind's figures (trainer.kinds.EPOCH_FIGURES) are its
    subclass's fields (EPOCHS: ClassificationEpoch, DetectionEpoch, ...) and ride along here as
    extra keys."""

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


class ClassificationEpoch(EpochEvent):
    train_acc: Figure = None
    val_loss: Figure = None  # val_*: None without a validation split
    val_acc: Figure = None


class DetectionEpoch(EpochEvent):
    train_heatmap: Figure = None  # the CenterNet-style detectors' parts of the loss
    train_size: Figure = None
    train_offset: Figure = None
    val_loss: Figure = None
    val_map50: Figure = None
    val_map: Figure = None


class SegmentationEpoch(EpochEvent):
    train_ce: Figure = None
    train_dice: Figure = None
    val_loss: Figure = None
    val_miou: Figure = None
    val_dice: Figure = None
    val_pixel_accuracy: Figure = None


class KeypointsEpoch(EpochEvent):
    val_loss: Figure = None
    val_pck: Figure = None
    val_oks_ap: Figure = None


EPOCHS: dict[str, type[EpochEvent]] = {
    "classification": ClassificationEpoch,
    "detection": DetectionEpoch,
    "segmentation": SegmentationEpoch,
    "keypoints": KeypointsEpoch,
}

AnyEvaluation = (
    ClassificationEvaluation | DetectionEvaluation | SegmentationEvaluation | KeypointsEvaluation
)


class KFold(_Shape):
    """A k-fold run's summary (trainer.driver._run_folds): each fold's validation figure (the
    loop's FOLD_FIGURE) and their mean and spread, named after it: mean_accuracy for a
    classifier (other kinds' ride along as extra keys)."""

    folds: list[Figure] = []
    mean_accuracy: Figure = None
    std_accuracy: Figure = None


class FinishedEvent(_Shape):
    """The end of a run: its test and val evaluations in the kind's shape (None without such a
    split), or a k-fold run's summary."""

    kind: str = "classification"
    test: AnyEvaluation | None = None
    val: AnyEvaluation | None = None
    kfold: KFold | None = None

    @model_validator(mode="before")
    @classmethod
    def _in_the_kinds_shape(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        shape = EVALUATIONS.get(data.get("kind") or "classification")
        if shape is None:
            raise ValueError(f"unknown kind {data.get('kind')!r}")
        splits = {
            split: shape.model_validate(data[split]) if data[split] else None  # {}: no split
            for split in ("test", "val")
            if isinstance(data.get(split), Mapping)
        }
        return {**data, **splits}

    def evaluation(self, split: str) -> _Shape | None:
        """The test or val evaluation in its kind's shape (None when there was no such split)."""
        return getattr(self, split)


def parse_evaluation(kind: str, data: Mapping[str, Any]) -> _Shape:
    """A stored evaluation dict in its kind's shape (pydantic.ValidationError if it is not)."""
    return EVALUATIONS[kind].model_validate(dict(data))


def read_result(kind: str, result: Any) -> FinishedEvent:
    """What a run returned (trainer.driver.run: {"test", "val"}, or a k-fold run's summary; the
    web app's Job.result) in the kind's shapes, as far as it fits (_Shape.read); a split that
    is missing, empty or no dict is None. An unknown kind reads as classification."""
    kind = kind if kind in EVALUATIONS else "classification"
    data = result if isinstance(result, Mapping) else {}
    shape = EVALUATIONS[kind]
    splits = {
        split: shape.read(data[split]) if isinstance(data.get(split), Mapping) else None
        for split in ("test", "val")
    }
    summary = data.get("kfold") if isinstance(data.get("kfold"), Mapping) else None
    if summary is None and "folds" in data:  # the summary is the whole result
        summary = data
    splits = {split: found if found else None for split, found in splits.items()}
    kfold = KFold.read(summary) if summary is not None else None
    return FinishedEvent.model_construct(kind=kind, kfold=kfold, **splits)


_ROWS: dict[str, TypeAdapter] = {}


def read_predictions(kind: str, rows: Any) -> list[Any]:
    """The rows of a predictions_<split>.json in the kind's shape (PREDICTIONS), as far as they
    fit (_Shape.read); a row that is no dict is left out, so a row's place is not its index in
    the file. An unknown kind: none."""
    shape = PREDICTIONS.get(kind)
    if shape is None or not isinstance(rows, list):
        return []
    if kind not in _ROWS:
        _ROWS[kind] = TypeAdapter(list[shape])  # type: ignore[valid-type]  # a class known at run time
    try:
        return _ROWS[kind].validate_python(rows)
    except ValidationError:
        return [row for value in rows if (row := shape.read(value)) is not None]
