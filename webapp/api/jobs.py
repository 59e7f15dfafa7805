"""`/api/v1/jobs/*`: submit, read, follow (events after N) and cancel training jobs."""

from django.http import FileResponse, Http404
from django.utils.translation import gettext as _
from ninja import File, Router, Status
from ninja.errors import HttpError
from ninja.files import UploadedFile

from webapp.accounts import permissions
from webapp.accounts.models import Course
from webapp.api.base import READ, WRITE, error, errors
from webapp.api.job_schemas import (
    ArtifactName,
    ArtifactsOut,
    EventsAfter,
    EventsLimit,
    EventsOut,
    JobIn,
    JobOut,
    MoveIn,
    PredictOut,
    QueueOut,
    wrong_types,
)
from webapp.api.schemas import Id
from webapp.datasets.models import Dataset
from webapp.jobs import actions, kinds, predict, results, scheduler, spec_check
from webapp.jobs.models import Job, JobEvent
from webapp.jobs.queue import queue_for

router = Router(tags=["jobs"])
BINARY = {"schema": {"type": "string", "format": "binary"}}
ARTIFACT_ANSWER = {
    "responses": {
        200: {
            "description": "The file: weights, an exported model, the model card (JSON), or "
            "the per-image predictions (JSON).",
            "content": {"application/octet-stream": BINARY, "application/json": {"schema": {}}},
        }
    }
}


def _job(request, job_id: int) -> Job:
    job = Job.objects.select_related("course").filter(pk=job_id).first()
    if job is None or not permissions.can_view_job(request.user, job):
        raise Http404
    return job


def metrics_out(job: Job) -> dict:
    """The figures known so far, under the contract's flat names for the job's kind (None
    where not known yet): webapp/jobs/kinds.py decides them."""
    return kinds.api_metrics(kinds.job_kind(job), job.metrics)


def job_out(job: Job, position: tuple | None = None) -> dict:
    place, start = position or scheduler.queue_position(job)
    return {
        "id": job.pk,
        "course": job.course_id,
        "dataset": job.dataset_id,
        "dataset_version": job.dataset_version,
        "owner": job.owner.username,
        "spec": job.spec,
        "status": job.status,
        "queue_position": place,
        "estimated_start": start,
        "progress": round(job.progress, 4),
        "metrics": metrics_out(job),
        "group": job.group_id,
        "label": job.label,
        "priority": job.priority,
        "attempts": job.attempts,
        "error": job.error,
        "result": job.result,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "gpu_seconds": round(job.gpu_seconds, 1),
    }


@router.post("/jobs", response={201: JobOut, **errors(*WRITE, 409)})
def submit(request, payload: JobIn):
    """Queue a training job on the current version of a dataset. The spec may leave out
    `model` (the kind's default: `GET /api/v1/models?kind=...` marks it) and `kind` (the
    dataset's; `task` is its deprecated name)."""
    dataset = Dataset.objects.select_related("course").filter(pk=payload.dataset).first()
    if dataset is None or not permissions.can_view_dataset(request.user, dataset):
        raise actions.JobRefused(_("No dataset with this id is yours."), field="dataset")
    if not permissions.can_train_on(request.user, dataset):
        raise HttpError(403, _("You may not train on this dataset."))
    problems = wrong_types(payload.spec, "spec")
    if problems:
        return error(_("Some settings are not valid."), 422, problems)
    permissions.require_writable(dataset.course)  # an archived class says so before the spec
    # The spec as stored: the dataset's kind, the kind's default model where it names none.
    spec, problems = spec_check.validate_job(request.user, dataset, payload.spec)
    if problems:  # all of them, as /jobs/validate answers; the first names the field
        field, message = next(iter(problems.items()))
        detail = f"{field.removeprefix('spec.')}: {message}"
        raise actions.InvalidSpec(detail, field=field, errors=problems)
    job = actions.submit(request.user, dataset, spec)
    return Status(201, job_out(job))


