"""Classification results: accuracy, the confusion matrix (or the top mix-ups), per-class figures,
the most confident mistakes, and the images behind a confusion cell.

Two sources, both written by the trainer (docs/architecture.md, "the seam"), both read through
its typed shapes (trainer/events.py): the finished event's ClassificationEvaluation (kept as
`Job.result`, with a k-fold run's KFold summary) and the per-image predictions artifact
`predictions_<split>.json` (ClassificationPrediction rows: id, true and predicted class,
confidence), which a confusion cell lists.
"""

import heapq
import json
import math

import numpy as np
from django.core.cache import cache
from django.core.files.storage import default_storage
from django.db.models.fields.json import KeyTransform
from django.http import Http404
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from trainer import events
from webapp.accounts import permissions
from webapp.jobs import kinds, results
from webapp.jobs.models import Job, JobStatus

KIND = kinds.CLASSIFICATION
CELL_LIMIT = 300  # images listed for one confusion cell
CONFUSION_DRAWN = 30  # classes up to which the whole matrix is drawn; above, the top mix-ups
MIX_UPS_SHOWN = 30
PER_CLASS_SHOWN = 50  # rows of the per-class table (the weakest classes first when more)
MISTAKES_SHOWN = 200  # misclassified images drawn (the trainer keeps at most 200)
MAX_PREDICTIONS_BYTES = 256 * 1024 * 1024  # a larger file is offered for download, not read
# What a row of the per-image predictions file holds (the results page says it by the download).
PREDICTIONS_NOTE = _(
    "One JSON row per image: its id, the true and the predicted class (their numbers in the "
    "model card's class list) and the predicted class's probability."
)


def final_figures(job: Job) -> dict:
    """Test accuracy, validation accuracy and k-fold mean of a run, from its Job.metrics (kept
    by the job task; runs older than those figures were given them by migration
    jobs.0005_backfill_metrics)."""
    metrics = job.metrics or {}
    return {
        "test": metrics.get("test_accuracy"),
        "val": metrics.get("val_accuracy"),
        "mean": metrics.get("kfold_mean"),
    }


def _name(names: list[str], index) -> str:
    return names[index] if isinstance(index, int) and 0 <= index < len(names) else str(index)


def _confusion_rows(confusion: list[list[int]], names: list[str]) -> list[dict]:
    rows = []
    for true, counts in enumerate(confusion):
        total = sum(counts) or 1
        cells = [
            {"predicted": p, "count": n, "share": round(n / total, 3), "hit": p == true}
            for p, n in enumerate(counts)
        ]
        rows.append(
            {"true": true, "name": _name(names, true), "cells": cells, "total": sum(counts)}
        )
    return rows


def _mix_ups(confusion: list[list[int]], names: list[str]) -> list[dict]:
    """The off-diagonal cells with the most images: which classes the model confused most."""
    try:
        counts = np.array(confusion, dtype=np.int64)  # (C, C): rows true, columns predicted
    except (TypeError, ValueError):  # not a square table of counts: nothing to point at
        return []
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        return []
    np.fill_diagonal(counts, 0)
    flat = counts.ravel()
    top = (
        np.argpartition(flat, -MIX_UPS_SHOWN)[-MIX_UPS_SHOWN:]
        if flat.size > MIX_UPS_SHOWN
        else np.arange(flat.size)
    )
    cells = sorted(
        ((int(flat[i]), *divmod(int(i), counts.shape[1])) for i in top if flat[i] > 0),
        key=lambda cell: (-cell[0], cell[1], cell[2]),
    )
    return [
        {
            "true": true,
            "predicted": predicted,
            "count": count,
            "true_name": _name(names, true),
            "predicted_name": _name(names, predicted),
        }
        for count, true, predicted in cells
    ]


def _per_class(rows: list[events.ClassFigures | None], names: list[str]) -> list[dict]:
    """The per-class table; with many classes only the weakest ones (lowest F1)."""
    table = [
        {**row.model_dump(by_alias=True), "name": _name(names, row.class_)}
        for row in rows
        if row is not None and row.class_ is not None
    ]
    if len(table) > PER_CLASS_SHOWN:
        table = sorted(table, key=lambda row: (row["f1"] or 0.0, row["class"]))[:PER_CLASS_SHOWN]
    return table


def _misclassified(rows: list[events.Misclassified | None], names: list[str]) -> list[dict]:
    shown = []
    for row in rows:
        if row is None or row.true is None or row.predicted is None:
            continue
        probabilities = row.probabilities or []
        shown.append(
            {
                "id": row.id,
                "true": row.true,
                "predicted": row.predicted,
                "confidence": row.confidence,
                "true_name": _name(names, row.true),
                "predicted_name": _name(names, row.predicted),
                "true_probability": probabilities[row.true]
                if 0 <= row.true < len(probabilities)
                else None,
            }
        )
    return shown


