import pytest

from tests import live

ARTIFACTS = live.ROOT / "test-artifacts"


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker):
    """A real Celery worker process against the real Redis and the test database."""
    live.require_redis()
    with django_db_blocker.unblock():
        proc = live.start_worker(ARTIFACTS / "logs" / "celery-worker.log")
    yield proc
    live.stop(proc)
