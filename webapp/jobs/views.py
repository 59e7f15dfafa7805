"""Job pages: watch a job live, cancel it (the Train page is in launch.py)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from webapp.accounts import permissions
from webapp.jobs import actions
from webapp.jobs.models import Job


def _job_for(request, job_id: int) -> Job:
    job = Job.objects.select_related("course", "dataset", "owner").filter(pk=job_id).first()
    if job is None or not permissions.can_view_job(request.user, job):
        raise Http404
    return job


@login_required
def job_detail(request, job_id: int):
    job = _job_for(request, job_id)
    return render(
        request,
        "jobs/detail.html",
        {
            "job": job,
            "course": job.course,
            "can_cancel": permissions.can_cancel_job(request.user, job),
            "live_text": {
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
