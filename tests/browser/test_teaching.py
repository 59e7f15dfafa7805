"""A teacher sets an assignment, a student submits a finished run, the leaderboard shows its
score and the teacher's dashboard updates by itself; screenshots in Japanese and English."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.browser.conftest import shot as full_page_shot
from tests.browser.test_classes import sign_in
from tests.conftest import add_member, make_course, make_user
from webapp.assignments.models import Submission
from webapp.datasets import tasks as dataset_tasks
from webapp.datasets.models import Dataset
from webapp.jobs import actions as job_actions
from webapp.jobs.models import Job

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
SPEC = {"model": "logistic", "epochs": 1, "input_size": 8}
DESCRIPTION = "## 手書き数字\n\nTrain on the **digits** and beat 0.8.\n\n<script>alert(1)</script>"


def _digits(course, owner, visibility: str, name: str) -> Dataset:
    dataset = Dataset.objects.create(
        course=course,
        owner=owner,
        name=name,
        kind="classification",
        visibility=visibility,
        source="sample:digits",
    )
    dataset_tasks.copy_sample(dataset.pk, "digits", "en")
    dataset.refresh_from_db()
    return dataset


def shot(page, name: str) -> None:
    page.evaluate("window.scrollTo(0, 0)")  # else the sticky top bar lands mid-picture
    full_page_shot(page, name)


def _finished(job: Job, seconds: float = 180) -> Job:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.status in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job.pk} still {job.status}")


def test_teacher_sets_an_assignment_and_sees_the_scored_submission_live(
    live_url, new_page, celery_worker_process
):
    teacher = make_user("sensei", teacher=True, display_name="佐藤先生")
    course = make_course(teacher, "深層学習 第6回")
    hanako = make_user("hanako", display_name="山田花子")
    add_member(course, hanako)
    add_member(course, make_user("taro", display_name="鈴木太郎"))
    handout = _digits(course, teacher, "handout", "手書き数字")
    hidden = _digits(course, teacher, "hidden_test", "数字テスト（非公開）")
    job = _finished(job_actions.submit(hanako, handout, SPEC))
    assert job.status == "succeeded", job.error

    # The teacher (Japanese) sees the run on the dashboard, then sets the assignment.
    teacher_page = new_page("ja")
    sign_in(teacher_page, live_url, "sensei")
    dashboard = f"{live_url}/courses/{course.pk}/dashboard/"
    teacher_page.goto(dashboard)
    row = teacher_page.locator('#students tr[data-student="hanako"]')
    expect(row.locator("td.best-val")).not_to_have_text("—")
    expect(teacher_page.locator("#live-state.on")).to_be_visible()
    shot(teacher_page, "ja-60-dashboard")

    teacher_page.goto(f"{live_url}/courses/{course.pk}/assignments/new/")
    teacher_page.fill("#id_title", "数字の分類")
    teacher_page.fill("#id_description", DESCRIPTION)
    teacher_page.select_option("#id_dataset", str(handout.pk))
    teacher_page.select_option("#id_hidden_test", str(hidden.pk))
    teacher_page.select_option("#id_metric", "accuracy")
    deadline = timezone.localtime() + timedelta(days=7)
    teacher_page.fill("#id_deadline", deadline.strftime("%Y-%m-%dT%H:%M"))
    teacher_page.fill("#id_daily_limit", "3")
    shot(teacher_page, "ja-61-assignment-form")
    teacher_page.locator("#assignment-form button[type=submit]").click()
    teacher_page.wait_for_url(f"{live_url}/assignments/*/")
    assignment_url = teacher_page.url
    expect(teacher_page.locator("#description h2")).to_have_text("手書き数字")
    assert teacher_page.locator("#description script").count() == 0
    teacher_page.goto(dashboard)  # and leave it open: it must update by itself

    # The student (English) submits the finished run and watches it being scored.
    student = new_page("en")
    sign_in(student, live_url, "hanako")
    student.goto(assignment_url)
    expect(student.locator("#assignment-title")).to_contain_text("数字の分類")
    assert hidden.name not in student.content()
    student.select_option("#id_job", str(job.pk))
    student.locator("#submit-form button[type=submit]").click()
    student.wait_for_url(assignment_url)
    expect(student.locator(".msg-success")).to_contain_text("Submitted")
    expect(student.locator('#my-submissions tr[data-status="scored"]')).to_have_count(
        1, timeout=90_000
    )
    board = student.locator("#leaderboard tbody tr")
    expect(board).to_have_count(1)
    expect(board.first).to_contain_text("山田花子")
    expect(student.locator("#left-today")).to_contain_text("2")
    shot(student, "en-62-assignment-student-scored")

    # The teacher's open dashboard shows the score without a reload.
    score = Submission.objects.get().score
    expect(row.locator("td.score")).to_have_text(f"{score * 100:.1f}%")
    shot(teacher_page, "ja-63-dashboard-scored")

    # The same pages the other way round: teacher in English, a classmate in Japanese.
    teacher_en = new_page("en")
    sign_in(teacher_en, live_url, "sensei")
    teacher_en.goto(assignment_url)
    expect(teacher_en.locator('#marks tr[data-student="hanako"] td.best')).not_to_have_text("—")
    shot(teacher_en, "en-64-assignment-teacher")
    teacher_en.goto(dashboard)
    shot(teacher_en, "en-65-dashboard")
    teacher_en.goto(f"{live_url}/courses/{course.pk}/assignments/")
    shot(teacher_en, "en-66-assignments")

    classmate = new_page("ja")
    sign_in(classmate, live_url, "taro")
    classmate.goto(assignment_url)
    expect(classmate.locator("#leaderboard tbody tr")).to_have_count(1)
    assert "山田花子" not in classmate.locator("#leaderboard").inner_text()
    shot(classmate, "ja-67-assignment-classmate")
