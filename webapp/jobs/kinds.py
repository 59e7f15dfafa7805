"""What a run shows, charts and is scored by, per kind: the one place the web app asks.

The trainer names the figures (trainer/kinds.py, the events of trainer/events.py). Every web
consumer — the job task keeping `Job.metrics`, the API, the class dashboard, the compare page,
assignments — dispatches through here instead of reading classification's fields its own way,
so a new kind is one entry in each table below. Events are read through the trainer's typed
shapes (trainer/events.py), in `_epoch_figures` and `_evaluation` only.
"""

import logging
from dataclasses import dataclass

from django.utils import translation
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from pydantic import ValidationError

from trainer import events as trainer_events  # torch-free, like trainer.kinds
from trainer import kinds as trainer_kinds

log = logging.getLogger(__name__)

CLASSIFICATION, DETECTION = "classification", "detection"
PERCENT, NUMBER = "percent", "number"

# --- which kind a row is -----------------------------------------------------------------


def dataset_kind(dataset) -> str:
    """The kind of a dataset (classification for rows older than the field)."""
    return getattr(dataset, "kind", "") or CLASSIFICATION


def job_kind(job) -> str:
    """A run's kind: its dataset's (a run trains on one dataset). Its spec says it too (stored
    since kinds had names), which spares a query when the dataset was not read with the job."""
    if not type(job).dataset.is_cached(job):
        spec = job.spec or {}
        if spec.get("kind"):
            return spec["kind"]
    return dataset_kind(job.dataset)


# --- figures: what a row shows ---------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """One figure a page shows: the Job.metrics key, its label, how it reads, which way is up."""

    key: str
    label: str | Promise
    format: str = PERCENT
    higher_is_better: bool = True

    def text(self, value) -> str:
        """The value as a page shows it: "83.0%" or "0.412"; "" when unknown."""
        if not isinstance(value, int | float) or isinstance(value, bool):
            return ""
        return f"{100 * value:.1f}%" if self.format == PERCENT else f"{value:.3f}"

    def as_json(self) -> dict:
        """For the pages' scripts: the label in the reader's language."""
        return {
            "key": self.key,
            "label": str(self.label),
            "format": self.format,
            "higher_is_better": self.higher_is_better,
        }


FIGURES: dict[str, tuple[Figure, ...]] = {
    CLASSIFICATION: (
        Figure("test_accuracy", _("Test accuracy")),
        Figure("val_accuracy", _("Validation accuracy")),
        Figure("best_val_acc", _("Best validation accuracy")),
        Figure("val_loss", _("Validation loss"), NUMBER, higher_is_better=False),
    ),
    DETECTION: (
        Figure("test_map50", _("Test mAP@0.5")),
        Figure("val_map50", _("Validation mAP@0.5")),
        Figure("best_val_map50", _("Best validation mAP@0.5")),
        Figure("test_map", _("Test mAP@0.5:0.95")),
        Figure("val_map", _("Validation mAP@0.5:0.95")),
    ),
}
# The figure a leaderboard or a list ranks runs by, with the keys it is read from in order:
# the test split's when there is one, else the final validation's, else the best epoch's so far.
PRIMARY: dict[str, Figure] = {
    CLASSIFICATION: Figure("accuracy", _("accuracy")),
    DETECTION: Figure("map50", _("mAP@0.5")),
}
PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    CLASSIFICATION: ("test_accuracy", "val_accuracy", "best_val_acc", "val_acc"),
    DETECTION: ("test_map50", "val_map50", "best_val_map50"),
}


def kind_or_default(kind: str) -> str:
    """A kind this module has tables for; others read as classification until they get some."""
    return kind if kind in FIGURES else CLASSIFICATION


def figures(kind: str) -> tuple[Figure, ...]:
    """The figures a dashboard, queue or compare row shows for a run of this kind."""
    return FIGURES[kind_or_default(kind)]


def primary(kind: str) -> Figure:
    return PRIMARY[kind_or_default(kind)]


def primary_value(kind: str, metrics: dict | None) -> float | None:
    """A run's primary figure from its Job.metrics: test, else validation, else best epoch."""
    metrics = metrics or {}
    for key in PRIMARY_KEYS[kind_or_default(kind)]:
        value = metrics.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def shown_figures(kind: str, metrics: dict | None) -> list[dict]:
    """The kind's figures a run has, formatted: [{key, label, value, text, format}]."""
    metrics = metrics or {}
    rows = []
    for figure in figures(kind):
        value = metrics.get(figure.key)
        text = figure.text(value)
        if text:
            rows.append({**figure.as_json(), "value": value, "text": text})
    return rows


