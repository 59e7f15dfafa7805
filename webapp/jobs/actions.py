"""Submitting and cancelling training jobs: write, commit, then send to the `train` queue."""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from webapp.accounts.models import User
from webapp.datasets.models import Dataset, Status
from webapp.errors import Refused
from webapp.jobs import tasks
from webapp.jobs.models import FINISHED, Job, JobStatus


class JobRefused(Refused):
    """A job that cannot be submitted or changed, with the reason for the student."""


class TooManyJobs(JobRefused):
    status = 409


def check_spec(spec: dict, dataset: Dataset) -> dict:
    """Validate the spec's own fields here; the worker checks it again with the data and models."""
    from trainer.spec import SpecError, load_spec  # pydantic only: no torch in a web request

    if not isinstance(spec, dict) or "data" in spec:
        raise JobRefused(
            _("The spec must be an object without “data”: the dataset is chosen."), field="spec"
        )
    placeholder = {"classes": ["a"], "items": [{"path": "x.png", "label": 0}]}
    try:
        load_spec({**spec, "data": placeholder}, check_registry=False)
    except SpecError as exc:
        field, message = next(iter(exc.errors.items()))
        raise JobRefused(f"{field}: {message}", field=f"spec.{field}") from None
    return spec


@transaction.atomic
def submit(user: User, dataset: Dataset, spec: dict) -> Job:
    """Queue a training job on the dataset's current version."""
    if dataset.status != Status.READY or not dataset.head:
        raise JobRefused(_("The dataset is not ready yet."), field="dataset")
    if dataset.task != "classification":
        raise JobRefused(
            _("Training is available for classification datasets for now."), field="dataset"
        )
    check_spec(spec, dataset)
    course = dataset.course
    open_jobs = Job.objects.filter(owner=user, course=course).exclude(status__in=FINISHED)
    limit = course.concurrent_jobs_per_student
    if open_jobs.count() >= limit and not user.is_superuser:
        raise TooManyJobs(
            _(
                "You already have %(n)s jobs queued or running, the class's limit; wait for one "
                "to finish or cancel one."
            )
            % {"n": limit},
        )
    job = Job.objects.create(
        course=course, owner=user, dataset=dataset, dataset_version=dataset.head, spec=spec
    )
    job_id = job.pk
    transaction.on_commit(lambda: tasks.train.delay(job_id))
    return job


@transaction.atomic
def cancel(job: Job) -> Job:
    """A queued job stops at once; a running one stops within a few seconds, keeping its work."""
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
    return job


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
            else:
                job.status = JobStatus.QUEUED
                job.save(update_fields=["status"])
                transaction.on_commit(lambda pk=job.pk: tasks.train.delay(pk))
                requeued += 1
    return {"requeued": requeued, "failed": failed}
