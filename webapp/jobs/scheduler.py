"""Fair share: which waiting job goes to the `train` queue next, and where each one stands.

Jobs wait in the database. Only as many are handed to Celery as there are worker slots
(`TRAIN_SLOTS`), so the broker never holds a backlog that one student could fill. The next job
is chosen round-robin across students: every student's first waiting job comes before anyone's
second, and among equals the student whose last turn is longest ago goes first. A teacher's
priority overrides the rotation; the class's concurrent-job limit and GPU-minute quota decide
who may start now.
"""

import logging
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Max, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from webapp.accounts import permissions
from webapp.accounts.models import Course, User
from webapp.jobs import tasks
from webapp.jobs.models import Job, JobStatus, QueueLock

log = logging.getLogger(__name__)
NEVER = datetime(1970, 1, 1, tzinfo=UTC)
DEFAULT_JOB_SECONDS = 120.0  # a guess for the first jobs, before any has finished


def send_to_train_queue(job_id: int) -> bool:
    """Send a dispatched job to the `train` queue. With the broker away the job keeps its
    dispatch and the reaper sends it again later (JOB_DISPATCH_TIMEOUT): a student's submit
    never fails because Redis restarts."""
    try:
        tasks.train.delay(job_id)
    except Exception:  # noqa: BLE001 - kombu/redis connection errors of every kind
        log.warning(
            "job %s: the train queue cannot be reached; resent later", job_id, exc_info=True
        )
        return False
    return True


def _waiting():
    return Job.objects.filter(status=JobStatus.QUEUED, dispatched_at__isnull=True)


def _busy():
    """Jobs holding a worker slot: running, or handed to the queue and not yet claimed."""
    return Job.objects.filter(
        Q(status=JobStatus.RUNNING) | Q(status=JobStatus.QUEUED, dispatched_at__isnull=False)
    )


def waiting_order() -> list[Job]:
    """The waiting jobs in the order they would start if every limit allowed it.

    First the fair order: a student's k-th waiting job has turn k, and within a turn the
    student whose last job started longest ago goes first. Then each class's teachers may have
    reordered their own class's jobs (`priority`): those are rearranged among the places the
    class holds in line, so one class's reordering never moves another class's students.
    """
    waiting = list(  # only what the order needs: thousands of rows may wait
        _waiting()
        .only("pk", "owner_id", "course_id", "created_at", "priority", "status", "dispatched_at")
        .order_by("created_at", "pk")
    )
    owners = {job.owner_id for job in waiting}
    last_turn = dict(
        Job.objects.filter(owner_id__in=owners, dispatched_at__isnull=False)
        .values("owner_id")
        .annotate(last=Max("dispatched_at"))
        .values_list("owner_id", "last")
    )
    turn: dict[int, int] = defaultdict(int)
    keyed = []
    for job in waiting:
        k = turn[job.owner_id]
        turn[job.owner_id] += 1
        keyed.append(((k, last_turn.get(job.owner_id) or NEVER, job.created_at, job.pk), job))
    fair = [job for _, job in sorted(keyed, key=lambda pair: pair[0])]
    places: dict[int, list[int]] = defaultdict(list)
    for index, job in enumerate(fair):
        places[job.course_id].append(index)
    order: list[Job] = list(fair)
    for indexes in places.values():
        jobs = [fair[i] for i in indexes]  # the class's jobs in the fair order
        ranked = sorted(range(len(jobs)), key=lambda r: (-jobs[r].priority, r))
        for index, r in zip(indexes, ranked, strict=True):
            order[index] = jobs[r]
    return order


def gpu_seconds_used(owner_id: int, course_id: int) -> float:
    """GPU time a student has used in a class: finished jobs and the running ones so far."""
    used = Job.objects.filter(owner_id=owner_id, course_id=course_id).aggregate(
        s=Sum("gpu_seconds")
    )["s"]
    return float(used or 0.0)


def over_quota(owner, course) -> bool:
    """Whether a student has used up the class's GPU minutes (teachers and TAs have no quota)."""
    if owner.is_superuser or permissions.can_view_roster(owner, course):
        return False
    return gpu_seconds_used(owner.pk, course.pk) >= course.gpu_minutes_per_student * 60


def _limited(owner, course) -> bool:
    return owner.is_superuser or not permissions.can_view_roster(owner, course)


def _lock() -> None:
    """Serialise dispatchers: an UPDATE takes a row lock (PostgreSQL) or the write lock (SQLite)."""
    if not QueueLock.objects.filter(pk=1).update(at=timezone.now()):
        QueueLock.objects.get_or_create(pk=1)
        QueueLock.objects.filter(pk=1).update(at=timezone.now())


