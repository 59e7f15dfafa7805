"""Every page stays small and quick whatever the data: 60,000 images, 1,000 classes, 2,000 students.

One class is filled once per module with bulk-created rows (the images are three stored files
that every item shares, so all 60,000 are duplicates), and every page a teacher or a student
can open is fetched from it: each must stay under PAGE_BYTES and answer in under PAGE_SECONDS on
the server (the median of three requests after a warm-up, with the test client).
"""

import json
import re
import statistics
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import transaction
from django.test import Client, override_settings
from django.utils import timezone

from webapp.accounts.models import ApiToken, Course, Membership, Role, User
from webapp.assignments.models import Assignment, Submission
from webapp.datasets.models import Annotation, Category, Dataset, Item, StoredImage, Version
from webapp.jobs.models import Job, JobEvent, JobGroup

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

PAGE_BYTES = 300_000
PAGE_SECONDS = 0.300
ITEMS = 60_000
CLASSES = 1_000
STUDENTS = 2_000
DATASETS = 1_500
COURSES = 1_000
QUEUED = 3_000
EPOCHS = 2_000  # epoch events of each compared run
SUBMISSIONS_PER_STUDENT = 5


@dataclass
class Big:
    course: Course
    teacher: User
    alice: User  # a student with 1,000 finished runs, 1,000 waiting jobs and 500 submissions
    dataset: Dataset
    detection: Dataset
    crowded_item: Item  # 5,000 boxes
    hidden: Dataset
    job: Job  # 1,000 classes of results, every test image in one confusion cell
    compared: list[Job]
    group: JobGroup
    assignment: Assignment

    def client(self, who: str) -> Client:
        client = Client()
        client.force_login(self.teacher if who == "teacher" else self.alice)
        return client


def _bulk(model, rows, size=5_000):
    model.objects.bulk_create(rows, batch_size=size)


def _people(now):
    teacher = User.objects.create_user("big_teacher", is_teacher=True, display_name="大先生")
    _bulk(
        User,
        [
            User(username=f"s{i:04d}", password="!", display_name=f"学生 {i:04d}")
            for i in range(STUDENTS)
        ],
    )
    students = list(
        User.objects.filter(username__in=[f"s{i:04d}" for i in range(STUDENTS)]).order_by(
            "username"
        )
    )
    course = Course.objects.create(name="大きなクラス", created_by=teacher)
    others = [
        Course(name=f"クラス {i}", created_by=teacher, join_code=f"B{i:07d}")
        for i in range(COURSES)
    ]
    _bulk(Course, others)
    memberships = [Membership(course=course, user=teacher, role=Role.TEACHER)]
    memberships += [Membership(course=course, user=s, role=Role.STUDENT) for s in students]
    memberships += [
        Membership(course=c, user=teacher, role=Role.TEACHER)
        for c in Course.objects.exclude(pk=course.pk)
    ]
    _bulk(Membership, memberships)
    _bulk(
        ApiToken,
        [
            ApiToken(user=teacher, name=f"token {i}", key_hash=f"{i:064d}", prefix=f"mnb_{i:04d}")
            for i in range(500)
        ],
    )
    return teacher, students, course


def _images():
    _bulk(
        StoredImage,
        [
            StoredImage(
                sha256=f"{n:064x}",
                file=f"images/{n}.png",
                thumb=f"images/{n}.png",
                content_type="image/png",
                width=32,
                height=32,
                channels=1,
                bytes=300,
                phash="00ff00ff00ff00ff",
            )
            for n in range(3)
        ],
    )
    return list(StoredImage.objects.order_by("pk"))


