"""Quotas hold while a job runs and for every way data gets in: GPU minutes stop a running job,
samples and job files count against storage, and a student has at most so many datasets."""

import functools
import json
from pathlib import Path
from unittest import mock

import pytest
from django.test import Client
from django.utils import translation

from tests.conftest import assert_api_error
from webapp.datasets import actions as dataset_actions
from webapp.datasets import queries, quota
from webapp.datasets import tasks as dataset_tasks
from webapp.datasets.models import Dataset
from webapp.datasets.samples import SAMPLES
from webapp.jobs import actions as job_actions
from webapp.jobs import tasks
from webapp.jobs.models import Job, JobStatus

pytestmark = pytest.mark.django_db
SPEC = {"model": "logistic", "epochs": 1, "input_size": 8}
STAFF = ("ta", "teacher")


@pytest.fixture(autouse=True)
def _own_media(settings, tmp_path):
    """Stored images and runs' files go to this test's folder: a run's folder is named by its
    id, which another test's database gives out again."""
    settings.MEDIA_ROOT = tmp_path / "media"


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
    from trainer import driver

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
                raise driver.Cancelled
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


def test_a_finished_run_records_the_bytes_of_its_files(world, faces):
    job = _job(world.alice, faces)
    clock = FakeClock()
    trainer = _fake_trainer(clock, batches=2)

    def trainer_with_model(spec, out_dir, reporter, **options):
        result = trainer(spec, out_dir, reporter, **options)
        (Path(out_dir) / "model.safetensors").write_bytes(b"m" * 3000)
        return result

    job = _train_with(job, clock, trainer_with_model)
    assert job.status == JobStatus.SUCCEEDED
    folder = Path(tasks.default_storage.path(f"jobs/{job.pk}"))
    assert job.artifact_bytes == sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    assert job.artifact_bytes == 7000  # the checkpoint and the exported model


# --- storage: samples and the files of training runs --------------------------------------------


def _api(world, persona):
    headers = {**world.bearer(persona), "HTTP_ACCEPT_LANGUAGE": "en"}

    def call(method: str, path: str, body: dict):
        return getattr(Client(), method)(
            path, data=json.dumps(body), content_type="application/json", **headers
        )

    return call


def _fill(world, owner, bytes_used: int, course=None) -> Dataset:
    """A dataset of `owner` that already holds `bytes_used` bytes."""
    return Dataset.objects.create(
        course=course or world.course,
        owner=owner,
        name="earlier work",
        kind="classification",
        bytes_used=bytes_used,
    )


@pytest.fixture
def one_mb(world):
    world.course.storage_mb_per_student = 1
    world.course.save()
    return world.course


@pytest.mark.parametrize("persona", ["alice", "bob", *STAFF])
def test_copying_a_sample_larger_than_the_storage_left_is_refused_before_copying(
    world, one_mb, persona
):
    user = world.user(persona)
    kept = _fill(world, user, 600_000)
    digits = SAMPLES["digits"]
    assert digits.pixel_bytes > quota.MB  # 1,797 images of 32×32
    response = _api(world, persona)(
        "post", "/api/v1/datasets/samples", {"course": one_mb.pk, "sample": "digits"}
    )
    if persona in STAFF:  # teachers and TAs have no quota
        assert response.status_code == 202, response.content
        return
    body = assert_api_error(response, 413)
    assert "storage quota" in body["detail"] and "sample" in body["errors"]
    assert "1.8 MB" in body["detail"] and "0.4 MB left" in body["detail"]
    assert list(Dataset.objects.filter(owner=user)) == [kept]  # nothing new, nothing lost
    assert Dataset.objects.get(pk=kept.pk).bytes_used == 600_000


