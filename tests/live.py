"""Real processes for integration and browser tests: a Celery worker and daphne on the test DB."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

from webapp import launcher

ROOT = Path(__file__).resolve().parents[1]


def require_redis() -> str:
    if not settings.REDIS_URL:
        raise RuntimeError(
            "These tests need a real Redis: run them with ./manabi test (it starts one), "
            "or set REDIS_URL."
        )
    return settings.REDIS_URL


def test_database_url() -> str:
    """The URL of the database the test run created, for processes started by tests."""
    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{s['NAME']}"
    user = quote(s.get("USER") or "")
    password = quote(s.get("PASSWORD") or "")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    return f"postgres://{auth}{s.get('HOST') or 'localhost'}:{s.get('PORT') or 5432}/{s['NAME']}"


test_database_url.__test__ = False  # a helper, not a test


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a server started by a test: the run command's, on the test database."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update(DATABASE_URL=test_database_url(), REDIS_URL=require_redis(), PYTHONUNBUFFERED="1")
    env.update(extra)
    launcher.embedded_defaults(env, Path(settings.DATA_DIR))
    return env


free_port = launcher.free_port


def start(args: list[str], log: Path, **extra_env: str) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        args,
        cwd=ROOT,
        env=child_env(**extra_env),
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen) -> None:
    launcher.stop(proc, " ".join(map(str, proc.args[:3])), grace=15)


def start_worker(
    log: Path, name: str = "", extra_args: tuple[str, ...] = (), **extra_env: str
) -> subprocess.Popen:
    """A Celery worker as the run command starts it (`extra_args` after the run command's own);
    returns once it answers a ping."""
    name = name or f"test-{os.getpid()}"
    command = launcher.worker_command(
        f"{name}@%h",
        "--without-mingle",
        "--without-gossip",
        *extra_args,
        schedule=log.parent / f"celerybeat-schedule-{name}",
    )
    proc = start(command, log, **extra_env)
    from webapp.celery import app

    node = f"{name}@{socket.gethostname()}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"celery worker exited: see {log}")
        if "REDIS_URL" in extra_env:  # a broker of its own: its log says when it listens
            if f"{node} ready." in log.read_text(errors="replace"):
                return proc
            time.sleep(0.2)
        elif app.control.ping(destination=[node], timeout=0.5):
            return proc
    stop(proc)
    raise RuntimeError(f"celery worker did not answer within 60 s: see {log}")


class Worker:
    """The session's worker process, which a test may kill and start again."""

    def __init__(self, log: Path):
        self.log = log
        self.proc = start_worker(log)

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes at once, as a crash or a lost server would."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def restart(self) -> None:
        stop(self.proc)
        self.proc = start_worker(self.log.with_suffix(".restarted.log"))

    def stop(self) -> None:
        stop(self.proc)


def start_daphne(log: Path, **extra_env: str) -> tuple[subprocess.Popen, str]:
    """daphne as the run command starts it (DEBUG off, static files collected)."""
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=ROOT,
        env=child_env(),
        check=True,
    )
    port = free_port()
    proc = start(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "webapp.asgi:application",
        ],
        log,
        **extra_env,
    )
    url = f"http://127.0.0.1:{port}"
    if not launcher.wait_http(f"{url}/accounts/login/", proc, seconds=60):
        stop(proc)
        raise RuntimeError(f"daphne did not answer within 60 s: see {log}")
    return proc, url
