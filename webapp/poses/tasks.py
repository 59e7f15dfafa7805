"""Pose estimation on a worker: the web process checks the upload (and the run, when one is
picked), sends the bytes to the `poses.detect` task on the default queue and waits a bounded time
for the answer, as face detection and Try it do; MediaPipe and torch never run in a web process.
"""

import base64
import binascii
import time

import numpy as np
from celery import shared_task
from celery.exceptions import TimeoutError as CeleryTimeout
from django.utils import translation
from django.utils.translation import gettext as _

from webapp.accounts import permissions
from webapp.datasets import images
from webapp.jobs import kinds, predict
from webapp.jobs.models import Job, JobStatus
from webapp.jobs.predict import NoModel, NoWorker, PredictRefused

WAIT_SECONDS = 30  # as Try it: a free worker answers in well under a second


class RunNotFound(PredictRefused):
    status = 404


def find_poses_in_upload(upload, user, job_id: int | None = None) -> dict:
    """Ask a worker for the person's skeleton in an uploaded photo, by MediaPipe or by the
    keypoints run `job_id`. PredictRefused names the field (`job` or `image`); NoWorker (503)
    when no worker answers in time."""
    if job_id is not None:
        check_run(run_for(user, job_id))
    content = predict.check_image(upload)  # size, pixels and format, before a worker sees it
    started = time.perf_counter()
    payload = base64.b64encode(content).decode("ascii")
    try:
        language = translation.get_language() or "en"
        task = detect_poses.delay(payload, language, job_id, user.pk)
        answer = task.get(timeout=WAIT_SECONDS)
    except CeleryTimeout:
        raise NoWorker(
            _("No worker answered within %(s)s seconds; try again in a minute.")
            % {"s": WAIT_SECONDS}
        ) from None
    if answer.get("error"):
        refusal = {404: RunNotFound, 409: NoModel}.get(answer.get("status"), PredictRefused)
        raise refusal(answer["error"], field=answer.get("field", "image"))
    return {**answer, "seconds": round(time.perf_counter() - started, 3)}


def run_for(user, job_id: int) -> Job:
    """The run `job_id` when the user may see it, else RunNotFound (the same answer whether it
    exists or not, so ids of others' runs reveal nothing)."""
    job = Job.objects.select_related("course", "dataset").filter(pk=job_id).first()
    if job is None or not permissions.can_view_job(user, job):
        raise RunNotFound(_("There is no run %(id)s that you may see.") % {"id": job_id}, "job")
    return job


def check_run(job: Job) -> None:
    """Refuse a run that is not a finished keypoints run with its model (field `job`)."""
    if kinds.job_kind(job) != kinds.KEYPOINTS:
        raise PredictRefused(
            _("Run %(id)s is not a keypoints run; pick a keypoints run, or none for MediaPipe.")
            % {"id": job.pk},
            field="job",
        )
    if job.status != JobStatus.SUCCEEDED:
        raise NoModel(
            _("Run %(id)s has no trained model yet; wait until it has succeeded.") % {"id": job.pk},
            field="job",
        )
    if not (predict.model_dir(job.pk) / "model.safetensors").exists():
        raise NoModel(_("The run's model files are gone; train the run again."), field="job")


@shared_task(name="poses.detect")
def detect_poses(
    image_b64: str, language: str = "en", job_id: int | None = None, user_id: int | None = None
) -> dict:
    """The person's keypoints in one photo: Poses.to_dict() ({"people", "names", ...}) or
    {"error", "field", "status"}. With `job_id`, the run answers, after the user's right to see
    it is checked again here (a worker never trusts a message)."""
    from webapp.poses import detect  # numpy only; mediapipe (or torch) loads on the first photo

    with translation.override(language):
        try:
            content = base64.b64decode(image_b64, validate=True)
        except (binascii.Error, ValueError):
            return {"error": _("The image did not arrive whole; upload it again.")}
        try:  # orientation applied (points match what a browser shows), mode L or RGB
            checked = images.check_image(content, predict.MAX_PIXELS)
        except images.ImageRejected as exc:
            return {"error": str(exc)}
        if job_id is None:
            try:
                pixels = np.asarray(checked.image.convert("RGB"))  # (H, W, 3) uint8
                return detect.find_pose(pixels).to_dict()
            except MemoryError:
                return {
                    "error": _("The photo did not fit in the worker's memory; send a smaller one.")
                }
        return _run_answer(job_id, user_id, checked.image.convert("RGB"))


def _run_answer(job_id: int, user_id: int | None, image) -> dict:
    from webapp.accounts.models import User
    from webapp.poses import detect

    user = User.objects.filter(pk=user_id, is_active=True).first()
    try:
        if user is None:
            raise RunNotFound(_("There is no run %(id)s that you may see.") % {"id": job_id}, "job")
        job = run_for(user, job_id)
        check_run(job)
    except PredictRefused as exc:
        return {"error": exc.message, "field": exc.field, "status": exc.status}
    from trainer.loops import keypoints  # torch is imported on workers only
    from trainer.memory import out_of_memory
    from trainer.scoring import ModelUnavailable

    started = time.perf_counter()
    try:
        [answer] = keypoints.predict(predict.model_dir(job_id), [image])
    except (OSError, ValueError, ModelUnavailable):  # files gone or not the card's shape
        return {"error": _("The run's model files are gone; train the run again."), "field": "job"}
    except Exception as exc:
        if not out_of_memory(exc):
            raise
        return {"error": _("The photo did not fit in the worker's memory; send a smaller one.")}
    answer = {**answer, "seconds": time.perf_counter() - started}
    return detect.poses_of_run(answer, job_id).to_dict()
