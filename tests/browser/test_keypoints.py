"""A finished keypoints run's results in the browser: skeletons over the test images worst first,
the truth toggle (mouse and keyboard, kept across pages), best first on the images page, the
PCK bars, and Try it's skeletons drawn from an answer."""

import io
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from PIL import Image, ImageDraw
from playwright.sync_api import expect

from tests.browser.conftest import shot
from tests.browser.test_classes import sign_in
from tests.browser.test_results import _load_images
from tests.conftest import add_member, make_course, make_user
from tests.fixtures.keypoints_job import NAMES, fake_keypoints_job
from webapp.datasets import samples
from webapp.datasets import tasks as dataset_tasks
from webapp.datasets.models import Dataset

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
FIGURES = 40  # stick figures copied from the sample: four pages of images
# A pose network's Try it answer (the fixture's model files are stand-ins, so the test gives it:
# what is checked here is the page drawing it). Points in the photo's pixels, skeleton 0-based.
POINTS = [(32, 10), (32, 18), (44, 30), (20, 30), (32, 36), (36, 46), (28, 46), (38, 58), (26, 58)]
TRY_ANSWER = {
    "width": 64,
    "height": 64,
    "names": NAMES,
    "skeleton": [[0, 1], [1, 2], [1, 3], [1, 4], [4, 5], [4, 6], [5, 7], [6, 8]],
    "people": [
        {
            "score": 0.91,
            "box": [18, 4, 28, 56],
            "keypoints": [
                {"name": n, "x": x, "y": y, "score": 0.9}
                for n, (x, y) in zip(NAMES, POINTS, strict=True)
            ],
        },
        {
            "score": 0.42,
            "box": [2, 2, 14, 30],
            "keypoints": [
                {"name": n, "x": x / 4 + 2, "y": y / 2 + 2, "score": 0.4}
                for n, (x, y) in zip(NAMES, POINTS, strict=True)
            ],
        },
    ],
    "seconds": 0.04,
}
NOBODY = {**TRY_ANSWER, "people": [], "seconds": 0.03}


def _run(student, course, lang):
    # The row by hand and the task called here: the action would also queue it for the worker.
    dataset = Dataset.objects.create(
        course=course, owner=student, name="figures", kind="keypoints", source="sample:keypoints"
    )
    dataset_tasks.copy_sample(dataset.pk, "keypoints", lang)
    dataset.refresh_from_db()
    job = fake_keypoints_job(dataset)
    connection.close()  # this thread's own connection
    return job


def _oks(page) -> list[float]:
    values = page.locator("#kp-grid > li").evaluate_all("r => r.map(x => x.dataset.oks)")
    return [float(v) for v in values if v]


