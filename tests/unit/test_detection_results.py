"""A detection run's results: figures, per-class AP, PR curves, boxes with the score slider,
errors by severity in bounded pages, downloads (page and API), Try it; who may see them."""

import io
import json
import re

import pytest
from django.core.files.storage import default_storage
from django.test import Client
from PIL import Image

from tests.conftest import PERSONAS
from tests.fixtures.detection_job import fake_detection_job
from webapp.datasets import actions as dataset_actions
from webapp.datasets import tasks as dataset_tasks
from webapp.jobs import detection_results, predict
from webapp.jobs.models import Job

pytestmark = pytest.mark.django_db
PAGE = {"anon": 302, "alice": 200, "bob": 404, "carol": 404, "ta": 200, "teacher": 200}
PAGE["other_teacher"] = 404
API = {**PAGE, "anon": 401}
SIZE = detection_results.PAGE_SIZE


@pytest.fixture(autouse=True)
def _own_media(settings, tmp_path):
    """Job folders are numbered by row id: each test gets its own media root."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def shapes(world):
    """Alice's copy of the detection sample (64×64 images with 1-3 boxed shapes)."""
    dataset = dataset_actions.copy_sample(world.alice, world.course, "shapes_detection")
    dataset_tasks.copy_sample(dataset.pk, "shapes_detection", "en")
    dataset.refresh_from_db()
    assert dataset.kind == "detection" and dataset.head
    return dataset


def _severities(html: str) -> list[float]:
    return [float(v) for v in re.findall(r'data-severity="([0-9.]+)"', html)]


def _result(world, job, persona="alice", query="") -> str:
    response = world.client(persona).get(f"/jobs/{job.pk}/result/{query}")
    assert response.status_code == 200
    return response.content.decode()


def test_detection_result_shows_map_per_class_curves_and_no_confusion_matrix(world, shapes):
    job = fake_detection_job(shapes)
    html = _result(world, job)
    assert 'data-kind="detection"' in html
    assert re.search(r'id="result-map50">80[.,]0%<', html)
    assert re.search(r'id="result-map">50[.,]0%<', html)
    assert 'id="confusion"' not in html and 'id="mistakes"' not in html  # classification's
    table = html[
        html.index('id="per-class"') : html.index("</table>", html.index('id="per-class"'))
    ]
    for name in ("circle", "square", "triangle"):
        assert f"{name}</td>" in table
    assert len(re.findall(r"<tr><td>", table)) == 3
    curves = json.loads(re.search(r'id="pr-curves-data"[^>]*>(.*?)</script>', html).group(1))
    assert set(curves) == {"circle", "square", "triangle"}
    assert len(curves["circle"]["recall"]) == 101
    assert 'data-chart="pr"' in html and 'data-chart="bars"' in html
    assert "detection_results.js" in html


def test_boxes_are_drawn_over_the_images_with_the_slider_and_a_legend(world, shapes):
    job = fake_detection_job(shapes)
    html = _result(world, job)
    # The slider: a labelled, keyboard-operable range input starting at the judged score.
    slider = re.search(r'<input type="range" id="score-threshold"[^>]*>', html).group(0)
    assert 'min="0"' in slider and 'max="1"' in slider and 'value="0.30"' in slider
    assert '<label for="score-threshold">' in html
    rows = re.findall(r'<tr data-image="(\d+)"', html)
    assert len(rows) == SIZE
    # Every image: its true boxes dashed (class .det-truth) and its predictions with scores.
    assert html.count('class="det-truth"') >= SIZE
    scores = [float(s) for s in re.findall(r'class="det-box[^"]*" data-score="([0-9.]+)"', html)]
    below = len(re.findall(r'class="det-box below"', html))
    assert below == sum(1 for s in scores if s < 0.3) and below > 0  # the weak duplicates
    shown = len(scores) - below
    assert f"{shown} of {len(scores)} predicted boxes on this page shown" in html
    assert f'/datasets/{shapes.pk}/items/{rows[0]}/image"' in html  # the permission-checked view
    assert "true box (dashed)" in html and "predicted box (solid)" in html
    assert re.search(r'class="det-swatch" style="--swatch: #0072b2"', html)


def test_errors_are_ordered_by_severity_and_filtered_by_type(world, shapes):
    job = fake_detection_job(shapes)
    client = world.client("alice")
    severe = _severities(_result(world, job))
    assert severe == sorted(severe, reverse=True) and len(severe) == SIZE
    html = client.get(f"/jobs/{job.pk}/detections/?order=mild", HTTP_HX_REQUEST="true")
    mild = _severities(html.content.decode())
    assert mild == sorted(mild) and mild[0] < severe[0]
    html = client.get(f"/jobs/{job.pk}/detections/?error=missed").content.decode()
    assert "<html" in html  # without htmx: a whole page
    rows = html.split('<tr data-image="')[1:]
    assert rows and all("err-missed" in row for row in rows)
    assert 'aria-sort="descending"' in html


