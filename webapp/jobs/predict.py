"""Try it: one uploaded image answered by a finished job's exported model, whatever its kind.

The web process checks the upload with Pillow, then sends its bytes and the job's kind to the
`jobs.predict` task on the default queue and waits (bounded) for the answer. On the worker the
trainer answers (`trainer.inference.predict` → `trainer/loops/<kind>.py`'s `predict`): it keeps
the last few models it loaded (from `model.safetensors` and `model_card.json`; nothing is
unpickled) and decodes the photo exactly as training did. The answer's shape is the kind's
(docs/architecture.md, "Try it answers"): classification's top classes, a detector's boxes, a
segmenter's masks, a pose network's people; this module only bounds it and adds the time.
"""

import base64
import binascii
import io
import time
from pathlib import Path

from celery import shared_task
from celery.exceptions import TimeoutError as CeleryTimeout
from django.core.files.storage import default_storage
from django.utils import translation
from django.utils.translation import gettext as _
from PIL import Image, UnidentifiedImageError

from webapp.errors import Refused
from webapp.jobs import kinds
from webapp.jobs.models import Job, JobStatus

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000  # a larger image is refused before it is decoded (decompression bombs)
WAIT_SECONDS = 30
MAX_LISTED = 100  # boxes, people or classes an answer carries at most (best first)


class PredictRefused(Refused):
    """An image or a job that Try it cannot answer, with the reason for the student."""


class NoModel(PredictRefused):
    status = 409


class NoWorker(PredictRefused):
    status = 503


class TooLarge(PredictRefused):
    status = 413


def model_dir(job_id: int) -> Path:
    """Where the job's exported model lies."""
    return Path(default_storage.path(f"jobs/{job_id}"))


def check_image(upload) -> bytes:
    """The upload's bytes when Pillow reads it as an image of sensible size, else PredictRefused."""
    name = getattr(upload, "name", "") or "image"
    if upload.size > MAX_UPLOAD_BYTES:
        raise PredictRefused(
            _("%(name)s is larger than %(mb)s MB; upload a smaller image.")
            % {"name": name, "mb": MAX_UPLOAD_BYTES // (1024 * 1024)},
            field="image",
        )
    content = upload.read()
    try:
        with Image.open(io.BytesIO(content)) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise PredictRefused(
                    _("%(name)s has %(w)s×%(h)s pixels, too many; upload a smaller image.")
                    % {"name": name, "w": width, "h": height},
                    field="image",
                )
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise PredictRefused(
            _("%(name)s is not an image that can be read; upload a PNG or JPEG file.")
            % {"name": name},
            field="image",
        ) from None
    return content


def predict(job: Job, upload) -> dict:
    """Ask a worker what the job's model sees in the uploaded image (the answer of its kind);
    the time includes the wait."""
    if job.status != JobStatus.SUCCEEDED or not (model_dir(job.pk) / "model.safetensors").exists():
        raise NoModel(_("This job has no trained model to try; wait until it has succeeded."))
    content = check_image(upload)
    kind = kinds.job_kind(job)
    started = time.perf_counter()
    payload = base64.b64encode(content).decode("ascii")
    try:
        language = translation.get_language() or "en"
        task = predict_image.delay(job.pk, payload, language, kind)
        answer = task.get(timeout=WAIT_SECONDS)
    except CeleryTimeout:
        raise NoWorker(
            _("No worker answered within %(s)s seconds; try again in a minute.")
            % {"s": WAIT_SECONDS}
        ) from None
    if answer.get("too_large"):
        raise TooLarge(answer["error"], field="image")
    if answer.get("error"):
        raise PredictRefused(answer["error"], field="image")
    return {**answer, "seconds": round(time.perf_counter() - started, 3)}


# --- on the worker -------------------------------------------------------------------------------


def answer(kind: str, folder: Path, image: Image.Image) -> dict:
    """The trainer's answer for one photo (torch is imported on workers only)."""
    from trainer import inference

    return inference.predict(kind, folder, [image])[0]


@shared_task(name="jobs.predict")
def predict_image(
    job_id: int, image_b64: str, language: str = "en", kind: str = "classification"
) -> dict:
    """What the job's model sees in one image, in its kind's shape; else {"error"} (and
    "too_large" when the worker ran out of memory)."""
    from trainer.memory import out_of_memory
    from trainer.scoring import ModelUnavailable

    with translation.override(language):
        try:
            content = base64.b64decode(image_b64, validate=True)
        except (binascii.Error, ValueError):
            return {"error": _("The image did not arrive whole; upload it again.")}
        try:
            image = Image.open(io.BytesIO(content))
            image.load()
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
            return {"error": _("The image cannot be read; upload a PNG or JPEG file.")}
        try:
            return bounded(answer(kind, model_dir(job_id), image))
        except (OSError, KeyError, ModelUnavailable):  # files gone, or not the card's shape
            return {"error": _("The job's model files are gone; train the job again.")}
        except Exception as exc:
            if not out_of_memory(exc):
                raise
            message = _(
                "The model and this image did not fit in the worker's memory; try a smaller "
                "image, or again in a minute."
            )
            return {"error": message, "too_large": True}


def bounded(found: dict) -> dict:
    """The answer with its lists cut to MAX_LISTED, best first where rows have a score."""
    out = {}
    for key, value in found.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            if all(isinstance(v.get("score"), int | float) for v in value):
                value = sorted(value, key=lambda v: -v["score"])
            value = value[:MAX_LISTED]
        out[key] = value
    return out
