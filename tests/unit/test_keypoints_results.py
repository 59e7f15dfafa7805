"""A keypoints run's results: PCK, OKS AP, the per-keypoint table, the run's skeleton, skeletons
over the evaluated images worst first in bounded pages, a malformed or missing predictions file,
Try it's part of the form; who may see them."""

import io
import json
import re

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.files.storage import default_storage
from django.http import Http404
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.urls import Resolver404, resolve

from tests.conftest import PERSONAS
from tests.fixtures.keypoints_job import NAMES, fake_keypoints_job
from webapp.datasets import actions as dataset_actions
from webapp.datasets import queries, samples
from webapp.datasets import tasks as dataset_tasks
from webapp.jobs import keypoints_results, results
from webapp.jobs.templatetags.job_results import percent

pytestmark = pytest.mark.django_db
PAGE = {"anon": 302, "alice": 200, "bob": 404, "carol": 404, "ta": 200, "teacher": 200}
PAGE["other_teacher"] = 404
SIZE = keypoints_results.PAGE_SIZE


@pytest.fixture(autouse=True)
def _own_media(settings, tmp_path):
    """Job folders are numbered by row id: each test gets its own media root."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def figures(world, monkeypatch):
    """Alice's copy of the stick figures sample (64×64 images, one labelled figure each); its
    first 60 figures, which are plenty here and copy in a second."""
    monkeypatch.setattr(samples, "KEYPOINTS_COUNT", 60)
    dataset = dataset_actions.copy_sample(world.alice, world.course, "keypoints")
    dataset_tasks.copy_sample(dataset.pk, "keypoints", "en")
    dataset.refresh_from_db()
    assert dataset.kind == "keypoints" and dataset.head
    return dataset


def _wired(path: str) -> bool:
    """Whether the lead's URL dispatch reaches the images view yet (urls.py)."""
    try:
        resolve(path)
    except Resolver404:
        return False
    return True


def _user(world, persona):
    return world.user(persona) or AnonymousUser()


def _images(world, job, persona="alice", query="", htmx=False):
    """GET /jobs/<id>/images/?query: through the URL once routed, else the view itself."""
    path = f"/jobs/{job.pk}/images/"
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    if _wired(path):
        return world.client(persona).get(f"{path}?{query}", **headers)
    request = RequestFactory().get(f"{path}?{query}", **headers)
    request.user = _user(world, persona)
    try:
        return keypoints_results.images_view(request, job)
    except Http404:
        return type("NotFound", (), {"status_code": 404})()


def _result(world, job, persona="alice", query="") -> str:
    """The result partial's keypoints part (jobs/results/keypoints.html) as the lead's frame
    fills it: through /jobs/<id>/result/ once dispatched, else rendered with the same keys."""
    kind_results = getattr(results, "kind_results", None)
    if kind_results is not None and kind_results("keypoints") is keypoints_results:
        response = world.client(persona).get(f"/jobs/{job.pk}/result/?{query}")
        assert response.status_code == 200
        return response.content.decode()
    request = RequestFactory().get(f"/jobs/{job.pk}/result/?{query}")
    request.user = _user(world, persona)
    values = {
        **keypoints_results.run_summary(job),
        **keypoints_results.context(job, request.user, request),
        "job": job,
        "kind": "keypoints",
        "show_images": True,
        "started": {},
        "spec_rows": [],
        "downloads": [],
        "can_try": True,
        "predictions": [],
        "exports_missing": [],
        "card_facts": None,
    }
    return render_to_string("jobs/results/keypoints.html", values, request=request)


def _oks(html: str) -> list[float]:
    return [float(v) for v in re.findall(r'data-oks="([0-9.]+)"', html)]


def _rows(html: str) -> int:
    return len(re.findall(r'<li class="kp-card" data-image="', html))


def test_summary_has_the_figures_the_table_and_the_cards_skeleton(world, figures):
    job = fake_keypoints_job(figures)
    shown = keypoints_results.summary(job, job.result)
    assert shown["split"] == "test"
    evaluation = job.result["test"]
    assert shown["evaluation"]["pck"] == evaluation["pck"]
    assert shown["evaluation"]["oks_ap"] == evaluation["oks_ap"]
    assert shown["evaluation"]["people"] == evaluation["people"]
    assert shown["val"]["pck"] == job.result["val"]["pck"]
    assert [row["name"] for row in shown["per_keypoint"]] == NAMES
    assert {"pck", "error", "labelled", "level"} <= set(shown["per_keypoint"][0])
    schema = shown["keypoint_schema"]
    assert schema["names"] == NAMES and schema["source"] == "card"
    assert [0, 1] in schema["skeleton"] and [6, 8] in schema["skeleton"]  # 1-based on the card
    assert {"a": "right_knee", "b": "right_foot"} in schema["lines"]
    json.dumps(shown)  # cacheable as it is


