"""Submitting, grouping, cancelling and reordering jobs: write, commit, then dispatch and tell."""

import copy
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from webapp.accounts import permissions
from webapp.accounts.models import User
from webapp.datasets import quota
from webapp.datasets.models import Dataset, Status
from webapp.errors import Refused
from webapp.jobs import broadcast, scheduler, spec_check
from webapp.jobs.models import FINISHED, Job, JobGroup, JobStatus

MAX_GROUP = 6


class JobRefused(Refused):
    """A job that cannot be submitted or changed, with the reason for the student."""


class TooManyJobs(JobRefused):
    status = 409


class StorageFull(JobRefused):
    status = 413


class InvalidSpec(JobRefused):
    """A setting the trainer would refuse; `field` is `spec.<path>` (the API contract's 422)."""

    status = 422


def _check_spec(user: User, spec: dict, dataset: Dataset) -> dict:
    """The one web-side check of a spec (`spec_check.validate_job`; the worker checks it again):
    the spec as a job stores it, its kind and model filled in."""
    spec, problems = spec_check.validate_job(user, dataset, spec)
    if problems:  # all of them, as /jobs/validate answers; the first names the field
        field, message = next(iter(problems.items()))
        detail = f"{field.removeprefix('spec.')}: {message}"
        raise InvalidSpec(detail, field=field, errors=problems)
    return spec


