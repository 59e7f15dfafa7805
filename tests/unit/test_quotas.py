"""Quotas hold while a job runs and for every way data gets in: GPU minutes stop a running job,
samples and job files count against storage, and a student has at most so many datasets."""

import functools
from pathlib import Path
from unittest import mock

import pytest
from django.utils import translation

from webapp.datasets import actions as dataset_actions
from webapp.datasets import tasks as dataset_tasks
from webapp.jobs import tasks
from webapp.jobs.models import Job, JobStatus

pytestmark = pytest.mark.django_db
SPEC = {"model": "logistic", "epochs": 1, "input_size": 8}
STAFF = ("ta", "teacher")


@pytest.fixture(autouse=True)
def _no_broker():
    """Dispatching sends to Celery after commit; here we only look at the rows."""
    with mock.patch("webapp.jobs.tasks.train.delay") as send:
        yield send


@pytest.fixture
def faces(world):
    made = dataset_actions.copy_sample(world.teacher, world.course, "faces", visibility="shared")
    dataset_tasks.copy_sample(made.pk, "faces", "en")
    made.refresh_from_db()
    return made


def _job(owner, dataset, course=None, **fields) -> Job:
    return Job.objects.create(
        course=course or dataset.course,
        owner=owner,
        dataset=dataset,
        dataset_version=dataset.head,
        spec=SPEC,
        **fields,
    )


class FakeClock:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# --- GPU minutes while a job runs ---------------------------------------------------------------


@pytest.mark.parametrize("persona", ["alice", "bob", *STAFF])
def test_the_lease_notices_when_the_owners_gpu_minutes_run_out(world, faces, persona):
    world.course.gpu_minutes_per_student = 1
    world.course.save()
    owner = world.user(persona)
    _job(owner, faces, status=JobStatus.SUCCEEDED, gpu_seconds=50)  # an earlier run: 50 s
    _job(owner, faces, course=world.other_course, status=JobStatus.SUCCEEDED, gpu_seconds=500)
    job = _job(owner, faces, status=JobStatus.RUNNING, attempts=1)
    clock = FakeClock()
    lease = tasks.Lease(job.pk, 1, base_seconds=0.0, clock=clock)
    reporter = tasks.JobReporter(job.pk, 1, lease=lease)

    clock.advance(9)  # 59 s of 60 used: the run goes on (another class's time does not count)
    assert lease.renew()
    assert not lease.out_of_time and not reporter.cancelled()
    clock.advance(2)  # 61 s
    assert lease.renew()
    job.refresh_from_db()
    assert job.gpu_seconds == pytest.approx(11)
    exempt = persona in STAFF
    assert lease.out_of_time is not exempt
    assert reporter.cancelled() is not exempt  # the trainer stops at its next batch


def _fake_trainer(clock, *, batches: int, seconds_per_batch: float = 10.0):
    """Trains as the real loop does for this test's purpose: a checkpoint, then batches that
    check `cancel` between them; the lease renews after each batch, as its thread would."""
    from trainer import fit

    def run(spec, out_dir, reporter, *, cancel, resume):
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        reporter({"kind": "started", "seq": 1, "data": {"fold": 0}})
        (out / "checkpoint.pt").write_bytes(b"w" * 4000)
        reporter({"kind": "checkpoint", "seq": 2, "data": {"epoch": 1}})
        for step in range(batches):
            clock.advance(seconds_per_batch)
            reporter.lease.renew()
            if cancel():
                failed = {"reason": "Cancelled.", "cancelled": True}
                reporter({"kind": "failed", "seq": 3 + step, "data": failed})
                raise fit.Cancelled
        result = {"test": None, "val": {"accuracy": 0.5, "loss": 1.0}}
        reporter({"kind": "finished", "seq": 3 + batches, "data": result})
        return result

    return run


def _train_with(job: Job, clock, trainer) -> Job:
    real = tasks.Lease
    with (
        mock.patch.object(real, "start", lambda self: None),  # the trainer renews instead
        mock.patch("webapp.jobs.tasks.Lease", functools.partial(real, clock=clock)),
        mock.patch("trainer.loops.run", trainer),
    ):
        tasks.train(job.pk)
    job.refresh_from_db()
    return job


@pytest.mark.parametrize("persona", ["alice", *STAFF])
def test_a_run_past_the_gpu_quota_stops_and_keeps_its_work(world, faces, persona):
    world.course.gpu_minutes_per_student = 1
    world.course.save()
    owner = world.user(persona)
    _job(owner, faces, status=JobStatus.SUCCEEDED, gpu_seconds=55)
    job = _job(owner, faces)
    clock = FakeClock()
    job = _train_with(job, clock, _fake_trainer(clock, batches=30))  # 300 s if nothing stops it

    kinds = list(job.events.values_list("kind", flat=True))
    checkpoint = Path(tasks.default_storage.path(f"jobs/{job.pk}/checkpoint.pt"))
    assert checkpoint.exists() and kinds[:2] == ["started", "checkpoint"]
    if persona in STAFF:  # teachers and TAs have no quota
        assert job.status == JobStatus.SUCCEEDED and job.gpu_seconds == pytest.approx(300)
        return
    reason = "Stopped: your GPU time for this class (1 minutes) ran out. Ask your teacher for more."
    assert job.status == JobStatus.FAILED and job.error == reason
    assert job.gpu_seconds == pytest.approx(10)  # stopped after the batch that used the time up
    assert kinds == ["started", "checkpoint", "failed"]
    last = job.events.last()
    assert last.data == {"reason": reason}  # the page shows why; it is not "cancelled"


def test_a_resumed_run_whose_owner_has_no_time_left_fails_before_training(world, faces):
    world.course.gpu_minutes_per_student = 2
    world.course.save()
    _job(world.alice, faces, status=JobStatus.SUCCEEDED, gpu_seconds=100)
    job = _job(world.alice, faces, attempts=1, gpu_seconds=30)  # requeued by the reaper
    trainer = mock.Mock()
    job = _train_with(job, FakeClock(), trainer)
    trainer.assert_not_called()
    assert job.status == JobStatus.FAILED and "(2 minutes) ran out" in job.error


def test_the_gpu_time_message_is_in_japanese_too():
    with translation.override("ja"):
        japanese = tasks.gpu_time_message(30)
    assert "30" in japanese and "GPU" in japanese
    assert japanese != tasks.gpu_time_message(30)
