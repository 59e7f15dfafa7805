"""The fair queue: round-robin across students, class limits and quotas, places, reordering."""

from datetime import timedelta
from unittest import mock

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client
from django.utils import timezone

from tests.conftest import PERSONAS, add_member, make_user
from webapp.jobs import actions, scheduler
from webapp.jobs.models import Job, JobStatus
from webapp.jobs.tasks import JobReporter, StaleAttempt, progress_of

pytestmark = pytest.mark.django_db
SPEC = {"model": "logistic", "epochs": 1, "input_size": 8}


@pytest.fixture(autouse=True)
def _no_broker():
    """Dispatching sends to Celery after commit; here we only look at the rows."""
    with mock.patch("webapp.jobs.tasks.train.delay") as send:
        yield send


@pytest.fixture
def dataset(world):
    from webapp.datasets import actions as dataset_actions
    from webapp.datasets import tasks as dataset_tasks

    made = dataset_actions.copy_sample(world.teacher, world.course, "faces", visibility="shared")
    dataset_tasks.copy_sample(made.pk, "faces", "en")
    made.refresh_from_db()
    return made


def _students(world, n):
    students = []
    for i in range(n):
        student = make_user(f"student{i:02d}")
        add_member(world.course, student)
        students.append(student)
    return students


def _job(owner, dataset, minutes_ago=0.0, **fields):
    return Job.objects.create(
        course=dataset.course,
        owner=owner,
        dataset=dataset,
        dataset_version=dataset.head,
        spec=SPEC,
        created_at=timezone.now() - timedelta(minutes=minutes_ago),
        **fields,
    )


def _run_queue_to_the_end(settings, slots=1) -> list[Job]:
    """Dispatch, let the started jobs finish, dispatch again … and return the start order."""
    settings.TRAIN_SLOTS = slots
    started = []
    while True:
        sent = scheduler.dispatch_jobs()
        if not sent:
            return started
        started += [Job.objects.get(pk=pk) for pk in sent]
        Job.objects.filter(pk__in=sent).update(
            status=JobStatus.SUCCEEDED, finished_at=timezone.now()
        )


def test_ten_students_with_five_jobs_each_take_turns(world, dataset, settings):
    students = _students(world, 10)
    # Each student queues all five at once, one student after another: the worst case for FIFO.
    minute = 100.0
    for student in students:
        for _ in range(5):
            _job(student, dataset, minutes_ago=minute)
            minute -= 1
    order = [job.owner.username for job in _run_queue_to_the_end(settings)]
    names = [s.username for s in students]
    assert len(order) == 50
    assert order == names * 5  # every student's k-th job before anyone's (k+1)-th


def test_a_newcomer_goes_before_the_second_jobs_of_others(world, dataset, settings):
    settings.TRAIN_SLOTS = 1
    for minute in (10, 9, 8):
        _job(world.alice, dataset, minutes_ago=minute)
    assert len(scheduler.dispatch_jobs()) == 1  # alice's first one runs
    late = _job(world.bob, dataset, minutes_ago=0)
    assert scheduler.queue_position(late)[0] == 1


def test_only_free_slots_are_filled(world, dataset, settings):
    settings.TRAIN_SLOTS = 2
    for student in _students(world, 3):
        _job(student, dataset)
    assert len(scheduler.dispatch_jobs()) == 2
    assert scheduler.dispatch_jobs() == []  # both slots are held until a job ends


def test_the_class_limit_on_running_jobs_lets_classmates_go_first(world, dataset, settings):
    world.course.concurrent_jobs_per_student = 1
    world.course.save()
    settings.TRAIN_SLOTS = 3
    alice_jobs = [_job(world.alice, dataset, minutes_ago=10 - i) for i in range(3)]
    bob_job = _job(world.bob, dataset, minutes_ago=1)
    sent = scheduler.dispatch_jobs()
    assert sorted(sent) == sorted([alice_jobs[0].pk, bob_job.pk])  # a slot stays free


