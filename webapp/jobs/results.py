"""Result pages: a finished job's results, the images behind a confusion cell, Try it.

The result partial is one frame (templates/jobs/_result.html) around the kind's own template,
`jobs/results/<kind>.html`. Classification's figures are made here; every other kind has one
module, `webapp/jobs/<kind>_results.py` (detection_results.py, segmentation_results.py,
keypoints_results.py), with `summary(job, result)` (cached per finished run),
`context(job, user, request)` (per request: a page of evaluated images) and
`images_view(request, job)` (GET /jobs/<id>/images/). A new kind is one module and one template.
"""

import heapq
import importlib
import json
from pathlib import Path
from types import ModuleType

import numpy as np
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.files.storage import default_storage
from django.db.models.fields.json import KeyTransform
from django.http import Http404
from django.shortcuts import render
from django.utils.translation import gettext as _

from trainer import kinds as trainer_kinds
from webapp.accounts import permissions
from webapp.datasets import queries
from webapp.jobs import kinds
from webapp.jobs.models import Job, JobStatus

# Only these names are ever served from a job's folder (never a path from the request).
ARTIFACTS = {
    "model.safetensors": "application/octet-stream",
    "model.torchscript.pt": "application/octet-stream",
    "model.onnx": "application/octet-stream",
    "model_card.json": "application/json",
}
# Per-image predictions the trainer writes (trainer.driver.*_PREDICTIONS).
PREDICTIONS = {"test": "predictions_test.json", "val": "predictions_val.json"}
# Every file a job's downloads offer (the API's artifact endpoint serves exactly these).
DOWNLOADS = {**ARTIFACTS, **{name: "application/json" for name in PREDICTIONS.values()}}
CELL_LIMIT = 300  # images listed for one confusion cell
CONFUSION_DRAWN = 30  # classes up to which the whole matrix is drawn; above, the top mix-ups
MIX_UPS_SHOWN = 30
PER_CLASS_SHOWN = 50  # rows of the per-class table (the weakest classes first when more)
MISTAKES_SHOWN = 200  # misclassified images drawn (the trainer keeps at most 200)
RESULT_CACHE_SECONDS = 3600


def artifact_path(job_id: int, name: str) -> Path | None:
    """The file of an allowed download name when the job has it, else None."""
    if name not in DOWNLOADS:
        return None
    path = Path(default_storage.path(f"jobs/{job_id}")) / name
    return path if path.is_file() else None


def class_names(job: Job) -> list[str]:
    """Class names in the order the trainer numbered them (the version's categories)."""
    return list(queries.category_names(job.dataset, job.dataset_version).values())


def final_figures(job: Job) -> dict:
    """Test accuracy, validation accuracy and k-fold mean of a run, from the small `metrics`
    the reporter keeps; read from the (large) result only for runs older than those figures."""
    metrics = job.metrics or {}
    if any(key in metrics for key in ("test_accuracy", "val_accuracy", "kfold_mean")):
        return {
            "test": metrics.get("test_accuracy"),
            "val": metrics.get("val_accuracy"),
            "mean": metrics.get("kfold_mean"),
        }
    result = job.result or {}
    return {
        "test": (result.get("test") or {}).get("accuracy"),
        "val": (result.get("val") or {}).get("accuracy"),
        "mean": result.get("mean_accuracy"),
    }


def _viewed_job(request, job_id: int) -> Job:
    """The job when the viewer may see it (as jobs.views._job_for), read without its result
    and its dataset's upload report: megabytes each for a run of a thousand classes."""
    jobs = Job.objects.select_related("course", "dataset", "owner")
    job = jobs.defer("result", "dataset__report").filter(pk=job_id).first()
    if job is None or not permissions.can_view_job(request.user, job):
        raise Http404
    return job


def flatten(spec: dict, prefix: str = "") -> dict[str, object]:
    """Nested spec fields as dotted paths: {"transfer": {"mode": x}} → {"transfer.mode": x}."""
    flat: dict[str, object] = {}
    for key, value in spec.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{path}."))
        else:
            flat[path] = json.dumps(value, ensure_ascii=False) if isinstance(value, list) else value
    return flat


def evaluated_split(result: dict) -> tuple[str, dict]:
    """The split the results show: the test split, or validation when there are no test images."""
    if result.get("test"):
        return "test", result["test"]
    return "val", result.get("val") or {}


def _started_event(job: Job) -> dict:
    event = job.events.filter(kind="started").order_by("-number").first()
    return event.data if event else {}


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


def _name(names: list[str], index: int) -> str:
    return names[index] if 0 <= index < len(names) else str(index)


def _mix_ups(confusion: list[list[int]], names: list[str]) -> list[dict]:
    """The off-diagonal cells with the most images: which classes the model confused most."""
    try:
        counts = np.array(confusion, dtype=np.int64)  # (C, C): rows true, columns predicted
    except (TypeError, ValueError):  # not a square table of counts: nothing to point at
        return []
    if counts.ndim != 2:
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


