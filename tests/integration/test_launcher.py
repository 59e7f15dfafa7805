"""The README's run command: starts Redis, a worker and daphne; Ctrl-C stops every one of them;
a second start keeps the data."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests import live

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


def _start(data_dir: Path, port: int, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}}
    env.update(MANABI_DATA_DIR=str(data_dir), MANABI_PORT=str(port))
    return subprocess.Popen(
        [sys.executable, "-m", "webapp.launcher", "run"],
        cwd=live.ROOT,
        env=env,
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
    )


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


def _interrupt(proc: subprocess.Popen, marker: str) -> None:
    proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
    proc.wait(timeout=60)
    deadline = time.monotonic() + 10
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_with(marker) == [], "processes left running after Ctrl-C"


def test_run_starts_everything_and_ctrl_c_stops_everything(tmp_path):
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
        deadline = time.monotonic() + 120  # the worker ingests the digits for the demo class
        while time.monotonic() < deadline:
            _, datasets = _get_json(f"{base}/api/v1/datasets?course={demo}", token)
            if datasets and datasets[0]["status"] != "processing":
                break
            time.sleep(0.5)
        assert datasets[0]["status"] == "ready", datasets
        assert datasets[0]["num_images"] == 1797 and len(datasets[0]["classes"]) == 10
    finally:
        _interrupt(proc, marker)

    proc = _start(tmp_path, port, log)  # the second start keeps the data
    try:
        _wait_healthy(base, proc, log)
        status, courses = _get_json(f"{base}/api/v1/courses", token)
        assert status == 200
        assert {c["name"] for c in courses} == {"Demo class", "残るクラス"}
    finally:
        _interrupt(proc, marker)
