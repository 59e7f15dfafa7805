"""The Train page's model picker per kind, in Japanese and English: a detection dataset offers
the detectors with the default chosen and the slow ones' CPU note; a classification one keeps
the presets and the layer builder."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import shot
from tests.browser.test_classes import sign_in
from tests.conftest import add_member, make_course, make_user
from trainer import catalog
from webapp.datasets import tasks as dataset_tasks
from webapp.datasets.models import Dataset

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _student_with_shapes(lang: str):
    teacher = make_user(f"tmt_{lang}", teacher=True)
    course = make_course(teacher, "深層学習")
    student = make_user(f"tms_{lang}")
    add_member(course, student)
    dataset = Dataset.objects.create(
        course=course, owner=student, name="shapes", kind="detection",
        source="sample:shapes_detection",
    )  # fmt: skip
    dataset_tasks.copy_sample(dataset.pk, "shapes_detection", lang)  # inline, not on a worker
    return student, dataset


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_a_detection_dataset_offers_its_detectors_with_the_default_chosen(live_url, new_page, lang):
    student, dataset = _student_with_shapes(lang)
    page = new_page(lang)
    sign_in(page, live_url, student.username)
    page.goto(f"{live_url}/datasets/{dataset.pk}/train/")
    default = catalog.default_for("detection")
    expect(page.locator(f"input[name=preset][value={default}]")).to_be_checked()
    expect(page.locator(".tab:has(input[value=layers])")).to_be_hidden()
    expect(page.locator("input[name=preset][value=simple_cnn]")).to_have_count(0)
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, f"{lang}-train-detection-models")
    # torchvision's detectors are slow on a CPU: the note is next to the chosen one.
    slow = [e for e in catalog.models("detection") if e.cpu_note and e.family == "torchvision"]
    assert slow
    page.locator(".tab:has(input[value=torchvision])").click()
    page.select_option("#f-torchvision", slow[0].name)
    note = slow[0].cpu_note["ja" if lang == "ja" else "en"]
    expect(page.locator("#torchvision-help")).to_contain_text(note)
    shot(page, f"{lang}-train-detection-torchvision")
