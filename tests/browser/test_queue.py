"""The training queue page: a teacher sees the line and moves a job; a student sees their place."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.browser.conftest import shot
from tests.browser.test_classes import sign_in
from tests.conftest import add_member, make_course, make_user
from webapp.datasets.models import Dataset, Status
from webapp.jobs.models import Job

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
SPEC = {"model": "simple_cnn", "epochs": 5}
WAITING = {"ja": "待機中", "en": "Waiting"}


def _job(course, owner, dataset, **fields):
    return Job.objects.create(
        course=course, owner=owner, dataset=dataset, dataset_version=1, spec=SPEC, **fields
    )


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_teacher_reorders_the_queue_and_a_student_sees_their_place(live_url, new_page, lang):
    teacher = make_user(f"qt_{lang}", teacher=True)
    course = make_course(teacher, "画像認識演習")
    students = []
    for name in ("aoi", "ren", "mei"):
        student = make_user(f"{name}_{lang}", display_name=name.capitalize())
        add_member(course, student)
        students.append(student)
    dataset = Dataset.objects.create(
        course=course, owner=teacher, name="digits", kind="classification", status=Status.READY
    )
    # The only slot is busy (a job that looks alive), so the others wait in line.
    now = timezone.now()
    alive = {"started_at": now, "dispatched_at": now, "heartbeat_at": now + timedelta(hours=1)}
    _job(course, students[0], dataset, status="running", attempts=1, progress=0.4, **alive)
    waiting = [_job(course, s, dataset) for s in (students[0], students[1], students[2])]

    page = new_page(lang)
    sign_in(page, live_url, f"qt_{lang}")
    page.goto(f"{live_url}/courses/{course.pk}/queue/")
    rows = page.locator("table.queue tbody tr")
    expect(rows).to_have_count(4)
    # Round-robin: Ren and Mei have had no turn yet, so they come before Aoi's second job.
    places = [rows.nth(i).get_attribute("data-job") for i in range(1, 4)]
    assert places == [str(waiting[1].pk), str(waiting[2].pk), str(waiting[0].pk)]
    expect(rows.nth(1)).to_contain_text(WAITING[lang])
    shot(page, f"{lang}-47-queue-teacher")

    rows.nth(3).locator("button[value=top]").click()
    page.wait_for_url(f"{live_url}/courses/{course.pk}/queue/")
    rows = page.locator("table.queue tbody tr")
    expect(rows.nth(1)).to_have_attribute("data-job", str(waiting[0].pk))

    student_page = new_page(lang)
    sign_in(student_page, live_url, f"mei_{lang}")
    student_page.goto(f"{live_url}/courses/{course.pk}/queue/")
    mine = student_page.locator("table.queue tbody tr")
    expect(mine).to_have_count(1)  # only her own job, with its place among everybody's
    expect(mine.first.locator("td.num")).to_have_text("3")
    assert student_page.locator("button[value=top]").count() == 0
    shot(student_page, f"{lang}-48-queue-student")