# --- curves: what a compare page overlays ---------------------------------------------------

# Every epoch figure a run may carry, labelled; the compare page hands a run the ones it has.
SERIES: dict[str, Figure] = {
    "train_loss": Figure("train_loss", _("training loss"), NUMBER, higher_is_better=False),
    "val_loss": Figure("val_loss", _("validation loss"), NUMBER, higher_is_better=False),
    "train_acc": Figure("train_acc", _("training accuracy")),
    "val_acc": Figure("val_acc", _("validation accuracy")),
    "train_heatmap": Figure("train_heatmap", _("heat-map loss"), NUMBER, higher_is_better=False),
    "train_size": Figure("train_size", _("size loss"), NUMBER, higher_is_better=False),
    "train_offset": Figure("train_offset", _("offset loss"), NUMBER, higher_is_better=False),
    "val_map50": Figure("val_map50", _("validation mAP@0.5")),
    "val_map": Figure("val_map", _("validation mAP@0.5:0.95")),
}
CURVES: dict[str, tuple[str, ...]] = {
    CLASSIFICATION: ("val_acc", "val_loss", "train_loss"),
    DETECTION: ("val_map50", "val_map", "train_loss"),
}


def figure(kind: str, key: str) -> Figure:
    """One of the kind's figures by its Job.metrics key (KeyError when it has none)."""
    for shown in figures(kind):
        if shown.key == key:
            return shown
    raise KeyError(key)


def compare_columns(kind: str) -> tuple[Figure, Figure]:
    """A compare table's two figures: the best validation one of every epoch, and the test one."""
    return figure(kind, BEST_OF_EPOCHS[kind_or_default(kind)][1]), figure(
        kind, PRIMARY_KEYS[kind_or_default(kind)][0]
    )


def epoch_keys(kind: str) -> tuple[str, ...]:
    """The figures an epoch event of this kind carries (the trainer's list)."""
    return trainer_kinds.EPOCH_FIGURES[kind_or_default(kind)]


def curves(kind: str) -> list[dict]:
    """The series a compare page overlays for runs of this kind, first the one it leads with."""
    return [SERIES[key].as_json() for key in CURVES[kind_or_default(kind)]]


def series_labels(keys) -> list[dict]:
    """Labels for the epoch figures a run has (keys of its epoch events)."""
    return [SERIES[key].as_json() for key in keys if key in SERIES]


# --- Job.metrics after each event (the job task) ---------------------------------------------

EPOCH_BOOKKEEPING = ("epoch", "fold")  # kept with the figures: the dashboard shows the epoch
# The epoch figure whose best so far is kept, and the key it is kept under.
BEST_OF_EPOCHS = {
    CLASSIFICATION: ("val_acc", "best_val_acc"),
    DETECTION: ("val_map50", "best_val_map50"),
}


def _epoch_figures(kind: str, data: dict) -> dict:
    """An epoch event's figures of this kind (None where the event had none)."""
    try:
        data = trainer_events.EpochEvent.model_validate(data).model_dump()
    except ValidationError as exc:  # a trainer outside the contract: keep what it did say
        log.warning("epoch event outside the contract: %s", exc.errors()[:3])
    return {key: data.get(key) for key in (*EPOCH_BOOKKEEPING, *epoch_keys(kind))}


def _evaluation(kind: str, data: dict, split: str):
    """A finished event's evaluation of one split in its kind's shape (ClassificationEvaluation,
    DetectionEvaluation); None when there was no such split or it is outside the contract."""
    try:
        return trainer_events.FinishedEvent.model_validate({**data, "kind": kind}).evaluation(split)
    except ValidationError as exc:  # its figures are not kept; the results page shows what is
        log.warning("finished event's %s outside the contract: %s", split, exc.errors()[:3])
        return None


def _finished_classification(data: dict, metrics: dict) -> dict:
    test, val = _evaluation(CLASSIFICATION, data, "test"), _evaluation(CLASSIFICATION, data, "val")
    if test is not None:
        metrics["test_accuracy"], metrics["test_loss"] = test.accuracy, test.loss
    if val is not None:
        metrics["val_accuracy"], metrics["val_loss"] = val.accuracy, val.loss
    kfold = data.get("kfold")
    if kfold:
        metrics["kfold_mean"] = kfold["mean_accuracy"]
        metrics["kfold_std"] = kfold["std_accuracy"]
    return metrics


