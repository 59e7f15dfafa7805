"""The chunked, resumable upload protocol of /api/v1/uploads."""

import io
import zipfile

import pytest
from django.test import Client
from PIL import Image

from webapp.accounts.actions import issue_token
from webapp.datasets import tasks
from webapp.datasets.models import Dataset, Upload

pytestmark = pytest.mark.django_db


def _client(user):
    raw, _ = issue_token(user)
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def _zip_bytes(count: int = 6) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(count):
            image = io.BytesIO()
            Image.new("L", (16, 16), i * 30).save(image, "PNG")
            archive.writestr(f"{'ab'[i % 2]}/{i}.png", image.getvalue())
    return buffer.getvalue()


def test_upload_in_chunks_resumes_after_a_lost_chunk(world, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    data = _zip_bytes()
    client = _client(world.alice)
    started = client.post(
        "/api/v1/uploads",
        {"course": world.course.pk, "file_name": "digits.zip", "size": len(data)},
        content_type="application/json",
    )
    assert started.status_code == 201
    upload_id = started.json()["id"]
    half = len(data) // 2
    put = client.put(
        f"/api/v1/uploads/{upload_id}?offset=0",
        data[:half],
        content_type="application/octet-stream",
    )
    assert put.json()["received"] == half
    # The client lost track (a dropped connection) and sends from the wrong place: refused.
    wrong = client.put(
        f"/api/v1/uploads/{upload_id}?offset=0",
        data[:half],
        content_type="application/octet-stream",
    )
    assert wrong.status_code == 409 and str(half) in wrong.json()["detail"]
    # It asks where to resume, and finishes from there.
    resume_at = client.get(f"/api/v1/uploads/{upload_id}").json()["received"]
    client.put(
        f"/api/v1/uploads/{upload_id}?offset={resume_at}",
        data[resume_at:],
        content_type="application/octet-stream",
    )
    done = client.post(
        f"/api/v1/uploads/{upload_id}/complete",
        {"name": "Digits", "kind": "classification"},
        content_type="application/json",
    )
    assert done.status_code == 202
    dataset = Dataset.objects.get(pk=done.json()["id"])
    tasks.ingest_upload(dataset.pk, upload_id, "en")  # what the worker runs
    dataset.refresh_from_db()
    assert dataset.status == "ready" and dataset.items.count() == 6
    assert not (tmp_path / "media" / "uploads" / Upload.objects.get().id.hex).exists() or not any(
        (tmp_path / "media" / "uploads" / Upload.objects.get().id.hex).iterdir()
    )  # the chunks are gone once ingested


def test_completing_before_all_bytes_arrived_is_refused(world):
    client = _client(world.alice)
    upload_id = client.post(
        "/api/v1/uploads",
        {"course": world.course.pk, "file_name": "x.zip", "size": 100},
        content_type="application/json",
    ).json()["id"]
    client.put(
        f"/api/v1/uploads/{upload_id}?offset=0", b"x" * 40, content_type="application/octet-stream"
    )
    response = client.post(
        f"/api/v1/uploads/{upload_id}/complete",
        {"name": "X", "kind": "classification"},
        content_type="application/json",
    )
    assert response.status_code == 409 and "40" in response.json()["detail"]


def test_more_bytes_than_declared_are_refused(world):
    client = _client(world.alice)
    upload_id = client.post(
        "/api/v1/uploads",
        {"course": world.course.pk, "file_name": "x.zip", "size": 10},
        content_type="application/json",
    ).json()["id"]
    response = client.put(
        f"/api/v1/uploads/{upload_id}?offset=0", b"x" * 11, content_type="application/octet-stream"
    )
    assert response.status_code == 400


def test_nobody_else_can_continue_or_see_an_upload(world):
    upload_id = (
        _client(world.alice)
        .post(
            "/api/v1/uploads",
            {"course": world.course.pk, "file_name": "x.zip", "size": 10},
            content_type="application/json",
        )
        .json()["id"]
    )
    for persona in ("bob", "teacher", "carol"):
        client = _client(world.user(persona))
        assert client.get(f"/api/v1/uploads/{upload_id}").status_code == 404
        put = client.put(
            f"/api/v1/uploads/{upload_id}?offset=0", b"x", content_type="application/octet-stream"
        )
        assert put.status_code == 404
    assert Client().get(f"/api/v1/uploads/{upload_id}").status_code == 401


def test_a_chunk_larger_than_the_chunk_size_is_413(world, settings):
    settings.UPLOAD_CHUNK_BYTES = 8
    client = _client(world.alice)
    upload_id = client.post(
        "/api/v1/uploads",
        {"course": world.course.pk, "file_name": "x.zip", "size": 100},
        content_type="application/json",
    ).json()["id"]
    response = client.put(
        f"/api/v1/uploads/{upload_id}?offset=0", b"x" * 9, content_type="application/octet-stream"
    )
    assert response.status_code == 413