def test_teachers_are_not_held_to_the_class_limit(world, dataset, settings):
    world.course.concurrent_jobs_per_student = 1
    world.course.save()
    settings.TRAIN_SLOTS = 3
    for i in range(3):
        _job(world.teacher, dataset, minutes_ago=3 - i)
    assert len(scheduler.dispatch_jobs()) == 3


def test_a_student_over_the_gpu_quota_is_refused_and_their_waiting_job_fails(
    world, dataset, settings
):
    world.course.gpu_minutes_per_student = 1
    world.course.save()
    _job(world.alice, dataset, status=JobStatus.SUCCEEDED, gpu_seconds=61)
    waiting = _job(world.alice, dataset)
    other = _job(world.bob, dataset)
    assert scheduler.dispatch_jobs() == [other.pk]
    waiting.refresh_from_db()
    assert waiting.status == "failed" and "GPU minutes" in waiting.error
    with pytest.raises(actions.TooManyJobs, match="GPU minutes"):
        actions.submit(world.alice, dataset, SPEC)


def test_places_and_estimated_starts_follow_the_line(world, dataset, settings):
    settings.TRAIN_SLOTS = 1
    jobs = [_job(s, dataset, minutes_ago=5 - i) for i, s in enumerate(_students(world, 4))]
    scheduler.dispatch_jobs()
    places = scheduler.queue_positions()
    assert [places[j.pk][0] for j in jobs[1:]] == [1, 2, 3]
    starts = [places[j.pk][1] for j in jobs[1:]]
    assert starts == sorted(starts) and starts[0] >= timezone.now() - timedelta(seconds=1)
    assert scheduler.queue_position(jobs[0]) == (None, None)  # it has its slot


def test_a_teachers_reordering_moves_only_their_own_class(world, dataset, settings):
    from webapp.accounts.models import Membership

    other = world.other_course
    other_dataset = dataset.__class__.objects.get(pk=dataset.pk)
    other_dataset.pk = None
    other_dataset.course = other
    other_dataset.save()
    Membership.objects.get_or_create(course=other, user=world.carol)
    a = _job(world.alice, dataset, minutes_ago=4)
    c = _job(world.carol, other_dataset, minutes_ago=3)
    b = _job(world.bob, dataset, minutes_ago=2)
    assert [j.pk for j in scheduler.waiting_order()] == [a.pk, c.pk, b.pk]
    actions.reorder(b, "top")
    assert [j.pk for j in scheduler.waiting_order()] == [b.pk, c.pk, a.pk]
    actions.reorder(b, "down")
    assert [j.pk for j in scheduler.waiting_order()] == [a.pk, c.pk, b.pk]


def test_cancelling_a_waiting_job_frees_its_place(world, dataset, settings):
    settings.TRAIN_SLOTS = 1
    first, second = _job(world.alice, dataset, minutes_ago=2), _job(world.bob, dataset)
    assert scheduler.dispatch_jobs() == [first.pk]
    actions.cancel(first)  # handed to the queue, not yet claimed: it ends at once
    second.refresh_from_db()
    assert second.dispatched_at is not None


def test_a_lost_dispatch_is_sent_again(world, dataset, settings, _no_broker):
    settings.JOB_DISPATCH_TIMEOUT = 60
    lost = _job(world.alice, dataset, dispatched_at=timezone.now() - timedelta(minutes=5))
    recent = _job(world.bob, dataset, dispatched_at=timezone.now())
    assert scheduler.stale_dispatches() == [lost.pk]
    _no_broker.assert_called_once_with(lost.pk)
    assert recent.pk not in scheduler.stale_dispatches()


def test_submitting_dispatches_after_commit(world, dataset, settings, _no_broker):
    settings.TRAIN_SLOTS = 1
    from django.db import transaction

    with mock.patch.object(transaction, "on_commit", lambda fn: fn()):
        job = actions.submit(world.alice, dataset, SPEC)
    job.refresh_from_db()
    assert job.dispatched_at is not None
    _no_broker.assert_called_once_with(job.pk)


