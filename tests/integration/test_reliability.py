"""Jobs survive what happens to servers: a worker killed mid-epoch, Redis restarted mid-run,
cancels while waiting and while running, and a fair order with one slot — real processes."""

import time
from pathlib import Path

import pytest
from django.utils import timezone

from tests import live
from webapp import launcher
from webapp.datasets import actions as dataset_actions
from webapp.datasets.models import Dataset
from webapp.jobs import actions
from webapp.jobs.models import Job, JobEvent

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
ENDED = ("succeeded", "failed", "cancelled")
# Long enough per epoch (a few seconds on two CPU cores) to be caught in the middle of one.
SLOW_SPEC = {"model": "simple_cnn", "epochs": 4, "input_size": 32, "batch_size": 16}
TINY_SPEC = {"model": "logistic", "epochs": 1, "input_size": 8}


@pytest.fixture
def digits(world, celery_worker_process):
    """The digits, copied by the worker (the action queues the copy once it has committed)."""
    dataset = dataset_actions.copy_sample(
        world.teacher, world.course, "digits", visibility="shared"
    )
    _wait_for(lambda: Dataset.objects.get(pk=dataset.pk).status == "ready", what="the copy")
    dataset.refresh_from_db()
    return dataset


def _wait_for(condition, seconds=240, what="condition"):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _ended(job_id):
    job = Job.objects.get(pk=job_id)
    return job if job.status in ENDED else None


def _events(job_id):
    return list(JobEvent.objects.filter(job_id=job_id).order_by("number"))


def _assert_no_gaps(events):
    assert [e.number for e in events] == list(range(1, len(events) + 1))


def _in_second_epoch_after_a_checkpoint(job_id):
    events = _events(job_id)
    checkpoints = [e.data["epoch"] for e in events if e.kind == "checkpoint"]
    return bool(checkpoints) and any(
        e.kind == "batch" and e.data["epoch"] == checkpoints[-1] + 1 for e in events
    )


def test_a_worker_killed_mid_epoch_resumes_from_its_checkpoint(
    world, digits, celery_worker_process, settings
):
    job = actions.submit(world.alice, digits, SLOW_SPEC)
    _wait_for(lambda: _in_second_epoch_after_a_checkpoint(job.pk), what="a checkpoint")
    celery_worker_process.kill()  # SIGKILL, worker and pool: nothing gets to clean up
    killed = Job.objects.get(pk=job.pk)
    assert killed.status == "running" and killed.attempts == 1
    saved = max(e.data["epoch"] for e in _events(job.pk) if e.kind == "checkpoint")

    celery_worker_process.restart()
    settings.JOB_HEARTBEAT_TIMEOUT = 2
    _wait_for(
        lambda: (timezone.now() - Job.objects.get(pk=job.pk).heartbeat_at).total_seconds() > 2.5,
        what="the heartbeat to go stale",
    )
    assert actions.reap_stale_jobs()["requeued"] == 1
    done = _wait_for(lambda: _ended(job.pk), what="the resumed job")

    assert done.status == "succeeded", done.error
    assert done.attempts == 2 and done.result["val"]["accuracy"] > 0.5
    events = _events(job.pk)
    _assert_no_gaps(events)
    starts = [e for e in events if e.kind == "started"]
    assert [s.attempt for s in starts] == [1, 2]
    assert starts[1].data["resumed_from"] == saved  # from the last checkpoint, not from zero
    second = [e.data["epoch"] for e in events if e.kind == "epoch" and e.attempt == 2]
    assert second == list(range(saved + 1, SLOW_SPEC["epochs"] + 1))
    first = [e.data["epoch"] for e in events if e.kind == "epoch" and e.attempt == 1]
    assert set(first) | set(second) == set(range(1, SLOW_SPEC["epochs"] + 1))
    assert events[-1].kind == "finished" and events[-1].attempt == 2