def dispatch_jobs() -> list[int]:
    """Hand waiting jobs to the `train` queue while worker slots are free; returns their ids."""
    sent: list[int] = []
    with transaction.atomic():
        _lock()
        free = settings.TRAIN_SLOTS - _busy().count()
        if free <= 0:
            return sent
        order = waiting_order()
        if not order:
            return sent
        running = {
            (row["owner_id"], row["course_id"]): row["n"]
            for row in _busy().values("owner_id", "course_id").annotate(n=Count("pk"))
        }
        now = timezone.now()
        owners: dict[int, User] = {}
        courses: dict[int, Course] = {}
        for job in order:
            if free <= 0:
                break
            key = (job.owner_id, job.course_id)
            owner = owners.get(job.owner_id) or owners.setdefault(
                job.owner_id, User.objects.get(pk=job.owner_id)
            )
            course = courses.get(job.course_id) or courses.setdefault(
                job.course_id, Course.objects.get(pk=job.course_id)
            )
            if _limited(owner, course):
                if running.get(key, 0) >= course.concurrent_jobs_per_student:
                    continue  # the student's next job waits for one of theirs to end
                if over_quota(owner, course):
                    _fail_over_quota(job, course)
                    continue
            updated = Job.objects.filter(
                pk=job.pk, status=JobStatus.QUEUED, dispatched_at__isnull=True
            ).update(dispatched_at=now)
            if not updated:
                continue  # cancelled meanwhile
            running[key] = running.get(key, 0) + 1
            free -= 1
            sent.append(job.pk)
            transaction.on_commit(lambda pk=job.pk: send_to_train_queue(pk))
    return sent


def _fail_over_quota(job: Job, course: Course) -> None:
    Job.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(
        status=JobStatus.FAILED,
        finished_at=timezone.now(),
        error=_(
            "Your GPU minutes in this class are used up (%(minutes)s minutes). Ask your "
            "teacher for more."
        )
        % {"minutes": course.gpu_minutes_per_student},
    )


def typical_job_seconds() -> float:
    """The median run time of the last finished jobs: what an estimate of the wait is made of."""
    recent = list(
        Job.objects.filter(status=JobStatus.SUCCEEDED, started_at__isnull=False)
        .order_by("-finished_at")
        .values_list("started_at", "finished_at")[:50]
    )
    durations = sorted((end - start).total_seconds() for start, end in recent if end)
    if not durations:
        return DEFAULT_JOB_SECONDS
    return max(1.0, durations[len(durations) // 2])


def queue_positions() -> dict[int, tuple[int, datetime]]:
    """Every waiting job's place in line (1 = next) and its estimated start."""
    order = waiting_order()
    if not order:
        return {}
    now = timezone.now()
    typical = typical_job_seconds()
    # Each slot is free when its current job is expected to end; waiting jobs take the
    # earliest free slot in turn.
    free_at = []
    for job in _busy().only("started_at", "progress", "status"):
        if job.status == JobStatus.RUNNING and job.started_at and job.progress > 0.02:
            elapsed = (now - job.started_at).total_seconds()
            free_at.append(elapsed / job.progress - elapsed)
        else:
            free_at.append(typical)
    free_at += [0.0] * max(0, settings.TRAIN_SLOTS - len(free_at))
    free_at.sort()
    positions = {}
    for position, job in enumerate(order, start=1):
        start = free_at.pop(0) if free_at else 0.0
        positions[job.pk] = (position, now + timedelta(seconds=start))
        free_at.append(start + typical)
        free_at.sort()
    return positions


def queue_position(job: Job) -> tuple[int | None, datetime | None]:
    """A waiting job's place in line and estimated start; (None, None) once it has a slot."""
    if job.status != JobStatus.QUEUED or job.dispatched_at is not None:
        return None, None
    return queue_positions().get(job.pk, (None, None))


@transaction.atomic
def move(job: Job, where: str) -> None:
    """A teacher's reordering of their class's waiting jobs: "top", "up", "down" or "bottom"."""
    _lock()
    ids = [j.pk for j in waiting_order() if j.course_id == job.course_id]
    if job.pk not in ids:
        return
    index = ids.index(job.pk)
    target = {"top": 0, "up": max(0, index - 1), "down": min(len(ids) - 1, index + 1)}.get(
        where, len(ids) - 1
    )
    ids.insert(target, ids.pop(index))
    # Strictly decreasing priorities make this exact order the class's order in line.
    for rank, pk in enumerate(ids):
        Job.objects.filter(pk=pk).update(priority=len(ids) - rank)


def stale_dispatches() -> list[int]:
    """Jobs handed to the queue long ago that no worker claimed (a lost message): send again."""
    cutoff = timezone.now() - timedelta(seconds=settings.JOB_DISPATCH_TIMEOUT)
    ids = list(
        Job.objects.filter(status=JobStatus.QUEUED, dispatched_at__lt=cutoff).values_list(
            "pk", flat=True
        )
    )
    if ids:
        Job.objects.filter(pk__in=ids).update(dispatched_at=timezone.now())
        for pk in ids:
            send_to_train_queue(pk)
    return ids