def _per_class(rows: list[dict], names: list[str]) -> list[dict]:
    """The per-class table; with many classes only the weakest ones (lowest F1)."""
    if len(rows) > PER_CLASS_SHOWN:
        rows = sorted(rows, key=lambda row: (row.get("f1") or 0.0, row["class"]))[:PER_CLASS_SHOWN]
    return [{**row, "name": _name(names, row["class"])} for row in rows]


def _misclassified(rows: list[dict], names: list[str]) -> list[dict]:
    return [
        {
            **{key: value for key, value in row.items() if key != "probabilities"},  # 1 per class
            "true_name": _name(names, row["true"]),
            "predicted_name": _name(names, row["predicted"]),
            "true_probability": (row.get("probabilities") or [None] * (row["true"] + 1))[
                row["true"]
            ],
        }
        for row in rows
    ]


def _val_figures(result: dict) -> dict:
    accuracy = (result.get("val") or {}).get("accuracy")
    return {} if accuracy is None else {"accuracy": accuracy}


def result_summary(job: Job) -> dict:
    """What the result partial shows of a finished run's result, bounded, cached per run.

    A run's result never changes once it has finished, and for a thousand classes it is
    megabytes of JSON (a confusion matrix per split): it is read once, not on every view.
    """
    kind = result_kind(job)
    finished = job.finished_at.timestamp() if job.finished_at else 0
    key = f"job-result:{kind}:{job.pk}:{job.attempts}:{finished:.6f}"
    summary = cache.get(key)
    if summary is not None:
        return summary
    result = Job.objects.filter(pk=job.pk).values_list("result", flat=True).first() or {}
    summary = _summary_of(kind)(job, result if isinstance(result, dict) else {})
    cache.set(key, summary, RESULT_CACHE_SECONDS)
    return summary


def classification_summary(job: Job, result: dict) -> dict:
    """Accuracy, the confusion matrix (or the top mix-ups), per-class figures, the mistakes."""
    names = class_names(job)
    split, evaluation = evaluated_split(result)
    confusion = evaluation.get("confusion") or []
    drawn = len(confusion) <= CONFUSION_DRAWN
    per_class = evaluation.get("per_class") or []
    figures = ("accuracy", "top5", "loss")
    summary = {
        "names": names if drawn else [],
        "split": split,
        "evaluation": {key: evaluation.get(key) for key in figures} if evaluation else {},
        "val": _val_figures(result) if split == "test" else {},
        "kfold": {key: result.get(key) for key in ("folds", "mean_accuracy", "std_accuracy")}
        if "folds" in result
        else None,
        "confusion": _confusion_rows(confusion, names) if drawn else [],
        "mix_ups": [] if drawn else _mix_ups(confusion, names),
        "confusion_size": len(confusion),
        "per_class": _per_class(per_class, names),
        "per_class_total": len(per_class),
        "misclassified": _misclassified(
            (evaluation.get("misclassified") or [])[:MISTAKES_SHOWN], names
        ),
    }
    return summary


def kind_results(kind: str) -> ModuleType | None:
    """The results module of a kind other than classification (webapp/jobs/<kind>_results.py);
    None for classification, whose figures are made here, and for a kind without one."""
    if kind == kinds.CLASSIFICATION or kind not in trainer_kinds.KINDS:
        return None
    try:
        return importlib.import_module(f"webapp.jobs.{kind}_results")
    except ModuleNotFoundError:
        return None


def _summary_of(kind: str):
    module = kind_results(kind)
    return classification_summary if module is None else module.summary


def result_kind(job: Job) -> str:
    """The kind whose results a run shows: its own, when the web app has a results module."""
    kind = kinds.job_kind(job)
    return kind if kind_results(kind) is not None else kinds.CLASSIFICATION


def _card(job_id: int) -> dict:
    """The exported model card (a few kB), {} when there is none or it cannot be read."""
    path = artifact_path(job_id, "model_card.json")
    try:
        card = json.loads(path.read_text(encoding="utf-8")) if path else {}
    except (OSError, ValueError):
        return {}
    return card if isinstance(card, dict) else {}


EXPORT_FILES = {
    "safetensors": "model.safetensors",
    "torchscript": "model.torchscript.pt",
    "onnx": "model.onnx",
}
EXPORT_NAMES = {"safetensors": "safetensors", "torchscript": "TorchScript", "onnx": "ONNX"}


def missing_exports(job_id: int, card: dict) -> list[dict]:
    """The formats the run has no file for, with the trainer's reason (its card's "exports")."""
    exports = card.get("exports") if isinstance(card.get("exports"), dict) else {}
    missing = []
    for key, name in EXPORT_FILES.items():
        if artifact_path(job_id, name):
            continue
        reason = exports.get(key)
        missing.append(
            {
                "format": EXPORT_NAMES[key],
                "reason": str(reason)[:300]
                if reason and reason != name
                else _("the run kept no such file"),
            }
        )
    return missing


