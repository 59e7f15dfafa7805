"""Every page is checked with axe-core (through `shot`) in Japanese and in English: the pages, roles
and languages the other browser tests do not look at are visited here, and a new page's URL fails
the check below until a browser test visits it."""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection
from django.template import loader
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from playwright.sync_api import expect

from tests.browser.conftest import shot
from tests.browser.test_classes import sign_in
from tests.conftest import add_member, make_course, make_user
from webapp.assignments.models import Assignment, Submission
from webapp.datasets import tasks as dataset_tasks
from webapp.datasets.models import Dataset, Status
from webapp.jobs import tasks
from webapp.jobs.models import Job

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# Named URLs that answer no HTML page of their own: forms post to them, HTMX swaps them into a
# page, or they serve an image, a CSV or JSON.
NOT_PAGES = {
    "healthz": "JSON",
    "logout": "POST",
    "token_revoke": "POST",
    "course_roster": "HTMX part of course_detail",
    "course_settings": "POST",
    "copy_sample": "POST",
    "dataset_status": "HTMX part of dataset_detail",
    "dataset_edit": "POST",
    "dataset_image": "image",
    "dataset_thumb": "image",
    "job_mask": "image",
    "job_cancel": "POST",
    "job_result": "HTMX part of job_detail",
    "job_move": "POST",
    "dashboard_live": "HTMX part of course_dashboard",
    "assignment_live": "HTMX part of assignment_detail",
    "assignment_submit": "POST",
    "assignment_marks_csv": "CSV",
    "set_language": "POST",
    "labelling_done": "POST",
    "labelling_publish": "POST",
}
# Pages the other browser tests look at (with the roles and languages not listed here).
ELSEWHERE = {
    "home": "test_classes",
    "login": "test_classes",
    "register": "test_classes",
    "course_list": "test_classes",
    "course_detail": "test_classes",
    "dataset_item": "test_datasets",
    "dataset_train": "test_launch",
    "job_detail": "test_jobs, test_results",
    "job_try": "test_results",
    "job_detections": "test_detection",
    "job_images": "test_segmentation and test_keypoints",
    "faces": "test_faces",
    "poses": "test_poses",
    "job_compare": "test_results",
    "job_group": "test_launch",
    "course_queue": "test_queue",
    "course_dashboard": "test_teaching",
    "studio_home": "test_studio_grid",
    "studio_item": "test_studio_canvas and test_studio_shapes",
    "course_labelling": "test_labelling_assignment",
    "labelling_new": "test_labelling_assignment",
    "labelling_detail": "test_labelling_assignment",
    "labelling_image": "test_labelling_assignment",
}
# Visited below, as the teacher and as the student where the student may see the page.
HERE = {
    "account_settings",
    "member_action",
    "roster_import",
    "course_datasets",
    "dataset_detail",
    "dataset_gallery",
    "job_confusion_cell",
    "course_assignments",
    "assignment_new",
    "assignment_edit",
    "assignment_detail",
}
TOO_MANY_FIELDS = "&".join(f"jobs={i}" for i in range(1100))  # Django answers 400


def _url_names(patterns, prefix: str = "") -> set[str]:
    names = set()
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            if not route.startswith(("api/", "admin/")):  # the API has its own schema checks
                names |= _url_names(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern) and pattern.name:
            names.add(pattern.name)
    return names


def test_every_page_is_checked_by_a_browser_test():
    names = _url_names(get_resolver().url_patterns)
    unchecked = names - set(NOT_PAGES) - set(ELSEWHERE) - HERE
    assert not unchecked, f"visit these pages in a browser test (axe checks them): {unchecked}"
    assert not (set(NOT_PAGES) | set(ELSEWHERE) | HERE) - names  # no stale entries


