"""Face detection on a worker: the web process checks the upload, sends its bytes to the
`faces.detect` task on the default queue and waits a bounded time for the answer, as Try it
does (`webapp.jobs.predict`); detection itself (and mediapipe, cv2) never runs in a web process.
"""

import base64
import binascii
import time

import numpy as np
from celery import shared_task
from celery.exceptions import TimeoutError as CeleryTimeout
from django.utils import translation
from django.utils.translation import gettext as _

from webapp.datasets import images
from webapp.jobs import predict
from webapp.jobs.predict import NoWorker, PredictRefused

WAIT_SECONDS = 30  # as Try it: a free worker answers in well under a second


def find_faces_in_upload(upload) -> dict:
    """Ask a worker for the faces in an uploaded photo; PredictRefused (field `image`) when the
    file is no image or too large, NoWorker (503) when no worker answers in time."""
    content = predict.check_image(upload)  # size, pixels and format, before a worker sees it
    started = time.perf_counter()
    payload = base64.b64encode(content).decode("ascii")
    try:
        task = detect_faces.delay(payload, translation.get_language() or "en")
        answer = task.get(timeout=WAIT_SECONDS)
    except CeleryTimeout:
        raise NoWorker(
            _("No worker answered within %(s)s seconds; try again in a minute.")
            % {"s": WAIT_SECONDS}
        ) from None
    if answer.get("error"):
        raise PredictRefused(answer["error"], field="image")
    return {**answer, "seconds": round(time.perf_counter() - started, 3)}


@shared_task(name="faces.detect")
def detect_faces(image_b64: str, language: str = "en") -> dict:
    """The faces in one photo: Found.to_dict() ({"faces", "detector", ...}) or {"error"}."""
    from webapp.faces import detect  # numpy only; mediapipe and cv2 load on the first photo

    with translation.override(language):
        try:
            content = base64.b64decode(image_b64, validate=True)
        except (binascii.Error, ValueError):
            return {"error": _("The image did not arrive whole; upload it again.")}
        try:  # again here: a worker never trusts a message; orientation applied, mode L or RGB
            checked = images.check_image(content, predict.MAX_PIXELS)
        except images.ImageRejected as exc:
            return {"error": str(exc)}
        try:
            pixels = np.asarray(checked.image.convert("RGB"))  # (H, W, 3) uint8
            return detect.find_faces(pixels).to_dict()
        except MemoryError:
            return {"error": _("The photo did not fit in the worker's memory; send a smaller one.")}
