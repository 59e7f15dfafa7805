"""The Celery task that runs a job on a `train` worker: claim, train, store and send events.

A worker claims a job by a conditional update (queued → running, attempt + 1); the attempt
number fences every write, so a redelivered message never mixes two runs' events.
"""

import logging
import socket
import threading
import time

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Max
from django.utils import timezone
from django.utils.translation import gettext as _

from trainer.memory import out_of_memory
from webapp.errors import Refused
from webapp.jobs import broadcast, kinds, redact, spec_check
from webapp.jobs.models import Job, JobEvent, JobStatus

log = logging.getLogger(__name__)
CANCEL_CHECK_SECONDS = 2.0


def job_group(job_id: int) -> str:
    return f"job-{job_id}"


class StaleAttempt(Exception):
    """Another attempt owns the job now: this one must stop writing."""


def job_files_bytes(job_id: int) -> int:
    """Bytes of the files a job's runs wrote (checkpoints, exported models, predictions)."""
    return _folder_bytes(f"jobs/{job_id}")


def _folder_bytes(folder: str) -> int:
    """Bytes under a storage folder, through the storage API (local disk or S3 alike)."""
    try:
        folders, files = default_storage.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return 0
    total = 0
    for name in files:
        try:
            total += default_storage.size(f"{folder}/{name}")
        except OSError:  # replaced or removed meanwhile (files are written atomically)
            continue
    return total + sum(_folder_bytes(f"{folder}/{sub}") for sub in folders)


def gpu_time_ran_out(job_id: int) -> bool:
    """Whether the job's owner has used the class's GPU minutes, this run's seconds included."""
    from webapp.jobs import scheduler  # the scheduler sends tasks from this module

    job = Job.objects.select_related("owner", "course").get(pk=job_id)
    return scheduler.over_quota(job.owner, job.course)


def gpu_time_message(minutes: int) -> str:
    """Why a run was stopped when its owner's GPU minutes ran out, for the job's page."""
    return _(
        "Stopped: your GPU time for this class (%(minutes)s minutes) ran out. Ask your teacher "
        "for more."
    ) % {"minutes": minutes}


class Lease(threading.Thread):
    """Renews a running job's heartbeat and GPU time while the attempt lives, even when the
    trainer is silent for minutes (loading data); notices when another attempt took over, and
    when the owner's GPU minutes in the class ran out (`out_of_time`: the trainer then stops)."""

    def __init__(self, job_id: int, attempt: int, base_seconds: float, clock=time.monotonic):
        super().__init__(name=f"lease-{job_id}", daemon=True)
        self.job_id, self.attempt, self.base_seconds = job_id, attempt, base_seconds
        self.clock = clock
        self.started = clock()
        self.stop = threading.Event()
        self.lost = False
        self.out_of_time = False

    def elapsed(self) -> float:
        return self.clock() - self.started

    def renew(self) -> bool:
        owned = Job.objects.filter(
            pk=self.job_id, attempts=self.attempt, status=JobStatus.RUNNING
        ).update(heartbeat_at=timezone.now(), gpu_seconds=self.base_seconds + self.elapsed())
        if owned and not self.out_of_time:
            self.out_of_time = gpu_time_ran_out(self.job_id)
        return bool(owned)

    def run(self) -> None:
        try:
            while not self.stop.wait(settings.JOB_HEARTBEAT_INTERVAL):
                try:
                    if not self.renew():
                        self.lost = True
                        return
                except DatabaseError:  # the database is away for a moment: try again later
                    log.warning("job %s: heartbeat failed", self.job_id, exc_info=True)
        finally:
            connection.close()  # this thread's own connection


def progress_of(event: dict, epochs: int, folds: int, fold: int) -> float | None:
    """How far a job is (0 … 1) after a trainer event, counting k folds as k runs."""
    data = event.get("data", {})
    kind = event.get("kind")
    if kind == "batch" and data.get("steps"):
        done = data["epoch"] - 1 + data["step"] / data["steps"]
    elif kind == "epoch":
        done = data["epoch"]
    elif kind == "finished":
        return 1.0
    else:
        return None
    return min(1.0, (fold * epochs + done) / max(1, epochs * folds))