def _class_with_a_finished_run(lang: str):
    teacher = make_user(f"at_{lang}", teacher=True, display_name="佐藤先生")
    teacher.is_staff = teacher.is_superuser = True  # also opens the admin
    teacher.save()
    course = make_course(teacher, "深層学習 第2回")
    student = make_user(f"as_{lang}", display_name="山田花子")
    add_member(course, student)
    add_member(course, make_user(f"ab_{lang}", display_name="鈴木太郎"))
    handout = Dataset.objects.create(
        course=course,
        owner=teacher,
        name="digits",
        kind="classification",
        visibility="handout",
        source="sample:digits",
    )
    dataset_tasks.copy_sample(handout.pk, "digits", lang)  # inline, not through the worker
    handout.refresh_from_db()
    hidden = Dataset.objects.create(
        course=course,
        owner=teacher,
        name="hidden",
        kind="classification",
        visibility="hidden_test",
        status=Status.READY,
    )
    job = Job.objects.create(
        course=course,
        owner=student,
        dataset=handout,
        dataset_version=handout.head,
        spec={"model": "logistic", "epochs": 1, "input_size": 8},
    )
    tasks.train(job.pk)  # inline: the pages open on a finished run
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    assignment = Assignment.objects.create(
        course=course,
        created_by=teacher,
        title="数字の分類",
        description="## Digits\n\nBeat **0.8**.",
        dataset=handout,
        dataset_version=handout.head,
        hidden_test=hidden,
        deadline=timezone.now() + timedelta(days=7),
    )
    Submission.objects.create(
        assignment=assignment,
        student=student,
        job=job,
        status="scored",
        score=0.81,
        details={"accuracy": 0.81},
        hidden_version=1,
    )
    connection.close()  # this thread's own connection
    return teacher, student, course, handout, job, assignment


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_pages_not_visited_elsewhere_have_no_serious_accessibility_violations(
    live_url, new_page, tmp_path, lang
):
    # Playwright's event loop runs in this thread: the run's events are sent from another one.
    with ThreadPoolExecutor(1) as pool:
        teacher, student, course, handout, job, assignment = pool.submit(
            _class_with_a_finished_run, lang
        ).result()
    name = f"{lang}-a11y"

    page = new_page(lang)
    sign_in(page, live_url, teacher.username)
    for slug, url in [
        ("teacher-datasets", f"/courses/{course.pk}/datasets/"),
        ("teacher-dataset", f"/datasets/{handout.pk}/"),
        ("teacher-gallery", f"/datasets/{handout.pk}/gallery/"),
        ("teacher-assignments", f"/courses/{course.pk}/assignments/"),
        ("teacher-assignment-new", f"/courses/{course.pk}/assignments/new/"),
        ("teacher-assignment-edit", f"/assignments/{assignment.pk}/edit/"),
        ("teacher-assignment", f"/assignments/{assignment.pk}/"),
        ("teacher-admin", "/admin/"),
    ]:
        page.goto(f"{live_url}{url}")
        shot(page, f"{name}-{slug}")
    page.goto(f"{live_url}/courses/{course.pk}/")
    roster = tmp_path / "roster.csv"
    roster.write_text("username,display_name\nnew_one,新入生\nbad name!,x\n", encoding="utf-8")
    page.set_input_files("input[name=roster]", str(roster))
    page.locator("form[action$='/roster/import/'] button[type=submit]").click()
    expect(page.locator("tr.refused")).to_have_count(1)
    shot(page, f"{name}-teacher-roster-import")
    page.goto(f"{live_url}/courses/{course.pk}/")
    page.locator("tr[data-username='new_one'] button[value=reset_password]").click()
    expect(page.locator("#new-password")).to_be_visible()
    shot(page, f"{name}-teacher-password-reset")

    page = new_page(lang)
    sign_in(page, live_url, student.username)
    for slug, url, status in [
        ("student-settings", "/accounts/settings/", 200),
        ("student-datasets", f"/courses/{course.pk}/datasets/", 200),
        ("student-confusion-cell", f"/jobs/{job.pk}/confusion/1/1/", 200),
        ("student-compare-error", "/compare/?jobs=x", 400),
        ("student-assignments", f"/courses/{course.pk}/assignments/", 200),
        ("student-assignment", f"/assignments/{assignment.pk}/", 200),
        ("student-403", f"/courses/{course.pk}/assignments/new/", 403),
        ("student-400", f"/compare/?{TOO_MANY_FIELDS}", 400),
    ]:
        response = page.goto(f"{live_url}{url}")
        assert response.status == status, url
        shot(page, f"{name}-{slug}")

    # The server error page is plain HTML rendered without a request: serve it as daphne would.
    body = loader.get_template("errors/500.html").render()
    page.route(
        f"{live_url}/boom/",
        lambda route: route.fulfill(status=500, content_type="text/html", body=body),
    )
    page.goto(f"{live_url}/boom/")
    shot(page, f"{name}-500")
