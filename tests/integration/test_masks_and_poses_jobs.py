"""Segmentation and keypoints end to end through the seam, from an uploaded COCO ZIP: a real
worker reads the masks (polygons and RLE) or the keypoint set, trains the kind's default model
from a spec without one, keeps the API's flat metrics, speaks the typed events, writes the
per-image predictions, answers Try it in the kind's shape and scores an assignment's hidden
set by the kind's metric."""

import io
import itertools
import json
import time
from datetime import timedelta

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.test import Client
from django.utils import timezone
from pycocotools import mask as mask_utils

from tests.fixtures.coco_zip import coco_zip, png
from trainer import events as trainer_events
from webapp.accounts.actions import issue_token
from webapp.datasets import samples
from webapp.jobs.models import JobEvent

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
IMAGES = 40  # a tiny set: the point is the path through the seam, not the accuracy


def _segmentation_zip() -> bytes:
    records = itertools.islice(samples._shapes_records("shapes_segmentation", IMAGES), IMAGES)
    categories = [{"id": i + 1, "name": name} for i, name in enumerate(samples.SHAPES)]
    return coco_zip(records, categories, rle_every=3)


def _keypoints_zip() -> bytes:
    records = itertools.islice(samples._keypoints_records(), IMAGES)
    person = {
        "id": 1,
        "name": "person",
        "keypoints": list(samples.PERSON_KEYPOINTS),
        "skeleton": [list(pair) for pair in samples.PERSON_SKELETON],
    }
    return coco_zip(records, [person])


def _wait(client, headers, url, done, seconds=300):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        body = client.get(url, **headers).json()
        if done(body):
            return body
        time.sleep(0.5)
    raise AssertionError(f"still waiting: {body}")


def _upload(client, headers, world, kind: str, content: bytes) -> dict:
    upload = io.BytesIO(content)
    upload.name = f"{kind}.zip"
    response = client.post(
        "/api/v1/datasets",
        {"course": world.course.pk, "name": kind, "kind": kind, "file": upload},
        **headers,
    )
    assert response.status_code == 202, response.content
    url = f"/api/v1/datasets/{response.json()['id']}"
    body = _wait(client, headers, url, lambda b: b["status"] != "processing", 120)
    assert body["status"] == "ready" and body["num_images"] == IMAGES, body
    assert body["rejected"] == [], body["rejected"]
    return body


def _train(client, headers, dataset_id: int, spec: dict) -> dict:
    response = client.post(
        "/api/v1/jobs",
        {"dataset": dataset_id, "spec": spec},
        content_type="application/json",
        **headers,
    )
    assert response.status_code == 201, response.content
    job_id = response.json()["id"]
    body = _wait(
        client,
        headers,
        f"/api/v1/jobs/{job_id}",
        lambda b: b["status"] in ("succeeded", "failed", "cancelled"),
    )
    assert body["status"] == "succeeded", body
    return body


def _typed_events(job_id: int, kind: str):
    stored = {name: [] for name in ("started", "epoch", "finished")}
    for name, data in JobEvent.objects.filter(job_id=job_id).values_list("kind", "data"):
        if name in stored:
            stored[name].append(data)
    started = trainer_events.StartedEvent.model_validate(stored["started"][0])
    assert started.kind == kind
    epochs = [trainer_events.EpochEvent.model_validate(e) for e in stored["epoch"]]
    finished = trainer_events.FinishedEvent.model_validate({**stored["finished"][0], "kind": kind})
    return started, epochs, finished


def _predictions(job_id: int) -> list[dict]:
    with default_storage.open(f"jobs/{job_id}/predictions_val.json", "rb") as stored:
        return json.loads(stored.read())


def _try(client, headers, job_id: int, pixels: np.ndarray) -> dict:
    image = io.BytesIO(png(pixels))
    image.name = "mine.png"
    response = client.post(f"/api/v1/jobs/{job_id}/predict", {"image": image}, **headers)
    assert response.status_code == 200, response.content
    return response.json()


def _hidden_assignment_score(world, job_id: int, dataset_id: int, metric: str) -> dict:
    from webapp.assignments import scoring
    from webapp.assignments.models import Assignment, Submission
    from webapp.datasets.models import Dataset
    from webapp.jobs.models import Job

    dataset = Dataset.objects.get(pk=dataset_id)
    assignment = Assignment.objects.create(
        course=world.course,
        created_by=world.teacher,
        title=f"{metric} assignment",
        dataset=dataset,
        dataset_version=dataset.head,
        hidden_test=dataset,  # the same images: what matters is that the kind's scorer runs
        metric=metric,
        deadline=timezone.now() + timedelta(days=1),
    )
    submission = Submission.objects.create(
        assignment=assignment,
        student=world.alice,
        job=Job.objects.get(pk=job_id),
        hidden_version=dataset.head,
    )
    assert scoring.score_submission(submission.pk) == "scored", submission
    submission.refresh_from_db()
    return submission.details


