"""The training queue page of a class: who is training, who waits, in which order."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from webapp.accounts import permissions
from webapp.accounts.course_views import course_for
from webapp.jobs import actions, scheduler
from webapp.jobs.queue import queue_page
from webapp.jobs.views import _job_for

ROWS_SHOWN = 100  # the front of a long line (a student's own jobs included)


@login_required
def course_queue(request, course_id: int):
    course = course_for(request, course_id, permissions.can_view_course)
    rows, not_shown = queue_page(request.user, course, ROWS_SHOWN)
    template = "jobs/_queue.html" if request.headers.get("HX-Request") else "jobs/queue.html"
    return render(
        request,
        template,
        {
            "course": course,
            "rows": rows,
            "not_shown": not_shown,
            "staff": permissions.can_view_roster(request.user, course),
            "can_reorder": permissions.can_reorder_queue(request.user, course)
            and permissions.course_is_writable(course),
            "slots": scheduler.settings.TRAIN_SLOTS,
        },
    )


@login_required
@require_POST
def move(request, job_id: int):
    job = _job_for(request, job_id)
    if not permissions.can_reorder_queue(request.user, job.course):
        raise PermissionDenied
    try:
        actions.reorder(job, request.POST.get("where", ""))
    except actions.JobRefused as exc:
        messages.error(request, exc.message)
    return redirect("course_queue", course_id=job.course_id)