def test_a_group_queues_one_job_per_value_or_none(world, dataset, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"  # the earlier run's weights below
    group = actions.submit_group(world.alice, dataset, SPEC, "optimizer", ["sgd", "adam", "adamw"])
    jobs = list(group.jobs.order_by("pk"))
    assert [j.label for j in jobs] == ["sgd", "adam", "adamw"]
    assert [j.spec["optimizer"] for j in jobs] == ["sgd", "adam", "adamw"]
    before = Job.objects.count()
    with pytest.raises(actions.JobRefused, match="lr"):
        actions.submit_group(world.alice, dataset, SPEC, "lr", [0.1, -1])
    assert Job.objects.count() == before
    earlier = _job(world.alice, dataset, status=JobStatus.SUCCEEDED)
    default_storage.save(f"jobs/{earlier.pk}/model.safetensors", ContentFile(b"weights"))
    source = f"job:{earlier.pk}"
    modes = actions.submit_group(
        world.alice,
        dataset,
        {**SPEC, "transfer": {"source": source}},
        "transfer.mode",
        ["scratch", "feature_extraction", "fine_tuning"],
    )
    assert [j.spec["transfer"] for j in modes.jobs.order_by("pk")] == [
        {"source": source, "mode": m} for m in ("scratch", "feature_extraction", "fine_tuning")
    ]


def test_transfer_from_a_run_one_may_not_see_is_refused(world, dataset):
    bobs = _job(world.bob, dataset, status=JobStatus.SUCCEEDED)
    spec = {**SPEC, "transfer": {"source": f"job:{bobs.pk}", "mode": "fine_tuning"}}
    with pytest.raises(actions.JobRefused, match="No earlier run"):
        actions.submit(world.alice, dataset, spec)
    unfinished = _job(world.alice, dataset)
    spec["transfer"]["source"] = f"job:{unfinished.pk}"
    with pytest.raises(actions.JobRefused, match="no trained model"):
        actions.submit(world.alice, dataset, spec)


MOVE = {"anon": 401, "alice": 403, "bob": 404, "carol": 404, "ta": 403, "teacher": 200,
        "other_teacher": 404}  # fmt: skip


@pytest.mark.parametrize("persona", PERSONAS)
def test_only_the_class_teacher_reorders_the_queue(world, dataset, persona):
    job = _job(world.alice, dataset)
    response = Client().post(
        f"/api/v1/jobs/{job.pk}/move",
        {"where": "top"},
        content_type="application/json",
        **world.bearer(persona),
    )
    assert response.status_code == MOVE[persona]


def test_the_api_gives_place_progress_and_metrics(world, dataset, settings):
    settings.TRAIN_SLOTS = 1
    _job(world.bob, dataset, minutes_ago=3, status=JobStatus.RUNNING, progress=0.5)
    job = _job(world.alice, dataset)
    body = Client().get(f"/api/v1/jobs/{job.pk}", **world.bearer("alice")).json()
    assert body["queue_position"] == 1 and body["estimated_start"]
    assert body["progress"] == 0 and body["metrics"]["test_accuracy"] is None
    from webapp.jobs import kinds

    result = {"test": {"accuracy": 0.9, "loss": 0.3}, "val": {"accuracy": 0.8, "loss": 0.5}}
    finished = {"kind": "finished", "data": result}  # the job task keeps metrics from it
    Job.objects.filter(pk=job.pk).update(
        status="succeeded",
        progress=1.0,
        result=result,
        metrics=kinds.metrics_after("classification", finished, {}),
    )
    body = Client().get(f"/api/v1/jobs/{job.pk}", **world.bearer("alice")).json()
    assert body["queue_position"] is None
    assert body["metrics"]["test_accuracy"] == 0.9
    assert body["metrics"]["val_accuracy"] == 0.8 and body["metrics"]["val_loss"] == 0.5


QUEUE_PAGE = {"anon": 302, "alice": 200, "bob": 200, "carol": 404, "ta": 200, "teacher": 200,
              "other_teacher": 404}  # fmt: skip


@pytest.mark.parametrize("persona", PERSONAS)
def test_the_queue_page_shows_the_class_its_own_jobs_and_staff_everything(world, dataset, persona):
    job = _job(world.alice, dataset)
    response = world.client(persona).get(f"/courses/{world.course.pk}/queue/")
    assert response.status_code == QUEUE_PAGE[persona]
    if response.status_code == 200:
        shown = f'data-job="{job.pk}"' in response.content.decode()
        assert shown == (persona in ("alice", "ta", "teacher"))


def test_progress_counts_epochs_and_folds():
    batch = {"kind": "batch", "data": {"epoch": 2, "step": 5, "steps": 10}}
    assert progress_of(batch, epochs=4, folds=1, fold=0) == pytest.approx(1.5 / 4)
    assert progress_of(batch, epochs=4, folds=2, fold=1) == pytest.approx(5.5 / 8)
    assert progress_of({"kind": "log", "data": {}}, epochs=4, folds=1, fold=0) is None


def test_batch_events_are_thinned_before_they_are_stored(world, dataset, settings):
    settings.JOB_BATCH_EVENT_SECONDS = 3600
    job = _job(world.alice, dataset, status=JobStatus.RUNNING, attempts=1)
    reporter = JobReporter(job.pk, 1, epochs=2)
    for step in range(1, 11):
        reporter({"kind": "batch", "seq": step, "data": {"epoch": 1, "step": step, "steps": 10}})
    reporter({"kind": "epoch", "seq": 11, "data": {"epoch": 1, "val_acc": 0.5}})
    kinds = list(job.events.values_list("kind", flat=True))
    assert kinds == ["batch", "epoch"]  # one batch event kept; every epoch event kept
    job.refresh_from_db()
    assert job.progress == pytest.approx(0.5) and job.metrics["best_val_acc"] == 0.5


def test_a_job_past_the_soft_time_limit_fails_with_a_reason(world, dataset, settings):
    from celery.exceptions import SoftTimeLimitExceeded

    from webapp.jobs import tasks

    job = _job(world.alice, dataset)
    with mock.patch("trainer.loops.run", side_effect=SoftTimeLimitExceeded()):
        tasks.train(job.pk)
    job.refresh_from_db()
    assert job.status == "failed" and "time limit" in job.error and job.attempts == 1


def test_the_lease_renews_while_it_owns_the_job_and_notices_a_takeover(world, dataset):
    from webapp.jobs.tasks import Lease

    job = _job(world.alice, dataset, status=JobStatus.RUNNING, attempts=1)
    lease = Lease(job.pk, 1, base_seconds=30.0)
    assert lease.renew()
    job.refresh_from_db()
    assert job.gpu_seconds >= 30.0 and job.heartbeat_at is not None
    Job.objects.filter(pk=job.pk).update(attempts=2)  # the reaper gave it to another attempt
    assert not lease.renew()
    lease.lost = True
    with pytest.raises(StaleAttempt):
        JobReporter(job.pk, 1, lease=lease)({"kind": "log", "seq": 1, "data": {}})


def test_a_submit_survives_a_broker_that_is_away(world, dataset, settings, _no_broker):
    from django.db import transaction
    from kombu.exceptions import OperationalError

    settings.TRAIN_SLOTS = 1
    _no_broker.side_effect = OperationalError("Redis is restarting")
    with mock.patch.object(transaction, "on_commit", lambda fn: fn()):
        job = actions.submit(world.alice, dataset, SPEC)  # no exception for the student
    job.refresh_from_db()
    assert job.status == "queued" and job.dispatched_at is not None  # resent by the reaper
    _no_broker.side_effect = None
    Job.objects.filter(pk=job.pk).update(dispatched_at=timezone.now() - timedelta(hours=1))
    assert scheduler.stale_dispatches() == [job.pk]
