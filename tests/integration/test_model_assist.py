"""Model-assisted labelling on real tiny runs: a round started through the API is run by the
worker's task (called here, in this process) and writes the run's answers into the draft as
proposals with scores; the model loads from safetensors, never from a pickle."""

import pickle

import pytest
import torch

from webapp.celery import app as celery_app
from webapp.datasets import drafts
from webapp.datasets import tasks as dataset_tasks
from webapp.datasets.models import Dataset
from webapp.jobs import tasks
from webapp.jobs.models import Job, JobStatus
from webapp.jobs.predict import model_dir
from webapp.studio import tasks as studio_tasks
from webapp.studio.models import AssistRound

pytestmark = [pytest.mark.integration, pytest.mark.django_db]
URL = "/api/v1/datasets/{}/"
RUNS = {
    "digits": {"model": "logistic", "epochs": 1, "input_size": 8, "lr": 0.05},
    "shapes_detection": {"model": "centernet_tiny", "epochs": 2, "input_size": 64, "lr": 2e-3},
}


@pytest.fixture(autouse=True)
def _own_media(settings, tmp_path):
    """Stored images and runs' files go to this test's folder: a run's folder is named by its
    id, which another test's database gives out again."""
    settings.MEDIA_ROOT = tmp_path / "media"


def trained(world, sample: str, kind: str) -> tuple[Dataset, Job]:
    """alice's copy of a sample and a run trained on it here, synchronously."""
    dataset = Dataset.objects.create(
        course=world.course, owner=world.alice, name=sample, kind=kind, source=f"sample:{sample}"
    )
    dataset_tasks.copy_sample(dataset.pk, sample, "en")
    dataset.refresh_from_db()
    job = Job.objects.create(
        course=world.course,
        owner=world.alice,
        dataset=dataset,
        dataset_version=dataset.head,
        spec={"kind": kind, **RUNS[sample]},
    )
    tasks.train(job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    return dataset, job


@pytest.fixture
def worker_here(monkeypatch, django_capture_on_commit_callbacks):
    """Run a round's task in this process when the request commits; no pickle may be read."""
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)

    def refuse(*args, **kwargs):
        raise AssertionError("a model was unpickled")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)

    def run(client, dataset, body):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                URL.format(dataset.pk) + "assist", body, content_type="application/json"
            )
        assert response.status_code == 202, response.content
        return client.get(URL.format(dataset.pk) + f"assist/{response.json()['id']}").json()

    return run


def test_a_classifier_proposes_labels_least_confident_first(world, worker_here):
    dataset, job = trained(world, "digits", "classification")
    client = world.client("alice")
    done = worker_here(client, dataset, {"job": job.pk, "limit": 20})
    assert (done["status"], done["total"], done["done"], done["proposed"]) == ("done", 20, 20, 20)

    chosen = AssistRound.objects.get(pk=done["id"]).items
    page = drafts.queue(dataset, world.alice, "least_confident", 0, 30)["items"]
    first = page[:20]
    assert {row["uid"] for row in first} == set(chosen)
    scores = [row["proposal"]["score"] for row in first]
    assert scores == sorted(scores) and all(0 < s <= 1 for s in scores)
    assert all(row["proposal"] is None for row in page[20:])  # the rest have no proposal

    view = drafts.item_view(dataset, world.alice, chosen[0])["item"]
    proposal = view["proposal"]
    assert proposal["job"] == job.pk and 0 <= proposal["category"] <= 9
    assert max(proposal["scores"].values()) == proposal["score"]
    names = {c["index"]: c["name"] for c in drafts.categories(dataset)}
    right = 0
    for uid in chosen:
        item = drafts.item_view(dataset, world.alice, uid)["item"]
        right += names[item["proposal"]["category"]] == names[item["category"]]
    assert right >= 6, right  # a one-epoch logistic regression: far better than chance (2 of 20)

    threshold = sorted(scores)[10]
    above = sum(s >= threshold for s in scores)
    accepted = client.post(
        URL.format(dataset.pk) + "draft/accept",
        {"threshold": threshold},
        content_type="application/json",
    )
    assert accepted.json() == {"accepted": above, "proposals": 20 - above}


def test_a_detector_proposes_boxes_with_scores_and_a_lost_model_fails_the_round(world, worker_here):
    dataset, job = trained(world, "shapes_detection", "detection")
    client = world.client("alice")
    done = worker_here(client, dataset, {"job": job.pk, "limit": 6})
    assert (done["status"], done["done"]) == ("done", 6), done
    assert done["proposed"] > 0  # two epochs already find shapes

    found = 0
    for uid in AssistRound.objects.get(pk=done["id"]).items:
        view = drafts.item_view(dataset, world.alice, uid)
        proposed = [a for a in view["annotations"] if a["proposal"]]
        found += len(proposed)
        for annotation in proposed:
            assert annotation["proposal"]["job"] == job.pk
            assert annotation["proposal"]["score"] >= 0.3
            assert annotation["category"] in (0, 1, 2) and annotation["revision"] == 0
            x, y, w, h = annotation["bbox"]
            assert min(x, y) >= 0 and w > 0 and h > 0 and x + w <= 64 and y + h <= 64
    assert found == done["proposed"]

    # The run's files gone: the next round fails and says why.
    (model_dir(job.pk) / "model.safetensors").rename(model_dir(job.pk) / "moved.safetensors")
    uid = drafts.queue(dataset, world.alice, "all", 0, 1)["items"][0]["uid"]
    round_ = AssistRound.objects.create(
        dataset=dataset, user=world.alice, job=job, items=[uid], total=1
    )
    studio_tasks.assist(round_.pk)
    round_.refresh_from_db()
    assert round_.status == "failed" and "model files are gone" in round_.error
    assert round_.finished_at is not None