def test_a_unet_trains_on_an_uploaded_coco_zip_of_polygons_and_rle_masks(
    world, celery_worker_process
):
    raw, _ = issue_token(world.alice)
    client, headers = Client(), {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    dataset = _upload(client, headers, world, "segmentation", _segmentation_zip())
    models = client.get("/api/v1/models?kind=segmentation", **headers).json()["models"]
    assert [m["name"] for m in models if m.get("default")] == ["unet"]

    body = _train(
        client, headers, dataset["id"], {"epochs": 2, "input_size": 32, "width": 8, "lr": 3e-3}
    )
    metrics = body["metrics"]
    for key in ("miou", "val_miou", "dice", "pixel_accuracy"):
        assert isinstance(metrics[key], int | float) and 0 <= metrics[key] <= 1, (key, metrics)
    assert metrics["miou"] == metrics["val_miou"] and metrics["test_miou"] is None
    assert metrics["pixel_accuracy"] > 0.5, metrics  # the background alone is most pixels
    assert "val_accuracy" not in metrics and "map50" not in metrics

    started, epochs, finished = _typed_events(body["id"], "segmentation")
    assert started.model == "unet" and [e.epoch for e in epochs] == [1, 2]
    assert {"val_miou", "train_dice", "train_ce"} <= set(epochs[-1].figures())
    val = finished.evaluation("val")
    assert isinstance(val, trainer_events.SegmentationEvaluation)
    assert [c.name for c in val.per_class if not c.background] == samples.SHAPES

    rows = _predictions(body["id"])
    assert len(rows) == dataset["splits"]["val"]["__images__"] == 8, dataset["splits"]
    first = rows[0]
    assert first["size"] == [32, 32] and set(first["truth"]) <= {"1", "2", "3"}
    truth = mask_utils.decode(
        {"size": first["size"], "counts": next(iter(first["truth"].values()))}
    )
    assert truth.shape == (32, 32) and truth.sum() > 0  # a real mask of the shape, not empty

    answer = _try(
        client, headers, body["id"], next(samples._shapes_records("shapes_segmentation", 1)).pixels
    )
    assert (answer["width"], answer["height"]) == (64, 64) and answer["size"] == [32, 32]
    assert all(c["name"] in samples.SHAPES and 0 < c["share"] <= 1 for c in answer["classes"])
    assert set(answer["masks"]) == {str(c["index"]) for c in answer["classes"]}

    details = _hidden_assignment_score(world, body["id"], dataset["id"], "miou")
    assert 0 <= details["miou"] <= 1, details


def test_a_pose_network_trains_on_an_uploaded_coco_zip_of_stick_figures(
    world, celery_worker_process
):
    raw, _ = issue_token(world.alice)
    client, headers = Client(), {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    dataset = _upload(client, headers, world, "keypoints", _keypoints_zip())

    body = _train(client, headers, dataset["id"], {"epochs": 2, "input_size": 32, "lr": 3e-3})
    metrics = body["metrics"]
    for key in ("pck", "val_pck", "oks_ap"):
        assert isinstance(metrics[key], int | float) and 0 <= metrics[key] <= 1, (key, metrics)
    assert metrics["pck"] == metrics["val_pck"] and metrics["test_pck"] is None

    started, epochs, finished = _typed_events(body["id"], "keypoints")
    assert started.model == "pose_unet" and "val_pck" in epochs[-1].figures()
    val = finished.evaluation("val")
    assert isinstance(val, trainer_events.KeypointsEvaluation)
    assert [k.name for k in val.per_keypoint] == samples.PERSON_KEYPOINTS

    rows = _predictions(body["id"])
    assert rows and len(rows[0]["predicted"]) == len(samples.PERSON_KEYPOINTS)
    assert all(v == 2 for _x, _y, v in rows[0]["truth"])  # every point drawn is visible

    figure = next(samples._keypoints_records())
    answer = _try(client, headers, body["id"], figure.pixels)
    assert answer["names"] == samples.PERSON_KEYPOINTS
    assert sorted(map(tuple, answer["skeleton"])) == sorted(
        (a - 1, b - 1) for a, b in samples.PERSON_SKELETON
    )  # 0-based edges
    assert len(answer["people"]) == 1  # pose_unet finds one figure per image
    points = answer["people"][0]["keypoints"]
    assert [p["name"] for p in points] == samples.PERSON_KEYPOINTS
    assert all(0 <= p["x"] <= 64 and 0 <= p["y"] <= 64 for p in points)

    details = _hidden_assignment_score(world, body["id"], dataset["id"], "oks_ap")
    assert 0 <= details["oks_ap"] <= 1, details
