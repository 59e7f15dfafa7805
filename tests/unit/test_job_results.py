"""Results of a finished job: the result partial, confusion cells, downloads, compare, Try it."""

import io
import json
import re
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

from tests.conftest import PERSONAS, assert_api_error
from webapp.datasets import actions as dataset_actions
from webapp.datasets import queries
from webapp.datasets import tasks as dataset_tasks
from webapp.jobs import kinds, tasks
from webapp.jobs.models import Job, JobEvent, JobGroup

pytestmark = pytest.mark.django_db
SPEC = {"model": "logistic", "epochs": 1, "input_size": 8, "lr": 0.05}
PAGE = {"anon": 302, "alice": 200, "bob": 404, "carol": 404, "ta": 200, "teacher": 200}
PAGE["other_teacher"] = 404
API = {**PAGE, "anon": 401}


@pytest.fixture(autouse=True)
def _own_media(settings, tmp_path):
    """Job folders are numbered by row id: each test gets its own media root."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def eager():
    """Celery tasks run in this process (no worker needed)."""
    from webapp.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


def _digits(world, owner="alice"):
    dataset = dataset_actions.copy_sample(world.user(owner), world.course, "digits")
    dataset_tasks.copy_sample(dataset.pk, "digits", "en")
    dataset.refresh_from_db()
    return dataset


def _trained(world, dataset, spec=SPEC) -> Job:
    job = Job.objects.create(
        course=world.course,
        owner=dataset.owner,
        dataset=dataset,
        dataset_version=dataset.head,
        spec=spec,
    )
    tasks.train(job.pk)  # inline: the trainer writes the job's files under MEDIA_ROOT
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    return job


def _fake(world, dataset, *, status="succeeded", spec=None, group=None, label="", files=()):
    """A finished job without training: a 10-class result and the named files."""
    confusion = [[5 if t == p else 0 for p in range(10)] for t in range(10)]
    confusion[3][5] = 2
    result = {
        "test": {
            "loss": 0.3,
            "accuracy": 0.96,
            "top5": 1.0,
            "confusion": confusion,
            "per_class": [
                {"class": i, "precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 5}
                for i in range(10)
            ],
            "misclassified": [],
        },
        "val": None,
    }
    job = Job.objects.create(
        course=world.course,
        owner=dataset.owner,
        dataset=dataset,
        dataset_version=dataset.head,
        spec=spec or SPEC,
        status=status,
        group=group,
        label=label,
        result=result,
        # As the job task keeps them from the finished event (webapp/jobs/kinds.py).
        metrics=kinds.metrics_after("classification", {"kind": "finished", "data": result}, {}),
    )
    folder = Path(tasks.default_storage.path(f"jobs/{job.pk}"))
    folder.mkdir(parents=True, exist_ok=True)
    for name in files:
        (folder / name).write_bytes(b"{}")
    for epoch, acc in enumerate((0.5, 0.8), start=1):
        JobEvent.objects.create(
            job=job,
            number=epoch,
            attempt=1,
            seq=epoch,
            kind="epoch",
            data={"epoch": epoch, "val_acc": acc, "val_loss": 1 - acc, "train_acc": acc},
        )
    return job


def _client(world, persona) -> Client:
    return world.client(persona)


def _png(size=(16, 16), color=0) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


# --- the result partial and confusion cells -----------------------------------------------


def test_result_shows_metrics_confusion_per_class_model_and_downloads(world):
    dataset = _digits(world)
    job = _trained(world, dataset)
    html = _client(world, "alice").get(f"/jobs/{job.pk}/result/").content.decode()
    assert 'id="confusion"' in html and 'id="per-class"' in html and 'id="spec-table"' in html
    names = [c.name for c in queries.categories_at(dataset, job.dataset_version)]
    assert all(f">{name}<" in html for name in names)
    for name in ("model.safetensors", "model.torchscript.pt", "model.onnx", "model_card.json"):
        assert f"/api/v1/jobs/{job.pk}/artifacts/{name}" in html
    assert "logistic" in html and f"v{job.dataset_version}" in html
    assert 'data-try data-kind="classification"' in html  # the Try it panel of a succeeded job


def test_a_confusion_cell_lists_exactly_the_images_of_that_cell(world):
    dataset = _digits(world)
    job = _trained(world, dataset)
    folder = Path(tasks.default_storage.path(f"jobs/{job.pk}"))
    rows = json.loads((folder / "predictions_val.json").read_text())
    assert not job.result["test"]  # the digits sample has no test split: validation is shown
    confusion = job.result["val"]["confusion"]
    assert sum(map(sum, confusion)) == len(rows)
    mistakes = [
        (t, p) for t, row in enumerate(confusion) for p, n in enumerate(row) if n and t != p
    ]
    cells = [(3, 3), *(mistakes[:2])]
    client = _client(world, "alice")
    for true, predicted in cells:
        expected = {r["id"] for r in rows if r["true"] == true and r["predicted"] == predicted}
        response = client.get(
            f"/jobs/{job.pk}/confusion/{true}/{predicted}/", HTTP_HX_REQUEST="true"
        )
        shown = {int(i) for i in re.findall(r'data-item="(\d+)"', response.content.decode())}
        assert shown == expected and len(expected) == confusion[true][predicted]
    page = client.get(f"/jobs/{job.pk}/confusion/3/3/")
    assert b"<html" in page.content  # without htmx: a whole page
    assert client.get(f"/jobs/{job.pk}/confusion/10/0/").status_code == 404


def test_a_crowded_cell_lists_its_most_confident_images_and_counts_them_all(world):
    """A cell of more than CELL_LIMIT images lists the most confident ones and counts every one;
    rows whose classes are no ints are in no cell, and a confidence that is no figure ranks
    last (the page reads only the rows it lists into their shape)."""
    from webapp.jobs.classification_results import CELL_LIMIT

    job = _fake(world, _digits(world))
    rows = [{"id": i, "true": 3, "predicted": 5, "confidence": i / 1000} for i in range(400)]
    rows += [
        {"id": 900, "true": "3", "predicted": 5, "confidence": 1.0},  # text: no class
        {"id": 901, "true": True, "predicted": 5, "confidence": 1.0},  # a bool is no class
        {"id": 902, "true": 3, "predicted": 5, "confidence": "high"},  # no figure: ranks last
        {"id": 903, "true": 3, "predicted": 5, "confidence": 0.999},
        "not a row",
    ]
    folder = Path(tasks.default_storage.path(f"jobs/{job.pk}"))
    (folder / "predictions_test.json").write_text(json.dumps(rows))
    response = _client(world, "alice").get(f"/jobs/{job.pk}/confusion/3/5/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    shown = [int(i) for i in re.findall(r'data-item="(\d+)"', response.content.decode())]
    assert shown == [903, *range(399, 399 - (CELL_LIMIT - 1), -1)]
    assert response.context["count"] == 402  # the 400, the unrated one and 903


@pytest.mark.parametrize("persona", PERSONAS)
def test_who_sees_the_result_pages(world, persona):
    dataset = _digits(world)
    group = JobGroup.objects.create(
        course=world.course, owner=world.alice, title="modes", variable="transfer.mode"
    )
    first = _fake(world, dataset, group=group, label="a")
    second = _fake(world, dataset, group=group, label="b")
    client = _client(world, persona)
    for url in (
        f"/jobs/{first.pk}/result/",
        f"/jobs/{first.pk}/confusion/3/5/",
        f"/jobs/{first.pk}/try/",
        f"/compare/?jobs={first.pk},{second.pk}",
        f"/groups/{group.pk}/",
    ):
        assert client.get(url).status_code == PAGE[persona], url


@pytest.mark.parametrize("persona", PERSONAS)
def test_who_downloads_artifacts(world, persona):
    job = _fake(world, _digits(world), files=["model.onnx", "model_card.json"])
    client, headers = Client(), world.bearer(persona)
    response = client.get(f"/api/v1/jobs/{job.pk}/artifacts/model.onnx", **headers)
    assert response.status_code == API[persona]
    if API[persona] == 200:
        assert response["Content-Disposition"].startswith("attachment")
        assert f"job-{job.pk}-model.onnx" in response["Content-Disposition"]


@pytest.mark.parametrize(
    "name",
    [
        "checkpoint.pt",
        "predictions_test.json",
        "model.safetensors",  # allowed, but this job has none
        "..%2F..%2Fsettings.py",
        "%2E%2E",
        "model_card.json%00",
        "MODEL.ONNX",
    ],
)
def test_only_allowed_artifacts_that_exist_are_served(world, name):
    job = _fake(world, _digits(world), files=["model_card.json", "checkpoint.pt"])
    (Path(tasks.default_storage.path("jobs")) / "settings.py").write_text("SECRET")
    response = Client().get(f"/api/v1/jobs/{job.pk}/artifacts/{name}", **world.bearer("alice"))
    assert response.status_code == 404
    ok = Client().get(f"/api/v1/jobs/{job.pk}/artifacts/model_card.json", **world.bearer("alice"))
    assert ok.status_code == 200


# --- compare ------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["", "1", "a,b", "1,2,3,4,5,6,7"])
def test_compare_needs_two_to_six_job_numbers(world, query):
    response = _client(world, "alice").get(f"/compare/?jobs={query}")
    assert response.status_code == 400
    assert b'id="compare-error"' in response.content


def test_compare_is_not_found_when_one_job_is_not_visible_or_missing(world):
    dataset = _digits(world)
    mine = _fake(world, dataset)
    theirs = _fake(world, _digits(world, owner="bob"))
    client = _client(world, "alice")
    assert client.get(f"/compare/?jobs={mine.pk},{theirs.pk}").status_code == 404
    assert client.get(f"/compare/?jobs={mine.pk},99999").status_code == 404
    assert _client(world, "teacher").get(f"/compare/?jobs={mine.pk},{theirs.pk}").status_code == 200


def test_compare_lists_the_settings_that_differ_and_each_runs_curve(world):
    dataset = _digits(world)
    modes = ("scratch", "feature_extraction")
    first, second = (
        _fake(world, dataset, spec={**SPEC, "transfer": {"mode": mode, "source": "none"}})
        for mode in modes
    )
    client = _client(world, "alice")
    html = client.get(f"/compare/?jobs={first.pk},{second.pk}").content.decode()
    assert "<code>transfer.mode</code>" in html and "feature_extraction" in html
    assert "<code>transfer.source</code>" not in html and "<code>epochs</code>" not in html
    data = client.get(f"/compare/?jobs={first.pk},{second.pk}&format=json").json()
    assert [run["id"] for run in data["runs"]] == [first.pk, second.pk]
    assert [p["val_acc"] for p in data["runs"][0]["points"]] == [0.5, 0.8]
    assert data["runs"][0]["best_val_acc"] == 0.8 and data["runs"][0]["test_accuracy"] == 0.96
    assert [row["field"] for row in data["differ"]] == ["transfer.mode"]


def test_a_group_page_compares_its_runs_by_label(world):
    dataset = _digits(world)
    group = JobGroup.objects.create(
        course=world.course, owner=world.alice, title="Three modes", variable="transfer.mode"
    )
    for mode in ("scratch", "fine_tuning"):
        _fake(world, dataset, group=group, label=mode, spec={**SPEC, "transfer": {"mode": mode}})
    html = _client(world, "alice").get(f"/groups/{group.pk}/").content.decode()
    assert "Three modes" in html and ">From scratch</a>" in html and ">Fine-tuning</a>" in html


# --- Try it -------------------------------------------------------------------------------


def test_predict_answers_the_top_five_classes_of_an_uploaded_png(world, eager):
    dataset = _digits(world)
    job = _trained(world, dataset)
    upload = SimpleUploadedFile("seven.png", _png((32, 32), 200), content_type="image/png")
    response = Client().post(
        f"/api/v1/jobs/{job.pk}/predict", {"image": upload}, **world.bearer("alice")
    )
    assert response.status_code == 200, response.content
    body = response.json()
    names = {c.name for c in queries.categories_at(dataset, job.dataset_version)}
    assert len(body["top"]) == 5 and {row["class"] for row in body["top"]} <= names
    probabilities = [row["probability"] for row in body["top"]]
    assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1.0001
    assert body["seconds"] >= 0


def test_predict_refuses_a_file_that_is_not_an_image_naming_it(world, eager):
    job = _fake(world, _digits(world), files=["model.safetensors"])
    upload = SimpleUploadedFile("notes.txt", b"not an image at all", content_type="image/png")
    response = Client().post(
        f"/api/v1/jobs/{job.pk}/predict", {"image": upload}, **world.bearer("alice")
    )
    body = assert_api_error(response, 400)
    assert "notes.txt" in body["detail"] and "image" in body["errors"]


def test_predict_refuses_an_image_with_too_many_pixels(world, eager, monkeypatch):
    from webapp.jobs import predict

    monkeypatch.setattr(predict, "MAX_PIXELS", 100)
    job = _fake(world, _digits(world), files=["model.safetensors"])
    upload = SimpleUploadedFile("big.png", _png((20, 20)), content_type="image/png")
    response = Client().post(
        f"/api/v1/jobs/{job.pk}/predict", {"image": upload}, **world.bearer("alice")
    )
    assert "big.png" in assert_api_error(response, 400)["detail"]


@pytest.mark.parametrize("persona", PERSONAS)
def test_who_may_try_a_job(world, persona, eager):
    job = _fake(world, _digits(world), status="running")
    upload = SimpleUploadedFile("a.png", _png(), content_type="image/png")
    response = Client().post(
        f"/api/v1/jobs/{job.pk}/predict", {"image": upload}, **world.bearer(persona)
    )
    # Those who may see the job learn it has no model yet; the others that it does not exist.
    assert response.status_code == {200: 409}.get(API[persona], API[persona])


def test_percent_and_number_round_rather_than_cut_digits_off():
    from webapp.jobs.templatetags.job_results import number, percent

    assert percent(2 / 3) == "66.7%"  # number_format alone gave 66.6%
    assert percent(0.3855) == "38.6%"
    assert number(2 / 3, 3) == "0.667"
    assert percent(None) == "—"
