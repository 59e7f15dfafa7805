"""The compare pages: two to six runs, or a comparison group's runs, overlaid."""

import json

from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from webapp.accounts import permissions
from webapp.converters import is_id
from webapp.jobs.models import FINISHED, Job, JobEvent, JobGroup
from webapp.jobs.results import final_figures, flatten

CURVE_POINTS = 300  # epochs drawn per run (evenly spread when more)
COMPARE_MIN, COMPARE_MAX, GROUP_MAX = 2, 6, 12


CURVE_KEYS = ("train_loss", "train_acc", "val_loss", "val_acc")


def _curves(jobs: list[Job]) -> dict[int, list[dict]]:
    """Per job, one point per epoch (the latest attempt's; k folds averaged).

    A finished run's curve never changes: it is cached, since a k-fold run has thousands of
    epoch events to read.
    """
    keys = {job.pk: _curve_key(job) for job in jobs}
    cached = cache.get_many([key for key in keys.values() if key])
    curves = {pk: cached[key] for pk, key in keys.items() if key in cached}
    missing = [job for job in jobs if job.pk not in curves]
    if missing:
        fresh = _read_curves(missing)
        curves.update(fresh)
        cache.set_many({keys[pk]: points for pk, points in fresh.items() if keys[pk]}, 3600)
    return curves


def _curve_key(job: Job) -> str | None:
    if job.status not in FINISHED:
        return None
    finished = job.finished_at.timestamp() if job.finished_at else 0
    return f"curve:{job.pk}:{job.attempts}:{finished:.6f}"


def _read_curves(jobs: list[Job]) -> dict[int, list[dict]]:
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
            for key in CURVE_KEYS:
                values = [d[key] for d in folds if d.get(key) is not None]
                point[key] = sum(values) / len(values) if values else None
            points.append(point)
        curves[job_id] = points
    return curves


def _spread(points: list[dict]) -> list[dict]:
    """At most CURVE_POINTS of a run's epochs, evenly spread, the first and the last kept."""
    if len(points) <= CURVE_POINTS:
        return points
    step = (len(points) - 1) / (CURVE_POINTS - 1)
    return [points[round(i * step)] for i in range(CURVE_POINTS)]


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
        figures = final_figures(job)
        test = figures["test"] if figures["test"] is not None else figures["mean"]
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
                "points": _spread(points),  # the best figure above is from every epoch
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


def _compared(jobs):
    """Runs to compare, read without their results and upload reports (megabytes each)."""
    return jobs.select_related("course", "dataset", "owner", "group").defer(
        "result", "dataset__report"
    )


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
    found = _compared(Job.objects.all()).in_bulk(ids)
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
    jobs = list(_compared(group.jobs.all()).order_by("pk")[:GROUP_MAX])
    return _render_compare(request, _visible(request, jobs), title=group.title, group=group)