def summary(job: Job, result: dict) -> dict:
    """Accuracy, the confusion matrix (or the top mix-ups), per-class figures, the mistakes."""
    names = results.class_names(job)
    finished = events.read_result(KIND, result)
    split, evaluation = results.evaluated_split(finished)
    confusion = [row or [] for row in evaluation.confusion] if evaluation else []
    drawn = len(confusion) <= CONFUSION_DRAWN
    per_class = [row for row in evaluation.per_class if row is not None] if evaluation else []
    val = finished.val
    kfold = finished.kfold
    return {
        "names": names if drawn else [],
        "split": split,
        "evaluation": {
            "accuracy": evaluation.accuracy,
            "top5": evaluation.top5,
            "loss": evaluation.loss,
        }
        if evaluation
        else {},
        "val": {"accuracy": val.accuracy}
        if split == "test" and val is not None and val.accuracy is not None
        else {},
        "kfold": {
            "folds": kfold.folds,
            "mean_accuracy": kfold.mean_accuracy,
            "std_accuracy": kfold.std_accuracy,
        }
        if kfold is not None
        else None,
        "confusion": _confusion_rows(confusion, names) if drawn else [],
        "mix_ups": [] if drawn else _mix_ups(confusion, names),
        "confusion_size": len(confusion),
        "per_class": _per_class(per_class, names),
        "per_class_total": len(per_class),
        "misclassified": _misclassified(
            (evaluation.misclassified if evaluation else [])[:MISTAKES_SHOWN], names
        ),
    }


def context(job: Job, user, request=None) -> dict:
    """Nothing per request: a classifier's images are behind its confusion cells."""
    return {}


def images_view(request, job: Job):
    """A classifier has no page of evaluated images: its confusion cells list them."""
    raise Http404


# --- the images behind a confusion cell ------------------------------------------------------


def _in_cell(rows: object, true: int, predicted: int) -> list[dict]:
    """The stored rows of the (true, predicted) cell, as stored. A class is a strict int
    (events.Label), so these are the rows whose shape reads as in the cell."""
    if not isinstance(rows, list):
        return []
    return [
        row
        for row in rows
        if isinstance(row, dict)
        and type(row.get("true")) is int
        and row["true"] == true
        and type(row.get("predicted")) is int
        and row["predicted"] == predicted
    ]


def _confidence(row: dict) -> float:
    """A stored row's confidence to rank by; one that does not read as a figure (events.Figure)
    ranks as 0."""
    value = row.get("confidence")
    return float(value) if type(value) in (int, float) and math.isfinite(value) else 0.0


def _cell_rows(job: Job, split: str, true: int, predicted: int) -> tuple[list[dict], bool]:
    """The stored rows of one (true, predicted) cell; False when only the mistakes were kept."""
    name = f"jobs/{job.pk}/{results.PREDICTIONS[split]}"
    if default_storage.exists(name):  # through the storage API, whatever holds media
        try:
            if default_storage.size(name) > MAX_PREDICTIONS_BYTES:
                raise Http404
            with default_storage.open(name, "rb") as stored:
                return _in_cell(json.loads(stored.read()), true, predicted), True
        except (OSError, ValueError):  # gone since, unreadable or not JSON
            raise Http404 from None
    # Trained before per-image predictions were written: the stored mistakes only
    mistakes = KeyTransform("misclassified", KeyTransform(split, "result"))
    stored = Job.objects.filter(pk=job.pk).values_list(mistakes, flat=True).first()
    return _in_cell(stored, true, predicted), False


def _cell(job: Job, split: str, true: int, predicted: int) -> dict:
    """The listed rows of a cell (the most confident first), how many it holds and whether
    every image was kept; cached per finished run, whose files never change. Only the listed
    rows are read into their shape: a cell can hold every image of the split, and shaping
    60,000 rows cost the page half a second."""
    key = f"cm-cell:{job.run_key}:{split}:{true}:{predicted}"
    cell = cache.get(key)
    if cell is None:
        stored, complete = _cell_rows(job, split, true, predicted)
        shown = heapq.nlargest(CELL_LIMIT, stored, key=_confidence)
        cell = {
            "rows": [
                {"id": row.id, "confidence": row.confidence}
                for row in events.read_predictions(KIND, shown)
            ],
            "count": len(stored),
            "complete": complete,
        }
        cache.set(key, cell, results.RESULT_CACHE_SECONDS)
    return cell


def cell_view(request, job: Job, true: int, predicted: int):
    """The evaluated images that are `true` and were predicted as `predicted`."""
    names = results.class_names(job)
    if job.status != JobStatus.SUCCEEDED or true >= len(names) or predicted >= len(names):
        raise Http404
    split = "test" if final_figures(job)["test"] is not None else "val"  # as evaluated_split
    cell = _cell(job, split, true, predicted)
    context = {
        "job": job,
        "course": job.course,
        "split": split,
        "true_name": names[true],
        "predicted_name": names[predicted],
        "rows": cell["rows"],
        "count": cell["count"],
        "complete": cell["complete"] or true != predicted,
        "show_images": permissions.can_view_images(request.user, job.dataset),
    }
    partial = request.headers.get("HX-Request") == "true"
    return render(request, "jobs/_cell.html" if partial else "jobs/confusion_cell.html", context)
