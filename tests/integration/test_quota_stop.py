"""A real worker stops a student's run when their GPU minutes in the class run out."""

import time
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import translation

from webapp.datasets import actions as dataset_actions
from webapp.datasets.models import Dataset
from webapp.jobs import actions, tasks
from webapp.jobs.models import Job, JobEvent, JobStatus

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
# Far longer than the quota allows: 200 epochs of about a second each on two quiet CPU cores.
LONG_SPEC = {"model": "simple_cnn", "epochs": 200, "input_size": 32, "batch_size": 16}


def _wait_for(condition, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_running_job_stops_when_the_students_gpu_minutes_run_out(world, celery_worker_process):
    digits = dataset_actions.copy_sample(world.teacher, world.course, "digits", visibility="shared")
    _wait_for(lambda: Dataset.objects.get(pk=digits.pk).status == "ready", 240, "the copy")
    digits.refresh_from_db()
    world.course.gpu_minutes_per_student = 1
    world.course.save()
    Job.objects.create(  # an earlier run used all but 3 seconds of alice's minute
        course=world.course,
        owner=world.alice,
        dataset=digits,
        dataset_version=digits.head,
        spec=LONG_SPEC,
        status=JobStatus.SUCCEEDED,
        gpu_seconds=57,
    )
    job = actions.submit(world.alice, digits, LONG_SPEC)
    # The lease checks at each heartbeat (JOB_HEARTBEAT_INTERVAL, 30 s by default).
    heartbeat = settings.JOB_HEARTBEAT_INTERVAL
    done = _wait_for(
        lambda: Job.objects.filter(
            pk=job.pk, status__in=["failed", "succeeded", "cancelled"]
        ).first(),
        heartbeat + 120,
        "the quota to stop the run",
    )
    assert done.status == "failed", done.error
    with translation.override("ja"):  # the worker writes in the site's language
        japanese = tasks.gpu_time_message(1)
    assert done.error in (tasks.gpu_time_message(1), japanese)
    assert "(1 minutes) ran out" in tasks.gpu_time_message(1)
    assert 3 <= done.gpu_seconds <= heartbeat + 30  # stopped at the first beat past the quota
    events = list(JobEvent.objects.filter(job_id=job.pk).order_by("number"))
    assert [e.number for e in events] == list(range(1, len(events) + 1))
    assert events[0].kind == "started" and any(e.kind == "batch" for e in events)
    assert events[-1].kind == "failed" and events[-1].data == {"reason": done.error}
    folder = Path(settings.MEDIA_ROOT, "jobs", str(job.pk))
    assert (folder / "checkpoint.pt").exists() == any(e.kind == "checkpoint" for e in events)
    # What it kept counts in alice's storage.
    assert done.artifact_bytes == sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