class JobReporter:
    """Trainer events → database (first) → the job's channel group; also the heartbeat.

    Batch events are thinned to one per JOB_BATCH_EVENT_SECONDS before they are stored; what
    is not stored is not sent either, so a replay shows exactly what the live page showed.
    """

    def __init__(
        self,
        job_id: int,
        attempt: int,
        *,
        epochs: int = 1,
        folds: int = 1,
        lease=None,
        kind: str = kinds.CLASSIFICATION,
    ):
        self.job_id = job_id
        self.kind = kind  # which figures Job.metrics keeps (webapp/jobs/kinds.py)
        self.attempt = attempt
        self.epochs, self.folds, self.fold = epochs, max(1, folds), 0
        self.lease = lease
        self.last_cancel_check = 0.0
        self.last_batch = -1e9
        self.cancel_requested = False
        self.last_event: dict | None = None

    def __call__(self, event: dict) -> None:
        self.last_event = event
        if self.lease is not None and self.lease.lost:
            raise StaleAttempt
        kind = event["kind"]
        if kind == "batch":
            now = time.monotonic()
            if now - self.last_batch < settings.JOB_BATCH_EVENT_SECONDS:
                return
            self.last_batch = now
        data = redact.without_server_paths(event.get("data", {}))  # names, never folders
        if kind == "started":
            self.fold = int(data.get("fold") or 0)
        if kind == "failed" and data.get("cancelled") and self.out_of_time():
            data = {"reason": self.quota_reason()}  # stopped by the quota, not by a person
        with transaction.atomic():
            job = (
                Job.objects.select_for_update()
                .filter(pk=self.job_id, attempts=self.attempt, status=JobStatus.RUNNING)
                .only("pk", "metrics", "progress", "course_id", "owner_id", "status")
                .first()
            )
            if job is None:
                raise StaleAttempt
            fields = {"heartbeat_at": timezone.now()}
            if kind == "checkpoint":  # what the owner stores grows with each checkpoint
                fields["artifact_bytes"] = job_files_bytes(self.job_id)
            progress = progress_of(event, self.epochs, self.folds, self.fold)
            if progress is not None:
                fields["progress"] = job.progress = progress
            metrics = kinds.metrics_after(self.kind, event, job.metrics or {})
            if metrics is not None:
                fields["metrics"] = job.metrics = metrics
            if self.lease is not None:
                fields["gpu_seconds"] = self.lease.base_seconds + self.lease.elapsed()
            Job.objects.filter(pk=self.job_id).update(**fields)
            last = JobEvent.objects.filter(job_id=self.job_id).aggregate(n=Max("number"))["n"]
            stored = JobEvent.objects.create(
                job_id=self.job_id,
                number=(last or 0) + 1,
                attempt=self.attempt,
                seq=event.get("seq", 0),
                kind=kind,
                data=data,
            )
            if kind in ("started", "epoch"):
                broadcast.job_changed(job)
        broadcast.send_now(
            job_group(self.job_id), {"type": "job.event", "event": stored.as_message()}
        )

    def out_of_time(self) -> bool:
        return self.lease is not None and self.lease.out_of_time

    def quota_reason(self) -> str:
        job = Job.objects.select_related("course").only("course__gpu_minutes_per_student")
        return gpu_time_message(job.get(pk=self.job_id).course.gpu_minutes_per_student)

    def cancelled(self) -> bool:
        """Checked between batches; asks the database at most every two seconds."""
        if self.out_of_time():
            return True
        now = time.monotonic()
        if now - self.last_cancel_check >= CANCEL_CHECK_SECONDS:
            self.last_cancel_check = now
            self.cancel_requested = Job.objects.filter(
                pk=self.job_id, cancel_requested=True
            ).exists()
        return self.cancel_requested


