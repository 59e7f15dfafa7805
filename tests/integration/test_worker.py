"""A real Celery worker over the real Redis: tasks run, health reports it, JSON only."""

import pytest
from django.test import Client
from kombu.exceptions import ContentDisallowed

from webapp.celery import app
from webapp.front.tasks import worker_environment

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_worker_runs_a_task_and_reports_its_torch(celery_worker_process):
    import torch

    result = worker_environment.delay().get(timeout=60)
    assert result["torch"] == torch.__version__
    assert result["cuda"] == torch.cuda.is_available()


@pytest.mark.django_db
def test_healthz_reports_database_redis_and_worker(celery_worker_process):
    response = Client().get("/healthz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["database"]["ok"] and body["redis"]["ok"]
    assert body["worker"]["ok"] and body["worker"]["count"] >= 1


def test_pickle_messages_are_refused():
    from kombu.serialization import loads

    pickled = b"\x80\x04K\x01."  # pickle.dumps(1)
    with pytest.raises(ContentDisallowed):
        loads(pickled, "application/x-python-serialize", "binary", accept=app.conf.accept_content)


def test_health_says_when_no_worker_listens(settings):
    """Against an empty broker database no worker answers, and health says so."""
    from celery import Celery

    from webapp.front import health

    lonely = Celery("lonely", broker=settings.REDIS_URL.rsplit("/", 1)[0] + "/15")
    report = health.check_workers(lonely, timeout=0.5)
    assert report == {"ok": False, "count": 0}