def test_summary_of_a_validation_only_result_and_of_junk(world, figures):
    job = fake_keypoints_job(figures)
    shown = keypoints_results.summary(job, {"val": job.result["val"]})
    assert shown["split"] == "val" and shown["val"] == {}
    junk = {"test": {"pck": "high", "oks_ap": 7, "per_keypoint": [None, {"name": "x", "pck": -1}]}}
    shown = keypoints_results.summary(job, junk)
    assert shown["evaluation"]["pck"] is None and shown["evaluation"]["oks_ap"] is None
    assert shown["per_keypoint"] == [
        {"index": 1, "name": "x", "pck": None, "error": None, "level": "none", "labelled": None}
    ]
    assert keypoints_results.summary(job, {})["evaluation"] == {}


def test_the_skeleton_falls_back_to_the_datasets_without_a_card(world, figures):
    job = fake_keypoints_job(figures, files=False)
    schema = keypoints_results.summary(job, job.result)["keypoint_schema"]
    # The sample's own points and lines (the dataset's 1-based skeleton).
    assert schema["source"] == "dataset" and schema["names"] == samples.PERSON_KEYPOINTS
    assert len(schema["skeleton"]) == len(samples.PERSON_SKELETON) and [0, 1] in schema["skeleton"]


@pytest.mark.parametrize(
    ("pairs", "base", "expected"),
    [
        ([[1, 2], [2, 3]], None, [[0, 1], [1, 2]]),  # COCO's 1-based pairs
        ([[0, 1], [1, 2]], None, [[0, 1], [1, 2]]),  # a 0 can only be 0-based
        ([[1, 2]], 0, [[1, 2]]),  # said outright
        ([[1, 9], [2, 2], "x", [1], [True, 2], [1, 2], [1, 2]], None, [[0, 1]]),  # junk dropped
        ("nope", None, []),
    ],
)
def test_skeleton_pairs_are_read_defensively(pairs, base, expected):
    assert keypoints_results.edges(pairs, 3, base) == expected


def test_the_cards_keypoints_part_is_read_defensively():
    names = ["a", "b", "c"]
    trainer_card = {"keypoints": {"names": names, "skeleton": [[1, 3]], "edges": [[0, 2]]}}
    assert keypoints_results.card_schema(trainer_card) == (names, [[0, 2]])
    only_skeleton = {"keypoints": {"names": names, "skeleton": [[1, 2], [2, 3]]}}
    assert keypoints_results.card_schema(only_skeleton) == (names, [[0, 1], [1, 2]])
    bare = {"keypoints": names, "skeleton": [[1, 2], [2, 3]]}
    assert keypoints_results.card_schema(bare) == (names, [[0, 1], [1, 2]])
    assert keypoints_results.card_schema({"keypoints": 3}) == ([], [])
    assert keypoints_results.card_schema({"keypoints": {"names": "abc", "edges": 5}}) == ([], [])


def test_result_shows_pck_oks_per_keypoint_bars_and_the_skeleton(world, figures):
    job = fake_keypoints_job(figures)
    html = _result(world, job)
    pck = job.result["test"]["pck"]
    assert f'id="result-pck">{percent(pck)}<' in html
    assert 'id="result-oks-ap"' in html and 'id="result-oks-ap50"' in html
    table = html[
        html.index('id="per-keypoint"') : html.index("</table>", html.index("per-keypoint"))
    ]
    assert len(re.findall(r"<tr><td>", table)) == len(NAMES)
    assert "left_knee</td>" in table
    assert 'data-chart="kp-bars"' in html and "keypoints_results.js" in html
    bars = json.loads(re.search(r'id="per-keypoint-data"[^>]*>(.*?)</script>', html).group(1))
    assert [row["name"] for row in bars] == NAMES
    schema = html[html.index('id="kp-schema"') :]
    assert "right_knee — right_foot" in schema and "From the model card" in schema
    assert 'id="confusion"' not in html and 'id="detections"' not in html


def test_skeletons_are_drawn_over_the_images_worst_first(world, figures):
    job = fake_keypoints_job(figures)
    html = _result(world, job)
    assert _rows(html) == SIZE
    oks = _oks(html)
    assert oks == sorted(oks) and len(oks) == SIZE  # worst (lowest OKS) first
    first = html.split('<li class="kp-card"')[1]
    image = re.search(r'data-image="(\d+)"', first).group(1)
    assert f'/datasets/{figures.pk}/items/{image}/image"' in first  # the permission-checked view
    assert 'class="kp-truth"' in first and 'class="kp-true-bone"' in first
    points = re.findall(r'class="kp-point kp-(good|fair|poor|none)"', first)
    assert len(points) == len(NAMES)
    assert "poor" in points  # the worst image has points past 0.1
    assert re.search(r"<title>(head|neck|left_hand|right_hand|hip)[^<]* · error ", first)
    assert 'id="kp-show-truth"' in html and "checked" in html  # the truth toggle
    for colour in ("good", "fair", "poor"):
        assert f'class="kp-dot kp-{colour}"' in html  # the legend


