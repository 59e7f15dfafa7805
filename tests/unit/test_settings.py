"""Production settings pass Django's deployment checks; environment helpers parse strictly."""

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from webapp import env

ROOT = Path(__file__).resolve().parents[2]


def _manage(*args: str, **environ: str) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DEBUG", "SECRET_KEY", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    clean.update(environ)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=clean, capture_output=True, text=True
    )


@pytest.mark.slow
def test_production_settings_pass_check_deploy():
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="0",
        SECRET_KEY="k7#Qm2!vX9pL4$wZ8rT1@nB6^yH3&cF5*dJ0(sG7)eK2-uM9+aP4=oN1_iR8",
        ALLOWED_HOSTS="manabi.example.ac.jp",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.slow
def test_production_refuses_to_start_without_a_secret_key():
    result = _manage("check", DEBUG="0", ALLOWED_HOSTS="x")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_envbool_refuses_ambiguous_values(monkeypatch):
    monkeypatch.setenv("SOME_FLAG", "maybe")
    with pytest.raises(ValueError, match="SOME_FLAG"):
        env.envbool("SOME_FLAG")
    monkeypatch.setenv("SOME_FLAG", "Yes")
    assert env.envbool("SOME_FLAG") is True


def test_envint_and_envlist(monkeypatch):
    monkeypatch.setenv("N", "12")
    monkeypatch.setenv("HOSTS", "a.example, b.example,,")
    assert env.envint("N", 1) == 12
    assert env.envint("UNSET_N", 7) == 7
    assert env.envlist("HOSTS") == ["a.example", "b.example"]
    monkeypatch.setenv("N", "twelve")
    with pytest.raises(ValueError, match="N="):
        env.envint("N", 1)


def test_celery_accepts_json_only():
    from webapp.celery import app

    assert app.conf.accept_content == ["json"]
    assert app.conf.task_serializer == "json"
    assert app.conf.result_serializer == "json"
    assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost


def test_only_env_py_reads_the_environment():
    offenders = []
    for path in (ROOT / "webapp").rglob("*.py"):
        if path.name in {"env.py", "celery.py", "asgi.py"}:  # the last two: DJANGO_SETTINGS_MODULE
            continue
        if "os.environ" in path.read_text() or "os.getenv" in path.read_text():
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


@pytest.mark.slow
def test_media_goes_to_s3_compatible_storage_when_a_bucket_is_named():
    code = (
        "import django; django.setup()\n"
        "from django.core.files.storage import storages; s = storages['default']\n"
        "print(type(s).__name__, s.bucket_name, s.endpoint_url)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update(
        DJANGO_SETTINGS_MODULE="webapp.settings",
        MEDIA_S3_BUCKET="manabi-media",
        MEDIA_S3_ENDPOINT_URL="http://127.0.0.1:9000",
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.stdout.split() == ["S3Storage", "manabi-media", "http://127.0.0.1:9000"], (
        result.stderr
    )


def test_code_passes_ruff():
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout


def _settings_with_redis(monkeypatch) -> dict:
    """The settings module as a server with Redis reads it (nothing connects at import)."""
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6399/0")
    return runpy.run_path(str(ROOT / "webapp" / "settings.py"))


def _connection_of(pool):
    """A connection as the pool would make it (unconnected): the timeouts it will really use."""
    return pool.connection_class(**pool.connection_kwargs)


def test_channel_layer_waits_for_a_reply_longer_than_its_blocking_pop(monkeypatch):
    """An idle websocket's consumer waits in channels_redis' blocking pop; a read timeout no
    longer than the pop kills it (1011 after about 6 s). Checked on the pool the installed
    channels_redis builds from our settings, so an upgrade of either library that breaks the
    relation fails here."""
    from channels_redis.core import RedisChannelLayer

    config = _settings_with_redis(monkeypatch)["CHANNEL_LAYERS"]["default"]["CONFIG"]
    connection = _connection_of(RedisChannelLayer(**config).create_pool(0))
    assert connection.socket_timeout is not None, "finite: a Redis that hangs must not hang a send"
    assert connection.socket_timeout >= RedisChannelLayer.brpop_timeout + 5
    assert connection.socket_connect_timeout is not None


def test_cache_and_celery_never_read_with_a_timeout_shorter_than_their_blocking_reads(
    monkeypatch,
):
    from celery.backends.redis import RedisBackend
    from django.core.cache.backends.redis import RedisCache
    from kombu.transport import redis as kombu_redis

    fresh = _settings_with_redis(monkeypatch)
    cache = fresh["CACHES"]["default"]
    pool = RedisCache(cache["LOCATION"], cache)._cache._get_connection_pool(write=True)
    # The cache sends only short commands, so a short read timeout is right (a page never waits
    # long for a cache that hangs); it is written out, not left to redis-py's default.
    assert pool.connection_kwargs["socket_timeout"] == _connection_of(pool).socket_timeout <= 5

    # kombu takes its read timeout from the broker transport options (None: wait for as long as
    # its BRPOP blocks; kombu checks these connections' health itself).
    options = fresh["CELERY_BROKER_TRANSPORT_OPTIONS"]
    broker_read = options.get("socket_timeout", kombu_redis.Channel.socket_timeout)
    broker_pop = options.get("polling_interval") or kombu_redis.Transport.brpop_timeout
    assert broker_read is None or broker_read > broker_pop

    from webapp.celery import app

    backend = RedisBackend(app=app, url=fresh["CELERY_RESULT_BACKEND"])
    # Waiting for a result polls its pub/sub socket in steps of one second.
    assert backend.connparams["socket_timeout"] is None or backend.connparams["socket_timeout"] > 1
