"""A running job's page says, as soon as the trainer starts, what became of the transferred
classifier — in Japanese and in English."""

import threading

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import shot
from tests.browser.test_classes import sign_in
from tests.conftest import add_member, make_course, make_user
from webapp.datasets.models import Dataset
from webapp.jobs.models import Job, JobStatus
from webapp.jobs.tasks import JobReporter

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
NEW = {
    "ja": "新しい分類器：転移元とクラスが異なります。",
    "en": "New classifier: the classes differ from the source's.",
}


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_the_live_job_page_says_new_classifier_when_the_classes_differ(live_url, new_page, lang):
    teacher = make_user(f"ht_{lang}", teacher=True)
    course = make_course(teacher)
    student = make_user(f"hs_{lang}")
    add_member(course, student)
    dataset = Dataset.objects.create(
        course=course, owner=student, name="shapes", kind="classification"
    )
    transfer = {"source": "job:1", "mode": "fine_tuning"}
    job = Job.objects.create(
        course=course,
        owner=student,
        dataset=dataset,
        dataset_version=dataset.head,
        spec={"model": "simple_cnn", "epochs": 3, "transfer": transfer},
        status=JobStatus.RUNNING,
        attempts=1,
    )

    page = new_page(lang)
    sign_in(page, live_url, f"hs_{lang}")
    page.goto(f"{live_url}/jobs/{job.pk}/")
    notice = page.locator("#head-notice")
    expect(notice).to_be_hidden()
    page.wait_for_function("() => document.getElementById('progress') !== null")
    page.wait_for_timeout(500)  # the socket is open (it replays from 0 anyway)

    started = {"parameters": 1000, "device": "cpu", "classes": ["a", "b"], "fold": 0}
    event = {"head": "new", "head_reason": "classes_differ", **started}
    # As the worker does: stored, then sent to the job's group (from a thread of its own, since
    # Playwright keeps an event loop running in this one).
    worker = threading.Thread(
        target=JobReporter(job.pk, 1),
        args=({"kind": "started", "seq": 1, "time": 0, "data": event},),
    )
    worker.start()
    worker.join()
    expect(notice).to_be_visible(timeout=15_000)
    expect(notice).to_have_text(NEW[lang])
    expect(notice).to_have_class("alert small warn-note")
    shot(page, f"job_new_classifier_{lang}")
