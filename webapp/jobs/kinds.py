"""What a run shows, charts and is scored by, per kind: the one place the web app asks.

The trainer names the figures (trainer/kinds.py, the events of trainer/events.py). Every web
consumer — the job task keeping `Job.metrics`, the API, the class dashboard, the compare page,
assignments — dispatches through here instead of reading classification's fields its own way,
so a new kind is one entry in VIEWS below. Events are read through the trainer's typed
shapes (trainer/events.py): here in `_epoch_figures` and `_evaluation`; a run's stored result
and per-image predictions in its kind's results module (webapp/jobs/<kind>_results.py).
"""

import logging
from dataclasses import dataclass

from django.utils import translation
from django.utils.functional import Promise
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from pydantic import ValidationError

from trainer import events as trainer_events  # torch-free, like trainer.kinds
from trainer import kinds as trainer_kinds

log = logging.getLogger(__name__)

CLASSIFICATION, DETECTION = "classification", "detection"
SEGMENTATION, KEYPOINTS = "segmentation", "keypoints"
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


@dataclass(frozen=True)
class KindView:
    """Everything the web app shows and keeps of one kind's runs: adding a kind is one entry
    in VIEWS (and its results module, webapp/jobs/<kind>_results.py).

    figures            what a dashboard, queue or compare row shows (Job.metrics keys)
    primary            what a leaderboard ranks by, read from `primary_keys` in order (the test
                       split's, else the final validation's, else the best epoch's so far)
    curves             the epoch figures a compare page overlays, the leading one first
    best_of_epochs     (the epoch figure whose best is kept, the key it is kept under)
    split_figures      an evaluation's figures kept per split: val_<name>, test_<name>
    final_figures      kept bare from the test split, else validation: "map50", "miou"
    api_keys           what the API always answers for the kind (null until known)
    assignment_metrics what an assignment may rank by (webapp/assignments Metric keys)
    tools              the studio canvas's tools, in toolbar order (static/js/studio/tools/);
                       none: its images are labelled on the grid, one class each
    agreement          what a labelling assignment's per-image agreement is, in words
    assist_batch       images per call to a run's model when it proposes labels
    torchvision_help   what the launch page says of torchvision's models for the kind

    What the kind's data is (one class per image, masks, keypoints) is the trainer's table,
    trainer.kinds.SHAPES, read here as `shape(kind)`.
    """

    figures: tuple[Figure, ...]
    primary: Figure
    primary_keys: tuple[str, ...]
    curves: tuple[str, ...]
    best_of_epochs: tuple[str, str]
    split_figures: tuple[str, ...]
    final_figures: tuple[str, ...]
    api_keys: tuple[str, ...]
    assignment_metrics: tuple[str, ...] = ()
    # Classification's evaluation names its figure "accuracy", kept as val_accuracy.
    tools: tuple[str, ...] = ()
    agreement: str | Promise = _("Agreement")
    assist_batch: int = 8  # photos of detection, segmentation and poses can be large
    torchvision_help: str | Promise = _(
        "Large detectors made for colour photos; best with a GPU worker."
    )


