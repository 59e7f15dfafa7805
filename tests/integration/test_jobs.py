"""A real worker trains a job from the `train` queue; events are stored, then replayed."""

import time

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.test import Client

from webapp.accounts.actions import issue_token
from webapp.asgi import application
from webapp.datasets import tasks as dataset_tasks
from webapp.datasets.models import Dataset
from webapp.jobs.models import JobEvent

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _wait(client, headers, job_id, seconds=180):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        body = client.get(f"/api/v1/jobs/{job_id}", **headers).json()
        if body["status"] in ("succeeded", "failed", "cancelled"):
            return body
        time.sleep(0.5)
    raise AssertionError(f"job still {body['status']}")


def test_worker_trains_a_job_and_the_websocket_replays_its_events(world, celery_worker_process):
    # The row by hand and the task called here: the action would also queue it for the worker.
    dataset = Dataset.objects.create(
        course=world.course,
        owner=world.alice,
        name="faces",
        kind="classification",
        source="sample:faces",
    )
    dataset_tasks.copy_sample(dataset.pk, "faces", "en")
    raw, _ = issue_token(world.alice)
    client, headers = Client(), {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    response = client.post(
        "/api/v1/jobs",
        {
            "dataset": dataset.pk,
            "spec": {
                "model": "simple_cnn",
                "epochs": 3,
                "input_size": 24,
                "lr": 5e-3,
                "schedule": "onecycle",
            },
        },
        content_type="application/json",
        **headers,
    )
    assert response.status_code == 201, response.content
    job_id = response.json()["id"]
    body = _wait(client, headers, job_id)
    assert body["status"] == "succeeded", body
    assert body["attempts"] == 1 and 0 <= body["result"]["val"]["accuracy"] <= 1
    kinds = list(JobEvent.objects.filter(job_id=job_id).values_list("kind", flat=True))
    assert kinds[0] == "started" and kinds[-1] == "finished" and kinds.count("epoch") == 3
    numbers = list(JobEvent.objects.filter(job_id=job_id).values_list("number", flat=True))
    assert numbers == list(range(1, len(numbers) + 1))

    login = Client()
    login.force_login(world.alice)
    cookie = f"sessionid={login.cookies['sessionid'].value}".encode()

    async def replay(after: int) -> list[dict]:
        socket = WebsocketCommunicator(
            application,
            f"/ws/jobs/{job_id}/?after={after}",
            headers=[
                (b"origin", b"http://localhost"),
                (b"host", b"localhost"),
                (b"cookie", cookie),
            ],
        )
        connected, _ = await socket.connect()
        assert connected
        received = []
        while not await socket.receive_nothing(timeout=0.5):
            received.append(await socket.receive_json_from())
        await socket.disconnect()
        return received

    everything = async_to_sync(replay)(0)
    assert [e["seq"] for e in everything] == numbers
    later = async_to_sync(replay)(numbers[-3])
    assert [e["seq"] for e in later] == numbers[-2:]  # a reconnect gets only what it missed
