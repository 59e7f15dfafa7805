"""Training jobs through the API: who may submit, see, follow and cancel; events after N."""

import pytest
from django.test import Client

from tests.conftest import PERSONAS
from webapp.datasets import actions as dataset_actions
from webapp.datasets import tasks as dataset_tasks
from webapp.jobs.models import Job, JobEvent
from webapp.jobs.tasks import JobReporter, StaleAttempt

pytestmark = pytest.mark.django_db
SPEC = {"model": "logistic", "epochs": 1, "input_size": 8}


def _api(world, persona):
    return Client(), world.bearer(persona)


def _dataset(world, owner="alice", visibility="private"):
    dataset = dataset_actions.copy_sample(
        world.user(owner), world.course, "faces", visibility=visibility
    )
    dataset_tasks.copy_sample(dataset.pk, "faces", "en")
    dataset.refresh_from_db()
    return dataset


def _submit(world, persona, dataset, spec=SPEC):
    client, headers = _api(world, persona)
    return client.post(
        "/api/v1/jobs",
        {"dataset": dataset.pk, "spec": spec},
        content_type="application/json",
        **headers,
    )


def test_owner_submits_a_job_that_waits_in_the_queue(world):
    response = _submit(world, "alice", _dataset(world))
    assert response.status_code == 201, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert job.status == "queued" and job.dataset_version == 1
    assert job.spec == {**SPEC, "kind": "classification"}  # the dataset's kind, filled in


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"model": "logistic", "lr": -1}, "spec.lr"),
        ({"model": "logistic", "epochs": 100000}, "spec.epochs"),
        ({"model": "logistic", "data": {}}, "spec"),
    ],
)
def test_bad_specs_are_refused_naming_the_field(world, spec, field):
    response = _submit(world, "alice", _dataset(world), spec)
    assert response.status_code == 422
    assert field in response.json()["errors"]


def test_nobody_trains_on_a_hidden_test_set(world):
    hidden = _dataset(world, owner="teacher", visibility="hidden_test")
    assert _submit(world, "teacher", hidden).status_code == 403
    assert _submit(world, "alice", hidden).status_code == 403


def test_a_student_may_keep_only_so_many_jobs_waiting(world, settings):
    settings.JOB_MAX_WAITING_PER_STUDENT = 2
    dataset = _dataset(world)
    assert _submit(world, "alice", dataset).status_code == 201
    assert _submit(world, "alice", dataset).status_code == 201
    refused = _submit(world, "alice", dataset)
    assert refused.status_code == 409 and "at most 2 may wait" in refused.json()["detail"]
    shared = _dataset(world, owner="teacher", visibility="shared")
    assert _submit(world, "teacher", shared).status_code == 201  # teachers have no limit


SEE = {
    "anon": 401,
    "alice": 200,
    "bob": 404,
    "carol": 404,
    "ta": 200,
    "teacher": 200,
    "other_teacher": 404,
}


@pytest.mark.parametrize("persona", PERSONAS)
def test_who_sees_and_follows_a_job(world, persona):
    job = Job.objects.get(pk=_submit(world, "alice", _dataset(world)).json()["id"])
    client, headers = _api(world, persona)
    assert client.get(f"/api/v1/jobs/{job.pk}", **headers).status_code == SEE[persona]
    assert client.get(f"/api/v1/jobs/{job.pk}/events", **headers).status_code == SEE[persona]
    page = Client()
    if persona != "anon":
        page.force_login(world.user(persona))
    expected_page = {401: 302}.get(SEE[persona], SEE[persona])
    assert page.get(f"/jobs/{job.pk}/").status_code == expected_page


@pytest.mark.parametrize("persona", PERSONAS)
def test_who_may_cancel_a_queued_job(world, persona):
    job = Job.objects.get(pk=_submit(world, "alice", _dataset(world)).json()["id"])
    client, headers = _api(world, persona)
    response = client.post(f"/api/v1/jobs/{job.pk}/cancel", **headers)
    assert response.status_code == SEE[persona]
    job.refresh_from_db()
    assert (job.status == "cancelled") == (SEE[persona] == 200)


def test_events_after_n_give_exactly_the_later_ones(world):
    job = Job.objects.get(pk=_submit(world, "alice", _dataset(world)).json()["id"])
    for number in range(1, 6):
        JobEvent.objects.create(
            job=job, number=number, attempt=1, seq=number, kind="log", data={"message": str(number)}
        )
    client, headers = _api(world, "alice")
    events = client.get(f"/api/v1/jobs/{job.pk}/events?after=2", **headers).json()["events"]
    assert [e["seq"] for e in events] == [3, 4, 5]


def test_a_stale_attempt_cannot_write_events(world):
    job = Job.objects.get(pk=_submit(world, "alice", _dataset(world)).json()["id"])
    Job.objects.filter(pk=job.pk).update(status="running", attempts=2)
    with pytest.raises(StaleAttempt):
        JobReporter(job.pk, attempt=1)({"kind": "log", "seq": 1, "data": {}})
    JobReporter(job.pk, attempt=2)({"kind": "log", "seq": 1, "data": {"message": "ok"}})
    assert list(JobEvent.objects.filter(job=job).values_list("attempt", flat=True)) == [2]


def _running(world, *, attempts: int, silent_for: int):
    from datetime import timedelta

    from django.utils import timezone

    job = Job.objects.get(pk=_submit(world, "alice", _dataset(world)).json()["id"])
    Job.objects.filter(pk=job.pk).update(
        status="running",
        attempts=attempts,
        heartbeat_at=timezone.now() - timedelta(seconds=silent_for),
    )
    return job


def test_a_silent_job_is_requeued_to_resume(world, settings, django_capture_on_commit_callbacks):
    from unittest import mock

    from webapp.jobs import actions

    settings.JOB_HEARTBEAT_TIMEOUT = 60
    job = _running(world, attempts=1, silent_for=120)
    alive = _running(world, attempts=1, silent_for=5)
    with (
        mock.patch("webapp.jobs.tasks.train.delay") as send,
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert actions.reap_stale_jobs()["requeued"] == 1
    send.assert_called_once_with(job.pk)  # the next attempt resumes from the checkpoint
    job.refresh_from_db()
    alive.refresh_from_db()
    assert job.status == "queued" and job.attempts == 1
    assert alive.status == "running"


def test_a_job_that_keeps_losing_its_worker_fails_with_a_reason(world, settings):
    from webapp.jobs import actions

    settings.JOB_HEARTBEAT_TIMEOUT, settings.JOB_MAX_ATTEMPTS = 60, 3
    job = _running(world, attempts=3, silent_for=120)
    assert actions.reap_stale_jobs()["failed"] == 1
    job.refresh_from_db()
    assert job.status == "failed" and "stopped answering 3 times" in job.error


def test_an_unforeseen_error_on_the_worker_reads_as_words_not_none(world, monkeypatch):
    """A KeyError's message is only its key ("None"): the student reads what happened."""
    from webapp.jobs import tasks

    response = _submit(world, "alice", _dataset(world))
    job = Job.objects.get(pk=response.json()["id"])

    def broken(job):
        raise KeyError(None)

    monkeypatch.setattr(tasks, "build_spec", broken)
    tasks.train(job.pk)
    job.refresh_from_db()
    assert job.status == "failed"
    assert "unexpected error" in job.error and "KeyError" in job.error
