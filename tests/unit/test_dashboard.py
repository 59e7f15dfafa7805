"""The class dashboard: teachers and TAs only; every student × runs in a fixed number of queries."""

import time
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from tests.conftest import PERSONAS, add_member
from webapp.accounts.models import User
from webapp.assignments.models import Assignment, Submission
from webapp.datasets.models import Dataset
from webapp.jobs.models import Job

pytestmark = pytest.mark.django_db

SEE = {
    "anon": 302,
    "alice": 404,  # students never, not even a hint that the page exists
    "bob": 404,
    "carol": 404,
    "ta": 200,
    "teacher": 200,
    "other_teacher": 404,
}


def _dataset(world, kind="classification"):
    return Dataset.objects.create(
        course=world.course,
        owner=world.teacher,
        name="digits" if kind == "classification" else "shapes",
        kind=kind,
        visibility="handout",
        status="ready",
        head=1,
    )


def _job(world, owner, dataset, status="succeeded", **fields):
    return Job(
        course=world.course,
        owner=owner,
        dataset=dataset,
        dataset_version=1,
        spec={"model": "simple_cnn", "epochs": 4},
        status=status,
        **fields,
    )


@pytest.mark.parametrize("persona", PERSONAS)
def test_who_opens_the_dashboard(world, persona):
    for url in (
        f"/courses/{world.course.pk}/dashboard/",
        f"/courses/{world.course.pk}/dashboard/live/",
    ):
        assert world.client(persona).get(url).status_code == SEE[persona], url


def test_the_class_page_links_the_dashboard_for_staff_only(world):
    url = f"/courses/{world.course.pk}/"
    assert "dashboard-link" in world.client("ta").get(url).content.decode()
    student = world.client("alice").get(url).content.decode()
    assert "dashboard-link" not in student and "assignments-link" in student


def test_each_student_row_sums_up_their_runs(world):
    dataset = _dataset(world)
    Job.objects.bulk_create(
        [
            _job(world, world.alice, dataset, metrics={"best_val_acc": 0.71}, gpu_seconds=90),
            _job(world, world.alice, dataset, metrics={"val_accuracy": 0.83}, gpu_seconds=30),
            _job(world, world.alice, dataset, "failed", gpu_seconds=60),
            _job(
                world,
                world.alice,
                dataset,
                "running",
                progress=0.5,
                metrics={"epoch": 2, "val_acc": 0.5},
                started_at=timezone.now(),
            ),
            _job(world, world.bob, dataset, "queued"),
            _job(world, world.teacher, dataset, "queued"),  # staff runs are not a student row
        ]
    )
    world.course.gpu_minutes_per_student = 10
    world.course.save()
    assignment = Assignment.objects.create(
        course=world.course,
        created_by=world.teacher,
        title="Digits",
        dataset=dataset,
        dataset_version=1,
        hidden_test=dataset,
        deadline=timezone.now() + timedelta(days=1),
    )
    Submission.objects.create(
        assignment=assignment,
        student=world.alice,
        job=Job.objects.filter(owner=world.alice).first(),
        hidden_version=1,
        status="scored",
        score=0.875,
    )
    response = world.client("teacher").get(f"/courses/{world.course.pk}/dashboard/")
    rows = response.context["rows"]
    assert [row.student.username for row in rows] == ["alice", "bob"]
    alice, bob = rows
    assert alice.runs == {
        "queued": 0,
        "running": 1,
        "succeeded": 2,
        "failed": 1,
        "cancelled": 0,
    }
    assert [(b.kind, b.value) for b in alice.best] == [("classification", pytest.approx(0.83))]
    assert alice.gpu_minutes == pytest.approx(3.0)
    assert alice.quota_percent == 30 and alice.scores == [0.875]
    assert bob.total == 1 and bob.best == [] and bob.scores == [None]
    html = response.content.decode()
    assert "83.0%" in html and "87.5%" in html and "epoch 2/4" in html
    assert response.context["waiting_count"] == 2 and len(response.context["running"]) == 1


def _best_cell(html: str, username: str) -> str:
    row = html.split(f'data-student="{username}"', 1)[1].split("</tr>", 1)[0]
    return row.split('class="num best-val">', 1)[1].split("</td>", 1)[0]


