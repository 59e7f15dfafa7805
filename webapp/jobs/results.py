"""Result pages: a finished job's results, the images behind a confusion cell, compare, Try it."""

import json
from pathlib import Path

from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from webapp.accounts import permissions
from webapp.datasets import queries
from webapp.converters import is_id
from webapp.jobs.models import FINISHED, Job, JobEvent, JobGroup, JobStatus
from webapp.jobs.views import _job_for

# Only these names are ever served from a job's folder (never a path from the request).
ARTIFACTS = {
    "model.safetensors": "application/octet-stream",
    "model.torchscript.pt": "application/octet-stream",
    "model.onnx": "application/octet-stream",
    "model_card.json": "application/json",
}
# Per-image predictions the trainer writes (trainer.loops.classification.*_PREDICTIONS).
PREDICTIONS = {"test": "predictions_test.json", "val": "predictions_val.json"}
CELL_LIMIT = 300  # images listed for one confusion cell
COMPARE_MIN, COMPARE_MAX, GROUP_MAX = 2, 6, 12


def artifact_path(job_id: int, name: str) -> Path | None:
    """The file of an allowed artifact name when the job has it, else None."""
    if name not in ARTIFACTS:
        return None
    path = Path(default_storage.path(f"jobs/{job_id}")) / name
    return path if path.is_file() else None


def class_names(job: Job) -> list[str]:
    """Class names in the order the trainer numbered them (the version's categories)."""
    return [c.name for c in queries.categories_at(job.dataset, job.dataset_version)]


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


def evaluated_split(job: Job) -> tuple[str, dict]:
    """The split the results show: the test split, or validation when there are no test images."""
    result = job.result or {}
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


def _misclassified(rows: list[dict], names: list[str]) -> list[dict]:
    return [
        {
            **row,
            "true_name": _name(names, row["true"]),
            "predicted_name": _name(names, row["predicted"]),
            "true_probability": (row.get("probabilities") or [None] * (row["true"] + 1))[
                row["true"]
            ],
        }
        for row in rows
    ]


