"""Try it: one uploaded image answered by a finished job's exported model, per kind.

Classification answers the top classes; detection the boxes found, with their classes and
scores (in the image's own pixels, [x, y, w, h]). The web process checks the upload with Pillow,
then sends its bytes and the job's kind to the `jobs.predict` task on the default queue and waits
for the answer. For classification a worker keeps the last few models it loaded (from
`model.safetensors` and `model_card.json`; nothing is unpickled) and preprocesses the image
exactly as training decoded it: resized bilinearly to the input size, scaled, normalised; for
detection the trainer's own `trainer.loops.detection.predict` does both.
"""

import base64
import binascii
import io
import threading
import time
from collections import OrderedDict
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
TOP_K = 5
WAIT_SECONDS = 30
CACHED_MODELS = 4  # per worker process; a small model is a few MB
MAX_BOXES = 100  # boxes a detection answer carries at most (score-descending)


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
    """Ask a worker what the job's model sees in the uploaded image: the top classes, or the
    boxes of a detector; the time includes the wait."""
    if job.status != JobStatus.SUCCEEDED or not (model_dir(job.pk) / "model.safetensors").exists():
        raise NoModel(_("This job has no trained model to try; wait until it has succeeded."))
    content = check_image(upload)
    kind = kinds.job_kind(job)
    started = time.perf_counter()
    payload = base64.b64encode(content).decode("ascii")
    try:
        language = translation.get_language() or "en"
        task = predict_image.delay(job.pk, payload, TOP_K, language, kind)
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
    seconds = round(time.perf_counter() - started, 3)
    if kind == kinds.DETECTION:
        return {**{key: answer[key] for key in ("boxes", "width", "height")}, "seconds": seconds}
    return {"top": answer["top"], "seconds": seconds}


# --- on the worker -------------------------------------------------------------------------------

_models: OrderedDict = OrderedDict()  # (job id, weights mtime) → (model, card), last used last
_lock = threading.Lock()  # eager mode runs in the web server's threads


def load_model(folder: Path):
    """The exported model in eval mode on the CPU, and its model card (safetensors only)."""
    from trainer import scoring  # torch is imported on workers only

    card = scoring.load_card(folder)
    return scoring.load_model(folder, card), card


def cached_model(job_id: int):
    """The job's model from this process's small LRU cache, loading it when new or changed."""
    folder = model_dir(job_id)
    key = (job_id, (folder / "model.safetensors").stat().st_mtime_ns)
    with _lock:
        if key in _models:
            _models.move_to_end(key)
            return _models[key]
        loaded = load_model(folder)
        _models[key] = loaded
        while len(_models) > CACHED_MODELS:
            _models.popitem(last=False)
        return loaded


def preprocess(content: bytes, card: dict):
    """(1, C, H, W) float, as training saw its images (trainer.data.decode, then Normalise)."""
    import torch

    from trainer import data

    size, channels = card["input"]["size"][0], card["input"]["channels"]
    pixels = data.decode(io.BytesIO(content), size, channels)  # type: ignore[arg-type]  # (C, H, W)
    normalise = data.Normalise(card["input"]["mean"], card["input"]["std"], torch.device("cpu"))
    return normalise(torch.tensor(pixels)[None])  # (1, C, H, W)


@shared_task(name="jobs.predict")
def predict_image(
    job_id: int, image_b64: str, k: int = TOP_K, language: str = "en", kind: str = "classification"
) -> dict:
    """Top-k classes of one image: {"top": [{"class", "probability"}, ...]}, or for a detector
    {"boxes": [{"box", "class", "label", "score"}, ...], "width", "height"}; else {"error"}."""
    from trainer.memory import out_of_memory

    with translation.override(language):
        try:
            if kind == kinds.DETECTION:
                return _detected_boxes(job_id, image_b64)
            return _top_classes(job_id, image_b64, k)
        except Exception as exc:
            if not out_of_memory(exc):
                raise
            message = _(
                "The model and this image did not fit in the worker's memory; try a smaller "
                "image, or again in a minute."
            )
            return {"error": message, "too_large": True}


def _top_classes(job_id: int, image_b64: str, k: int) -> dict:
    from trainer import data, export

    try:
        content = base64.b64decode(image_b64, validate=True)
    except (binascii.Error, ValueError):
        return {"error": _("The image did not arrive whole; upload it again.")}
    from trainer.scoring import ModelUnavailable

    try:
        model, card = cached_model(job_id)
    except (FileNotFoundError, ModelUnavailable):
        return {"error": _("The job's model files are gone; train the job again.")}
    try:
        images = preprocess(content, card)
    except data.DataError:
        return {"error": _("The image cannot be read; upload a PNG or JPEG file.")}
    top = export.predict_topk(model, images, classes=card["classes"], k=k)[0]
    return {"top": [{"class": row["class"], "probability": row["probability"]} for row in top]}


def _decoded(image_b64: str) -> bytes | None:
    try:
        return base64.b64decode(image_b64, validate=True)
    except (binascii.Error, ValueError):
        return None


def detect(folder: Path, image: Image.Image) -> list[dict]:
    """The trainer's detector on one image (its own decoding, model and box decoding): rows
    {"box": [x, y, w, h] in the photo's pixels, "score", "label" (class index), "class"}."""
    from trainer.detection import inference  # torch is imported on workers only

    return inference.predict(folder, image)


def _rows(found: list[dict]) -> list[tuple[list, float, object]]:
    """(box, score, label) of each object the detector answered."""
    return [(row.get("box"), row.get("score"), row.get("label")) for row in found]


def _detected_boxes(job_id: int, image_b64: str) -> dict:
    from trainer.scoring import ModelUnavailable

    content = _decoded(image_b64)
    if content is None:
        return {"error": _("The image did not arrive whole; upload it again.")}
    folder = model_dir(job_id)
    try:
        image = Image.open(io.BytesIO(content))
        image.load()
    except (UnidentifiedImageError, OSError, ValueError):
        return {"error": _("The image cannot be read; upload a PNG or JPEG file.")}
    try:
        classes = card_classes(folder)
        found = detect(folder, image)
    except (OSError, ValueError, ModelUnavailable):  # files gone or not the card's shape
        return {"error": _("The job's model files are gone; train the job again.")}
    boxes = []
    for box, score, label in _rows(found):
        if not isinstance(box, list | tuple) or len(box) != 4:
            continue
        if isinstance(label, int) and 0 <= label < len(classes):
            name = classes[label]
        else:
            name = str(label)
        boxes.append(
            {
                "box": [round(float(v), 2) for v in box],
                "score": round(float(score or 0.0), 4),
                "label": label if isinstance(label, int) else -1,
                "class": name,
            }
        )
    boxes.sort(key=lambda b: -b["score"])
    return {"boxes": boxes[:MAX_BOXES], "width": image.width, "height": image.height}


def card_classes(folder: Path) -> list[str]:
    """The class names of the exported model card, in the model's order."""
    import json

    card = json.loads((folder / "model_card.json").read_text(encoding="utf-8"))
    classes = card.get("classes") if isinstance(card, dict) else None
    return [str(name) for name in classes] if isinstance(classes, list) else []
