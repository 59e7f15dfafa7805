"""The queue as a class sees it: its running jobs, then its waiting ones in line."""

from webapp.accounts import permissions
from webapp.jobs import scheduler
from webapp.jobs.models import Job, JobStatus


def queue_for(user, course) -> list[tuple[Job, tuple]]:
    """(job, (place in line, estimated start)) for the class's open jobs the user may see.

    Places count every class's waiting jobs, since all classes share the training workers.
    """
    staff = user.is_superuser or permissions.can_view_roster(user, course)
    running = Job.objects.filter(course=course, status=JobStatus.RUNNING).select_related(
        "owner", "dataset"
    )
    handed_out = Job.objects.filter(
        course=course, status=JobStatus.QUEUED, dispatched_at__isnull=False
    ).select_related("owner", "dataset")
    positions = scheduler.queue_positions()
    waiting = Job.objects.filter(pk__in=list(positions), course=course).select_related(
        "owner", "dataset"
    )
    waiting = sorted(waiting, key=lambda job: positions[job.pk][0])
    rows = [(job, (None, None)) for job in [*running, *handed_out]]
    rows += [(job, positions[job.pk]) for job in waiting]
    if not staff:
        rows = [row for row in rows if row[0].owner_id == user.pk]
    return rows
