"""Job pages: watch a job live, cancel it (the Train page is in launch.py)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from webapp.accounts import permissions
from webapp.jobs import actions, kinds
from webapp.jobs.models import Job

# What became of the transfer source's classifier: the trainer's started event says
# `head` ("kept", "reordered", "new") and, for a new one, `head_reason`.
HEAD_NOTICES = {
    "kept": gettext_lazy("Classifier kept from the source: it learned the same classes."),
    "reordered": gettext_lazy(
        "Classifier kept from the source, its outputs matched to this dataset's classes by name: "
        "the same classes, listed in another order."
    ),
    "new:classes_differ": gettext_lazy("New classifier: the classes differ from the source's."),
    "new:classes_unknown": gettext_lazy(
        "New classifier: the source does not say which classes it learned."
    ),
    "new:shape_differs": gettext_lazy("New classifier: the source's classifier does not fit."),
}


def _head_key(started: dict) -> str | None:
    head = started.get("head")
    key = f"new:{started.get('head_reason')}" if head == "new" else head
    return key if key in HEAD_NOTICES else None


def head_notice(job: Job) -> dict | None:
    """The notice about the transferred classifier, from the job's latest started event."""
    event = job.events.filter(kind="started").order_by("-number").only("data").first()
    key = _head_key(event.data if event else {})
    return {"text": HEAD_NOTICES[key], "new": key.startswith("new")} if key else None


def _job_for(request, job_id: int, *, figures_only: bool = False) -> Job:
    jobs = Job.objects.select_related("course", "dataset", "owner")
    if figures_only:  # pages that show a run's final figures (metrics), not its result
        jobs = jobs.defer("result", "dataset__report")
    job = jobs.filter(pk=job_id).first()
    if job is None or not permissions.can_view_job(request.user, job):
        raise Http404
    return job


@login_required
def job_detail(request, job_id: int):
    job = _job_for(request, job_id, figures_only=True)
    kind = kinds.job_kind(job)
    live = kinds.live_view(kind)
    return render(
        request,
        "jobs/detail.html",
        {
            "job": job,
            "course": job.course,
            "can_cancel": permissions.can_cancel_job(request.user, job),
            "head_notice": head_notice(job),
            "live": live,
            "test_figure": kinds.final_value(kind, job.metrics),
            "live_text": {
                "kind": live,
                "head": {key: str(text) for key, text in HEAD_NOTICES.items()},
                "started": _("started: %(parameters)s parameters on %(device)s"),
                "epoch": _("epoch %(epoch)s: training accuracy %(train)s%%, validation %(val)s%%"),
                "progress": _("epoch %(epoch)s · step %(step)s of %(steps)s"),
                "finished": _("finished"),
            },
        },
    )


@login_required
@require_POST
def cancel(request, job_id: int):
    job = _job_for(request, job_id)
    if not permissions.can_cancel_job(request.user, job):
        raise PermissionDenied
    try:
        actions.cancel(job)
    except actions.JobRefused as exc:
        messages.error(request, exc.message)
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect("job_detail", job_id=job.pk)
