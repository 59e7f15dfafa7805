"""A finished detection run's results in the browser: boxes over the test images, the score
slider hiding boxes (mouse and keyboard), pages of errors by severity, and Try it's boxes."""

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from playwright.sync_api import expect

from tests.browser.conftest import shot
from tests.browser.test_classes import sign_in
from tests.browser.test_results import _load_images
from tests.conftest import add_member, make_course, make_user
from tests.fixtures.detection_job import fake_detection_job
from webapp.datasets import tasks as dataset_tasks
from webapp.datasets.models import Dataset

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
# What a detector answers Try it with (the fixture's model files are stand-ins, so the answer
# is given by the test: what is checked here is the page drawing it).
TRY_ANSWER = {
    "boxes": [
        {"box": [10, 12, 20, 18], "score": 0.92, "label": 0, "class": "circle"},
        {"box": [36, 30, 16, 16], "score": 0.61, "label": 2, "class": "triangle"},
        {"box": [2, 40, 12, 12], "score": 0.12, "label": 1, "class": "square"},
    ],
    "width": 64,
    "height": 64,
    "seconds": 0.05,
}
VAL_IMAGES = 3


def _run(student, course, lang):
    # The row by hand and the task called here: the action would also queue it for the worker.
    dataset = Dataset.objects.create(
        course=course,
        owner=student,
        name="shapes",
        kind="detection",
        source="sample:shapes_detection",
    )
    dataset_tasks.copy_sample(dataset.pk, "shapes_detection", lang)
    dataset.refresh_from_db()
    job = fake_detection_job(dataset)
    # Its validation images too (the fixture writes the test split's): the split toggle's.
    name = f"jobs/{job.pk}/predictions_test.json"
    with default_storage.open(name) as stored:
        rows = json.loads(stored.read())[:VAL_IMAGES]
    default_storage.save(f"jobs/{job.pk}/predictions_val.json", ContentFile(json.dumps(rows)))
    connection.close()  # this thread's own connection
    return job


def _shown(page) -> int:
    return page.locator("#det-table .det-box:not(.below)").count()


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_student_reads_detection_results_moves_the_slider_pages_and_tries(live_url, new_page, lang):
    teacher = make_user(f"dt_{lang}", teacher=True)
    course = make_course(teacher, "深層学習")
    student = make_user(f"ds_{lang}")
    add_member(course, student)
    with ThreadPoolExecutor(1) as pool:
        job = pool.submit(_run, student, course, lang).result()

    page = new_page(lang)
    sign_in(page, live_url, f"ds_{lang}")
    page.goto(f"{live_url}/jobs/{job.pk}/")
    expect(page.locator("#result[data-kind=detection]")).to_be_visible(timeout=30_000)
    expect(page.locator("#det-table tbody tr")).to_have_count(12)
    expect(page.locator("#pr-curves canvas")).to_have_count(1)
    expect(page.locator("#ap-bars canvas")).to_have_count(1)
    total = page.locator("#det-table .det-box").count()
    start = _shown(page)
    assert 0 < start < total  # the weak boxes start hidden at 0.30

    slider = page.locator("#score-threshold")
    slider.fill("0.95")  # above every score: no predicted box is left
    assert _shown(page) == 0
    expect(page.locator("#boxes-shown")).to_contain_text(
        f"{total} 個のうち 0 個" if lang == "ja" else f"0 of {total}"
    )
    expect(page.locator("#threshold-value")).to_have_text("0.95")
    slider.focus()
    page.keyboard.press("Home")  # the keyboard moves it too: 0 shows every box
    assert _shown(page) == total
    slider.fill("0.3")
    assert _shown(page) == start
    _load_images(page)
    shot(page, f"{lang}-60-detection-result")

    first = page.locator("#det-table tbody tr").first.get_attribute("data-image")
    page.locator("#detections a[rel=next]").click()
    expect(page.locator("#detections .pager")).to_contain_text("2")
    expect(page.locator("#det-table tbody tr").first).not_to_have_attribute("data-image", first)
    expect(page.locator("#score-threshold")).to_have_value("0.3")  # kept across pages
    assert page.url.endswith(f"/jobs/{job.pk}/")  # the table moved, not the page

    # The split toggle: the validation images' figures and boxes, in place; and back.
    toggle = page.locator("#split-toggle")
    expect(toggle.locator("[aria-current=true]")).to_have_attribute("data-split", "test")
    toggle.get_by_role("link", name="検証画像" if lang == "ja" else "Validation images").click()
    expect(page.locator("#split-toggle [aria-current=true]")).to_have_attribute("data-split", "val")
    expect(page.locator("#result-map50")).to_have_text("78.0%")
    expect(page.locator("#det-table tbody tr")).to_have_count(VAL_IMAGES)
    expect(page.locator("#detections h2")).to_contain_text("検証" if lang == "ja" else "validation")
    assert page.url.endswith(f"/jobs/{job.pk}/")
    _load_images(page)
    shot(page, f"{lang}-60b-detection-validation-split")
    page.locator("#split-toggle [data-split=test]").focus()
    page.keyboard.press("Enter")  # the keyboard too
    expect(page.locator("#result-map50")).to_have_text("80.0%")
    expect(page.locator("#det-table tbody tr")).to_have_count(12)

    page.goto(f"{live_url}/jobs/{job.pk}/detections/?error=missed&order=mild")
    rows = page.locator("#det-table tbody tr")
    expect(rows.first).to_be_visible()
    assert all("err-missed" in html for html in rows.evaluate_all("r => r.map(x => x.innerHTML)"))
    severities = [float(v) for v in rows.evaluate_all("r => r.map(x => x.dataset.severity)")]
    assert severities == sorted(severities)
    _load_images(page)
    shot(page, f"{lang}-61-detection-errors")

    page.route(
        f"**/api/v1/jobs/{job.pk}/predict",
        lambda route: route.fulfill(
            status=200, content_type="application/json", body=json.dumps(TRY_ANSWER)
        ),
    )
    page.goto(f"{live_url}/jobs/{job.pk}/try/")
    page.locator("#try-card input[type=file]").set_input_files(
        {"name": "shapes.png", "mimeType": "image/png", "buffer": _shape_png()}
    )
    expect(page.locator("#try-card .try-overlay g")).to_have_count(3)
    expect(page.locator("#try-card .try-overlay g:not(.below)")).to_have_count(2)
    expect(page.locator("#try-card .try-found li:not(.below)")).to_have_count(2)
    expect(page.locator("#try-card .try-count")).to_contain_text("2")
    shot(page, f"{lang}-62-detection-try")


def _shape_png() -> bytes:
    import io

    from PIL import Image, ImageDraw

    image = Image.new("RGB", (64, 64), (230, 230, 240))
    ImageDraw.Draw(image).ellipse((10, 12, 30, 30), fill=(0, 114, 178))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