def _box_format(card: dict) -> str:
    """The card's box format ({"boxes": {"format": ...}}, as trainer.loops.detection writes)."""
    boxes = card.get("boxes")
    return str(boxes.get("format") or "")[:200] if isinstance(boxes, dict) else ""


def _files_and_card(job: Job, module: ModuleType) -> dict:
    """Every kind's downloads beyond the model: per-image predictions (and what a row of them
    holds: the kind module's PREDICTIONS_NOTE), the formats not exported (and why), what the
    model card says about classes and outputs."""
    card = _card(job.pk)
    return {
        "predictions_note": getattr(module, "PREDICTIONS_NOTE", ""),
        "predictions": [
            {"name": name, "size": path.stat().st_size}
            for name in PREDICTIONS.values()
            if (path := artifact_path(job.pk, name))
        ],
        "exports_missing": missing_exports(job.pk, card) if card else [],
        "card_facts": {
            "classes": [str(c) for c in (card.get("classes") or [])][:100],
            "box_format": _box_format(card),
        }
        if card
        else None,
    }


def result_context(job: Job, user, request=None) -> dict:
    """What the result partial shows about a finished job (the kind's template and figures)."""
    kind = result_kind(job)
    module = kind_results(kind)
    return {
        **result_summary(job),
        **(module.context(job, user, request) if module is not None else {}),
        **(_files_and_card(job, module) if module is not None else {}),
        "kind": kind,
        "result_template": f"jobs/results/{kind}.html",
        "job": job,
        "show_images": permissions.can_view_images(user, job.dataset),
        "started": _started_event(job),
        "spec_rows": sorted(flatten(job.spec).items()),
        "downloads": [
            {"name": name, "size": path.stat().st_size}
            for name in ARTIFACTS
            if (path := artifact_path(job.pk, name))
        ],
        "can_try": job.status == JobStatus.SUCCEEDED and artifact_path(job.pk, "model.safetensors"),
    }


@login_required
def job_result(request, job_id: int):
    """The result partial of the job page (loaded once the job has succeeded)."""
    job = _viewed_job(request, job_id)  # result_summary reads the result, once
    if job.status != JobStatus.SUCCEEDED:
        return render(request, "jobs/_result_pending.html", {"job": job})
    return render(request, "jobs/_result.html", result_context(job, request.user, request))


def _cell_rows(job: Job, split: str, true: int, predicted: int) -> tuple[list[dict], bool]:
    """The images of one (true, predicted) cell; False when only the mistakes were kept."""
    name = f"jobs/{job.pk}/{PREDICTIONS[split]}"
    if default_storage.exists(name):  # through the storage API, whatever holds media
        with default_storage.open(name, "rb") as stored:
            rows = json.loads(stored.read())
        complete = True
    else:  # trained before per-image predictions were written: the stored mistakes only
        mistakes = KeyTransform("misclassified", KeyTransform(split, "result"))
        rows = Job.objects.filter(pk=job.pk).values_list(mistakes, flat=True).first() or []
        complete = False
    picked = [r for r in rows if r["true"] == true and r["predicted"] == predicted]
    return picked, complete


@login_required
def confusion_cell(request, job_id: int, true: int, predicted: int):
    """The evaluated images that are `true` and were predicted as `predicted`."""
    job = _viewed_job(request, job_id)
    names = class_names(job)
    if job.status != JobStatus.SUCCEEDED or true >= len(names) or predicted >= len(names):
        raise Http404
    split = "test" if final_figures(job)["test"] is not None else "val"  # as evaluated_split
    rows, complete = _cell_rows(job, split, true, predicted)
    context = {
        "job": job,
        "course": job.course,
        "split": split,
        "true_name": names[true],
        "predicted_name": names[predicted],
        "rows": heapq.nlargest(CELL_LIMIT, rows, key=lambda r: r["confidence"]),
        "count": len(rows),
        "complete": complete or true != predicted,
        "show_images": permissions.can_view_images(request.user, job.dataset),
    }
    partial = request.headers.get("HX-Request") == "true"
    return render(request, "jobs/_cell.html" if partial else "jobs/confusion_cell.html", context)


@login_required
def try_page(request, job_id: int):
    """Try a succeeded job's model on your own image or the webcam."""
    job = _viewed_job(request, job_id)
    context = {
        "job": job,
        "course": job.course,
        "kind": result_kind(job),
        "can_try": job.status == JobStatus.SUCCEEDED and artifact_path(job.pk, "model.safetensors"),
    }
    return render(request, "jobs/try.html", context)


@login_required
def evaluated_images(request, job_id: int):
    """A page of a run's evaluated images, drawn the kind's way (boxes, masks, skeletons)."""
    job = _viewed_job(request, job_id)
    module = kind_results(result_kind(job))
    if job.status != JobStatus.SUCCEEDED or module is None:
        raise Http404
    return module.images_view(request, job)


@login_required
def detections(request, job_id: int):
    """A detection run's evaluated images (the address detection pages link to)."""
    job = _viewed_job(request, job_id)
    if result_kind(job) != kinds.DETECTION:
        raise Http404
    return evaluated_images(request, job_id)