def test_the_dashboard_shows_map_for_a_detection_run_and_accuracy_for_a_classification_run(
    world,
):
    digits, shapes = _dataset(world), _dataset(world, "detection")
    Job.objects.bulk_create(
        [
            # alice: a classifier (test accuracy ranks first) and two detectors
            _job(world, world.alice, digits, metrics={"val_accuracy": 0.9, "test_accuracy": 0.8}),
            _job(world, world.alice, shapes, metrics={"val_map50": 0.55, "map50": 0.55}),
            _job(
                world,
                world.alice,
                shapes,
                metrics={"test_map50": 0.625, "val_map50": 0.7, "best_val_map50": 0.72},
            ),
            # bob: a detector still training, known only by its epochs so far
            _job(world, world.bob, shapes, "running", metrics={"epoch": 1, "val_map50": 0.3}),
        ]
    )
    response = world.client("teacher").get(f"/courses/{world.course.pk}/dashboard/")
    alice, bob = response.context["rows"]
    assert [(b.kind, b.label, b.text) for b in alice.best] == [
        ("classification", "accuracy", "80.0%"),
        ("detection", "mAP@0.5", "62.5%"),
    ]
    assert [(b.kind, b.text) for b in bob.best] == [("detection", "30.0%")]
    html = response.content.decode()
    cell = _best_cell(html, "alice")
    assert "accuracy</span> 80.0%" in cell and "mAP@0.5</span> 62.5%" in cell
    assert "mAP@0.5</span> 30.0%" in _best_cell(html, "bob") and "accuracy" not in _best_cell(
        html, "bob"
    )
    assert "Best result" in html


def test_the_detection_figures_read_in_japanese(world):
    shapes = _dataset(world, "detection")
    _job(world, world.alice, shapes, metrics={"test_map50": 0.5}).save()
    client = world.client("teacher")
    html = client.get(f"/courses/{world.course.pk}/dashboard/", HTTP_ACCEPT_LANGUAGE="ja")
    html = html.content.decode()
    assert "mAP@0.5</span> 50.0%" in _best_cell(html, "alice")
    assert "最良の結果" in html and "Best result" not in html


def _crowd(world, students: int, jobs_each: int) -> None:
    users = User.objects.bulk_create(
        [User(username=f"s{n:03d}", display_name=f"学生 {n}") for n in range(students)]
    )
    for user in users:
        add_member(world.course, user)
    dataset = _dataset(world)
    statuses = ["succeeded", "failed", "queued", "running", "cancelled"]
    Job.objects.bulk_create(
        [
            _job(
                world,
                user,
                dataset,
                statuses[n % len(statuses)],
                metrics={"best_val_acc": (n % 10) / 10, "epoch": 1},
                gpu_seconds=n * 7.0,
            )
            for user in users
            for n in range(jobs_each)
        ]
    )


def test_the_dashboard_needs_the_same_queries_for_5_or_40_students(
    world, django_assert_max_num_queries
):
    client = world.client("teacher")
    url = f"/courses/{world.course.pk}/dashboard/"
    _crowd(world, 5, 3)
    with django_assert_max_num_queries(14):
        assert client.get(url).status_code == 200
    _crowd_more = [User.objects.create(username=f"late{n}") for n in range(35)]
    for user in _crowd_more:
        add_member(world.course, user)
    with django_assert_max_num_queries(14):
        response = client.get(url)
    assert len(response.context["rows"]) == 42
    with django_assert_max_num_queries(14):
        assert client.get(f"/courses/{world.course.pk}/dashboard/live/").status_code == 200


def test_dashboard_answers_quickly_with_200_students_and_2000_runs(world):
    _crowd(world, 200, 10)
    client = Client()
    client.force_login(world.teacher)
    url = f"/courses/{world.course.pk}/dashboard/"
    client.get(url)  # warm: templates compiled, role cached per request anyway
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        response = client.get(url)
        timings.append(time.perf_counter() - start)
        assert response.status_code == 200
    assert response.context["student_count"] == 202
    assert len(response.context["rows"]) == 100  # a page of students: see test_bounded_pages
    best = min(timings)
    print(f"dashboard, 200 students × 10 jobs: best {best * 1000:.0f} ms of {timings}")
    assert best < 0.2
