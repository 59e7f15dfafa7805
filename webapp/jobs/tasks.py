"""The Celery task that runs a job on a `train` worker: claim, train, store and send events.

A worker claims a job by a conditional update (queued → running, attempt + 1); the attempt
number fences every write, so a redelivered message never mixes two runs' events.
"""

import logging
import socket
import time

from asgiref.sync import async_to_sync
from celery import shared_task
from channels.layers import get_channel_layer
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from webapp.jobs.models import Job, JobEvent, JobStatus

log = logging.getLogger(__name__)
CANCEL_CHECK_SECONDS = 2.0


def job_group(job_id: int) -> str:
    return f"job-{job_id}"


class StaleAttempt(Exception):
    """Another attempt owns the job now: this one must stop writing."""


class JobReporter:
    """Trainer events → database (first) → the job's channel group; also the heartbeat."""

    def __init__(self, job_id: int, attempt: int):
        self.job_id = job_id
        self.attempt = attempt
        self.layer = get_channel_layer()
        self.last_cancel_check = 0.0
        self.cancel_requested = False
        self.last_event: dict | None = None

    def __call__(self, event: dict) -> None:
        self.last_event = event
        with transaction.atomic():
            owned = Job.objects.select_for_update().filter(
                pk=self.job_id, attempts=self.attempt, status=JobStatus.RUNNING
            )
            if not owned.update(heartbeat_at=timezone.now()):
                raise StaleAttempt
            last = JobEvent.objects.filter(job_id=self.job_id).aggregate(n=Max("number"))["n"]
            stored = JobEvent.objects.create(
                job_id=self.job_id,
                number=(last or 0) + 1,
                attempt=self.attempt,
                seq=event.get("seq", 0),
                kind=event["kind"],
                data=event.get("data", {}),
            )
        message = stored.as_message()
        if self.layer is not None:
            async_to_sync(self.layer.group_send)(
                job_group(self.job_id), {"type": "job.event", "event": message}
            )

    def cancelled(self) -> bool:
        """Checked between batches; asks the database at most every two seconds."""
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
    categories = queries.categories_at(dataset, job.dataset_version)
    label_of = {c.index: position for position, c in enumerate(categories)}
    items = []
    rows = queries.items_at(dataset, job.dataset_version).select_related("image")
    for item in rows.iterator(chunk_size=2000):
        items.append(
            {
                "path": default_storage.path(item.image.file),
                "label": label_of[item.category_index],
                "split": item.split,
                "fold": item.fold,
                "id": item.pk,
            }
        )
    data = {
        "classes": [c.name for c in categories],
        "items": items,
        "version": f"{dataset.pk}:{job.dataset_version}",
    }
    return {**job.spec, "data": data}


def _finish(job_id: int, attempt: int, **fields) -> None:
    Job.objects.filter(pk=job_id, attempts=attempt).update(finished_at=timezone.now(), **fields)


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
    reporter = JobReporter(job_id, attempt)
    started = time.monotonic()

    from trainer import fit, loops  # torch is imported on workers only
    from trainer.spec import SpecError, load_spec

    out_dir = default_storage.path(f"jobs/{job_id}")
    try:
        spec = load_spec(build_spec(job))
        result = loops.run(spec, out_dir, reporter, cancel=reporter.cancelled, resume=attempt > 1)
    except StaleAttempt:
        log.warning("job %s: attempt %s lost its lease; stopping", job_id, attempt)
        return
    except fit.Cancelled:
        _finish(job_id, attempt, status=JobStatus.CANCELLED, gpu_seconds=time.monotonic() - started)
        return
    except SpecError as exc:
        _finish(job_id, attempt, status=JobStatus.FAILED, error=str(exc))
        return
    except Exception as exc:  # noqa: BLE001 - the failed event already says why, for the student
        last = reporter.last_event or {}
        reason = last.get("data", {}).get("reason") if last.get("kind") == "failed" else None
        _finish(
            job_id,
            attempt,
            status=JobStatus.FAILED,
            error=reason or str(exc),
            gpu_seconds=time.monotonic() - started,
        )
        if reason is None:
            log.exception("job %s failed", job_id)
        return
    _finish(
        job_id,
        attempt,
        status=JobStatus.SUCCEEDED,
        result=result,
        gpu_seconds=time.monotonic() - started,
    )


@shared_task(name="jobs.reap")
def reap() -> dict:
    """Celery beat runs this every minute (see CELERY_BEAT_SCHEDULE)."""
    from webapp.jobs.actions import reap_stale_jobs  # actions imports this module

    return reap_stale_jobs()
