"""The Train page of a detection dataset offers "COCO" when the administrator put a model's COCO
file on the server, and only for that model: another model disables it, with the reason, in
Japanese and English. A daphne of this module's own reads a weights folder of its own (the
session's server reads the real one, which no test may write to)."""

import pytest
from playwright.sync_api import expect

from tests import live
from tests.browser.conftest import ARTIFACTS, shot
from tests.browser.test_classes import sign_in
from tests.conftest import add_member, make_course, make_user
from trainer import catalog
from webapp.datasets.models import Category, Dataset, Status

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
PROVIDED = "ssdlite320_mobilenet_v3_large"
ABSENT = "fcos_resnet50_fpn"
REASON = {
    "ja": "このモデルの COCO の重みは、管理者がまだ用意していません。",
    "en": "The administrator has not provided this model's COCO weights.",
}


@pytest.fixture(scope="module")
def coco_url(django_db_setup, django_db_blocker, tmp_path_factory):
    """daphne with TORCH_HOME holding SSDlite's COCO file (a stand-in: the page reads no bytes)."""
    home = tmp_path_factory.mktemp("torch_home")
    folder = home / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / catalog.get(PROVIDED).coco_weights_file).write_bytes(b"weights")
    with django_db_blocker.unblock():
        proc, url = live.start_daphne(ARTIFACTS / "logs" / "daphne-coco.log", TORCH_HOME=str(home))
    yield url
    live.stop(proc)


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_coco_is_offered_for_the_model_whose_weights_are_here(coco_url, new_page, lang):
    teacher = make_user(f"cocot_{lang}", teacher=True)
    course = make_course(teacher, "深層学習")
    student = make_user(f"cocos_{lang}")
    add_member(course, student)
    dataset = Dataset.objects.create(
        course=course, owner=student, name="shapes", kind="detection", status=Status.READY, head=1
    )
    for index, name in enumerate(["circle", "square"]):
        Category.objects.create(dataset=dataset, index=index, name=name, valid_from=1)

    page = new_page(lang)
    sign_in(page, coco_url, student.username)
    page.goto(f"{coco_url}/datasets/{dataset.pk}/train/")
    coco = page.locator("#f-transfer_source option[value=coco]")
    expect(coco).to_be_disabled()  # the default, centernet_tiny, has no COCO weights
    page.locator(".tab:has(input[value=torchvision])").click()
    page.select_option("#f-torchvision", PROVIDED)
    expect(coco).to_be_enabled()
    page.select_option("#f-transfer_source", "coco")
    page.locator("input[name=transfer_mode][value=fine_tuning]").check()
    expect(page.locator("#source-note")).not_to_contain_text("COCO")
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, f"{lang}-46b-train-coco")

    page.select_option("#f-torchvision", ABSENT)
    expect(coco).to_be_disabled()
    expect(page.locator("#f-transfer_source")).to_have_value("none")
    expect(page.locator("#source-note")).to_contain_text(f"COCO: {REASON[lang]}")
