"""`/api/v1/jobs/*`: submit, read, follow (events after N) and cancel training jobs."""

from django.http import Http404
from django.utils.translation import gettext as _
from ninja import Router, Schema, Status
from ninja.errors import HttpError

from webapp.accounts import permissions
from webapp.datasets.models import Dataset
from webapp.jobs import actions
from webapp.jobs.models import Job, JobEvent

router = Router(tags=["jobs"])


class JobIn(Schema):
    dataset: int
    spec: dict


def _job(request, job_id: int) -> Job:
    job = Job.objects.select_related("course").filter(pk=job_id).first()
    if job is None or not permissions.can_view_job(request.user, job):
        raise Http404
    return job


def job_out(job: Job) -> dict:
    return {
        "id": job.pk,
        "course": job.course_id,
        "dataset": job.dataset_id,
        "dataset_version": job.dataset_version,
        "owner": job.owner.username,
        "spec": job.spec,
        "status": job.status,
        "attempts": job.attempts,
        "error": job.error,
        "result": job.result,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "gpu_seconds": round(job.gpu_seconds, 1),
    }


@router.post("/jobs", response={201: dict})
def submit(request, payload: JobIn):
    """Queue a training job on the current version of a dataset."""
    dataset = Dataset.objects.select_related("course").filter(pk=payload.dataset).first()
    if dataset is None or not permissions.can_view_dataset(request.user, dataset):
        raise actions.JobRefused(_("No dataset with this id is yours."), field="dataset")
    if not permissions.can_train_on(request.user, dataset):
        raise HttpError(403, _("You may not train on this dataset."))
    job = actions.submit(request.user, dataset, payload.spec)
    return Status(201, job_out(job))


@router.get("/jobs/{job_id}", response=dict)
def get_job(request, job_id: int):
    return job_out(_job(request, job_id))


@router.get("/jobs/{job_id}/events", response=dict)
def job_events(request, job_id: int, after: int = 0, limit: int = 1000):
    """The job's stored events numbered after `after` (what a reconnecting page asks for)."""
    job = _job(request, job_id)
    limit = max(1, min(limit, 5000))
    events = JobEvent.objects.filter(job=job, number__gt=after).order_by("number")[:limit]
    return {"status": job.status, "events": [event.as_message() for event in events]}


@router.post("/jobs/{job_id}/cancel", response=dict)
def cancel_job(request, job_id: int):
    job = _job(request, job_id)
    if not permissions.can_cancel_job(request.user, job):
        raise HttpError(403, _("You may not cancel this job."))
    return job_out(actions.cancel(job))