def _finished_detection(data: dict, metrics: dict) -> dict:
    test, val = _evaluation(DETECTION, data, "test"), _evaluation(DETECTION, data, "val")
    for split, evaluation in (("val", val), ("test", test)):
        if evaluation is not None:
            metrics[f"{split}_map50"], metrics[f"{split}_map"] = evaluation.map50, evaluation.map
            if evaluation.loss is not None:  # torchvision's detectors give none
                metrics[f"{split}_loss"] = evaluation.loss
    final = test if test is not None else val  # the contract: test when there is a test split
    if final is not None:
        metrics["map50"], metrics["map"] = final.map50, final.map
    return metrics


FINISHED = {CLASSIFICATION: _finished_classification, DETECTION: _finished_detection}


def metrics_after(kind: str, event: dict, metrics: dict) -> dict | None:
    """A run's Job.metrics after an epoch or the end; None when the event changes none."""
    kind = kind_or_default(kind)
    data = event.get("data", {})
    if event.get("kind") == "epoch":
        updated = {**metrics, **_epoch_figures(kind, data)}
        latest, best = BEST_OF_EPOCHS[kind]
        if data.get(latest) is not None:
            updated[best] = max(data[latest], metrics.get(best) or 0.0)
        return updated
    if event.get("kind") == "finished":
        return FINISHED[kind](data, dict(metrics))
    return None


# --- the API: GET /api/v1/jobs/{id} "metrics" -----------------------------------------------

# The keys the API always answers for a run of the kind (null until known); every other key
# of Job.metrics (the kind's FIGURES, the last epoch's figures) rides along when the run has it.
API_KEYS: dict[str, tuple[str, ...]] = {
    CLASSIFICATION: ("test_accuracy", "val_accuracy", "val_loss"),
    DETECTION: ("map50", "map", "val_map50", "test_map50"),
}


def api_metrics(kind: str, metrics: dict | None, result: dict | None) -> dict:
    """A run's figures as the API answers them: flat keys of its kind, null until known."""
    metrics = dict(metrics or {})
    if kind_or_default(kind) == CLASSIFICATION:  # runs older than Job.metrics: from the result
        test = (result or {}).get("test") or {}
        val = (result or {}).get("val") or {}
        metrics.setdefault("test_accuracy", test.get("accuracy"))
        metrics.setdefault("val_accuracy", val.get("accuracy", metrics.get("val_acc")))
        metrics.setdefault("val_loss", val.get("loss"))
    return {**dict.fromkeys(API_KEYS[kind_or_default(kind)]), **metrics}


def api_description() -> dict[str, dict]:
    """The OpenAPI properties of "metrics": every flat key of every kind, described."""
    properties: dict[str, dict] = {}
    with translation.override("en"):  # the schema is written once, in English
        for kind in FIGURES:
            labels = {f.key: str(f.label) for f in FIGURES[kind]}
            for key in trainer_kinds.FIGURES[kind]:
                what = labels.get(key, key.replace("_", " "))
                properties[key] = {
                    "anyOf": [{"type": "number"}, {"type": "null"}],
                    "description": f"{kind}: {what}",
                }
    return properties


# --- assignments: what a submission is scored by -------------------------------------------

# The figures of a scoring an assignment may rank by, per kind (keys of Metric in
# webapp/assignments/models.py); the first is the default.
ASSIGNMENT_METRICS: dict[str, tuple[str, ...]] = {
    CLASSIFICATION: ("accuracy", "macro_f1"),
    DETECTION: ("map50",),
}


def scored(kind: str) -> bool:
    """Whether assignments of this kind can be scored on a hidden test set."""
    return kind in ASSIGNMENT_METRICS


def assignment_metrics(kind: str) -> tuple[str, ...]:
    return ASSIGNMENT_METRICS.get(kind, ())


def kind_name(kind: str) -> str:
    """The kind in the reader's words ("object detection")."""
    return str(KIND_NAMES.get(kind, kind))


KIND_NAMES = {
    CLASSIFICATION: _("classification"),
    DETECTION: _("object detection"),
    "segmentation": _("segmentation"),
    "keypoints": _("keypoints (pose)"),
}