def _check_limits(user: User, course, adding: int) -> None:
    if user.is_superuser or permissions.can_view_roster(user, course):
        return  # teachers and TAs have no limits
    waiting = Job.objects.filter(owner=user, status=JobStatus.QUEUED).count()
    limit = settings.JOB_MAX_WAITING_PER_STUDENT
    if waiting + adding > limit:
        raise TooManyJobs(
            _(
                "You already have %(n)s jobs waiting; at most %(limit)s may wait at once. Wait "
                "for some to start or cancel some."
            )
            % {"n": waiting, "limit": limit},
        )
    if scheduler.over_quota(user, course):
        raise TooManyJobs(
            _(
                "Your GPU minutes in this class are used up (%(minutes)s minutes). Ask your "
                "teacher for more."
            )
            % {"minutes": course.gpu_minutes_per_student}
        )
    storage = quota.storage_use(user, course)
    if storage.left == 0:  # a run writes checkpoints and models, which count too
        raise StorageFull(
            _(
                "Your storage in this class is full (%(used)s MB of %(limit)s MB, the files of "
                "your training runs included), so a new run has no room for its files. Ask your "
                "teacher for more space."
            )
            % {"used": storage.used // quota.MB, "limit": course.storage_mb_per_student}
        )


def _check_dataset(dataset: Dataset) -> None:
    if dataset.status != Status.READY or not dataset.head:
        raise JobRefused(_("The dataset is not ready yet."), field="dataset")
    if not dataset.trainable:  # the trainer says which kinds it has a loop for
        raise JobRefused(
            _("Training for this kind of dataset (%(kind)s) comes in a later lesson.")
            % {"kind": dataset.get_kind_display()},
            field="dataset",
        )


def _create(user: User, dataset: Dataset, spec: dict, **fields) -> Job:
    job = Job.objects.create(
        course=dataset.course,
        owner=user,
        dataset=dataset,
        dataset_version=dataset.head,
        spec=spec,
        **fields,
    )
    broadcast.job_changed(job)
    return job


@transaction.atomic
def submit(user: User, dataset: Dataset, spec: dict) -> Job:
    """Queue a training job on the dataset's current version; it starts when its turn comes."""
    permissions.require_writable(dataset.course)
    _check_dataset(dataset)
    spec = _check_spec(user, spec, dataset)
    _check_limits(user, dataset.course, 1)
    job = _create(user, dataset, spec)
    transaction.on_commit(scheduler.dispatch_jobs)
    return job


def set_path(spec: dict, path: str, value) -> dict:
    """A copy of the spec with one (dotted) field set, e.g. "transfer.mode" or "optimizer"."""
    result = copy.deepcopy(spec)
    *parents, leaf = path.split(".")
    node = result
    for part in parents:
        child = node.get(part)
        node[part] = child = dict(child) if isinstance(child, dict) else {}
        node = child
    node[leaf] = value
    return result


def _label(value) -> str:
    if isinstance(value, list):
        return _("%(n)s layers") % {"n": len(value)}
    return str(value)


@transaction.atomic
def submit_group(
    user: User,
    dataset: Dataset,
    base_spec: dict,
    variable: str,
    values: list,
    title: str = "",
    labels: list[str] | None = None,
) -> JobGroup:
    """Queue one job per value of `variable`, as a group to compare; all or none are queued.

    `labels` name the runs where the values themselves do not read well (whole layer lists).
    """
    permissions.require_writable(dataset.course)
    if not 2 <= len(values) <= MAX_GROUP:
        raise JobRefused(
            _("Choose between 2 and %(n)s values to compare.") % {"n": MAX_GROUP},
            field="values",
        )
    _check_dataset(dataset)
    specs = [_check_spec(user, set_path(base_spec, variable, value), dataset) for value in values]
    _check_limits(user, dataset.course, len(specs))
    group = JobGroup.objects.create(
        course=dataset.course,
        owner=user,
        variable=variable,
        title=title or _("Compare %(variable)s") % {"variable": variable},
    )
    if labels is None or len(labels) != len(values):
        labels = [_label(value) for value in values]
    for label, spec in zip(labels, specs, strict=True):
        _create(user, dataset, spec, group=group, label=label[:120])
    transaction.on_commit(scheduler.dispatch_jobs)
    return group


def cancel(job: Job) -> Job:
    """A queued job stops at once; a running one stops within a few seconds, keeping its work.

    Allowed in an archived class too: cancelling stops GPU work and adds nothing.
    """
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.status in FINISHED:
            raise JobRefused(_("The job has already ended."))
        if job.status == JobStatus.QUEUED:
            job.status = JobStatus.CANCELLED
            job.finished_at = timezone.now()
            job.save(update_fields=["status", "finished_at"])
        else:
            job.cancel_requested = True
            job.save(update_fields=["cancel_requested"])
        broadcast.job_changed(job)
    scheduler.dispatch_jobs()  # a cancelled waiting job may have held a slot
    return job


def reorder(job: Job, where: str) -> None:
    """A teacher moves a waiting job: "top", "up", "down" or "bottom"."""
    permissions.require_writable(job.course)
    if job.status != JobStatus.QUEUED or job.dispatched_at is not None:
        raise JobRefused(_("Only waiting jobs can be moved."))
    scheduler.move(job, where)
    broadcast.job_changed(job)


def reap_stale_jobs() -> dict[str, int]:
    """Requeue running jobs whose worker went silent, or fail them after too many attempts.

    The next attempt resumes from the last checkpoint; the old one, should it wake up, finds
    the job no longer running under its attempt number and stops writing.
    """
    cutoff = timezone.now() - timedelta(seconds=settings.JOB_HEARTBEAT_TIMEOUT)
    requeued = failed = 0
    for job_id in Job.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=cutoff).values_list(
        "pk", flat=True
    ):
        with transaction.atomic():
            job = Job.objects.select_for_update().get(pk=job_id)
            if job.status != JobStatus.RUNNING or job.heartbeat_at >= cutoff:
                continue  # it answered meanwhile
            if job.attempts >= settings.JOB_MAX_ATTEMPTS:
                job.status = JobStatus.FAILED
                job.finished_at = timezone.now()
                job.error = _(
                    "The training worker stopped answering %(n)s times (a crash or a lost "
                    "server). Try again; if it keeps happening, tell your teacher."
                ) % {"n": job.attempts}
                job.save(update_fields=["status", "finished_at", "error"])
                failed += 1
                transaction.on_commit(scheduler.dispatch_jobs)
            else:
                # It keeps the slot it held: sent again at once, ahead of the waiting jobs.
                job.status = JobStatus.QUEUED
                job.dispatched_at = timezone.now()
                job.save(update_fields=["status", "dispatched_at"])
                transaction.on_commit(lambda pk=job.pk: scheduler.send_to_train_queue(pk))
                requeued += 1
            broadcast.job_changed(job)
    resent = scheduler.stale_dispatches()
    started = scheduler.dispatch_jobs()
    return {
        "requeued": requeued,
        "failed": failed,
        "resent": len(resent),
        "dispatched": len(started),
    }
