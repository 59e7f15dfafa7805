"""Face detection with a real worker: POST /api/v1/faces on scikit-image's astronaut is answered
by faces.detect on the default queue, with MediaPipe, well under half a second once warm."""

import io
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image
from skimage import data

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _astronaut_jpeg(side: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(data.astronaut()).resize((side, side)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def test_a_worker_boxes_the_astronauts_face(world, celery_worker_process):
    from webapp.celery import app

    registered = app.control.inspect(timeout=2).registered() or {}
    assert any("faces.detect" in names for names in registered.values()), (
        "the worker does not know faces.detect: webapp/faces/tasks.py must be autodiscovered"
    )
    client, headers = Client(), world.bearer("alice")
    timings = []
    for attempt in range(6):  # the first loads MediaPipe's graph into the worker process
        upload = SimpleUploadedFile(f"astronaut-{attempt}.jpg", _astronaut_jpeg(640), "image/jpeg")
        started = time.perf_counter()
        response = client.post("/api/v1/faces", {"image": upload}, **headers)
        timings.append(time.perf_counter() - started)
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["detector"] == "mediapipe" and (body["width"], body["height"]) == (640, 640)
        [face] = body["faces"]
        x, y, w, h = face["box"]
        assert face["score"] > 0.85
        assert 200 < x + w / 2 < 300 and 100 < y + h / 2 < 180, face["box"]  # (226, 120) × 1.25
    warm = sorted(timings[1:])[len(timings[1:]) // 2]
    print(f"\nfaces on a real worker: first {timings[0]:.3f} s, warm median {warm:.3f} s")
    assert warm < 5  # the target is under 0.5 s (benchmarks/faces.py); a loaded CI must not fail