def test_the_datasets_page_shows_why_a_sample_was_not_copied(world, one_mb):
    _fill(world, world.alice, quota.MB)
    client = world.client("alice")
    url = f"/courses/{one_mb.pk}/datasets/sample/"
    response = client.post(url, {"sample": "faces"}, follow=True, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert b"your storage quota in this class has 0.0 MB left" in response.content
    assert Dataset.objects.filter(owner=world.alice).count() == 1


def test_a_sample_copy_stores_at_most_what_its_check_counted(world, one_mb):
    """The check before the copy counts exactly what the ingest counts: one byte less and the
    copy is refused; exactly enough and every image is stored."""
    faces = SAMPLES["faces"]
    earlier = _fill(world, world.alice, quota.MB - faces.pixel_bytes + 1)
    with pytest.raises(dataset_actions.QuotaExceeded):
        dataset_actions.copy_sample(world.alice, one_mb, "faces")
    earlier.bytes_used -= 1
    earlier.save()
    dataset = dataset_actions.copy_sample(world.alice, one_mb, "faces")
    dataset_tasks.copy_sample(dataset.pk, "faces", "en")
    dataset.refresh_from_db()
    assert dataset.status == "ready" and dataset.report["rejected_total"] == 0
    assert queries.items_at(dataset).count() == faces.count


@pytest.mark.parametrize("key", sorted(SAMPLES))
def test_each_sample_declares_the_shape_of_its_images(key):
    sample = SAMPLES[key]
    first = next(iter(sample.build().records))
    assert first.pixels.shape == sample.image_shape and first.pixels.dtype.itemsize == 1


def test_the_files_of_training_runs_count_in_the_storage_used(world, faces, one_mb):
    _job(world.alice, faces, status=JobStatus.SUCCEEDED, artifact_bytes=700_000)
    _job(world.alice, faces, course=world.other_course, artifact_bytes=10**9)  # another class
    _fill(world, world.alice, 200_000)
    use = quota.storage_use(world.alice, one_mb)
    assert (use.datasets, use.job_files, use.used) == (200_000, 700_000, 900_000)
    assert quota.storage_left(world.alice, one_mb) == quota.MB - 900_000
    # An upload that would have fitted without the runs' files is refused.
    response = _api(world, "alice")(
        "post", "/api/v1/uploads", {"course": one_mb.pk, "file_name": "a.zip", "size": 200_000}
    )
    assert "storage quota" in assert_api_error(response, 413)["detail"]


@pytest.mark.parametrize("persona", ["alice", *STAFF])
def test_a_full_storage_refuses_new_jobs(world, faces, one_mb, persona):
    user = world.user(persona)
    done = _job(user, faces, status=JobStatus.SUCCEEDED, artifact_bytes=quota.MB)
    response = _api(world, persona)("post", "/api/v1/jobs", {"dataset": faces.pk, "spec": SPEC})
    if persona in STAFF:
        assert response.status_code == 201, response.content
        return
    body = assert_api_error(response, 413)
    assert "storage in this class is full" in body["detail"]
    assert "files of your training runs" in body["detail"]
    assert list(Job.objects.filter(owner=user)) == [done]
    with pytest.raises(job_actions.StorageFull):
        job_actions.submit(user, faces, SPEC)


def test_the_datasets_page_shows_the_students_storage_and_not_the_staffs(world, faces, one_mb):
    _job(world.alice, faces, artifact_bytes=300 * 1024)
    _fill(world, world.alice, 200 * 1024)
    page = world.client("alice").get(f"/courses/{one_mb.pk}/datasets/", HTTP_ACCEPT_LANGUAGE="en")
    text = page.content.decode().replace("\xa0", " ")  # sizes keep their unit on the line
    assert 'id="storage-use"' in text and "500.0 KB of 1.0 MB used" in text
    assert "Files of your training runs (models, checkpoints, predictions): 300.0 KB" in text
    staff = world.client("teacher").get(f"/courses/{one_mb.pk}/datasets/")
    assert b'id="storage-use"' not in staff.content
    ja = world.client("alice").get(f"/courses/{one_mb.pk}/datasets/", HTTP_ACCEPT_LANGUAGE="ja")
    text = ja.content.decode().replace("\xa0", " ")
    assert "このクラスでの保存容量" in text and "1.0 MB 中 500.0 KB 使用" in text
    assert "あと 49 個のデータセットを作れます" in text


# --- datasets per student -----------------------------------------------------------------------


@pytest.fixture
def two_datasets(world, settings):
    settings.MAX_DATASETS_PER_STUDENT = 2
    for persona in ("alice", "ta", "teacher"):
        for _ in range(2):
            _fill(world, world.user(persona), 0)


@pytest.mark.parametrize("persona", ["alice", *STAFF])
def test_a_student_with_the_most_datasets_cannot_copy_a_sample(world, two_datasets, persona):
    response = _api(world, persona)(
        "post", "/api/v1/datasets/samples", {"course": world.course.pk, "sample": "faces"}
    )
    if persona in STAFF:
        assert response.status_code == 202, response.content
        return
    body = assert_api_error(response, 409)
    assert "You already have 2 datasets in this class" in body["detail"]
    assert Dataset.objects.filter(owner=world.alice).count() == 2


@pytest.mark.parametrize("persona", ["alice", *STAFF])
def test_a_student_with_the_most_datasets_cannot_start_an_upload(world, two_datasets, persona):
    response = _api(world, persona)(
        "post", "/api/v1/uploads", {"course": world.course.pk, "file_name": "a.zip", "size": 10}
    )
    if persona in STAFF:
        assert response.status_code == 201, response.content
        return
    assert "the most a student may have" in assert_api_error(response, 409)["detail"]


def test_an_upload_started_below_the_limit_cannot_complete_above_it(world, settings):
    settings.MAX_DATASETS_PER_STUDENT = 1
    upload = dataset_actions.start_upload(world.alice, world.course, "a.zip", 4)
    dataset_actions.receive_chunk(upload, 0, b"abcd")
    _fill(world, world.alice, 0)  # a sample copied meanwhile
    response = _api(world, "alice")(
        "post", f"/api/v1/uploads/{upload.pk}/complete", {"name": "late", "kind": "classification"}
    )
    assert "You already have 1 datasets" in assert_api_error(response, 409)["detail"]
    assert Dataset.objects.filter(owner=world.alice).count() == 1


def test_the_limit_counts_each_students_datasets_in_each_class(world, two_datasets):
    dataset_actions.copy_sample(world.bob, world.course, "faces")  # bob has none yet
    _fill(world, world.alice, 0, course=world.other_course)  # another class: not counted
    assert quota.datasets_left(world.alice, world.course) == 0
    assert quota.datasets_left(world.bob, world.course) == 1
    assert quota.datasets_left(world.teacher, world.course) is None


def test_the_datasets_page_shows_why_a_copy_was_refused_at_the_limit(world, two_datasets):
    client = world.client("alice")
    url = f"/courses/{world.course.pk}/datasets/sample/"
    response = client.post(url, {"sample": "faces"}, follow=True, HTTP_ACCEPT_LANGUAGE="en")
    assert b"You already have 2 datasets in this class" in response.content
    assert b"You may create 0 more datasets in this class." in response.content
