"""Train on the digits from the Train page and watch the curves grow live — the student in two
tabs and the teacher at the same time — in Japanese and in English."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import shot
from tests.browser.test_classes import sign_in
from tests.browser.test_results import PAINTED, VAL_COLOUR
from tests.conftest import add_member, make_course, make_user
from webapp.datasets import tasks as dataset_tasks
from webapp.datasets.models import Dataset

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
FINISHED = {"ja": "完了", "en": "finished"}
EPOCHS = 5
# The epochs with a validation accuracy, counted in the chart's table of figures (its last column).
POINTS = (
    "[...document.querySelectorAll('#curves .chart-data tbody tr')]"
    ".filter(row => row.lastElementChild.textContent !== '—').length"
)


def _points(page) -> int:
    return page.evaluate(POINTS)


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_student_trains_and_watches_the_curves(live_url, new_page, celery_worker_process, lang):
    teacher = make_user(f"jt_{lang}", teacher=True)
    course = make_course(teacher, "深層学習")
    student = make_user(f"js_{lang}")
    add_member(course, student)
    dataset = Dataset.objects.create(
        course=course, owner=student, name="digits", kind="classification", source="sample:digits"
    )
    dataset_tasks.copy_sample(dataset.pk, "digits", lang)

    page = new_page(lang)
    sign_in(page, live_url, f"js_{lang}")
    page.goto(f"{live_url}/datasets/{dataset.pk}/")
    page.locator("#train-card a.btn").click()
    page.locator("input[name=preset][value=simple_cnn]").check()
    page.fill("#f-epochs", str(EPOCHS))
    page.fill("#f-input_size", "16")
    page.click("#submit-train")
    page.wait_for_url(f"{live_url}/jobs/*/")
    job_url = page.url

    second_tab = page.context.new_page()
    second_tab.goto(job_url)
    watcher = new_page(lang)
    sign_in(watcher, live_url, f"jt_{lang}")
    watcher.goto(job_url)

    # Live, not at the end: a moment when the job runs and has drawn some epochs, not all.
    page.wait_for_function(
        f"""() => {{
            const n = {POINTS};
            return document.getElementById('job-status').classList.contains('job-running')
                && n >= 1 && n < {EPOCHS};
        }}""",
        timeout=120_000,
        polling=50,
    )
    shot(page, f"{lang}-30-job-running")
    for viewer in (page, second_tab, watcher):
        expect(viewer.locator("#log li").last).to_have_text(FINISHED[lang], timeout=120_000)
        expect(viewer.locator("#curves .chart-data tbody tr")).to_have_count(EPOCHS)
        assert _points(viewer) == EPOCHS  # every epoch once: no gap, no duplicate
        assert viewer.evaluate(PAINTED, ["curves", list(VAL_COLOUR)]) > 50
    assert page.locator("#cancel-form").count() == 0
    shot(watcher, f"{lang}-31-job-finished-teacher")