def build_spec(job: Job) -> dict:
    """The job's spec with its data: the frozen dataset version, as files on this worker."""
    from webapp.datasets import queries

    dataset = job.dataset
    # Checked at submit, and again now (`validate_job`): the owner may have lost the run since,
    # the row may have been changed, weights may have gone. Only here does "job:<id>" become a
    # file. Checked first: a refused spec costs no walk over the version's items.
    spec, problems = spec_check.validate_job(job.owner, dataset, job.spec)
    if problems:
        field, message = next(iter(problems.items()))
        raise Refused(message, field=field)
    categories = queries.categories_at(dataset, job.dataset_version)
    label_of = {c.index: position for position, c in enumerate(categories)}
    items = []
    one_label = kinds.shape(kinds.dataset_kind(dataset)).one_label_per_image  # else: its objects
    rows = queries.items_at(dataset, job.dataset_version).select_related("image")
    if not one_label:
        rows = rows.prefetch_related("annotations")
    for item in rows.iterator(chunk_size=2000):
        if one_label and item.category_index not in label_of:
            continue  # an image left without a class (cleared in the studio) teaches nothing
        entry = {
            "path": default_storage.path(item.image.file),
            "split": item.split,
            "fold": item.fold,
            "id": item.pk,
        }
        if one_label:
            entry["label"] = label_of[item.category_index]
        else:
            entry["annotations"] = [
                manifest_annotation(a, label_of[a.category_index])
                for a in item.annotations.all()
                if a.category_index in label_of
            ]
        items.append(entry)
    source_id = spec_check.source_job_id(spec)
    if source_id is not None:
        spec["transfer"] = {**spec["transfer"], "source": spec_check.source_file(source_id)}
    data = {
        "classes": [c.name for c in categories],
        "items": items,
        "version": f"{dataset.pk}:{job.dataset_version}",
    }
    schema = spec_check.keypoint_schema(categories)
    if schema is not None:
        data["keypoints"] = schema
    return {**spec, "data": data}


def manifest_annotation(annotation, category: int) -> dict:
    """One stored annotation in the spec's COCO shape (trainer.spec.ObjectAnnotation); a box
    without area (nothing a detector can learn) is left out, the rest of the object kept."""
    box = annotation.bbox
    if box is not None and not (len(box) == 4 and box[2] > 0 and box[3] > 0):
        box = None
    return {
        "category": category,
        "bbox": box,
        "segmentation": annotation.segmentation or None,
        "keypoints": annotation.keypoints or None,
        "iscrowd": bool(annotation.iscrowd),
    }


def _finish(job_id: int, attempt: int, lease: Lease | None = None, **fields) -> None:
    """Record the attempt's end (if it still owns the job), tell the watchers, start the next."""
    if lease is not None:
        lease.stop.set()
        fields["gpu_seconds"] = lease.base_seconds + lease.elapsed()
    fields["artifact_bytes"] = job_files_bytes(job_id)  # counted in the owner's storage
    if fields.get("error"):
        fields["error"] = redact.without_server_paths(fields["error"])
    with transaction.atomic():
        owned = Job.objects.filter(pk=job_id, attempts=attempt, status=JobStatus.RUNNING)
        if owned.update(finished_at=timezone.now(), progress=1.0, **fields):
            broadcast.job_changed(Job.objects.get(pk=job_id))
    from webapp.jobs import scheduler  # the scheduler sends tasks from this module

    scheduler.dispatch_jobs()


def out_of_memory_reason() -> str:
    """A job's reason when its model or a batch did not fit in the worker's memory."""
    return _(
        "The job ran out of memory on the worker: the model or a batch of images did not fit. "
        "Try a smaller batch size, a smaller input size or a smaller model."
    )


