"""Detection end to end through the seam: a copied sample, a spec without a model, a real
worker, mAP in the job's metrics, typed events, and the per-image predictions as an artifact."""

import io
import json
import time

import pytest
from django.core.files.storage import default_storage
from django.test import Client

from trainer import events as trainer_events
from webapp.accounts.actions import issue_token
from webapp.datasets import tasks as dataset_tasks
from webapp.datasets.models import Dataset
from webapp.jobs.models import JobEvent

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _wait(client, headers, job_id, seconds=300):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        body = client.get(f"/api/v1/jobs/{job_id}", **headers).json()
        if body["status"] in ("succeeded", "failed", "cancelled"):
            return body
        time.sleep(0.5)
    raise AssertionError(f"job still {body['status']}")


def test_a_detector_trains_from_the_sample_with_the_kinds_default_model(
    world, celery_worker_process
):
    dataset = Dataset.objects.create(
        course=world.course,
        owner=world.alice,
        name="shapes",
        kind="detection",
        source="sample:shapes_detection",
    )
    dataset_tasks.copy_sample(dataset.pk, "shapes_detection", "en")
    raw, _ = issue_token(world.alice)
    client, headers = Client(), {"HTTP_AUTHORIZATION": f"Bearer {raw}"}

    listed = client.get("/api/v1/models?kind=detection", **headers)
    assert listed.status_code == 200, listed.content
    body = listed.json()
    rows = body["models"]
    defaults = [row["name"] for row in rows if row.get("default")]
    assert defaults == ["centernet_tiny"], rows
    assert {row["kind"] for row in rows} == {"detection"}

    # No model: the dataset's kind decides the kind, the catalog the model; `task` is not sent.
    response = client.post(
        "/api/v1/jobs",
        {"dataset": dataset.pk, "spec": {"epochs": 2, "input_size": 64, "lr": 2e-3}},
        content_type="application/json",
        **headers,
    )
    assert response.status_code == 201, response.content
    job_id = response.json()["id"]
    body = _wait(client, headers, job_id)
    assert body["status"] == "succeeded", body
    metrics = body["metrics"]
    # The lecture's default split is 8:2 training:validation with no test split, so the
    # headline mAP is the validation one and the test figures are empty, not zero.
    for key in ("val_map50", "val_map", "map50", "map"):
        value = metrics.get(key)
        assert isinstance(value, int | float) and 0 <= value <= 1, (key, metrics)
    assert metrics.get("test_map50") is None and metrics.get("test_map") is None
    assert (metrics["map50"], metrics["map"]) == (metrics["val_map50"], metrics["val_map"])
    assert metrics["map50"] > 0.05, metrics  # two epochs already find some shapes
    assert "val_accuracy" not in metrics and "test_accuracy" not in metrics

    stored = {kind: [] for kind in ("started", "epoch", "finished")}
    for kind, data in JobEvent.objects.filter(job_id=job_id).values_list("kind", "data"):
        if kind in stored:
            stored[kind].append(data)
    started = trainer_events.StartedEvent.model_validate(stored["started"][0])
    assert started.kind == "detection" and started.model == "centernet_tiny"
    epoch = trainer_events.EpochEvent.model_validate(stored["epoch"][-1])
    assert "val_map50" in epoch.figures() and "train_heatmap" in epoch.figures()
    finished = trainer_events.FinishedEvent.model_validate(stored["finished"][0])
    assert finished.evaluation("test") is None
    val = finished.evaluation("val")
    assert isinstance(val, trainer_events.DetectionEvaluation)
    assert val.images == 60 and val.objects >= val.images  # every sample image has a shape
    assert {row.name for row in val.per_class} == {"circle", "square", "triangle"}
    assert val.map50 == metrics["val_map50"]

    # The per-image predictions: one row per validation image, boxes in original pixels.
    download = client.get(f"/api/v1/jobs/{job_id}/artifacts/predictions_val.json", **headers)
    assert download.status_code == 200, download.content
    rows = json.loads(
        b"".join(download.streaming_content) if download.streaming else download.content
    )
    assert len(rows) == 60
    row = rows[0]
    assert set(row) >= {"id", "boxes", "scores", "labels", "truth", "errors", "severity"}
    assert all(len(box) == 4 and 0 <= box[0] <= 64 and box[2] > 0 for box in row["boxes"])
    bob_raw, _ = issue_token(world.bob)
    refused = client.get(
        f"/api/v1/jobs/{job_id}/artifacts/predictions_val.json",
        HTTP_AUTHORIZATION=f"Bearer {bob_raw}",
    )
    assert refused.status_code in (403, 404)

    # Try it: the trained detector on a photo of the sample, run by the worker.
    item = dataset.items.filter(valid_to__isnull=True).select_related("image").first()
    photo = io.BytesIO(default_storage.open(item.image.file).read())
    photo.name = "shapes.png"
    tried = client.post(f"/api/v1/jobs/{job_id}/predict", {"image": photo}, **headers)
    assert tried.status_code == 200, tried.content
    answer = tried.json()
    assert (answer["width"], answer["height"]) == (64, 64)
    for box in answer["boxes"]:
        assert box["class"] in {"circle", "square", "triangle"} and 0 <= box["score"] <= 1
        assert len(box["box"]) == 4