@router.get("/jobs/{job_id}", response={200: JobOut, **errors(*READ, 404)})
def get_job(request, job_id: Id):
    """A job's status, place in line, figures so far and result."""
    return job_out(_job(request, job_id))


@router.get("/jobs/{job_id}/events", response={200: EventsOut, **errors(*READ, 404)})
def job_events(request, job_id: Id, after: EventsAfter = 0, limit: EventsLimit = 1000):
    """The job's stored events numbered after `after` (what a reconnecting page asks for)."""
    job = _job(request, job_id)
    events = JobEvent.objects.filter(job=job, number__gt=after).order_by("number")[:limit]
    return {"status": job.status, "events": [event.as_message() for event in events]}


@router.post("/jobs/{job_id}/move", response={200: JobOut, **errors(*WRITE, 404, 409)})
def move_job(request, job_id: Id, payload: MoveIn):
    """Teachers reorder the waiting queue: "top", "up", "down" or "bottom"."""
    job = _job(request, job_id)
    if not permissions.can_reorder_queue(request.user, job.course):
        raise HttpError(403, _("Only the class's teachers may reorder the queue."))
    if payload.where not in ("top", "up", "down", "bottom"):
        raise actions.JobRefused(_("Choose top, up, down or bottom."), field="where")
    actions.reorder(job, payload.where)
    job.refresh_from_db()
    return job_out(job)


@router.get("/courses/{course_id}/queue", response={200: QueueOut, **errors(*READ, 404)})
def course_queue(request, course_id: Id):
    """The class's waiting and running jobs in order (staff see all, students their own)."""
    course = Course.objects.filter(pk=course_id).first()
    if course is None or not permissions.can_view_course(request.user, course):
        raise Http404
    return {"jobs": [job_out(job, place) for job, place in queue_for(request.user, course)]}


@router.post("/jobs/{job_id}/cancel", response={200: JobOut, **errors(*WRITE, 404, 409)})
def cancel_job(request, job_id: Id):
    """Cancel a waiting or running job (its owner and the class's teachers and TAs)."""
    job = _job(request, job_id)
    if not permissions.can_cancel_job(request.user, job):
        raise HttpError(403, _("You may not cancel this job."))
    return job_out(actions.cancel(job))


@router.get("/jobs/{job_id}/artifacts", response={200: ArtifactsOut, **errors(*READ, 404)})
def job_artifacts(request, job_id: Id):
    """The files a job has to download: its exported model, model card, per-image predictions."""
    job = _job(request, job_id)
    files = [(name, results.artifact_path(job.pk, name)) for name in results.DOWNLOADS]
    return {
        "artifacts": [
            {
                "name": name,
                "size": path.stat().st_size,
                "url": f"/api/v1/jobs/{job.pk}/artifacts/{name}",
            }
            for name, path in files
            if path is not None
        ]
    }


@router.get(
    "/jobs/{job_id}/artifacts/{name}", response=errors(*READ, 404), openapi_extra=ARTIFACT_ANSWER
)
def job_artifact(request, job_id: Id, name: ArtifactName):
    """Download model.safetensors, model.torchscript.pt, model.onnx, model_card.json, or the
    per-image predictions predictions_test.json / predictions_val.json."""
    job = _job(request, job_id)
    path = results.artifact_path(job.pk, name)
    if path is None:
        raise Http404
    return FileResponse(
        path.open("rb"),
        as_attachment=True,
        filename=f"job-{job.pk}-{name}",
        content_type=results.DOWNLOADS[name],
    )


@router.post(
    "/jobs/{job_id}/predict",
    response={200: PredictOut, **errors(*WRITE, 404, 409, 503)},
    by_alias=True,
    exclude_none=True,
)
def predict_job(request, job_id: Id, image: File[UploadedFile]):
    """What the job's model sees in an uploaded image (multipart field `image`), in its kind's
    shape: a classifier's top-5 classes, a detector's boxes with their classes and scores, a
    segmenter's masks (COCO RLE) with the classes found, a pose network's people with their
    named keypoints and the skeleton."""
    return predict.predict(_job(request, job_id), image)