VIEWS: dict[str, KindView] = {
    CLASSIFICATION: KindView(
        figures=(
            Figure("test_accuracy", _("Test accuracy")),
            Figure("val_accuracy", _("Validation accuracy")),
            Figure("best_val_acc", _("Best validation accuracy")),
            Figure("val_loss", _("Validation loss"), NUMBER, higher_is_better=False),
        ),
        primary=Figure("accuracy", _("accuracy")),
        primary_keys=("test_accuracy", "val_accuracy", "best_val_acc", "val_acc"),
        curves=("val_acc", "val_loss", "train_loss"),
        best_of_epochs=("val_acc", "best_val_acc"),
        split_figures=("accuracy", "loss"),
        final_figures=(),
        api_keys=("test_accuracy", "val_accuracy", "val_loss"),
        assignment_metrics=("accuracy", "macro_f1"),
        agreement=_("Share of students agreeing"),
        assist_batch=64,
        torchvision_help=_(
            "Large networks made for 224×224 colour photos; best with a GPU worker or as a "
            "transfer source."
        ),
    ),
    DETECTION: KindView(
        figures=(
            Figure("test_map50", _("Test mAP@0.5")),
            Figure("val_map50", _("Validation mAP@0.5")),
            Figure("best_val_map50", _("Best validation mAP@0.5")),
            Figure("test_map", _("Test mAP@0.5:0.95")),
            Figure("val_map", _("Validation mAP@0.5:0.95")),
        ),
        primary=Figure("map50", _("mAP@0.5")),
        primary_keys=("test_map50", "val_map50", "best_val_map50"),
        curves=("val_map50", "val_map", "train_loss"),
        best_of_epochs=("val_map50", "best_val_map50"),
        split_figures=("map50", "map", "loss"),
        final_figures=("map50", "map"),
        api_keys=("map50", "map", "val_map50", "test_map50"),
        assignment_metrics=("map50",),
        tools=("box",),
        agreement=_("Mean IoU of the boxes"),
    ),
    SEGMENTATION: KindView(
        figures=(
            Figure("test_miou", _("Test mIoU")),
            Figure("val_miou", _("Validation mIoU")),
            Figure("best_val_miou", _("Best validation mIoU")),
            Figure("dice", _("Dice")),
            Figure("pixel_accuracy", _("Pixel accuracy")),
        ),
        primary=Figure("miou", _("mIoU")),
        primary_keys=("test_miou", "val_miou", "best_val_miou"),
        curves=("val_miou", "val_dice", "train_loss", "val_loss"),
        best_of_epochs=("val_miou", "best_val_miou"),
        split_figures=("miou", "dice", "pixel_accuracy", "loss"),
        final_figures=("miou", "dice", "pixel_accuracy"),
        api_keys=("miou", "val_miou", "test_miou", "dice"),
        assignment_metrics=("miou",),
        tools=("polygon", "brush", "box"),
        agreement=_("Mean IoU of the masks"),
    ),
    KEYPOINTS: KindView(
        figures=(
            Figure("test_pck", _("Test PCK@0.1")),
            Figure("val_pck", _("Validation PCK@0.1")),
            Figure("best_val_pck", _("Best validation PCK@0.1")),
            Figure("oks_ap", _("OKS AP")),
        ),
        primary=Figure("pck", _("PCK@0.1")),
        primary_keys=("test_pck", "val_pck", "best_val_pck"),
        curves=("val_pck", "val_oks_ap", "train_loss", "val_loss"),
        best_of_epochs=("val_pck", "best_val_pck"),
        split_figures=("pck", "oks_ap", "loss"),
        final_figures=("pck", "oks_ap"),
        api_keys=("pck", "val_pck", "test_pck", "oks_ap"),
        assignment_metrics=("oks_ap",),
        tools=("keypoints", "box"),
        agreement=_("Mean OKS of the keypoints"),
    ),
}
# Read-only views of the table for the modules that want one column.
FIGURES = {kind: view.figures for kind, view in VIEWS.items()}
PRIMARY = {kind: view.primary for kind, view in VIEWS.items()}
PRIMARY_KEYS = {kind: view.primary_keys for kind, view in VIEWS.items()}
CURVES = {kind: view.curves for kind, view in VIEWS.items()}
BEST_OF_EPOCHS = {kind: view.best_of_epochs for kind, view in VIEWS.items()}
API_KEYS = {kind: view.api_keys for kind, view in VIEWS.items()}
ASSIGNMENT_METRICS = {kind: view.assignment_metrics for kind, view in VIEWS.items()}


def kind_or_default(kind: str) -> str:
    """A kind this module has a view of; others (rows from a newer trainer) read as
    classification."""
    return kind if kind in VIEWS else CLASSIFICATION


def view(kind: str) -> KindView:
    """The kind's row of VIEWS (classification's for a kind this module does not know)."""
    return VIEWS[kind_or_default(kind)]


shape = trainer_kinds.shape  # what the kind's data is: one_label_per_image, has_masks, ...


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


def final_value(kind: str, metrics: dict | None) -> float | None:
    """A run's figure on its test split (the kind's first primary key, e.g. test_accuracy,
    test_map50) from its Job.metrics; a k-fold run, which has no test figure, its folds' mean."""
    metrics = metrics or {}
    for key in (PRIMARY_KEYS[kind_or_default(kind)][0], "kfold_mean"):
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
    "train_ce": Figure("train_ce", _("cross-entropy loss"), NUMBER, higher_is_better=False),
    "train_dice": Figure("train_dice", _("Dice loss"), NUMBER, higher_is_better=False),
    "val_miou": Figure("val_miou", _("validation mIoU")),
    "val_dice": Figure("val_dice", _("validation Dice")),
    "val_pixel_accuracy": Figure("val_pixel_accuracy", _("validation pixel accuracy")),
    "val_pck": Figure("val_pck", _("validation PCK@0.1")),
    "val_oks_ap": Figure("val_oks_ap", _("validation OKS AP")),
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


def _epoch_figures(kind: str, data: dict) -> dict:
    """An epoch event's figures of this kind (None where the event had none)."""
    try:
        data = trainer_events.EPOCHS[kind].model_validate(data).model_dump()
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