def test_best_first_and_images_without_truth_last(world, figures):
    job = fake_keypoints_job(figures)
    response = _images(world, job, query="order=best", htmx=True)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html  # the partial alone for htmx
    best = _oks(html)
    assert best == sorted(best, reverse=True) and len(best) == SIZE
    pages = -(-queries.items_at(figures).count() // SIZE)
    last = _images(world, job, query=f"page={pages}").content.decode()
    assert "<html" in last  # without htmx: a whole page
    assert 'data-oks=""' in last  # every 23rd image has no truth: nothing to judge, listed last
    tail = re.findall(r'data-oks="([0-9.]*)"', last)
    assert tail[-1] == "" and "no labelled keypoint" in last


def test_a_page_of_five_thousand_images_is_bounded(world, figures):
    job = fake_keypoints_job(figures, images=5000)
    pages = -(-5000 // SIZE)
    first = _result(world, job)
    assert _rows(first) == SIZE and f"Page 1 of {pages}" in first
    assert len(first) < 300_000
    for query, number in (("page=99999", pages), ("page=abc", 1), ("page=-3", pages), ("", 1)):
        response = _images(world, job, query=query, htmx=True)
        assert response.status_code == 200, query
        text = response.content.decode()
        assert f"Page {number} of {pages}" in text, query
        assert 0 < _rows(text) <= SIZE
    last = _images(world, job, query=f"page={pages}").content.decode()
    assert _rows(last) == 5000 - (pages - 1) * SIZE
    assert f'href="/jobs/{job.pk}/images/?page={pages - 1}"' in last  # links to the page view


def test_a_missing_predictions_file_leaves_the_figures_and_says_so(world, figures):
    job = fake_keypoints_job(figures)
    default_storage.delete(keypoints_results.predictions_name(job.pk, "test"))
    html = _result(world, job)
    assert 'id="skeletons-missing"' in html and "kept no per-image predictions" in html
    assert 'id="result-pck"' in html and 'id="per-keypoint"' in html
    response = _images(world, job)
    assert response.status_code == 200 and "skeletons-missing" in response.content.decode()


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b'{"rows": []}',
        b"\xff\xfe garbage",
        json.dumps([None, 3, "x", {"id": "seven", "width": -1, "truth": "no"}]).encode(),
        json.dumps(
            [
                {
                    "id": 1,
                    "width": 64,
                    "height": "tall",
                    "oks": 3.5,
                    "error": "big",
                    "truth": [[1, 2, 2], [None, 4, 2], [5, 6]],
                    "predicted": [[1, 2, 0.5], ["x"], [5, 6, 0.9], [70, 80, 0.1]],
                    "errors": [0.2, None],
                },
                {"id": True, "predicted": [[1e308, -1e308, 1]], "truth": None},
            ]
        ).encode(),
        b'[{"id": 2, "predicted": [[NaN, Infinity, 1]], "oks": NaN}]',
    ],
)
def test_malformed_predictions_never_fail_the_page(world, figures, content):
    job = fake_keypoints_job(figures)
    name = keypoints_results.predictions_name(job.pk, "test")
    default_storage.delete(name)
    default_storage.save(name, io.BytesIO(content))
    html = _result(world, job)
    assert 'id="result-pck"' in html
    assert ('id="skeletons-missing"' in html) or ('id="kp-grid"' in html)
    for htmx in (False, True):
        response = _images(world, job, htmx=htmx)
        assert response.status_code == 200
    if not content.startswith(b"["):
        assert "not in the expected shape" in html


def test_a_too_large_predictions_file_is_offered_not_drawn(world, figures, monkeypatch):
    job = fake_keypoints_job(figures)
    monkeypatch.setattr(keypoints_results, "MAX_PREDICTIONS_BYTES", 100)
    html = _result(world, job)
    assert 'id="skeletons-missing"' in html and "too large to draw" in html


def test_who_sees_a_keypoints_runs_images(world, figures):
    job = fake_keypoints_job(figures)
    for persona in PERSONAS:
        for query in ("", "page=2&order=best"):
            response = _images(world, job, persona, query)
            assert response.status_code == PAGE[persona], (persona, query)
            if PAGE[persona] == 200:
                assert 'id="kp-grid"' in response.content.decode()


def test_the_images_page_is_only_for_succeeded_keypoints_runs(world, figures):
    job = fake_keypoints_job(figures)
    job.status = "failed"
    job.save(update_fields=["status"])
    assert _images(world, job).status_code == 404
    job.status = "succeeded"
    job.spec = {**job.spec, "kind": "detection"}
    figures.kind = "detection"
    request = RequestFactory().get(f"/jobs/{job.pk}/images/")
    request.user = world.alice
    with pytest.raises(Http404):  # the view itself refuses another kind's run
        keypoints_results.images_view(request, job)


def test_a_student_without_the_images_sees_skeletons_without_pictures(world, figures):
    job = fake_keypoints_job(figures)
    figures.visibility = "hidden_test"
    figures.save(update_fields=["visibility"])
    html = _images(world, job, "alice").content.decode()
    assert 'class="kp-point' in html and '/image"' not in html


def test_try_its_part_of_the_form_names_its_renderer_and_words():
    html = render_to_string("jobs/try/keypoints.html", {})
    assert "try_keypoints.js" in html and 'class="try-kp' in html
    assert "The model found no person in this image." in html
    assert "Person %(n)s · score %(score)s" in html