def result_context(job: Job, user) -> dict:
    """What the result partial shows about a finished job."""
    names = class_names(job)
    result = job.result or {}
    split, evaluation = evaluated_split(job)
    return {
        "job": job,
        "names": names,
        "split": split,
        "evaluation": evaluation,
        "val": (result.get("val") or {}) if split == "test" else {},
        "kfold": result if "folds" in result else None,
        "confusion": _confusion_rows(evaluation.get("confusion") or [], names),
        "per_class": [
            {**row, "name": _name(names, row["class"])} for row in evaluation.get("per_class") or []
        ],
        "misclassified": _misclassified(evaluation.get("misclassified") or [], names),
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
    job = _job_for(request, job_id)
    if job.status != JobStatus.SUCCEEDED:
        return render(request, "jobs/_result_pending.html", {"job": job})
    return render(request, "jobs/_result.html", result_context(job, request.user))


def _cell_rows(job: Job, true: int, predicted: int) -> tuple[list[dict], bool]:
    """The images of one (true, predicted) cell; False when only the mistakes were kept."""
    split, evaluation = evaluated_split(job)
    path = Path(default_storage.path(f"jobs/{job.pk}")) / PREDICTIONS[split]
    if path.is_file():
        rows = json.loads(path.read_text(encoding="utf-8"))
        complete = True
    else:  # trained before per-image predictions were written: the stored mistakes only
        rows = evaluation.get("misclassified") or []
        complete = False
    picked = [r for r in rows if r["true"] == true and r["predicted"] == predicted]
    return sorted(picked, key=lambda r: -r["confidence"]), complete


@login_required
def confusion_cell(request, job_id: int, true: int, predicted: int):
    """The evaluated images that are `true` and were predicted as `predicted`."""
    job = _job_for(request, job_id)
    names = class_names(job)
    if job.status != JobStatus.SUCCEEDED or true >= len(names) or predicted >= len(names):
        raise Http404
    rows, complete = _cell_rows(job, true, predicted)
    context = {
        "job": job,
        "course": job.course,
        "split": evaluated_split(job)[0],
        "true_name": names[true],
        "predicted_name": names[predicted],
        "rows": rows[:CELL_LIMIT],
        "count": len(rows),
        "complete": complete or true != predicted,
        "show_images": permissions.can_view_images(request.user, job.dataset),
    }
    partial = request.headers.get("HX-Request") == "true"
    return render(request, "jobs/_cell.html" if partial else "jobs/confusion_cell.html", context)


@login_required
def try_page(request, job_id: int):
    """Try a succeeded job's model on your own image or the webcam."""
    job = _job_for(request, job_id)
    context = {
        "job": job,
        "course": job.course,
        "can_try": job.status == JobStatus.SUCCEEDED and artifact_path(job.pk, "model.safetensors"),
    }
    return render(request, "jobs/try.html", context)


# --- compare ---------------------------------------------------------------------------------


def _curves(jobs: list[Job]) -> dict[int, list[dict]]:
    """Per job, one point per epoch (the latest attempt's; k folds averaged)."""
    latest: dict[tuple, dict] = {}
    events = JobEvent.objects.filter(job__in=jobs, kind="epoch").order_by("number")
    for job_id, data in events.values_list("job_id", "data"):
        latest[(job_id, data.get("fold", 0), data.get("epoch"))] = data
    by_epoch: dict[int, dict[int, list[dict]]] = {job.pk: {} for job in jobs}
    for (job_id, _fold, epoch), data in latest.items():
        by_epoch[job_id].setdefault(epoch, []).append(data)
    curves = {}
    for job_id, epochs in by_epoch.items():
        points = []
        for epoch in sorted(epochs):
            folds = epochs[epoch]
            point = {"epoch": epoch}
            for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
                values = [d[key] for d in folds if d.get(key) is not None]
                point[key] = sum(values) / len(values) if values else None
            points.append(point)
        curves[job_id] = points
    return curves


TRANSFER_MODE_NAMES = {
    "scratch": gettext_lazy("From scratch"),
    "feature_extraction": gettext_lazy("Feature extraction"),
    "fine_tuning": gettext_lazy("Fine-tuning"),
}


def _run_label(job: Job) -> str:
    """How a run is named on charts: its value of the compared setting, in the reader's words."""
    if job.group_id and job.group.variable == "transfer.mode":
        return str(TRANSFER_MODE_NAMES.get(job.label, job.label))
    return job.label or _("job %(id)s") % {"id": job.pk}


def compare_data(jobs: list[Job]) -> dict:
    """Curves, final figures and the spec fields that differ, for the compare page."""
    curves = _curves(jobs)
    runs = []
    for job in jobs:
        points = curves[job.pk]
        val_accs = [p["val_acc"] for p in points if p["val_acc"] is not None]
        result = job.result or {}
        test = (result.get("test") or {}).get("accuracy", result.get("mean_accuracy"))
        runs.append(
            {
                "id": job.pk,
                "label": _run_label(job),
                "url": reverse("job_detail", args=[job.pk]),
                "status": job.status,
                "status_label": job.get_status_display(),
                "finished": job.status in FINISHED,
                "best_val_acc": max(val_accs) if val_accs else None,
                "test_accuracy": test,
                "points": points,
            }
        )
    specs = [
        {**flatten(job.spec), _("dataset"): f"{job.dataset.name} v{job.dataset_version}"}
        for job in jobs
    ]
    fields = sorted({key for spec in specs for key in spec})
    differ = [
        {"field": field, "values": [spec.get(field, "—") for spec in specs]}
        for field in fields
        if len({json.dumps(spec.get(field), sort_keys=True, default=str) for spec in specs}) > 1
    ]
    return {"runs": runs, "differ": differ}


def _render_compare(request, jobs: list[Job], *, title: str, group=None, error: str = ""):
    if error:
        return render(request, "jobs/compare.html", {"error": error, "title": title}, status=400)
    data = compare_data(jobs)
    if request.GET.get("format") == "json":
        return JsonResponse(data)
    course = jobs[0].course if jobs else (group.course if group else None)
    context = {"title": title, "group": group, "course": course, "data": data, "jobs": jobs}
    return render(request, "jobs/compare.html", context)


def _visible(request, jobs: list[Job]) -> list[Job]:
    if any(not permissions.can_view_job(request.user, job) for job in jobs):
        raise Http404
    return jobs


def _parse_ids(raw: str) -> list[int] | None:
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    if not all(is_id(p) for p in parts):  # ASCII digits that fit a database id
        return None
    return list(dict.fromkeys(int(p) for p in parts))  # unique, in the order asked


@login_required
def compare(request):
    """`/compare/?jobs=1,2,3`: two to six runs the viewer may see, overlaid."""
    title = _("Compare runs")
    ids = _parse_ids(request.GET.get("jobs", ""))
    if ids is None:
        return _render_compare(
            request, [], title=title, error=_("List job numbers separated by commas: ?jobs=1,2,3.")
        )
    if not COMPARE_MIN <= len(ids) <= COMPARE_MAX:
        message = _("Choose between %(min)s and %(max)s jobs to compare (you chose %(n)s).") % {
            "min": COMPARE_MIN,
            "max": COMPARE_MAX,
            "n": len(ids),
        }
        return _render_compare(request, [], title=title, error=message)
    found = Job.objects.select_related("course", "dataset", "owner", "group").in_bulk(ids)
    if len(found) != len(ids):
        raise Http404
    return _render_compare(request, _visible(request, [found[i] for i in ids]), title=title)


@login_required
def group_compare(request, group_id: int):
    """A comparison group's runs (the three transfer modes, a variable's values) overlaid."""
    group = JobGroup.objects.select_related("course").filter(pk=group_id).first()
    # A group is seen by whoever may see a job of its owner in its class (same rule as jobs).
    if group is None or not permissions.can_view_group(request.user, group):
        raise Http404
    jobs = list(
        group.jobs.select_related("course", "dataset", "owner", "group").order_by("pk")[:GROUP_MAX]
    )
    return _render_compare(request, _visible(request, jobs), title=group.title, group=group)
