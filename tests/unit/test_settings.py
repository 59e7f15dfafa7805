"""Production settings pass Django's deployment checks; environment helpers parse strictly."""

import os
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
