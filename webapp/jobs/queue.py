"""The queue as a class sees it: its running jobs, then its waiting ones in line."""

from django.db.models import Q

from webapp.accounts import permissions
from webapp.jobs import scheduler
from webapp.jobs.models import Job, JobStatus

SHOWN_WAITING = 100  # a long line is shown from its front (and everyone sees their own jobs)


def queue_for(user, course, limit: int | None = None) -> list[tuple[Job, tuple]]:
    """(job, (place in line, estimated start)) for the class's open jobs the user may see.

    Places count every class's waiting jobs, since all classes share the training workers.
    Staff see the class's first SHOWN_WAITING waiting jobs; students see all of their own.
    With `limit`, only the first `limit` rows (see queue_page).
    """
    return queue_page(user, course, limit)[0]


def queue_page(user, course, limit: int | None = None) -> tuple[list[tuple[Job, tuple]], int]:
    """The rows of queue_for, at most `limit` of them, and how many more there are."""
    staff = user.is_superuser or permissions.can_view_roster(user, course)
    # A line of jobs never shows results or upload reports (each can be megabytes of JSON).
    open_jobs = (
        Job.objects.filter(course=course)
        .select_related("owner", "dataset")
        .defer("result", "dataset__report")
    )
    if not staff:
        open_jobs = open_jobs.filter(owner=user)
    holding = list(
        open_jobs.filter(
            Q(status=JobStatus.RUNNING) | Q(status=JobStatus.QUEUED, dispatched_at__isnull=False)
        ).order_by("started_at", "pk")
    )
    positions = scheduler.queue_positions()
    ours = open_jobs.filter(status=JobStatus.QUEUED, dispatched_at__isnull=True).values_list(
        "pk", flat=True
    )
    shown = sorted((pk for pk in ours if pk in positions), key=lambda pk: positions[pk][0])
    shown = shown[:SHOWN_WAITING] if staff else shown
    total = len(holding) + len(shown)
    if limit is not None:
        holding = holding[:limit]
        shown = shown[: max(0, limit - len(holding))]  # only these jobs are read
    waiting = open_jobs.in_bulk(shown)
    rows = [(job, (None, None)) for job in holding]
    rows += [(waiting[pk], positions[pk]) for pk in shown if pk in waiting]
    return rows, total - len(rows)