def _photo() -> bytes:
    image = Image.new("RGB", (64, 64), (235, 235, 225))
    draw = ImageDraw.Draw(image)
    for a, b in TRY_ANSWER["skeleton"]:
        draw.line([POINTS[a], POINTS[b]], fill=(40, 40, 40), width=2)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_student_reads_keypoints_results_toggles_truth_pages_and_tries(
    live_url, new_page, lang, monkeypatch
):
    monkeypatch.setattr(samples, "KEYPOINTS_COUNT", FIGURES)
    teacher = make_user(f"kt_{lang}", teacher=True)
    course = make_course(teacher, "深層学習")
    student = make_user(f"ks_{lang}")
    add_member(course, student)
    with ThreadPoolExecutor(1) as pool:
        job = pool.submit(_run, student, course, lang).result()

    page = new_page(lang)
    sign_in(page, live_url, f"ks_{lang}")
    page.goto(f"{live_url}/jobs/{job.pk}/")
    expect(page.locator("#result[data-kind=keypoints]")).to_be_visible(timeout=30_000)
    rows = page.locator("#kp-grid > li")
    expect(rows).to_have_count(12)
    expect(page.locator("#kp-bars canvas")).to_have_count(1)
    oks = _oks(page)
    assert oks == sorted(oks) and len(oks) == 12  # worst first
    first = rows.first
    expect(first.locator(".kp-point")).to_have_count(len(NAMES))
    expect(first.locator(".kp-truth")).to_be_visible()
    assert first.locator(".kp-point.kp-poor").count() > 0  # the worst image misses by > 0.1
    title = first.locator(".kp-point title").first.text_content()
    assert title.startswith(NAMES[0]) and ("誤差" if lang == "ja" else "error") in title
    expect(page.locator("#kp-schema")).to_contain_text("right_knee — right_foot")
    _load_images(page)
    shot(page, f"{lang}-70-keypoints-result")

    toggle = page.locator("#kp-show-truth")
    toggle.uncheck()  # the mouse hides every true skeleton…
    expect(page.locator("#kp-grid .kp-truth").first).to_be_hidden()
    assert page.locator("#kp-grid .kp-truth:visible").count() == 0
    expect(first.locator(".kp-predicted")).to_be_visible()
    toggle.focus()
    page.keyboard.press("Space")  # …and the keyboard brings them back
    expect(first.locator(".kp-truth")).to_be_visible()
    page.keyboard.press("Space")
    expect(first.locator(".kp-truth")).to_be_hidden()

    shown = first.get_attribute("data-image")
    page.locator("#skeletons a[rel=next]").click()
    expect(page.locator("#skeletons .pager")).to_contain_text("2")
    expect(rows.first).not_to_have_attribute("data-image", shown)
    expect(page.locator("#kp-show-truth")).not_to_be_checked()  # kept across pages
    expect(rows.first.locator(".kp-truth")).to_be_hidden()
    assert page.url.endswith(f"/jobs/{job.pk}/")  # the table moved, not the page

    page.goto(f"{live_url}/jobs/{job.pk}/images/?order=best")
    expect(rows.first).to_be_visible()
    best = _oks(page)
    assert best == sorted(best, reverse=True) and best[0] > oks[0]
    expect(page.locator("#kp-order")).to_have_value("best")
    _load_images(page)
    shot(page, f"{lang}-71-keypoints-images")

    answers = [TRY_ANSWER, NOBODY]
    page.route(
        f"**/api/v1/jobs/{job.pk}/predict",
        lambda route: route.fulfill(
            status=200, content_type="application/json", body=json.dumps(answers.pop(0))
        ),
    )
    page.goto(f"{live_url}/jobs/{job.pk}/try/")
    picker = page.locator("#try-card input[type=file]")
    picker.set_input_files({"name": "pose.png", "mimeType": "image/png", "buffer": _photo()})
    overlay = page.locator("#try-card .try-overlay")
    expect(overlay.locator(".try-person")).to_have_count(2)
    expect(overlay.locator(".try-person").first.locator("circle")).to_have_count(len(NAMES))
    expect(overlay.locator(".try-person").first.locator("path.kp-bone")).to_have_count(1)
    expect(page.locator("#try-card .try-kp-count")).to_contain_text("2")
    people = page.locator("#try-card .try-people")
    expect(people.locator("ol")).to_have_count(2)
    expect(people.locator("ol").first.locator("li")).to_have_count(len(NAMES))
    expect(people.locator("details").first).to_have_attribute("open", "")  # the first, open
    expect(people.locator("details").nth(1)).not_to_have_attribute("open", "")
    expect(people).to_contain_text("left_knee (36, 46)" if lang == "en" else "left_knee（36, 46）")
    expect(page.locator("#try-card .try-time")).not_to_be_empty()
    shot(page, f"{lang}-72-keypoints-try")

    picker.set_input_files({"name": "empty.png", "mimeType": "image/png", "buffer": _photo()})
    expect(page.locator("#try-card .try-kp-count")).to_have_text(
        "この画像には、モデルが見つけた人物がいません。"
        if lang == "ja"
        else "The model found no person in this image."
    )
    expect(overlay.locator(".try-person")).to_have_count(0)
    expect(people.locator("ol")).to_have_count(0)
