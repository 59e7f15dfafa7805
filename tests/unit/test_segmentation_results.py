"""A segmentation run's results: mIoU, Dice and pixel accuracy, the per-class table, the images
by IoU in bounded pages, their mask layers as PNGs (colours, who may see them, bad requests,
malformed rows), and Try it's part of the form."""

import io
import json
import re

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.http import Http404
from django.test import RequestFactory
from PIL import Image

from tests.conftest import PERSONAS
from tests.fixtures.segmentation_job import encode, fake_segmentation_job
from webapp.datasets import actions as dataset_actions
from webapp.datasets import tasks as dataset_tasks
from webapp.jobs import segmentation_results
from webapp.jobs.models import Job, JobStatus

pytestmark = pytest.mark.django_db
PAGE = {"anon": 302, "alice": 200, "bob": 404, "carol": 404, "ta": 200, "teacher": 200}
PAGE["other_teacher"] = 404
SIZE = segmentation_results.PAGE_SIZE
CLEAR = (0, 0, 0, 0)


@pytest.fixture(autouse=True)
def _own_media(settings, tmp_path):
    """Job folders are numbered by row id: each test gets its own media root."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def shapes(world):
    """Alice's copy of the segmentation sample (64×64 images with 1-3 outlined shapes)."""
    dataset = dataset_actions.copy_sample(world.alice, world.course, "shapes_segmentation")
    dataset_tasks.copy_sample(dataset.pk, "shapes_segmentation", "en")
    dataset.refresh_from_db()
    assert dataset.kind == "segmentation" and dataset.head
    return dataset


def _rgba(hex_colour: str) -> tuple[int, int, int, int]:
    return (*(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)), 255)


def _ious(html: str) -> list[float]:
    return [float(v) for v in re.findall(r'data-iou="([0-9.]+)"', html)]


def _write_rows(job: Job, rows: list) -> None:
    name = segmentation_results.predictions_name(job.pk, "test")
    default_storage.delete(name)
    default_storage.save(name, io.BytesIO(json.dumps(rows).encode()))


def _images_page(world, job: Job, persona: str = "alice", query: str = "", htmx: bool = True):
    """GET /jobs/<id>/images/: the partial HTMX swaps in, or the whole page."""
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    return world.client(persona).get(f"/jobs/{job.pk}/images/?{query}", **headers)


# --- the evaluation: figures and the per-class table -------------------------------------------


def test_summary_holds_the_figures_and_the_per_class_table_background_first(world, shapes):
    job = fake_segmentation_job(shapes)
    shown = segmentation_results.summary(job, job.result)
    assert shown["split"] == "test"
    assert shown["evaluation"]["miou"] == 0.65 and shown["evaluation"]["dice"] == 0.76
    assert shown["evaluation"]["pixel_accuracy"] == 0.94 and shown["evaluation"]["segm_ap"] is None
    assert shown["val"] == {"miou": 0.62}
    names = [row["name"] for row in shown["per_class"]]
    assert names == ["background", "circle", "square", "triangle"]
    assert [row["background"] for row in shown["per_class"]] == [True, False, False, False]
    assert shown["per_class"][1]["colour"] == "#0072b2"  # class 0: the first palette colour
    assert [bar["name"] for bar in shown["class_bars"]] == ["circle", "square", "triangle"]
    assert shown["per_class_total"] == 3
    assert [entry["name"] for entry in shown["legend"]] == ["circle", "square", "triangle"]


def test_a_run_without_test_images_shows_validation_and_odd_values_are_no_numbers(world, shapes):
    job = fake_segmentation_job(shapes)
    result = {"val": {"miou": "0.5", "dice": True, "pixel_accuracy": 0.9, "per_class": "no"}}
    shown = segmentation_results.summary(job, result)
    assert shown["split"] == "val" and shown["val"] == {}
    assert shown["evaluation"]["miou"] is None and shown["evaluation"]["dice"] is None
    assert shown["per_class"] == [] and shown["class_bars"] == []
    assert segmentation_results.summary(job, {})["evaluation"] == {}


def test_many_classes_list_the_weakest_first_after_the_background(world, shapes):
    job = fake_segmentation_job(shapes)
    rows = [{"name": "background", "iou": 0.99, "dice": 0.99, "pixels": 9, "background": True}]
    rows += [
        {"name": f"c{i}", "iou": None if i == 7 else (i * 37 % 120) / 120, "dice": 0.5, "pixels": i}
        for i in range(120)
    ]
    shown = segmentation_results.summary(job, {"test": {"miou": 0.5, "per_class": rows}})
    table = shown["per_class"]
    assert table[0]["background"] and len(table) == 1 + segmentation_results.PER_CLASS_SHOWN
    ious = [row["iou"] for row in table[1:]]
    assert ious == sorted(ious) and ious[0] == 0.0
    assert "c7" not in [row["name"] for row in table]  # an unknown IoU is not the weakest
    assert shown["per_class_total"] == 120


