"""Shared by the job benchmarks: a throwaway installation as the run command starts one.

A temporary data folder with its own SQLite database and media, a private Redis, production
settings (DEBUG off, static files collected), and on request a Celery worker and daphne started
with the run command's arguments. Django is set up in the calling process on the same database.
Everything is stopped and deleted at the end. Never touches the network.
"""

import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from webapp import launcher  # noqa: E402 - no Django import there


def machine() -> str:
    """`2 CPUs (AMD EPYC), 23 GiB`: what the figures were measured on."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        kib = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        memory = f"{kib / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration):
        memory = "? GiB"
    load = os.getloadavg()[0]
    return f"{os.cpu_count()} CPUs ({model}), {memory}, load {load:.1f} at start"


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0 … 100), nearest rank."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


class Stack:
    """Use as `with Stack(redis=True) as stack:`; then `stack.start_worker()` and so on."""

    def __init__(self, *, redis: bool = True, keep: bool = False):
        self.redis = redis
        self.keep = keep
        self.dir = Path(tempfile.mkdtemp(prefix="manabi-bench-"))
        self.children: list[tuple[str, subprocess.Popen]] = []

    def __enter__(self) -> "Stack":
        for name in ("DATABASE_URL", "MEDIA_ROOT", "REDIS_URL", "MEDIA_S3_BUCKET"):
            os.environ.pop(name, None)
        os.environ.update(
            MANABI_DATA_DIR=str(self.dir),
            DJANGO_SETTINGS_MODULE="webapp.settings",
            PYTHONUNBUFFERED="1",
            LANGUAGE_CODE="en",
        )
        launcher.embedded_defaults(os.environ, self.dir)  # DEBUG off, as in production
        try:
            if self.redis:
                proc, url = launcher.start_redis(self.dir / "redis", persist=False)
                self.children.append(("redis", proc))
                os.environ["REDIS_URL"] = url
            import django
            from django.core.management import call_command

            django.setup()
            call_command("migrate", verbosity=0)
            call_command("collectstatic", "--noinput", verbosity=0)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        for name, proc in reversed(self.children):
            launcher.stop(proc, name, grace=15)
        self.children.clear()
        if self.keep:
            print(f"kept {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def _start(self, name: str, args: list[str]) -> tuple[subprocess.Popen, Path]:
        log = self.dir / f"{name}.log"
        proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env=dict(os.environ),
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.children.append((name, proc))
        return proc, log

    def start_worker(self, command: list[str] | None = None) -> subprocess.Popen:
        """A Celery worker, by default the run command's (`launcher.worker_command`); returns
        once it is ready."""
        command = command or launcher.worker_command(
            "bench@%h",
            "--without-mingle",
            "--without-gossip",
            schedule=self.dir / "celerybeat-schedule",
        )
        proc, log = self._start("worker", command)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"the worker exited:\n{log.read_text()[-3000:]}")
            if " ready." in log.read_text(errors="replace"):
                return proc
            time.sleep(0.2)
        raise SystemExit(f"the worker was not ready within 90 s:\n{log.read_text()[-3000:]}")

    def worker_log(self) -> str:
        return (self.dir / "worker.log").read_text(errors="replace")

    def start_daphne(self) -> str:
        """daphne as the run command starts it; returns its base URL once it answers."""
        port = launcher.free_port()
        command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
        proc, log = self._start("daphne", [*command, "webapp.asgi:application"])
        url = f"http://127.0.0.1:{port}"
        if not launcher.wait_http(f"{url}/accounts/login/", proc, seconds=90):
            raise SystemExit(f"daphne did not answer within 90 s:\n{log.read_text()[-3000:]}")
        return url


def compose_command(service: str) -> list[str]:
    """A service's command in docker-compose.yml, `${VAR:-default}` resolved, run by this Python
    (e.g. the GPU worker: train queue only, 1 process, a fresh process per job)."""
    import yaml

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    command = compose["services"][service]["command"]

    def resolve(part: str) -> str:
        return re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: os.environ.get(m[1], m[2]), str(part))

    command = [resolve(part) for part in command]
    assert command[0] == "celery", command
    return [sys.executable, "-m", "celery", *command[1:]]


def make_class(students: int, *, tas: int = 0):
    """A teacher, a class, its TAs and students (no password hashing: sessions are forced)."""
    from django.contrib.auth.hashers import make_password

    from webapp.accounts.models import Course, Membership, Role, User

    unusable = make_password(None)
    teacher = User.objects.create(username="teacher", is_teacher=True, password=unusable)
    course = Course.objects.create(name="Benchmark class", created_by=teacher)
    ta_users = User.objects.bulk_create(
        [User(username=f"ta{i:03d}", password=unusable) for i in range(tas)]
    )
    student_users = User.objects.bulk_create(
        [User(username=f"student{i:03d}", password=unusable) for i in range(students)]
    )
    Membership.objects.bulk_create(
        [Membership(course=course, user=teacher, role=Role.TEACHER)]
        + [Membership(course=course, user=user, role=Role.TA) for user in ta_users]
        + [Membership(course=course, user=user, role=Role.STUDENT) for user in student_users]
    )
    return teacher, course, ta_users, student_users


def digits(owner, course):
    """The digits sample (1,797 images), handed out to the class, ingested in this process."""
    from webapp.datasets import tasks
    from webapp.datasets.models import Dataset

    dataset = Dataset.objects.create(
        course=course,
        owner=owner,
        name="digits",
        kind="classification",
        source="sample:digits",
        visibility="handout",
    )
    tasks.copy_sample(dataset.pk, "digits", "en")
    dataset.refresh_from_db()
    assert dataset.status == "ready", dataset.error
    return dataset