def test_a_page_of_five_thousand_images_is_bounded(world, shapes):
    job = fake_detection_job(shapes, images=5000)
    client = world.client("alice")
    first = _result(world, job)
    pages = -(-5000 // SIZE)
    assert len(re.findall(r'<tr data-image="', first)) == SIZE
    assert f"Page 1 of {pages}" in first
    assert len(first) < 400_000  # twelve images' boxes, not five thousand
    for query, number in (("page=99999", pages), ("page=abc", 1), ("page=-3", pages), ("", 1)):
        html = client.get(f"/jobs/{job.pk}/detections/?{query}", HTTP_HX_REQUEST="true")
        assert html.status_code == 200
        text = html.content.decode()
        assert f"Page {number} of {pages}" in text, query
        assert 0 < len(re.findall(r'<tr data-image="', text)) <= SIZE
    last = client.get(f"/jobs/{job.pk}/detections/?page={pages}").content.decode()
    assert len(re.findall(r'<tr data-image="', last)) == 5000 - (pages - 1) * SIZE
    assert '<a class="btn small" rel="prev" href="/jobs/' in last  # links to the page view


def test_a_missing_predictions_file_leaves_the_figures(world, shapes):
    job = fake_detection_job(shapes)
    default_storage.delete(detection_results.predictions_name(job.pk, "test"))
    html = _result(world, job)
    assert 'id="detections-missing"' in html and 'id="result-map50"' in html


def test_malformed_rows_of_the_predictions_file_are_drawn_as_far_as_they_go(world, shapes):
    from django.core.files.base import ContentFile

    job = fake_detection_job(shapes)
    name = detection_results.predictions_name(job.pk, "test")
    rows = [
        {"id": 1, "truth": [1, 2], "boxes": 5, "errors": "x"},  # keypoints' or junk shapes
        {"id": 2, "truth": {"boxes": "no", "labels": None}, "scores": {}},
        "not a row",
    ]
    default_storage.delete(name)
    default_storage.save(name, ContentFile(json.dumps(rows).encode()))
    response = world.client("alice").get(f"/jobs/{job.pk}/detections/")
    assert response.status_code == 200
    assert 'id="result-map50"' in _result(world, job)


def test_downloads_list_the_model_card_missing_exports_and_the_predictions(world, shapes):
    job = fake_detection_job(shapes)
    html = _result(world, job)
    for name in ("model.safetensors", "model.torchscript.pt", "model_card.json"):
        assert f"/api/v1/jobs/{job.pk}/artifacts/{name}" in html
    assert f"/api/v1/jobs/{job.pk}/artifacts/predictions_test.json" in html
    missing = html[html.index('id="exports-missing"') :]
    assert "ONNX" in missing and "operator ONNX lacks" in missing
    assert "xywh, original image pixels" in html  # the card's box format
    assert 'data-kind="detection"' in html[html.index("data-try") - 40 :]  # Try it draws boxes


def test_who_sees_a_detection_runs_pages(world, shapes):
    job = fake_detection_job(shapes)  # one sample copy for every persona (each takes seconds)
    for persona in PERSONAS:
        client = world.client(persona)
        for url in (
            f"/jobs/{job.pk}/result/",
            f"/jobs/{job.pk}/detections/",
            f"/jobs/{job.pk}/detections/?page=2&order=mild",
            f"/jobs/{job.pk}/try/",
        ):
            assert client.get(url).status_code == PAGE[persona], (persona, url)


def test_who_downloads_and_lists_the_predictions_through_the_api(world, shapes):
    job = fake_detection_job(shapes)
    for persona in PERSONAS:
        _api_downloads(world, job, persona)


def _api_downloads(world, job, persona):
    client, headers = Client(), world.bearer(persona)
    response = client.get(f"/api/v1/jobs/{job.pk}/artifacts/predictions_test.json", **headers)
    assert response.status_code == API[persona]
    listing = client.get(f"/api/v1/jobs/{job.pk}/artifacts", **headers)
    assert listing.status_code == API[persona]
    if API[persona] == 200:
        assert f"job-{job.pk}-predictions_test.json" in response["Content-Disposition"]
        rows = json.loads(b"".join(response.streaming_content))
        assert {"id", "boxes", "scores", "labels", "truth", "errors", "severity"} <= set(rows[0])
        names = {a["name"] for a in listing.json()["artifacts"]}
        assert names == {
            "model.safetensors",
            "model.torchscript.pt",
            "model_card.json",
            "predictions_test.json",
        }
    missing = client.get(f"/api/v1/jobs/{job.pk}/artifacts/predictions_val.json", **headers)
    assert missing.status_code == (404 if API[persona] == 200 else API[persona])


def test_the_detections_page_is_only_for_succeeded_detection_runs(world, shapes):
    job = fake_detection_job(shapes)
    job.status = "failed"
    job.save(update_fields=["status"])
    assert world.client("alice").get(f"/jobs/{job.pk}/detections/").status_code == 404


def _png(size=(40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 200, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def eager():
    """Celery tasks run in this process (no worker needed)."""
    from webapp.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


def test_try_it_answers_a_detector_with_boxes_classes_and_scores(world, shapes, monkeypatch, eager):
    """The web process → worker task → trainer's detector (stood in for: no training here)."""
    job = fake_detection_job(shapes)
    seen = {}

    def detector(kind, folder, image):
        seen["kind"], seen["folder"], seen["size"] = kind, folder, image.size
        return {  # trainer.loops.detection.predict's answer
            "boxes": [
                {"box": [1, 2, 10, 12], "score": 0.4, "label": 2, "class": "triangle"},
                {"box": [5, 5, 3, 3], "score": 0.9, "label": 0, "class": "circle"},
            ],
            "width": image.width,
            "height": image.height,
        }

    monkeypatch.setattr(predict, "answer", detector)
    image = io.BytesIO(_png())
    image.name = "photo.png"
    response = world.client("alice").post(f"/api/v1/jobs/{job.pk}/predict", {"image": image})
    assert response.status_code == 200, response.content
    answer = response.json()
    assert "top" not in answer and answer["width"] == 40 and answer["height"] == 30
    assert [b["class"] for b in answer["boxes"]] == ["circle", "triangle"]  # score-descending
    assert answer["boxes"][1] == {
        "box": [1, 2, 10, 12],
        "score": 0.4,
        "label": 2,
        "class": "triangle",
    }
    assert seen["size"] == (40, 30) and seen["folder"] == predict.model_dir(job.pk)
    assert seen["kind"] == "detection"
    page = world.client("alice").get(f"/jobs/{job.pk}/try/").content.decode()
    assert 'data-kind="detection"' in page and "data-try-threshold" in page


def test_the_split_toggle_shows_the_validation_figures_and_images(world, shapes):
    job = fake_detection_job(shapes)
    with default_storage.open(detection_results.predictions_name(job.pk, "test")) as stored:
        val_rows = json.loads(stored.read())[:3]
    name = detection_results.predictions_name(job.pk, "val")
    default_storage.save(name, io.BytesIO(json.dumps(val_rows).encode()))
    first = _result(world, job)
    toggle = re.search(r'<nav class="row split-toggle".*?</nav>', first, re.S).group(0)
    assert 'aria-label="Evaluated images"' in toggle
    assert 'aria-current="true" data-split="test"' in toggle and 'hx-get="/jobs/' in toggle
    assert f'href="/jobs/{job.pk}/result/?split=val"' in toggle
    assert "Test results" in first and re.search(r'id="result-map50">80[.,]0%<', first)
    assert len(re.findall(r'<tr data-image="', first)) == SIZE
    val = _result(world, job, query="?split=val")
    assert "Validation results" in val and re.search(r'id="result-map50">78[.,]0%<', val)
    assert 'aria-current="true" data-split="val"' in val
    assert "has no test images" not in val  # it has: the validation split was picked
    assert re.search(r"Test mAP@0.5</dt><dd>80[.,]0%<", val)  # the other split alongside
    assert "Boxes on the validation images" in val
    shown = [int(i) for i in re.findall(r'<tr data-image="(\d+)"', val)]
    assert sorted(shown) == sorted(row["id"] for row in val_rows)
    assert 'name="split" value="val"' in val and "?split=val&amp;order=mild" in val
    page = world.client("alice").get(f"/jobs/{job.pk}/detections/?split=val&order=mild")
    assert len(re.findall(r'<tr data-image="', page.content.decode())) == 3
    assert 'id="split-toggle"' in page.content.decode()  # the whole page has the toggle too
    odd = _result(world, job, query="?split=nonsense")
    assert "Test results" in odd and 'aria-current="true" data-split="test"' in odd
    default_storage.delete(name)
    Job.objects.filter(pk=job.pk).update(attempts=2)  # another run: nothing cached
    job.refresh_from_db()
    missing = _result(world, job, query="?split=val")
    assert 'id="detections-missing"' in missing and 'id="result-map50"' in missing


def test_a_run_with_one_split_has_no_toggle(world, shapes):
    job = fake_detection_job(shapes)
    result = {**job.result, "val": None}
    Job.objects.filter(pk=job.pk).update(result=result, attempts=2)
    job.refresh_from_db()
    html = _result(world, job, query="?split=val")
    assert 'id="split-toggle"' not in html and "Test results" in html
