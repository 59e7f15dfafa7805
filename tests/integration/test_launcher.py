"""The README's run command: starts Redis, a worker and daphne; Ctrl-C stops every one of them;
a second start keeps the data. Ctrl-C and SIGTERM stop `run` and `test` (pytest given time to
tear down) also when started as a background job, whose SIGINT a non-interactive shell ignores."""

import contextlib
import fcntl
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import termios
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import redis

from tests import live
from webapp import launcher

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _processes_with(marker: str) -> list[int]:
    """PIDs whose environment carries the marker (every process the launcher started does)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker.encode() in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def _get_json(url: str, token: str | None = None, body: dict | None = None):
    data = json.dumps(body).encode() if body else None
    request = urllib.request.Request(url, data=data)  # noqa: S310 - our own loopback URL
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


# From the signal until the launcher and all it started are gone (each child has 10 s to stop).
STOP_SECONDS = 45


def _ignore_sigint() -> None:
    """What `command &` in a non-interactive shell leaves its job with: SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _start(data_dir: Path, port: int, log: Path, *args: str, job: str = "") -> subprocess.Popen:
    """Start the launcher; as a `job` ("background" or "foreground") in a process group of its
    own, as a shell starts one, where a background job comes with SIGINT ignored."""
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}}
    env.update(MANABI_DATA_DIR=str(data_dir), MANABI_PORT=str(port))
    return subprocess.Popen(
        [sys.executable, "-m", "webapp.launcher", *(args or ("run",))],
        cwd=live.ROOT,
        env=env,
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
        start_new_session=bool(job),
        preexec_fn=_ignore_sigint if job == "background" else None,
    )


def _redis_port(log: Path) -> int | None:
    found = re.search(r"Started Redis at redis://127\.0\.0\.1:(\d+)/", log.read_text())
    return int(found.group(1)) if found else None


def _assert_everything_stops(proc: subprocess.Popen, marker: str, log: Path) -> None:
    """The launcher exits and nothing it started remains: no process carries the test's data
    folder in its environment, and its Redis (which overwrites its environment) is gone."""
    deadline = time.monotonic() + STOP_SECONDS
    try:
        proc.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        raise AssertionError(
            f"the launcher still runs {STOP_SECONDS} s after the signal:\n"
            + log.read_text()[-2000:]
        ) from None
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_with(marker) == [], "processes left running:\n" + log.read_text()[-2000:]
    port = _redis_port(log)
    assert port is None or not launcher.port_in_use(port), f"Redis still listens on {port}"


def _kill_leftovers(proc: subprocess.Popen, marker: str, log: Path) -> None:
    """After a failed test: nothing this test started keeps running."""
    for pid in [proc.pid, *_processes_with(marker)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait(timeout=10)
    port = _redis_port(log)
    if port is not None and launcher.port_in_use(port):
        with contextlib.suppress(OSError):
            redis.Redis(port=port, socket_timeout=5).shutdown(nosave=True)


def _wait_healthy(base: str, proc: subprocess.Popen, log: Path) -> dict:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            status, body = _get_json(f"{base}/healthz")
            if status == 200:
                return body
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError("not healthy in 120 s:\n" + log.read_text()[-3000:])


def _interrupt(proc: subprocess.Popen, marker: str, log: Path) -> None:
    proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
    _assert_everything_stops(proc, marker, log)


def test_run_starts_everything_and_ctrl_c_stops_everything_also_in_the_background(tmp_path):
    port = live.free_port()
    base = f"http://127.0.0.1:{port}"
    marker = f"MANABI_DATA_DIR={tmp_path}"
    log = tmp_path / "launcher.log"

    proc = _start(tmp_path, port, log)
    try:
        health = _wait_healthy(base, proc, log)
        assert health["worker"]["count"] == 1 and health["redis"]["ok"]
        assert "teacher / manabi-teacher" in log.read_text()
        started = _processes_with(marker)
        assert len(started) >= 4  # launcher, redis, worker (+ its pool process), daphne
        status, body = _get_json(
            f"{base}/api/v1/auth/token", body={"username": "teacher", "password": "manabi-teacher"}
        )
        assert status == 200
        token = body["token"]
        status, _ = _get_json(f"{base}/api/v1/courses", token, {"name": "残るクラス"})
        assert status == 201
        _, courses = _get_json(f"{base}/api/v1/courses", token)
        demo = next(c["id"] for c in courses if c["name"] == "Demo class")
        # The worker ingests the demo class's samples: one of each kind.
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            _, datasets = _get_json(f"{base}/api/v1/datasets?course={demo}", token)
            if len(datasets) == 4 and all(d["status"] != "processing" for d in datasets):
                break
            time.sleep(0.5)
        by_kind = {d["kind"]: d for d in datasets}
        assert set(by_kind) == {"classification", "detection", "segmentation", "keypoints"}
        assert {d["status"] for d in datasets} == {"ready"}, datasets
        digits, shapes = by_kind["classification"], by_kind["detection"]
        assert digits["num_images"] == 1797 and len(digits["classes"]) == 10
        assert shapes["num_images"] == 300 and len(shapes["classes"]) == 3
        masks, figures = by_kind["segmentation"], by_kind["keypoints"]
        assert masks["num_images"] == 1000 and len(masks["classes"]) == 3
        assert figures["num_images"] == 1000 and len(figures["classes"]) == 1
    finally:
        _interrupt(proc, marker, log)

    # The second start keeps the data. It runs as a background job of a script (`./manabi run &`:
    # SIGINT comes in ignored), and `kill -INT` stops everything all the same.
    proc = _start(tmp_path, port, log, job="background")
    try:
        _wait_healthy(base, proc, log)
        status, courses = _get_json(f"{base}/api/v1/courses", token)
        assert status == 200
        assert {c["name"] for c in courses} == {"Demo class", "残るクラス"}
        os.kill(proc.pid, signal.SIGINT)
        _assert_everything_stops(proc, marker, log)
    finally:
        _kill_leftovers(proc, marker, log)


def test_run_stopped_while_it_starts_leaves_nothing_running(tmp_path):
    port = live.free_port()
    marker = f"MANABI_DATA_DIR={tmp_path}"
    log = tmp_path / "launcher.log"
    proc = _start(tmp_path, port, log, "run", "--no-demo", job="background")
    try:
        deadline = time.monotonic() + 60
        while "Started Redis at" not in log.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)  # while the database is being prepared
        _assert_everything_stops(proc, marker, log)
    finally:
        _kill_leftovers(proc, marker, log)