def _finished(kind: str, data: dict, metrics: dict) -> dict:
    """Job.metrics after the finished event: each split's figures (val_<name>, test_<name>;
    classification's "accuracy" as val_accuracy), the final ones bare (test, else validation),
    and the k-fold mean and spread."""
    view = VIEWS[kind]
    test, val = _evaluation(kind, data, "test"), _evaluation(kind, data, "val")
    for split, evaluation in (("val", val), ("test", test)):
        if evaluation is None:
            continue
        for name in view.split_figures:
            value = getattr(evaluation, name, None)
            if value is not None or name != "loss":  # some detectors give no loss in evaluation
                metrics[f"{split}_{name}"] = value
    final = test if test is not None else val  # the contract: test when there is a test split
    if final is not None:
        for name in view.final_figures:
            metrics[name] = getattr(final, name, None)
    kfold = data.get("kfold")
    if kfold and "mean_accuracy" in kfold:
        metrics["kfold_mean"] = kfold["mean_accuracy"]
        metrics["kfold_std"] = kfold["std_accuracy"]
    return metrics


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
        return _finished(kind, data, dict(metrics))
    return None


# --- the API: GET /api/v1/jobs/{id} "metrics" -----------------------------------------------

# The API always answers a kind's `api_keys` (null until known); every other key of
# Job.metrics (the kind's FIGURES, the last epoch's figures) rides along when the run has it.


def api_metrics(kind: str, metrics: dict | None) -> dict:
    """A run's figures as the API answers them: flat keys of its kind, null until known. They
    come from Job.metrics alone (runs older than it were given theirs by migration
    jobs.0005_backfill_metrics); the stored result is no longer read."""
    return {**dict.fromkeys(API_KEYS[kind_or_default(kind)]), **(metrics or {})}


def api_description() -> dict[str, dict]:
    """The OpenAPI properties of "metrics": every flat key of every kind, described (a key
    several kinds share, like val_loss, names them all)."""
    owners: dict[str, list[str]] = {}
    what: dict[str, str] = {}
    with translation.override("en"):  # the schema is written once, in English
        for kind in VIEWS:
            shown = (*VIEWS[kind].figures, VIEWS[kind].primary)
            labels = {f.key: str(f.label) for f in shown}
            for key in trainer_kinds.FIGURES[kind]:
                owners.setdefault(key, []).append(kind)
                what.setdefault(key, labels.get(key, key.replace("_", " ")))
    return {
        key: {
            "anyOf": [{"type": "number"}, {"type": "null"}],
            "description": f"{', '.join(kinds)}: {what[key]}",
        }
        for key, kinds in owners.items()
    }


# --- assignments: what a submission is scored by -------------------------------------------


def scored(kind: str) -> bool:
    """Whether assignments of this kind can be scored on a hidden test set."""
    return bool(ASSIGNMENT_METRICS.get(kind))


def assignment_metrics(kind: str) -> tuple[str, ...]:
    return ASSIGNMENT_METRICS.get(kind, ())


def kind_name(kind: str) -> str:
    """The kind in the reader's words ("object detection")."""
    return str(KIND_NAMES.get(kind, kind))


KIND_NAMES = {
    CLASSIFICATION: _("classification"),
    DETECTION: _("object detection"),
    SEGMENTATION: _("segmentation"),
    KEYPOINTS: _("keypoints (pose)"),
}


# --- the job page: its live curves and facts ---------------------------------------------------


def sentence(text: str) -> str:
    """The text with a capital first letter, unless it starts with a name like mIoU or mAP."""
    return text if text[1:2].isupper() else capfirst(text)


def live_view(kind: str) -> dict:
    """What a job's live page draws for a run of this kind (static/js/job_live.js): the epoch
    figures of its first chart (higher is better) and of its loss chart, the epoch figure whose
    best it shows, the evaluation figure the finished event's test split is read by, and the
    words of its facts and first chart."""
    kind = kind_or_default(kind)
    view = VIEWS[kind]
    epoch = [key for key in trainer_kinds.EPOCH_FIGURES[kind] if key in SERIES]
    best_key = view.best_of_epochs[1]
    return {
        "curves": [key for key in epoch if SERIES[key].higher_is_better],
        "losses": [key for key in epoch if not SERIES[key].higher_is_better],
        "best": view.best_of_epochs[0],
        "final": view.split_figures[0],
        "axis": str(view.primary.label),
        "title": sentence(_("%(metric)s per epoch") % {"metric": view.primary.label}),
        "best_label": str(figure(kind, best_key).label),
        "test_label": str(figure(kind, view.primary_keys[0]).label),
    }
