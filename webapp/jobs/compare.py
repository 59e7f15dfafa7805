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
from webapp.jobs import kinds
from webapp.jobs.models import FINISHED, Job, JobEvent, JobGroup
from webapp.jobs.results import flatten

CURVE_POINTS = 300  # epochs drawn per run (evenly spread when more)
COMPARE_MIN, COMPARE_MAX, GROUP_MAX = 2, 6, 12


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
    return f"curve:{job.run_key}"


def _read_curves(jobs: list[Job]) -> dict[int, list[dict]]:
    keys = {job.pk: kinds.epoch_keys(kinds.job_kind(job)) for job in jobs}  # the kind's figures
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
            for key in keys[job_id]:
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


def _best(points: list[dict], key: str, higher_is_better: bool):
    values = [p[key] for p in points if p.get(key) is not None]
    if not values:
        return None
    return max(values) if higher_is_better else min(values)


def _run_figures(job: Job, kind: str, points: list[dict]) -> dict:
    """The compare table's columns of one run (kinds.compare_columns), the best from every
    epoch, and what the curves can draw: the epoch figures its events carry, labelled."""
    best, final = kinds.compare_columns(kind)
    lead = kinds.SERIES[kinds.CURVES[kind][0]]  # the curve the best column is taken from
    primary = kinds.primary(kind)
    primary_value = kinds.primary_value(kind, job.metrics)
    present = [key for key in kinds.epoch_keys(kind) if any(p.get(key) is not None for p in points)]
    return {
        best.key: _best(points, lead.key, lead.higher_is_better),
        final.key: kinds.final_value(kind, job.metrics),  # its test figure, else k-fold mean
        "primary": {**primary.as_json(), "value": primary_value},
        "figures": kinds.shown_figures(kind, job.metrics),
        "series": kinds.series_labels(present),
    }


def mixed_kinds(jobs: list[Job]) -> str:
    """Why runs of different kinds are not overlaid ("" when they are of one kind)."""
    found = list(dict.fromkeys(kinds.job_kind(job) for job in jobs))
    if len(found) < 2:
        return ""
    return _(
        "These runs are of different kinds (%(kinds)s): their figures measure different "
        "things, so their curves are not overlaid. Compare runs of one kind."
    ) % {"kinds": ", ".join(kinds.kind_name(kind) for kind in found)}


def compare_data(jobs: list[Job]) -> dict:
    """Curves, final figures and the spec fields that differ, for the compare page (runs of
    one kind: see mixed_kinds)."""
    curves = _curves(jobs)
    kind = kinds.kind_or_default(kinds.job_kind(jobs[0])) if jobs else kinds.CLASSIFICATION
    runs = []
    for job in jobs:
        points = curves[job.pk]
        runs.append(
            {
                "id": job.pk,
                "label": _run_label(job),
                "url": reverse("job_detail", args=[job.pk]),
                "status": job.status,
                "status_label": job.get_status_display(),
                "finished": job.status in FINISHED,
                "kind": kind,
                **_run_figures(job, kind, points),  # the best figure is from every epoch
                "points": _spread(points),
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
    return {
        "kind": kind,
        "curves": kinds.curves(kind),  # the series to overlay, labelled, the lead one first
        "columns": [figure.as_json() for figure in kinds.compare_columns(kind)],
        "runs": runs,
        "differ": differ,
    }


def _compared(jobs):
    """Runs to compare, read without their results and upload reports (megabytes each)."""
    return jobs.select_related("course", "dataset", "owner", "group").defer(
        "result", "dataset__report"
    )


def _render_compare(request, jobs: list[Job], *, title: str, group=None, error: str = ""):
    error = error or mixed_kinds(jobs)
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