def _datasets(course, owner, teacher, students, images):
    names = [f"クラス名 {i:04d}" for i in range(CLASSES)]
    dataset = Dataset.objects.create(
        course=course,
        owner=owner,
        name="60,000 duplicates",
        kind="classification",
        visibility="shared",
        status="ready",
        head=1,
        report={
            "rejected": [{"file": f"bad/{i}.txt", "reason": "not an image"} for i in range(5_000)],
            "rejected_total": 5_000,
        },
    )
    _bulk(
        Category,
        [Category(dataset=dataset, index=i, name=n, valid_from=1) for i, n in enumerate(names)],
    )
    splits = ["train"] * 8 + ["val", "test"]
    _bulk(
        Item,
        [
            Item(
                dataset=dataset,
                image=images[i % 3],
                original_path=f"{names[i % CLASSES]}/{i}.png",
                split=splits[i % 10],
                category_index=i % CLASSES,
                valid_from=1,
            )
            for i in range(ITEMS)
        ],
    )
    counts = {s: {n: ITEMS // CLASSES // 10 * splits.count(s) for n in names} for s in set(splits)}
    Version.objects.create(dataset=dataset, number=1, summary="Imported", counts=counts)
    for number in range(2, 60):  # many versions
        Version.objects.create(
            dataset=dataset, number=number, summary=f"edit {number}", counts=counts
        )
    Dataset.objects.filter(pk=dataset.pk).update(head=59)
    dataset.head = 59

    hidden = Dataset.objects.create(
        course=course,
        owner=teacher,
        name="hidden",
        kind="classification",
        visibility="hidden_test",
        status="ready",
        head=1,
    )
    _bulk(
        Category,
        [Category(dataset=hidden, index=i, name=n, valid_from=1) for i, n in enumerate(names)],
    )
    _bulk(
        Item,
        [
            Item(
                dataset=hidden,
                image=images[i % 3],
                original_path=f"t/{i}.png",
                split="test",
                category_index=i,
                valid_from=1,
            )
            for i in range(30)
        ],
    )

    detection = Dataset.objects.create(
        course=course,
        owner=owner,
        name="crowded",
        kind="detection",
        visibility="shared",
        status="ready",
        head=1,
    )
    Category.objects.create(dataset=detection, index=0, name="person", valid_from=1)
    crowded = Item.objects.create(
        dataset=detection, image=images[0], original_path="crowd.png", valid_from=1
    )
    _bulk(
        Annotation,
        [
            Annotation(item=crowded, category_index=0, bbox=[i % 30, i % 29, 2, 2], area=4)
            for i in range(5_000)
        ],
    )
    _bulk(
        Dataset,
        [
            Dataset(
                course=course,
                owner=students[i % STUDENTS],
                name=f"データセット {i}",
                kind="classification",
                visibility="shared",
                status="ready",
                head=1,
            )
            for i in range(DATASETS)
        ],
    )
    return dataset, hidden, detection, crowded


def _result():
    confusion = [[0] * CLASSES for _ in range(CLASSES)]
    for true in range(CLASSES):
        confusion[true][true] = 5
        confusion[true][(true + 1) % CLASSES] = 1
    confusion[0][1] = ITEMS
    per_class = [
        {"class": c, "precision": 0.8, "recall": 0.7, "f1": 0.75, "support": 6}
        for c in range(CLASSES)
    ]
    probabilities = [round(1 / CLASSES, 4)] * CLASSES
    mistakes = [
        {"id": i, "true": 0, "predicted": 1, "probabilities": probabilities, "confidence": 0.9}
        for i in range(200)
    ]
    evaluation = {
        "loss": 0.5,
        "accuracy": 0.8,
        "top5": 0.9,
        "confusion": confusion,
        "per_class": per_class,
        "misclassified": mistakes,
    }
    return {"test": evaluation, "val": {**evaluation, "misclassified": []}}


def _jobs(course, dataset, alice, students, media: Path, now):
    spec = {"model": "simple_cnn", "epochs": EPOCHS, "batch_size": 32}
    job = Job.objects.create(
        course=course,
        owner=alice,
        dataset=dataset,
        dataset_version=1,
        spec=spec,
        status="succeeded",
        result=_result(),
        finished_at=now,
        metrics={"best_val_acc": 0.8, "test_accuracy": 0.8, "val_accuracy": 0.8},
    )
    folder = media / "jobs" / str(job.pk)
    folder.mkdir(parents=True)
    predictions = [{"id": i, "true": 0, "predicted": 1, "confidence": 0.9} for i in range(ITEMS)]
    (folder / "predictions_test.json").write_text(json.dumps(predictions))
    (folder / "model.safetensors").write_bytes(b"0")

    group = JobGroup.objects.create(course=course, owner=alice, title="lr", variable="lr")
    compared = [job] + [
        Job.objects.create(
            course=course,
            owner=alice,
            dataset=dataset,
            dataset_version=1,
            spec=spec,
            status="succeeded",
            result={},
            metrics={"best_val_acc": 0.99, "test_accuracy": 0.5, "val_accuracy": 0.5},
            group=group,
            label=f"{n}",
            finished_at=now,
        )
        for n in range(5)
    ]
    Job.objects.filter(pk=job.pk).update(group=group)
    events = []
    for run in compared:
        for epoch in range(EPOCHS):
            data = {
                "epoch": epoch,
                "train_loss": 1.0,
                "train_acc": 0.5,
                "val_loss": 1.0,
                "val_acc": 0.99 if (run == compared[1] and epoch == 1234) else 0.5,
            }
            events.append(
                JobEvent(job=run, number=epoch + 1, attempt=1, seq=epoch, kind="epoch", data=data)
            )
    for n in range(5_000):
        events.append(
            JobEvent(
                job=job,
                number=EPOCHS + 1 + n,
                attempt=1,
                seq=EPOCHS + n,
                kind="log",
                data={"message": f"line {n}"},
            )
        )
    _bulk(JobEvent, events)

    jobs = [
        Job(
            course=course,
            owner=alice,
            dataset=dataset,
            dataset_version=1,
            spec=spec,
            status="succeeded",
            finished_at=now - timedelta(seconds=n),
            metrics={"val_accuracy": 0.5},
        )
        for n in range(1_000)
    ]
    jobs += [
        Job(
            course=course,
            owner=alice if n < 1_000 else students[n % STUDENTS],
            dataset=dataset,
            dataset_version=1,
            spec=spec,
            status="queued",
            created_at=now - timedelta(seconds=n),
        )
        for n in range(QUEUED)
    ]
    jobs += [
        Job(
            course=course,
            owner=students[n],
            dataset=dataset,
            dataset_version=1,
            spec=spec,
            status="running",
            started_at=now,
            progress=0.5,
            dispatched_at=now,
        )
        for n in range(20)
    ]
    _bulk(Job, jobs)
    return job, compared, group


def _assignments(course, teacher, dataset, hidden, students, alice, now):
    _bulk(
        Assignment,
        [
            Assignment(
                course=course,
                created_by=teacher,
                title=f"課題 {i}",
                description="x" * 200,
                dataset=dataset,
                dataset_version=1,
                hidden_test=hidden,
                deadline=now + timedelta(days=7),
                daily_limit=5_000,
            )
            for i in range(300)
        ],
    )
    assignment = Assignment.objects.filter(course=course).order_by("pk").first()
    runs = list(
        Job.objects.filter(owner=alice, status="succeeded").values_list("pk", flat=True)[:1_000]
    )
    submissions = [
        Submission(
            assignment=assignment,
            student=student,
            job_id=runs[n % len(runs)],
            status="scored",
            score=(s * 7 + n) % 1000 / 1000,
            hidden_version=1,
            created_at=now - timedelta(minutes=n),
        )
        for s, student in enumerate(students)
        for n in range(SUBMISSIONS_PER_STUDENT)
    ]
    submissions += [
        Submission(
            assignment=assignment,
            student=alice,
            job_id=runs[n],
            status="scored",
            score=0.5,
            hidden_version=1,
        )
        for n in range(500)
    ]
    _bulk(Submission, submissions)
    return assignment


@pytest.fixture(scope="module")
def big(django_db_setup, django_db_blocker, tmp_path_factory):
    """The big class, built once for the module inside a transaction that is rolled back."""
    media = tmp_path_factory.mktemp("media")
    with django_db_blocker.unblock(), override_settings(MEDIA_ROOT=media), transaction.atomic():
        now = timezone.now()
        teacher, students, course = _people(now)
        alice = students[0]
        images = _images()
        dataset, hidden, detection, crowded = _datasets(course, alice, teacher, students, images)
        job, compared, group = _jobs(course, dataset, alice, students, media, now)
        assignment = _assignments(course, teacher, dataset, hidden, students, alice, now)
        yield Big(
            course,
            teacher,
            alice,
            dataset,
            detection,
            crowded,
            hidden,
            job,
            compared,
            group,
            assignment,
        )
        transaction.set_rollback(True)


def _pages(big: Big) -> dict[str, tuple[str, str, dict]]:
    """name → (who, path, headers): every page of the class, as a teacher and as alice."""
    c, d, j, a = big.course.pk, big.dataset.pk, big.job.pk, big.assignment.pk
    item = Item.objects.filter(dataset=big.dataset).order_by("pk").first().pk
    htmx = {"HTTP_HX_REQUEST": "true"}
    ids = ",".join(str(job.pk) for job in big.compared)
    pages = {
        "course list": ("teacher", "/courses/", {}),
        "course page and roster": ("teacher", f"/courses/{c}/", {}),
        "roster partial": ("teacher", f"/courses/{c}/roster/", {}),
        "datasets (teacher)": ("teacher", f"/courses/{c}/datasets/", {}),
        "datasets (student)": ("alice", f"/courses/{c}/datasets/", {}),
        "dataset (teacher)": ("teacher", f"/datasets/{d}/", {}),
        "dataset (student)": ("alice", f"/datasets/{d}/", {}),
        "dataset status": ("teacher", f"/datasets/{d}/status/", {}),
        "gallery": ("teacher", f"/datasets/{d}/gallery/", {}),
        "gallery, last page": ("teacher", f"/datasets/{d}/gallery/?page=500", {}),
        "gallery, one class": ("teacher", f"/datasets/{d}/gallery/?class=7&split=train", {}),
        "image with 5,000 boxes": (
            "teacher",
            f"/datasets/{big.detection.pk}/items/{big.crowded_item.pk}/",
            {},
        ),
        "image": ("teacher", f"/datasets/{d}/items/{item}/", {}),
        "train page": ("alice", f"/datasets/{d}/train/", {}),
        "job page": ("alice", f"/jobs/{j}/", {}),
        "job result": ("alice", f"/jobs/{j}/result/", {}),
        "confusion cell": ("alice", f"/jobs/{j}/confusion/0/1/", {}),
        "confusion cell (partial)": ("alice", f"/jobs/{j}/confusion/0/1/", htmx),
        "try it": ("alice", f"/jobs/{j}/try/", {}),
        "compare": ("alice", f"/compare/?jobs={ids}", {}),
        "group compare": ("alice", f"/groups/{big.group.pk}/", {}),
        "queue (teacher)": ("teacher", f"/courses/{c}/queue/", {}),
        "queue (student)": ("alice", f"/courses/{c}/queue/", {}),
        "queue partial (student)": ("alice", f"/courses/{c}/queue/", htmx),
        "dashboard": ("teacher", f"/courses/{c}/dashboard/", {}),
        "dashboard live": ("teacher", f"/courses/{c}/dashboard/live/", {}),
        "assignments (teacher)": ("teacher", f"/courses/{c}/assignments/", {}),
        "assignments (student)": ("alice", f"/courses/{c}/assignments/", {}),
        "assignment (teacher)": ("teacher", f"/assignments/{a}/", {}),
        "assignment (student)": ("alice", f"/assignments/{a}/", {}),
        "assignment live (teacher)": ("teacher", f"/assignments/{a}/live/", {}),
        "new assignment": ("teacher", f"/courses/{c}/assignments/new/", {}),
        "edit assignment": ("teacher", f"/assignments/{a}/edit/", {}),
        "account": ("teacher", "/accounts/settings/", {}),
    }
    return pages


def measure(client: Client, path: str, headers: dict) -> tuple[int, float, float, int]:
    """(bytes, median CPU seconds, median wall seconds, status) of three requests after a warm-up.

    The server's work is the process's CPU time: the view, the templates and SQLite all run in
    this process. Wall time is printed too; on a machine whose two cores are shared it is
    mostly waiting for a core.
    """
    client.get(path, **headers)
    cpu, wall, sizes, status = [], [], [], 0
    for _ in range(3):
        start, start_cpu = time.perf_counter(), time.process_time()
        response = client.get(path, **headers)
        cpu.append(time.process_time() - start_cpu)
        wall.append(time.perf_counter() - start)
        sizes.append(len(response.content))
        status = response.status_code
    return max(sizes), statistics.median(cpu), statistics.median(wall), status


PAGE_NAMES = [
    "course list",
    "course page and roster",
    "roster partial",
    "datasets (teacher)",
    "datasets (student)",
    "dataset (teacher)",
    "dataset (student)",
    "dataset status",
    "gallery",
    "gallery, last page",
    "gallery, one class",
    "image with 5,000 boxes",
    "image",
    "train page",
    "job page",
    "job result",
    "confusion cell",
    "confusion cell (partial)",
    "try it",
    "compare",
    "group compare",
    "queue (teacher)",
    "queue (student)",
    "queue partial (student)",
    "dashboard",
    "dashboard live",
    "assignments (teacher)",
    "assignments (student)",
    "assignment (teacher)",
    "assignment (student)",
    "assignment live (teacher)",
    "new assignment",
    "edit assignment",
    "account",
]


def test_the_list_names_every_page(big):
    assert list(_pages(big)) == PAGE_NAMES


@pytest.mark.parametrize("name", PAGE_NAMES)
def test_every_page_stays_small_and_quick_with_60000_images(big, name):
    who, path, headers = _pages(big)[name]
    size, cpu, wall, status = measure(big.client(who), path, headers)
    print(f"\n{name}: {size / 1000:.0f} KB, {cpu * 1000:.0f} ms CPU, {wall * 1000:.0f} ms wall")
    assert status == 200
    assert size < PAGE_BYTES, f"{name}: {size:,} bytes"
    assert cpu < PAGE_SECONDS, f"{name}: {cpu * 1000:.0f} ms of CPU"


# --- the bounded lists still reach everything ---------------------------------------------------


def test_the_roster_pages_list_every_member_once(big):
    client, seen, page = big.client("teacher"), [], 1
    while True:
        response = client.get(f"/courses/{big.course.pk}/roster/", {"page": page})
        seen += re.findall(r'data-username="([^"]+)"', response.content.decode())
        if not response.context["roster_page"].has_next():
            break
        page += 1
    assert len(seen) == len(set(seen)) == STUDENTS + 1
    assert page == -(-(STUDENTS + 1) // 100)


def test_the_dashboard_pages_through_every_student(big):
    client, seen = big.client("teacher"), []
    first = client.get(f"/courses/{big.course.pk}/dashboard/")
    assert first.context["student_count"] == STUDENTS
    assert f'<dd id="stat-students">{STUDENTS}</dd>' in first.content.decode()
    pages = first.context["page"].paginator.num_pages
    for page in range(1, pages + 1):
        response = client.get(f"/courses/{big.course.pk}/dashboard/live/", {"page": page})
        seen += [row.student.username for row in response.context["rows"]]
    assert len(set(seen)) == STUDENTS
    last = client.get(f"/courses/{big.course.pk}/dashboard/", {"page": pages}).content.decode()
    assert f"/courses/{big.course.pk}/dashboard/live/?page={pages}" in last  # refreshes stay put


def test_a_student_far_down_the_leaderboard_still_sees_her_own_line(big):
    response = big.client("alice").get(f"/assignments/{big.assignment.pk}/")
    mine = response.context["my_entry"]
    assert mine is not None and mine.rank > 50 and mine.student == big.alice
    assert len(response.context["leaderboard"]) == 50
    assert response.context["leaders_not_shown"] == STUDENTS - 51
    assert 'id="leaders-more"' in response.content.decode()


def test_the_result_of_1000_classes_names_the_worst_mix_up_first(big):
    response = big.client("alice").get(f"/jobs/{big.job.pk}/result/")
    mix_ups = response.context["mix_ups"]
    assert response.context["confusion"] == [] and len(mix_ups) == 30
    assert (mix_ups[0]["true"], mix_ups[0]["predicted"], mix_ups[0]["count"]) == (0, 1, ITEMS)
    assert len(response.context["per_class"]) == 50
    body = response.content.decode()
    assert f"/jobs/{big.job.pk}/confusion/0/1/" in body and 'id="per-class-bounded"' in body


def test_the_gallery_finds_a_class_typed_by_name(big):
    response = big.client("teacher").get(
        f"/datasets/{big.dataset.pk}/gallery/", {"class_name": "クラス名 0007"}
    )
    assert response.context["page"].paginator.count == ITEMS // CLASSES
    assert {item.label for item in response.context["page"]} == {"クラス名 0007"}
    body = response.content.decode()
    assert 'name="class_name" value="クラス名 0007"' in body and "<datalist" not in body


def test_compare_draws_a_long_run_with_few_points_and_keeps_its_best_epoch(big):
    ids = ",".join(str(job.pk) for job in big.compared)
    data = big.client("alice").get("/compare/", {"jobs": ids}).context["data"]
    assert [len(run["points"]) for run in data["runs"]] == [300] * len(big.compared)
    best = data["runs"][1]
    assert best["best_val_acc"] == 0.99  # epoch 1234, which the drawn points skip
    assert 1234 not in {point["epoch"] for point in best["points"]}


def test_the_dataset_page_pages_its_classes(big):
    client = big.client("teacher")
    first = client.get(f"/datasets/{big.dataset.pk}/")
    last = client.get(f"/datasets/{big.dataset.pk}/", {"classes": CLASSES // 50})
    assert [c["name"] for c in first.context["classes"]][:2] == ["クラス名 0000", "クラス名 0001"]
    assert [c["name"] for c in last.context["classes"]][-1] == f"クラス名 {CLASSES - 1:04d}"
    assert len(first.context["split_rows"]) == 50
    body = first.content.decode()
    assert f"<strong>{CLASSES}</strong>" in body  # the number of classes, not of those shown
    assert (
        "?classes=2" in body
        and 'name="source_name"' in body
        and '<select name="source"' not in body
    )


def test_classes_are_renamed_and_merged_by_typed_name_when_there_are_too_many_to_list(world):
    from webapp.datasets import queries

    dataset = Dataset.objects.create(
        course=world.course,
        owner=world.alice,
        name="many",
        kind="classification",
        status="ready",
        head=1,
    )
    image = StoredImage.objects.create(
        sha256="f" * 64,
        file="images/f.png",
        thumb="images/f.png",
        content_type="image/png",
        width=8,
        height=8,
        channels=1,
        bytes=100,
        phash="0" * 16,
    )
    names = [f"c{i:03d}" for i in range(150)]
    _bulk(
        Category,
        [Category(dataset=dataset, index=i, name=n, valid_from=1) for i, n in enumerate(names)],
    )
    _bulk(
        Item,
        [
            Item(
                dataset=dataset,
                image=image,
                original_path=f"{n}.png",
                category_index=i,
                valid_from=1,
            )
            for i, n in enumerate(names)
        ],
    )
    Version.objects.create(dataset=dataset, number=1, summary="Imported", counts={})
    client = world.client("alice")
    edit = f"/datasets/{dataset.pk}/edit/"
    client.post(edit, {"op": "rename_class", "index_name": "c007", "name": "seven"})
    client.post(edit, {"op": "merge_classes", "source_name": "c008", "target_name": "seven"})
    dataset.refresh_from_db()
    current = queries.category_names(dataset)
    assert current[7] == "seven" and 8 not in current and dataset.head == 3
    response = client.post(
        edit, {"op": "rename_class", "index_name": "nope", "name": "x"}, follow=True
    )
    assert "has no class called “nope”" in response.content.decode()
    dataset.refresh_from_db()
    assert dataset.head == 3
