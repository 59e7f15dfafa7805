"""A student trains a U-Net and a pose network from the browser on the built-in samples, with a
real worker: the Train page offers the kind's own settings, the job page charts mIoU or PCK as
the epochs arrive, the results draw masks or skeletons, and Try it answers a photo of their own
through the worker — in Japanese and in English."""

import io

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.browser.conftest import shot
from tests.browser.test_classes import sign_in
from tests.browser.test_results import _load_images
from tests.conftest import add_member, make_course, make_user
from webapp.datasets import samples
from webapp.datasets import tasks as dataset_tasks
from webapp.datasets.models import Dataset

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
EPOCHS = 3
# The kind's sample, its own setting on the Train page, the chart's title and the results'
# table of evaluated images.
KINDS = {
    "segmentation": {
        "sample": "shapes_segmentation",
        "setting": ("#f-width", "8"),
        "title": {"ja": "エポックごとのmIoU", "en": "mIoU per epoch"},
        "images": "#seg-table tbody tr",
    },
    "keypoints": {
        "sample": "keypoints",
        "setting": ("#f-sigma", "1.5"),
        "title": {"ja": "エポックごとのPCK@0.1", "en": "PCK@0.1 per epoch"},
        "images": "#kp-grid > li",
    },
}
# Epochs with a figure in the first chart's table (its last column).
POINTS = (
    "[...document.querySelectorAll('#curves .chart-data tbody tr')]"
    ".filter(row => row.lastElementChild.textContent !== '—').length"
)


def _photo(kind: str) -> bytes:
    """A picture the run never saw: a sample drawing of the kind, scaled up to 128 px."""
    if kind == "segmentation":
        record = list(samples._shapes_records("shapes_segmentation", 1001))[-1]
    else:
        record = next(iter(samples._keypoints_records()))
    out = io.BytesIO()
    Image.fromarray(record.pixels).resize((128, 128)).save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize("lang", ["ja", "en"])
@pytest.mark.parametrize("kind", ["segmentation", "keypoints"])
def test_student_trains_a_kind_from_the_browser_watches_it_and_tries_a_photo(
    live_url, new_page, celery_worker_process, kind, lang
):
    setup = KINDS[kind]
    teacher = make_user(f"{kind[:3]}t_{lang}", teacher=True)
    course = make_course(teacher, "深層学習")
    student = make_user(f"{kind[:3]}s_{lang}")
    add_member(course, student)
    dataset = Dataset.objects.create(
        course=course, owner=student, name=kind, kind=kind, source=f"sample:{setup['sample']}"
    )
    dataset_tasks.copy_sample(dataset.pk, setup["sample"], lang)

    page = new_page(lang)
    sign_in(page, live_url, f"{kind[:3]}s_{lang}")
    page.goto(f"{live_url}/datasets/{dataset.pk}/")
    page.locator("#train-card a.btn").click()
    default = "unet" if kind == "segmentation" else "pose_unet"
    expect(page.locator(f"input[name=preset][value={default}]")).to_be_checked()
    expect(page.locator("#f-kfold")).to_have_count(0)  # no k folds for this kind
    page.fill("#f-epochs", str(EPOCHS))
    page.fill("#f-input_size", "32")
    page.fill(*setup["setting"])
    shot(page, f"{lang}-75-train-{kind}")
    page.click("#submit-train")
    page.wait_for_url(f"{live_url}/jobs/*/")

    # Live: the kind's figure is charted while the run is still going.
    expect(page.locator("#curves figcaption h2")).to_have_text(setup["title"][lang])
    page.wait_for_function(
        f"""() => document.getElementById('job-status').classList.contains('job-running')
            && {POINTS} >= 1""",
        timeout=180_000,
        polling=50,
    )
    expect(page.locator("#job-status")).to_have_class("badge job-succeeded", timeout=180_000)
    expect(page.locator("#curves .chart-data tbody tr")).to_have_count(EPOCHS)
    assert page.evaluate(POINTS) == EPOCHS
    expect(page.locator("#best-val")).not_to_have_text("—")
    expect(page.locator(f"#result[data-kind={kind}]")).to_be_visible(timeout=60_000)
    expect(page.locator(setup["images"]).first).to_be_visible()
    _load_images(page)
    shot(page, f"{lang}-76-trained-{kind}")

    # Try it on the job page itself: its form (and the kind's renderer) came with the results.
    page.locator("#try-card input[type=file]").set_input_files(
        {"name": "mine.png", "mimeType": "image/png", "buffer": _photo(kind)}
    )
    expect(page.locator("#try-card .try-time")).not_to_be_empty(timeout=60_000)
    expect(page.locator("#try-card .try-error")).to_be_hidden()
    if kind == "segmentation":
        expect(page.locator("#try-card canvas.try-mask")).to_be_visible()
    else:
        expect(page.locator("#try-card .try-overlay")).to_be_visible()
        expect(page.locator("#try-card .try-overlay circle")).to_have_count(
            len(samples.PERSON_KEYPOINTS)
        )
    shot(page, f"{lang}-77-try-{kind}")