SLOW_SUITE = """
import pathlib, subprocess, time

import pytest

HERE = pathlib.Path(__file__).parent


@pytest.fixture
def helper_process():
    # Like the suite's worker and daphne: a process in a session of its own, stopped on teardown.
    proc = subprocess.Popen(["sleep", "600"], start_new_session=True)
    yield
    time.sleep(1)  # stopping a real worker takes a moment
    proc.terminate()
    proc.wait()
    (HERE / "torn-down").touch()


def test_waits(helper_process):
    (HERE / "started").touch()
    time.sleep(600)
"""


def _write_slow_suite(tmp_path: Path) -> list[str]:
    """A suite whose one test waits; the launcher's `test` arguments that run it."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_slow_suite.py").write_text(SLOW_SUITE)
    pytest_args = ["-c", str(tmp_path / "pytest.ini"), "-p", "no:django", "-p", "no:cacheprovider"]
    return ["test", *pytest_args, str(tmp_path / "test_slow_suite.py")]


def _wait_until_started(tmp_path: Path, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 120
    while not (tmp_path / "started").exists() and time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        time.sleep(0.1)
    assert (tmp_path / "started").exists(), log.read_text()


@pytest.mark.parametrize(
    ("job", "whole_group"),
    [
        ("background", False),  # `kill -INT <pid>` after `./manabi test &`
        ("foreground", True),  # Ctrl-C: the terminal signals the whole job
    ],
    ids=["background-kill-INT", "terminal-ctrl-c"],
)
def test_test_command_stops_pytest_after_its_teardown_on_sigint(tmp_path, job, whole_group):
    marker = f"MANABI_DATA_DIR={tmp_path}"
    log = tmp_path / "launcher.log"
    proc = _start(tmp_path, live.free_port(), log, *_write_slow_suite(tmp_path), job=job)
    try:
        _wait_until_started(tmp_path, proc, log)
        if whole_group:
            os.killpg(proc.pid, signal.SIGINT)
        else:
            os.kill(proc.pid, signal.SIGINT)
        _assert_everything_stops(proc, marker, log)
        assert (tmp_path / "torn-down").exists(), "pytest was stopped before its teardown"
        assert proc.returncode != 0
    finally:
        _kill_leftovers(proc, marker, log)


class _Terminal(threading.Thread):
    """A terminal window for a child: its output goes to the log, until the window is closed."""

    def __init__(self, log: Path):
        super().__init__(daemon=True)
        self.master, self.terminal = pty.openpty()
        self.log = log
        self.closing = threading.Event()

    def run(self) -> None:
        with self.log.open("ab") as out:
            while not self.closing.is_set():
                if select.select([self.master], [], [], 0.1)[0]:
                    with contextlib.suppress(OSError):
                        out.write(os.read(self.master, 4096))
                        out.flush()
        # Closed here, not from another thread while this one reads: only then is it released.
        os.close(self.master)

    def close_window(self) -> None:
        """What closing a terminal window does: SIGHUP, and EIO to everything written to it."""
        self.closing.set()
        self.join(timeout=10)


def test_test_command_stops_pytest_after_its_teardown_when_its_terminal_closes(tmp_path):
    marker = f"MANABI_DATA_DIR={tmp_path}"
    log = tmp_path / "launcher.log"
    log.touch()
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}}
    env.update(MANABI_DATA_DIR=str(tmp_path))
    window = _Terminal(log)

    def own_terminal() -> None:  # a session whose controlling terminal is the pty, as in a shell
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        # A new window's shell starts commands with SIGHUP at its default, whatever this suite
        # was started with: under `nohup` the ignored SIGHUP would come down to the launcher,
        # which then rightly keeps running (what nohup asks for: launcher.listen_for_stop).
        signal.signal(signal.SIGHUP, signal.SIG_DFL)

    proc = subprocess.Popen(
        [sys.executable, "-m", "webapp.launcher", *_write_slow_suite(tmp_path)],
        cwd=live.ROOT,
        env=env,
        stdin=window.terminal,
        stdout=window.terminal,
        stderr=window.terminal,
        preexec_fn=own_terminal,
    )
    os.close(window.terminal)
    window.start()
    try:
        _wait_until_started(tmp_path, proc, log)
        window.close_window()
        _assert_everything_stops(proc, marker, log)
        assert (tmp_path / "torn-down").exists(), "pytest was stopped before its teardown"
    finally:
        window.close_window()
        _kill_leftovers(proc, marker, log)
