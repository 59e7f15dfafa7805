"""A real worker trains a run, then scores it on a hidden copy of the digits: the same figures as
an independent computation (PIL, numpy and scikit-learn, without the trainer's code)."""

import json
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.test import Client
from django.utils import timezone
from PIL import Image
from safetensors.numpy import load_file
from sklearn.metrics import accuracy_score, f1_score

from webapp.assignments.models import Assignment
from webapp.datasets import queries
from webapp.datasets import tasks as dataset_tasks
from webapp.datasets.models import Dataset

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
SPEC = {"model": "logistic", "epochs": 1, "input_size": 8}


def _digits(world, visibility: str) -> Dataset:
    dataset = Dataset.objects.create(
        course=world.course,
        owner=world.teacher,
        name=f"digits ({visibility})",
        kind="classification",
        visibility=visibility,
        source="sample:digits",
    )
    dataset_tasks.copy_sample(dataset.pk, "digits", "en")
    dataset.refresh_from_db()
    assert dataset.status == "ready", dataset.error
    return dataset


def _wait_for(read, done, seconds=180):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        body = read()
        if done(body):
            return body
        time.sleep(0.5)
    raise AssertionError(f"still waiting: {body}")


def _independent_predictions(job_id: int, hidden: Dataset) -> tuple[list[str], list[str]]:
    """Softmax regression by hand: W·x + b on the pixels, normalised as the card says."""
    folder = Path(default_storage.path(f"jobs/{job_id}"))
    card = json.loads((folder / "model_card.json").read_text())
    weights = load_file(str(folder / "model.safetensors"))
    (weight,) = [v for k, v in weights.items() if k.endswith("weight")]  # (10, 64)
    (bias,) = [v for k, v in weights.items() if k.endswith("bias")]  # (10,)
    size = card["input"]["size"][0]
    mean, std = card["input"]["mean"][0], card["input"]["std"][0]
    names = {c.index: c.name for c in queries.categories_at(hidden)}
    truth, predicted = [], []
    for item in queries.items_at(hidden).select_related("image").order_by("pk"):
        with Image.open(default_storage.path(item.image.file)) as image:
            pixels = np.asarray(
                image.convert("L").resize((size, size), Image.Resampling.BILINEAR),
                dtype=np.float32,
            )
        x = (pixels.reshape(-1) / 255 - mean) / std  # (64,)
        predicted.append(card["classes"][int(np.argmax(weight @ x + bias))])
        truth.append(names[item.category_index])
    return truth, predicted


def test_worker_scores_a_submission_on_the_hidden_test_set(world, celery_worker_process):
    handout, hidden = _digits(world, "handout"), _digits(world, "hidden_test")
    client = Client()
    alice = world.bearer("alice")
    response = client.post(
        "/api/v1/jobs",
        {"dataset": handout.pk, "spec": SPEC},
        content_type="application/json",
        **alice,
    )
    assert response.status_code == 201, response.content
    job_id = response.json()["id"]
    job = _wait_for(
        lambda: client.get(f"/api/v1/jobs/{job_id}", **alice).json(),
        lambda body: body["status"] in ("succeeded", "failed", "cancelled"),
    )
    assert job["status"] == "succeeded", job
    assignment = Assignment.objects.create(
        course=world.course,
        created_by=world.teacher,
        title="Digits",
        dataset=handout,
        dataset_version=handout.head,
        hidden_test=hidden,
        metric="macro_f1",
        deadline=timezone.now() + timedelta(days=1),
    )

    response = client.post(
        f"/api/v1/assignments/{assignment.pk}/submissions",
        {"job": job_id},
        content_type="application/json",
        **alice,
    )
    assert response.status_code == 201, response.content
    url = f"/api/v1/assignments/{assignment.pk}/submissions/{response.json()['id']}"
    submission = _wait_for(
        lambda: client.get(url, **alice).json(),
        lambda body: body["status"] in ("scored", "failed"),
        seconds=120,
    )
    assert submission["status"] == "scored", submission
    assert 0 <= submission["score"] <= 1

    truth, predicted = _independent_predictions(job_id, hidden)
    assert len(truth) == 1797
    assert submission["score"] == pytest.approx(f1_score(truth, predicted, average="macro"))
    stored = assignment.submissions.get()
    assert stored.details["images"] == 1797
    assert stored.details["accuracy"] == pytest.approx(accuracy_score(truth, predicted))

    board = client.get(f"/api/v1/assignments/{assignment.pk}/leaderboard", **alice).json()
    assert [(e["rank"], e["you"], e["score"]) for e in board["entries"]] == [
        (1, True, submission["score"])
    ]


# --- detection: a real tiny detector, scored by mAP@0.5 on a hidden copy of the shapes ------


def _shapes(world, visibility: str) -> Dataset:
    dataset = Dataset.objects.create(
        course=world.course,
        owner=world.teacher,
        name=f"shapes ({visibility})",
        kind="detection",
        visibility=visibility,
        source="sample:shapes_detection",
    )
    dataset_tasks.copy_sample(dataset.pk, "shapes_detection", "en")
    dataset.refresh_from_db()
    assert dataset.status == "ready", dataset.error
    return dataset


def test_worker_scores_a_detection_submission_by_map50(world, celery_worker_process):
    from trainer.detection.inference import score_detector
    from webapp.assignments.scoring import hidden_objects

    handout, hidden = _shapes(world, "handout"), _shapes(world, "hidden_test")
    client, alice = Client(), world.bearer("alice")
    spec = {"epochs": 1, "input_size": 64, "lr": 2e-3}  # the kind's default, tiny detector
    response = client.post(
        "/api/v1/jobs",
        {"dataset": handout.pk, "spec": spec},
        content_type="application/json",
        **alice,
    )
    assert response.status_code == 201, response.content
    job_id = response.json()["id"]
    job = _wait_for(
        lambda: client.get(f"/api/v1/jobs/{job_id}", **alice).json(),
        lambda body: body["status"] in ("succeeded", "failed", "cancelled"),
        seconds=300,
    )
    assert job["status"] == "succeeded", job
    assignment = Assignment.objects.create(
        course=world.course,
        created_by=world.teacher,
        title="Shapes",
        dataset=handout,
        dataset_version=handout.head,
        hidden_test=hidden,
        metric="map50",
        deadline=timezone.now() + timedelta(days=1),
    )
    response = client.post(
        f"/api/v1/assignments/{assignment.pk}/submissions",
        {"job": job_id},
        content_type="application/json",
        **alice,
    )
    assert response.status_code == 201, response.content
    url = f"/api/v1/assignments/{assignment.pk}/submissions/{response.json()['id']}"
    submission = _wait_for(
        lambda: client.get(url, **alice).json(),
        lambda body: body["status"] in ("scored", "failed"),
        seconds=180,
    )
    assert submission["status"] == "scored", submission
    stored = assignment.submissions.get()
    assert stored.score == stored.details["map50"] and 0 <= stored.score <= 1
    assert 0 <= stored.details["map"] <= stored.details["map50"]
    # The same figure as the trainer's scorer gives on every image of the hidden set, here.
    items, classes = hidden_objects(hidden, hidden.head)
    assert stored.details["images"] == len(items) == queries.items_at(hidden).count()
    again = score_detector(default_storage.path(f"jobs/{job_id}"), items, classes)
    assert stored.score == pytest.approx(again.map50)
    board = client.get(f"/api/v1/assignments/{assignment.pk}/leaderboard", **alice).json()
    assert board["metric"] == "map50" and board["entries"][0]["score"] == submission["score"]