# --- the images: ordered by IoU, paged ----------------------------------------------------------


def test_images_are_listed_worst_first_or_best_first_with_their_masks(world, shapes):
    job = fake_segmentation_job(shapes)
    worst = _images_page(world, job)
    assert worst.status_code == 200
    html = worst.content.decode()
    ious = _ious(html)
    assert len(ious) == SIZE and ious == sorted(ious) and ious[0] < 0.7
    assert 'aria-sort="ascending"' in html
    for layer in ("predicted", "truth", "diff"):
        assert html.count(f'.png?layer={layer}"') == SIZE
    item = re.search(r'<tr data-image="(\d+)"', html).group(1)
    assert f"/jobs/{job.pk}/masks/test/{item}.png?layer=diff" in html
    assert f'/datasets/{shapes.pk}/items/{item}/image"' in html  # the permission-checked view
    assert 'id="mask-opacity"' in html and 'name="mask-layer"' in html
    best = _ious(_images_page(world, job, "alice", "order=best").content.decode())
    assert best == sorted(best, reverse=True) and best[0] == 1.0
    whole = _images_page(world, job, "alice", "order=nonsense", htmx=False).content.decode()
    assert "<html" in whole and _ious(whole) == ious  # an unknown order is the default


def test_a_page_of_five_thousand_images_is_bounded(world, shapes):
    job = fake_segmentation_job(shapes, images=5000)
    pages = -(-5000 // SIZE)
    for query, number in (("page=99999", pages), ("page=abc", 1), ("page=-3", pages), ("", 1)):
        html = _images_page(world, job, "alice", query).content.decode()
        assert f"Page {number} of {pages}" in html, query
        assert 0 < len(re.findall(r'<tr data-image="', html)) <= SIZE
        assert len(html) < 100_000
    last = _images_page(world, job, "alice", f"page={pages}").content.decode()
    assert len(re.findall(r'<tr data-image="', last)) == 5000 - (pages - 1) * SIZE
    curve = segmentation_results.masks_page(job, "test", [], page=1, order="worst")["curve"]
    assert len(curve["iou"]) == segmentation_results.CURVE_POINTS and curve["share"][0] == 1.0
    assert curve["share"] == sorted(curve["share"], reverse=True)


def test_a_missing_or_malformed_predictions_file_leaves_the_figures(world, shapes):
    job = fake_segmentation_job(shapes)
    default_storage.delete(segmentation_results.predictions_name(job.pk, "test"))
    html = _images_page(world, job).content.decode()
    assert 'id="masks-missing"' in html
    _write_rows(job, {"not": "a list"})
    Job.objects.filter(pk=job.pk).update(attempts=2)  # another run: nothing cached
    job.refresh_from_db()
    assert 'id="masks-missing"' in _images_page(world, job).content.decode()


def test_the_images_page_is_only_for_succeeded_runs_the_viewer_may_see(world, shapes):
    job = fake_segmentation_job(shapes)
    for persona in PERSONAS:
        for query in ("", "page=2&order=best"):
            assert _images_page(world, job, persona, query).status_code == PAGE[persona], persona
    job.status = JobStatus.FAILED
    job.save(update_fields=["status"])
    assert _images_page(world, job).status_code == 404
    request = RequestFactory().get(f"/jobs/{job.pk}/images/")
    request.user = world.alice
    with pytest.raises(Http404):  # the module checks too, whoever routes to it
        segmentation_results.images_view(request, job)


# --- the mask layers ------------------------------------------------------------------------------


def _hand_made_row(item_id: int) -> dict:
    """A 4×6 mask: class 1 truly in columns 0-2, predicted in columns 1-3; class 2 predicted at
    the bottom right where the truth has background... and class 2 truly at the top right."""
    truth, predicted = np.zeros((4, 6), np.uint8), np.zeros((4, 6), np.uint8)
    truth[:, 0:3] = 1
    truth[0, 5] = 2
    predicted[:, 1:4] = 1
    predicted[3, 5] = 2
    return {
        "id": item_id,
        "width": 60,
        "height": 40,
        "size": [4, 6],
        "iou": 0.25,
        "dice": 0.4,
        "pixel_accuracy": 0.6,
        "truth": {str(c): encode(truth == c) for c in (1, 2)},
        "predicted": {str(c): encode(predicted == c) for c in (1, 2)},
        "classes_iou": {"1": 0.5, "2": 0.0},
    }


def _first_item(job: Job) -> int:
    with default_storage.open(segmentation_results.predictions_name(job.pk, "test")) as stored:
        return json.loads(stored.read())[0]["id"]


def _layer(client, job, item, layer, split="test"):
    return client.get(f"/jobs/{job.pk}/masks/{split}/{item}.png?layer={layer}")


def _pixels(response) -> np.ndarray:
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.mode == "RGBA"
    return np.array(image)  # (H, W, 4)


def test_mask_layers_are_pngs_in_class_colours_and_the_difference(world, shapes):
    job = fake_segmentation_job(shapes)
    item = _first_item(job)
    _write_rows(job, [_hand_made_row(item)])
    client = world.client("alice")
    blue, vermilion = _rgba("#0072b2"), _rgba("#d55e00")  # classes 0 and 1 (channels 1 and 2)
    red, yellow = _rgba(segmentation_results.WRONG), _rgba(segmentation_results.MISSED)

    predicted = _pixels(_layer(client, job, item, "predicted"))
    assert predicted.shape == (4, 6, 4)  # the mask's resolution; the browser stretches it
    assert tuple(predicted[0, 0]) == CLEAR and tuple(predicted[0, 1]) == blue
    assert tuple(predicted[2, 3]) == blue and tuple(predicted[3, 5]) == vermilion
    assert tuple(predicted[0, 5]) == CLEAR

    truth = _pixels(_layer(client, job, item, "truth"))
    assert tuple(truth[1, 0]) == blue and tuple(truth[1, 3]) == CLEAR
    assert tuple(truth[0, 5]) == vermilion and tuple(truth[3, 5]) == CLEAR

    diff = _pixels(_layer(client, job, item, "diff"))
    assert tuple(diff[0, 0]) == yellow  # class 1 called background: missed
    assert tuple(diff[0, 1]) == CLEAR  # both say class 1
    assert tuple(diff[0, 3]) == red  # background given class 1
    assert tuple(diff[3, 5]) == red and tuple(diff[0, 5]) == yellow
    assert tuple(diff[0, 4]) == CLEAR  # both background
    assert (diff[..., 3] > 0).sum() == 4 + 4 + 2  # column 0, column 3, the two corners


def test_who_sees_the_mask_layers(world, shapes):
    job = fake_segmentation_job(shapes)
    item = segmentation_results.masks_page(job, "test", [], page=1, order="worst")["rows"][0]["id"]
    for persona in PERSONAS:
        response = _layer(world.client(persona), job, item, "truth")
        assert response.status_code == PAGE[persona], persona
    shapes.visibility = "hidden_test"  # a hidden test set's labels: its staff only
    shapes.save(update_fields=["visibility"])
    assert _layer(world.client("alice"), job, item, "truth").status_code == 404
    assert _layer(world.client("teacher"), job, item, "truth").status_code == 200
    html = _images_page(world, job).content.decode()
    assert 'id="masks-hidden"' in html and ".png?layer=" not in html and '/image"' not in html


def test_unknown_splits_items_layers_and_runs_are_not_found(world, shapes):
    job = fake_segmentation_job(shapes)
    item = segmentation_results.masks_page(job, "test", [], page=1, order="worst")["rows"][0]["id"]
    client = world.client("alice")
    assert _layer(client, job, item, "predicted").status_code == 200
    for url in (
        f"/jobs/{job.pk}/masks/train/{item}.png?layer=truth",
        f"/jobs/{job.pk}/masks/val/{item}.png?layer=truth",  # the run has no val predictions
        f"/jobs/{job.pk}/masks/test/{item}.png",
        f"/jobs/{job.pk}/masks/test/{item}.png?layer=rgb",
        f"/jobs/{job.pk}/masks/test/999999999.png?layer=truth",
        f"/jobs/{job.pk + 1000}/masks/test/{item}.png?layer=truth",
        f"/jobs/{job.pk}/masks/test/{'9' * 30}.png?layer=truth",
    ):
        assert client.get(url).status_code == 404, url
    job.status = JobStatus.FAILED
    job.save(update_fields=["status"])
    assert _layer(client, job, item, "predicted").status_code == 404


MALFORMED = [
    {"size": [4]},
    {"size": [0, 6]},
    {"size": [100_000, 100_000]},
    {"size": "4x6"},
    {"truth": None},
    {"truth": {"1": 12}},
    {"truth": {"one": "52"}},
    {"truth": {"1": ""}},  # no runs: pycocotools would leave the pixels unset
    {"truth": {"1": "0000"}},  # runs that stop short of the mask's pixels
    {"truth": {"1": "zzzzzzzz"}},
    {"truth": {"1": "52é"}},
    {"truth": {"1": "5\x002"}},
    {"predicted": {"1": "o" * 50}},  # a number never ended: pycocotools would read past it
    {"predicted": {"1": "_o5"}},  # runs past the mask's pixels
]


def test_a_malformed_row_is_not_found_never_an_error(world, shapes):
    job = fake_segmentation_job(shapes)
    item = _first_item(job)
    client = world.client("alice")
    for attempt, change in enumerate(MALFORMED, start=2):
        _write_rows(job, [{**_hand_made_row(item), **change}, {"id": "x"}, "row", {"id": True}])
        Job.objects.filter(pk=job.pk).update(attempts=attempt)  # another run: nothing cached
        job.refresh_from_db()
        for layer in ("predicted", "truth", "diff"):
            response = _layer(client, job, item, layer)
            touched = layer == "diff" or layer in change or "size" in change
            assert response.status_code == (404 if touched else 200), (layer, change)
        html = _images_page(world, job).content.decode()
        assert len(re.findall(r'<tr data-image="', html)) == 1  # rows without an item: left out


def test_odd_figures_in_a_row_read_as_unknown(world, shapes):
    job = fake_segmentation_job(shapes)
    with default_storage.open(segmentation_results.predictions_name(job.pk, "test")) as stored:
        rows = json.loads(stored.read())[:3]
    rows[0].update(iou="high", dice=None, width="wide", classes_iou={"1": "x", "zz": 0.4})
    rows[1].update(iou=float("nan"), classes_iou=[1, 2])
    _write_rows(job, rows)
    page = segmentation_results.masks_page(job, "test", ["circle"], page=1, order="worst")
    assert [row["iou"] for row in page["rows"]][-2:] == [None, None]  # unknown IoU last
    odd = next(row for row in page["rows"] if row["id"] == rows[0]["id"])
    assert odd["classes"] == [] and odd["width"] == 1.0 and odd["dice"] is None


# --- the result partial and Try it ----------------------------------------------------------------


def test_the_result_shows_the_figures_the_table_the_charts_and_the_masks(world, shapes):
    job = fake_segmentation_job(shapes)
    response = world.client("alice").get(f"/jobs/{job.pk}/result/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-kind="segmentation"' in html
    assert re.search(r'id="result-miou">65[.,]0%<', html)
    assert re.search(r'id="result-pixel-accuracy">94[.,]0%<', html)
    assert 'id="result-segm-ap"' not in html  # a semantic model has no mask AP
    table = html[
        html.index('id="per-class"') : html.index("</table>", html.index('id="per-class"'))
    ]
    assert table.count("<tr") == 5 and 'class="seg-background"' in table
    bars = json.loads(re.search(r'id="class-bars-data"[^>]*>(.*?)</script>', html).group(1))
    assert [bar["name"] for bar in bars] == ["circle", "square", "triangle"]
    curve = json.loads(re.search(r'id="iou-curve-data"[^>]*>(.*?)</script>', html).group(1))
    assert len(curve["share"]) == segmentation_results.CURVE_POINTS
    assert len(re.findall(r'<tr data-image="', html)) == SIZE
    assert f'action="/jobs/{job.pk}/images/"' in html  # the order form swaps the panel
    assert "segmentation_results.js" in html
    form = html[html.index("data-try") - 40 :]
    assert 'data-kind="segmentation"' in form and "data-try-opacity" in form
    assert "try_segmentation.js" in form and 'type="file"' in form


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


def test_try_it_answers_with_the_masks_and_the_classes_found(world, shapes, monkeypatch, eager):
    """The web process → worker task → the trainer's answer (stood in for: no model here)."""
    from webapp.jobs import predict

    job = fake_segmentation_job(shapes)
    mask = np.zeros((8, 8), np.uint8)
    mask[2:6, 2:6] = 1
    canned = {
        "width": 40,
        "height": 30,
        "size": [8, 8],
        "classes": [{"index": 2, "name": "square", "share": 0.25}],
        "masks": {"2": encode(mask)},
    }
    seen = {}

    def trainer_answer(kind, folder, image):
        seen.update(kind=kind, size=image.size)
        return canned

    monkeypatch.setattr(predict, "answer", trainer_answer)
    image = io.BytesIO(_png())
    image.name = "photo.png"
    response = world.client("alice").post(f"/api/v1/jobs/{job.pk}/predict", {"image": image})
    assert response.status_code == 200, response.content
    answer = response.json()
    assert seen == {"kind": "segmentation", "size": (40, 30)}
    assert answer["masks"] == canned["masks"] and answer["width"] == 40
    assert answer["classes"] == canned["classes"] and answer["size"] == [8, 8]
    page = world.client("alice").get(f"/jobs/{job.pk}/try/").content.decode()
    assert 'data-kind="segmentation"' in page and "data-try-opacity" in page
