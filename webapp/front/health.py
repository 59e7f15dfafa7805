"""Reachability checks behind /healthz, each returning {"ok": bool, ...}."""

import redis
from django.conf import settings


def check_database(connection) -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True, "engine": connection.vendor}
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return {"ok": False, "error": type(exc).__name__}


def check_redis() -> dict:
    if not settings.REDIS_URL:
        return {"ok": False, "error": "REDIS_URL is not set"}
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
    try:
        client.ping()
        return {"ok": True}
    except redis.RedisError as exc:
        return {"ok": False, "error": type(exc).__name__}
    finally:
        client.close()


def check_workers(celery_app, timeout: float = 1.0) -> dict:
    """Ask every Celery worker to answer a ping over the broker."""
    if not settings.REDIS_URL:
        return {"ok": False, "count": 0, "error": "no broker configured"}
    try:
        replies = celery_app.control.ping(timeout=timeout) or []
    except Exception as exc:  # noqa: BLE001 - broker down shows as no workers
        return {"ok": False, "count": 0, "error": type(exc).__name__}
    return {"ok": bool(replies), "count": len(replies)}