@shared_task(name="jobs.train", acks_late=True)
def train(job_id: int) -> None:
    """Run one job to its end: succeeded, failed (with a reason) or cancelled."""
    now = timezone.now()
    claimed = Job.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING,
        attempts=F("attempts") + 1,
        worker=socket.gethostname(),
        started_at=now,
        heartbeat_at=now,
    )
    if not claimed:
        return  # cancelled while queued, or another worker has it
    job = Job.objects.select_related("dataset").get(pk=job_id)
    attempt = job.attempts
    broadcast.job_changed(job)
    lease = Lease(job_id, attempt, job.gpu_seconds)
    if lease.renew() and lease.out_of_time:  # a resumed run whose owner's time ran out meanwhile
        minutes = job.course.gpu_minutes_per_student
        _finish(job_id, attempt, lease, status=JobStatus.FAILED, error=gpu_time_message(minutes))
        return
    lease.start()
    spec_fields = job.spec
    reporter = JobReporter(
        job_id,
        attempt,
        epochs=int(spec_fields.get("epochs", 5)),
        folds=int(spec_fields.get("kfold") or 1),
        lease=lease,
        kind=kinds.job_kind(job),
    )

    from trainer import driver, loops  # torch is imported on workers only
    from trainer.spec import SpecError, load_spec

    out_dir = default_storage.path(f"jobs/{job_id}")
    try:
        spec = load_spec(build_spec(job), local_files=True)  # the worker's own files
        result = loops.run(spec, out_dir, reporter, cancel=reporter.cancelled, resume=attempt > 1)
    except StaleAttempt:
        lease.stop.set()
        log.warning("job %s: attempt %s lost its lease; stopping", job_id, attempt)
        return
    except driver.Cancelled:
        if lease.out_of_time:  # the checkpoint and the events so far are kept
            _finish(job_id, attempt, lease, status=JobStatus.FAILED, error=reporter.quota_reason())
        else:
            _finish(job_id, attempt, lease, status=JobStatus.CANCELLED)
        return
    except SpecError as exc:
        _finish(job_id, attempt, lease, status=JobStatus.FAILED, error=str(exc))
        return
    except Refused as exc:  # a spec refused now (a transfer source the owner lost, say)
        _finish(job_id, attempt, lease, status=JobStatus.FAILED, error=exc.message)
        return
    except SoftTimeLimitExceeded:
        _finish(
            job_id,
            attempt,
            lease,
            status=JobStatus.FAILED,
            error=_(
                "The job ran past the time limit of the training workers and was stopped; its "
                "last checkpoint is kept. Try fewer epochs or a smaller model."
            ),
        )
        return
    except Exception as exc:  # noqa: BLE001 - the failed event already says why, for the student
        if out_of_memory(exc):  # the student can fix this one: say how, not "internal error"
            _finish(job_id, attempt, lease, status=JobStatus.FAILED, error=out_of_memory_reason())
            return
        last = reporter.last_event or {}
        reason = last.get("data", {}).get("reason") if last.get("kind") == "failed" else None
        _finish(job_id, attempt, lease, status=JobStatus.FAILED, error=reason or _unexpected(exc))
        if reason is None:
            log.exception("job %s failed", job_id)
        return
    _finish(job_id, attempt, lease, status=JobStatus.SUCCEEDED, result=result)


def _unexpected(exc: Exception) -> str:
    """What a student reads for an error nobody foresaw: its message when it has one that reads
    as words (a KeyError's is only the missing key, "None"), and that it was logged."""
    detail = str(exc)
    if isinstance(exc, LookupError) or len(detail) < 8:
        return _(
            "The run stopped on an unexpected error on the worker (%(kind)s); it was logged, "
            "so a teacher or the administrator can look into it."
        ) % {"kind": type(exc).__name__}
    return detail


@shared_task(name="jobs.reap")
def reap() -> dict:
    """Celery beat runs this every minute (see CELERY_BEAT_SCHEDULE)."""
    from webapp.jobs.actions import reap_stale_jobs  # actions imports this module

    return reap_stale_jobs()
