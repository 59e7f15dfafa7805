"""Result pages: a finished job's results, the images behind a confusion cell, Try it.

The result partial is one frame (templates/jobs/_result.html) around the kind's own template,
`jobs/results/<kind>.html`. Every kind has one module, `webapp/jobs/<kind>_results.py`
(classification_results.py, detection_results.py, segmentation_results.py,
keypoints_results.py), with `summary(job, result)` (cached per finished run), `context(job,
user, request)` (per request: a page of evaluated images, the split asked for) and
`images_view(request, job)` (GET /jobs/<id>/images/), each reading the trainer's typed shapes
(trainer/events.py: read_result, read_predictions). This module only dispatches by the run's
kind (webapp/jobs/kinds.py) and frames what every kind shares: downloads, the model card, Try
it. A new kind is one module and one template.
"""

import importlib
import json
from pathlib import Path
from types import ModuleType

from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.files.storage import default_storage
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
SPLITS = tuple(PREDICTIONS)  # the evaluated splits a results page may show
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
    """A classifier's test and validation accuracy and k-fold mean, from its Job.metrics
    (classification_results.final_figures; launch.py names transfer sources by them)."""
    return kind_results(kinds.CLASSIFICATION).final_figures(job)


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


def evaluated_split(finished, wanted: str | None = None) -> tuple[str, object]:
    """The split a run's results show and its evaluation, from trainer.events.read_result:
    `wanted` when the run has it, else the test split, else validation (None when it has
    neither)."""
    if wanted in SPLITS and getattr(finished, wanted) is not None:
        return wanted, getattr(finished, wanted)
    if finished.test is not None:
        return "test", finished.test
    return "val", finished.val


def evaluated_splits(finished) -> list[str]:
    """The splits a run has an evaluation of (test first), for a page's split toggle."""
    return [split for split in SPLITS if getattr(finished, split) is not None]


def _started_event(job: Job) -> dict:
    event = job.events.filter(kind="started").order_by("-number").first()
    return event.data if event else {}


def result_summary(job: Job) -> dict:
    """What the result partial shows of a finished run's result, bounded, cached per run.

    A run's result never changes once it has finished, and for a thousand classes it is
    megabytes of JSON (a confusion matrix per split): it is read once, not on every view.
    """
    kind = result_kind(job)
    key = f"job-result:2:{kind}:{job.run_key}"
    summary = cache.get(key)
    if summary is not None:
        return summary
    result = Job.objects.filter(pk=job.pk).values_list("result", flat=True).first() or {}
    summary = _summary_of(kind)(job, result if isinstance(result, dict) else {})
    cache.set(key, summary, RESULT_CACHE_SECONDS)
    return summary


def kind_results(kind: str) -> ModuleType | None:
    """The results module of a kind (webapp/jobs/<kind>_results.py); None for a kind the
    trainer does not know or the web app has no module for."""
    if kind not in trainer_kinds.KINDS:
        return None
    try:
        return importlib.import_module(f"webapp.jobs.{kind}_results")
    except ModuleNotFoundError:
        return None


def _summary_of(kind: str):
    return kind_results(kind).summary


def result_kind(job: Job) -> str:
    """The kind whose results a run shows: its own when the web app has a results module
    (webapp/jobs/kinds.py says which kind a run is), else classification's."""
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
        **module.context(job, user, request),
        **_files_and_card(job, module),
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


@login_required
def confusion_cell(request, job_id: int, true: int, predicted: int):
    """The evaluated images of a classifier that are `true` and were predicted as `predicted`
    (classification_results.cell_view)."""
    job = _viewed_job(request, job_id)
    if result_kind(job) != kinds.CLASSIFICATION:
        raise Http404
    return kind_results(kinds.CLASSIFICATION).cell_view(request, job, true, predicted)


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
    if job.status != JobStatus.SUCCEEDED:
        raise Http404
    return kind_results(result_kind(job)).images_view(request, job)


@login_required
def detections(request, job_id: int):
    """A detection run's evaluated images (the address detection pages link to)."""
    job = _viewed_job(request, job_id)
    if result_kind(job) != kinds.DETECTION:
        raise Http404
    return evaluated_images(request, job_id)