def test_redis_restarted_while_a_job_runs(world, digits, tmp_path, settings):
    """A Redis of its own (the others keep theirs): stopped and started again mid-run."""
    from webapp.celery import app
    from webapp.jobs import tasks

    redis, url = launcher.start_redis(tmp_path / "redis", persist=False)
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    worker = None
    try:
        worker = live.start_worker(
            Path(settings.BASE_DIR) / "test-artifacts" / "logs" / "celery-redis-restart.log",
            name=f"restart-{port}",
            REDIS_URL=url,
        )
        job = Job.objects.create(
            course=digits.course,
            owner=world.alice,
            dataset=digits,
            dataset_version=digits.head,
            spec=SLOW_SPEC,
            dispatched_at=timezone.now(),  # the slot is this worker's; the scheduler stays out
        )
        with app.connection_for_write(url) as broker:
            tasks.train.apply_async((job.pk,), connection=broker)
        _wait_for(
            lambda: JobEvent.objects.filter(job_id=job.pk, kind="epoch").exists(),
            what="the first epoch",
        )
        launcher.stop(redis, "redis")  # everything in it is gone: it keeps nothing on disk
        time.sleep(2)
        redis, _ = launcher.start_redis(tmp_path / "redis", persist=False, port=port)
        done = _wait_for(lambda: _ended(job.pk), what="the job after the restart")
        assert done.status == "succeeded", done.error
        assert done.attempts == 1 and done.progress == 1.0
        events = _events(job.pk)
        _assert_no_gaps(events)
        epochs = [e.data["epoch"] for e in events if e.kind == "epoch"]
        assert epochs == list(range(1, SLOW_SPEC["epochs"] + 1))
        assert events[-1].kind == "finished"
    finally:
        if worker is not None:
            live.stop(worker)
        launcher.stop(redis, "redis")  # also when the worker never started


def test_cancel_while_waiting_and_while_running(world, digits, celery_worker_process, settings):
    settings.TRAIN_SLOTS = 1
    running = actions.submit(world.alice, digits, {**SLOW_SPEC, "epochs": 20})
    waiting = actions.submit(world.bob, digits, TINY_SPEC)
    _wait_for(
        lambda: JobEvent.objects.filter(job_id=running.pk, kind="batch").exists(),
        what="the first job to train",
    )
    assert Job.objects.get(pk=waiting.pk).dispatched_at is None  # it waits for the slot
    assert actions.cancel(Job.objects.get(pk=waiting.pk)).status == "cancelled"

    asked = time.monotonic()
    actions.cancel(Job.objects.get(pk=running.pk))
    done = _wait_for(lambda: _ended(running.pk), seconds=60, what="the cancel")
    assert time.monotonic() - asked < 15
    assert done.status == "cancelled"
    events = _events(running.pk)
    _assert_no_gaps(events)
    assert events[-1].kind == "failed" and events[-1].data.get("cancelled")
    assert Path(settings.MEDIA_ROOT, "jobs", str(running.pk), "checkpoint.pt").exists() == any(
        e.kind == "checkpoint" for e in events
    )
    assert not JobEvent.objects.filter(job_id=waiting.pk).exists()


def test_one_slot_serves_students_in_turn(world, digits, celery_worker_process, settings):
    """Ten students queue five jobs each while the slot is busy; they start in turns."""
    from tests.conftest import add_member, make_user

    settings.TRAIN_SLOTS = 1
    blocker = actions.submit(world.teacher, digits, {**SLOW_SPEC, "epochs": 1})
    students = []
    for i in range(10):
        student = make_user(f"fair{i}")
        add_member(world.course, student)
        students.append(student)
    for student in students:  # the worst case for first-come-first-served
        for _ in range(5):
            actions.submit(student, digits, TINY_SPEC)
    _wait_for(lambda: _ended(blocker.pk), what="the first job")
    jobs = Job.objects.filter(owner__in=students)
    _wait_for(lambda: all(j.status in ENDED for j in jobs.all()), seconds=600, what="fifty jobs")
    order = [j.owner.username for j in jobs.order_by("started_at", "pk")]
    assert order == [s.username for s in students] * 5
    assert all(j.status == "succeeded" for j in jobs.all())
