"""Train from the dataset page and watch the job live, in Japanese and in English."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import shot
from tests.browser.test_classes import sign_in
from tests.conftest import add_member, make_course, make_user
from webapp.datasets import tasks as dataset_tasks
from webapp.datasets.models import Dataset

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
FINISHED = {"ja": "完了", "en": "finished"}
EPOCH_3 = {"ja": "エポック 3", "en": "epoch 3"}


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_student_trains_and_watches_the_curves(live_url, new_page, celery_worker_process, lang):
    teacher = make_user(f"jt_{lang}", teacher=True)
    course = make_course(teacher, "深層学習")
    student = make_user(f"js_{lang}")
    add_member(course, student)
    dataset = Dataset.objects.create(
        course=course, owner=student, name="faces", task="classification", source="sample:faces"
    )
    dataset_tasks.copy_sample(dataset.pk, "faces", lang)

    page = new_page(lang)
    sign_in(page, live_url, f"js_{lang}")
    page.goto(f"{live_url}/datasets/{dataset.pk}/")
    page.locator("#train-card a.btn").click()
    page.fill("#f-epochs", "3")
    page.click("#submit-train")
    page.wait_for_url(f"{live_url}/jobs/*/")
    expect(page.locator("#log li").last).to_have_text(FINISHED[lang], timeout=90_000)
    expect(page.locator("#curves polyline").first).to_be_visible()
    assert page.locator("#log li").filter(has_text=EPOCH_3[lang]).count() == 1
    assert page.locator("#cancel-form").count() == 0
    shot(page, f"{lang}-30-job-finished")
