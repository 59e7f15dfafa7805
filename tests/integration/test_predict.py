"""Try it with a real worker: a digits model answers the top five on the default queue."""

import io
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

from webapp.datasets import tasks as dataset_tasks
from webapp.datasets.models import Dataset
from webapp.jobs import tasks
from webapp.jobs.models import Job

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _png(seed: int) -> bytes:
    image = Image.new("L", (32, 32), 0)
    image.paste(255, (8 + seed % 8, 4, 14 + seed % 8, 28))  # a stroke, somewhere else each time
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_worker_answers_try_it_for_a_digits_model_well_under_a_second(
    world, celery_worker_process
):
    from webapp.celery import app

    registered = app.control.inspect(timeout=2).registered() or {}
    assert any("jobs.predict" in names for names in registered.values()), (
        "the worker does not know jobs.predict: webapp.jobs.predict must be imported by it"
    )
    # The row by hand and the task called here: the action would also queue it for the worker.
    dataset = Dataset.objects.create(
        course=world.course,
        owner=world.alice,
        name="digits",
        kind="classification",
        source="sample:digits",
    )
    dataset_tasks.copy_sample(dataset.pk, "digits", "en")
    dataset.refresh_from_db()
    job = Job.objects.create(
        course=world.course,
        owner=world.alice,
        dataset=dataset,
        dataset_version=dataset.head,
        spec={"model": "logistic", "epochs": 1, "input_size": 8, "lr": 0.05},
    )
    tasks.train(job.pk)  # here, so that the worker's only work is the predictions
    job.refresh_from_db()
    assert job.status == "succeeded", job.error

    client, headers = Client(), world.bearer("alice")
    timings = []
    for attempt in range(6):  # the first loads the model into the worker's cache
        upload = SimpleUploadedFile(f"digit-{attempt}.png", _png(attempt), "image/png")
        started = time.perf_counter()
        response = client.post(f"/api/v1/jobs/{job.pk}/predict", {"image": upload}, **headers)
        timings.append(time.perf_counter() - started)
        assert response.status_code == 200, response.content
        top = response.json()["top"]
        assert len(top) == 5 and all(0 <= row["probability"] <= 1 for row in top)
    warm = sorted(timings[1:])[len(timings[1:]) // 2]
    print(f"\ntry it on a real worker: first {timings[0]:.3f} s, warm median {warm:.3f} s")
    assert warm < 5  # the target is under 1 s; a loaded CI machine must not fail the test
