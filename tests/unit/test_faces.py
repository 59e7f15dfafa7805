"""Face detection: the detectors on scikit-image's astronaut, the worker task, POST /api/v1/faces
(who may call it, bad files, no worker) and the page."""

import base64
import io
import sys

import numpy as np
import pytest
from celery.exceptions import TimeoutError as CeleryTimeout
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image
from skimage import data

from tests.conftest import assert_api_error
from webapp.faces import detect, tasks

pytestmark = pytest.mark.django_db

# Eileen Collins' face in skimage.data.astronaut() (512×512), [x, y, w, h], measured by eye.
ASTRONAUT_FACE = [172, 66, 104, 104]


def _iou(a, b) -> float:
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    w = max(0, min(ax2, bx2) - max(a[0], b[0]))
    h = max(0, min(ay2, by2) - max(a[1], b[1]))
    return w * h / (a[2] * a[3] + b[2] * b[3] - w * h)


def _encoded(pixels: np.ndarray, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt, **options)
    return buffer.getvalue()


def _astronaut_upload(name: str = "astronaut.png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, _encoded(data.astronaut()), content_type="image/png")


@pytest.fixture
def eager(monkeypatch):
    """Celery runs faces.detect in this process (no worker in unit tests)."""
    from webapp.celery import app

    monkeypatch.setitem(app.conf, "task_always_eager", True)


# --- the detectors -------------------------------------------------------------------------------


def test_mediapipe_boxes_the_astronauts_face_with_a_high_score():
    found = detect.find_faces(data.astronaut())
    assert found.detector == detect.MEDIAPIPE
    assert (found.width, found.height) == (512, 512)
    assert len(found.faces) == 1
    face = found.faces[0]
    assert face.score > 0.85
    assert _iou(face.box, ASTRONAUT_FACE) > 0.7, face.box


def test_the_haar_cascade_finds_the_same_face_with_its_weight_as_a_score():
    found = detect.find_faces(data.astronaut(), detect.HAAR)
    assert found.detector == detect.HAAR
    [face] = found.faces
    assert 0.5 < face.score < 0.65  # her final-stage weight is about 6.9: 6.9 / 11.9 = 0.58
    assert _iou(face.box, ASTRONAUT_FACE) > 0.6, face.box


def test_the_haar_weight_maps_to_a_score_below_one():
    assert detect.haar_score(-2.0) == detect.haar_score(0.0) == 0.0
    assert detect.haar_score(detect.HAAR_HALF) == 0.5
    scores = [detect.haar_score(w) for w in (1.0, 5.4, 10.8, 1000.0)]
    assert scores == sorted(scores) and all(0 < s < 1 for s in scores)


def test_without_mediapipe_the_haar_cascade_answers(monkeypatch):
    monkeypatch.setattr(detect, "_mediapipe", None)
    monkeypatch.setitem(sys.modules, "mediapipe.python.solutions", None)  # import fails
    found = detect.find_faces(data.astronaut())
    assert found.detector == detect.HAAR and len(found.faces) == 1


def test_a_large_photo_is_shrunk_to_detect_and_its_boxes_are_in_its_own_pixels():
    large = np.asarray(Image.fromarray(data.astronaut()).resize((2048, 2048)))
    found = detect.find_faces(large)
    assert (found.width, found.height) == (2048, 2048)
    assert _iou(found.faces[0].box, [v * 4 for v in ASTRONAUT_FACE]) > 0.7, found.faces[0].box


def test_a_photo_without_faces_has_none_and_tiny_or_thin_photos_do_not_break():
    assert detect.find_faces(np.full((480, 640, 3), 128, np.uint8)).faces == []
    assert detect.find_faces(np.zeros((1, 1, 3), np.uint8)).faces == []
    assert detect.find_faces(np.zeros((4, 5000, 3), np.uint8)).faces == []
    assert detect.find_faces(np.zeros((1, 1, 3), np.uint8), detect.HAAR).faces == []


def test_faces_are_most_confident_first_and_boxes_stay_inside_the_photo():
    pixels = data.astronaut()
    twins = np.concatenate([pixels, pixels[:, ::-1]], axis=1)  # (512, 1024, 3): two faces
    found = detect.find_faces(twins)
    assert len(found.faces) == 2
    scores = [face.score for face in found.faces]
    assert scores == sorted(scores, reverse=True)
    for x, y, w, h in (face.box for face in found.faces):
        assert x >= 0 and y >= 0 and w > 0 and h > 0 and x + w <= 1024 and y + h <= 512


# --- the worker task -----------------------------------------------------------------------------


def _b64(content: bytes) -> str:
    return base64.b64encode(content).decode("ascii")


def test_the_task_answers_the_faces_of_an_encoded_photo():
    answer = tasks.detect_faces(_b64(_encoded(data.astronaut(), "JPEG", quality=90)))
    assert answer["detector"] == "mediapipe" and (answer["width"], answer["height"]) == (512, 512)
    assert len(answer["faces"]) == 1 and answer["faces"][0]["score"] > 0.85


def test_the_task_applies_the_exif_orientation_so_boxes_match_what_a_browser_shows():
    upright = data.astronaut()[:, :400]  # (512, 400, 3)
    stored = np.ascontiguousarray(np.rot90(upright, k=1))  # stored turned; EXIF turns it back
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    answer = tasks.detect_faces(_b64(_encoded(stored, "JPEG", exif=exif.tobytes(), quality=92)))
    assert (answer["width"], answer["height"]) == (400, 512)
    assert len(answer["faces"]) == 1 and answer["faces"][0]["score"] > 0.85
    assert _iou(answer["faces"][0]["box"], ASTRONAUT_FACE) > 0.6


def test_the_task_reads_grayscale_photos():
    gray = np.asarray(Image.fromarray(data.astronaut()).convert("L"))
    answer = tasks.detect_faces(_b64(_encoded(gray)))
    assert len(answer["faces"]) == 1


def test_the_task_refuses_what_is_not_an_image_or_did_not_arrive_whole():
    assert "not an image" in tasks.detect_faces(_b64(b"hello, not a photo"))["error"]
    assert "upload it again" in tasks.detect_faces("***")["error"]


# --- POST /api/v1/faces --------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["alice", "carol", "ta", "teacher", "other_teacher"])
def test_any_signed_in_user_gets_the_faces_of_a_photo(world, eager, persona):
    response = Client().post(
        "/api/v1/faces", {"image": _astronaut_upload()}, **world.bearer(persona)
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["detector"] == "mediapipe" and (body["width"], body["height"]) == (512, 512)
    [face] = body["faces"]
    assert face["score"] > 0.85 and _iou(face["box"], ASTRONAUT_FACE) > 0.7
    assert body["seconds"] >= 0


def test_the_browser_session_needs_its_csrf_token(world, eager):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.alice)
    response = client.post("/api/v1/faces", {"image": _astronaut_upload()})
    assert_api_error(response, 403)


def test_anonymous_callers_are_refused(world, eager):
    response = Client().post("/api/v1/faces", {"image": _astronaut_upload()})
    assert_api_error(response, 401)


def test_a_file_that_is_not_an_image_is_refused_naming_it_and_the_field(world, eager):
    upload = SimpleUploadedFile("notes.txt", b"not an image at all", content_type="image/png")
    response = Client().post("/api/v1/faces", {"image": upload}, **world.bearer("alice"))
    body = assert_api_error(response, 400)
    assert "notes.txt" in body["detail"] and "image" in body["errors"]


def test_a_file_too_large_or_with_too_many_pixels_is_refused(world, eager, monkeypatch):
    from webapp.jobs import predict

    monkeypatch.setattr(predict, "MAX_UPLOAD_BYTES", 1000)
    response = Client().post(
        "/api/v1/faces", {"image": _astronaut_upload("big.png")}, **world.bearer("alice")
    )
    body = assert_api_error(response, 400)
    assert "big.png" in body["detail"] and "image" in body["errors"]

    monkeypatch.setattr(predict, "MAX_UPLOAD_BYTES", 10 * 1024 * 1024)
    monkeypatch.setattr(predict, "MAX_PIXELS", 100)
    response = Client().post(
        "/api/v1/faces", {"image": _astronaut_upload("wide.png")}, **world.bearer("alice")
    )
    assert "wide.png" in assert_api_error(response, 400)["detail"]


def test_a_request_without_the_image_field_is_refused(world, eager):
    response = Client().post("/api/v1/faces", {"photo": "x"}, **world.bearer("alice"))
    assert_api_error(response, 422)


def test_no_worker_in_time_answers_503(world, monkeypatch):
    class Late:
        def get(self, timeout):
            raise CeleryTimeout

    monkeypatch.setattr(tasks.detect_faces, "delay", lambda *args: Late())
    response = Client().post(
        "/api/v1/faces", {"image": _astronaut_upload()}, **world.bearer("alice")
    )
    assert "worker" in assert_api_error(response, 503)["detail"]


# --- the page ------------------------------------------------------------------------------------


def test_the_page_asks_anonymous_visitors_to_sign_in(world):
    response = Client().get("/faces/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_page_and_its_link_in_the_header_speak_both_languages(world):
    client = world.client("alice")
    en = client.get("/faces/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'action="/api/v1/faces"' in en and "Find faces" in en
    assert '<a href="/faces/" aria-current="page">Face detection</a>' in en
    ja = client.get("/courses/", HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    assert '<a href="/faces/" >顔検出</a>' in ja


def test_the_benchmark_imports_without_starting_anything_and_prints_its_options():
    import importlib
    import subprocess

    from tests.live import ROOT

    module = importlib.import_module("benchmarks.faces")
    assert callable(module.main) and module.__doc__.startswith("Benchmark:")
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "faces.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and "--rounds" in result.stdout, result.stderr


def test_when_mediapipe_fails_on_a_photo_the_haar_cascade_answers_it(monkeypatch):
    def refuse(pixels):
        raise RuntimeError("graph error")

    monkeypatch.setattr(detect, "_mediapipe_faces", refuse)
    found = detect.find_faces(data.astronaut())
    assert found.detector == detect.HAAR and len(found.faces) == 1
    with pytest.raises(RuntimeError):
        detect.find_faces(data.astronaut(), detect.MEDIAPIPE)  # asked for by name: no fallback


def test_a_photo_too_large_for_the_workers_memory_is_refused_with_a_reason(
    world, eager, monkeypatch
):
    def no_memory(pixels, detector=None):
        raise MemoryError

    monkeypatch.setattr(detect, "find_faces", no_memory)
    response = Client().post(
        "/api/v1/faces", {"image": _astronaut_upload()}, **world.bearer("alice")
    )
    body = assert_api_error(response, 400)
    assert "memory" in body["detail"] and "image" in body["errors"]
