"""Uploads through the API are ingested by a real Celery worker over the real Redis."""

import io
import time
import zipfile

import pytest
from django.test import Client
from PIL import Image

from tests.conftest import PASSWORD

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _png(color) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (20, 20), color).save(buffer, "PNG")
    return buffer.getvalue()


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(30):
            archive.writestr(f"set/cat/{i}.png", _png((200, i * 8, 0)))
            archive.writestr(f"set/dog/{i}.png", _png((0, i * 8, 200)))
        archive.writestr("set/dog/notes.png", b"this is not an image")
    return buffer.getvalue()


def _token(client: Client, username: str) -> str:
    response = client.post(
        "/api/v1/auth/token",
        {"username": username, "password": PASSWORD},
        content_type="application/json",
    )
    return response.json()["token"]


def _wait_ready(client: Client, token: str, dataset_id: int) -> dict:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        body = client.get(
            f"/api/v1/datasets/{dataset_id}", HTTP_AUTHORIZATION=f"Bearer {token}"
        ).json()
        if body["status"] != "processing":
            return body
        time.sleep(0.3)
    raise AssertionError(f"still processing: {body}")


def test_uploaded_zip_is_ingested_by_the_worker(world, celery_worker_process):
    client = Client()
    token = _token(client, "alice")
    upload = io.BytesIO(_zip())
    upload.name = "pets.zip"
    response = client.post(
        "/api/v1/datasets",
        {"course": world.course.pk, "name": "Pets", "kind": "classification", "file": upload},
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 202, response.content
    body = _wait_ready(client, token, response.json()["id"])
    assert body["status"] == "ready", body
    assert body["num_images"] == 60
    assert {c["name"]: c["count"] for c in body["classes"]} == {"cat": 30, "dog": 30}
    assert body["rejected"] == [
        {"file": "set/dog/notes.png", "reason": body["rejected"][0]["reason"]}
    ]
    assert "not an image" in body["rejected"][0]["reason"]
    assert body["splits"]["val"] == {"cat": 6, "dog": 6}  # 8:2, stratified


def test_sample_is_copied_by_the_worker(world, celery_worker_process):
    client = Client()
    token = _token(client, "teacher")
    response = client.post(
        "/api/v1/datasets/samples",
        {"course": world.course.pk, "sample": "faces", "visibility": "handout"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 202, response.content
    body = _wait_ready(client, token, response.json()["id"])
    assert body["status"] == "ready" and body["num_images"] == 200
