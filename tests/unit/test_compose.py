"""docker-compose.yml and the Dockerfile agree with the code they run (no Docker engine needed)."""

import http.client
import re
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from django.conf import settings
from django.urls import resolve

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES = COMPOSE["services"]
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
APP_SERVICES = ["web", "worker-train", "worker-default"]
# Read by something other than Django settings, yet meant for the app containers.
NOT_SETTINGS = {"DJANGO_SETTINGS_MODULE", "TORCH_HOME", "CUDA_VISIBLE_DEVICES"}
ENV_CALL = re.compile(r"""\benv(?:str|bool|int|list)\(\s*["']([A-Z][A-Z0-9_]*)["']""")


def _command(service: str) -> list[str]:
    command = SERVICES[service]["command"]
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def _option(argv: list[str], *names: str) -> str:
    """Return the value after the first of these options (`-Q train` or `--queues=train`)."""
    for i, arg in enumerate(argv):
        for name in names:
            if arg == name:
                return argv[i + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    raise AssertionError(f"none of {names} in {argv}")


def _environment(service: str) -> dict[str, str]:
    env = SERVICES[service].get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {name: str(value) for name, value in env.items()}


def _interpolate(value: str, **given: str) -> str:
    """Resolve ${VAR}, ${VAR:-default} and ${VAR:?message} as compose would, VAR from `given`."""

    def one(match: re.Match) -> str:
        name, kind, rest = match.group(1), match.group(2), match.group(3)
        if given.get(name):
            return given[name]
        if kind == ":?":
            raise AssertionError(f"compose would stop: {rest}")
        return rest if kind == ":-" else ""

    return re.sub(r"\$\{([A-Z0-9_]+)(?:(:-|:\?)([^}]*))?\}", one, value)


def _mounts(service: str) -> dict[str, str]:
    """Return {container path: source} for the service's volumes."""
    mounts = {}
    for volume in SERVICES[service].get("volumes", []):
        if isinstance(volume, dict):
            mounts[volume["target"]] = volume["source"]
        else:
            source, target = volume.split(":")[:2]
            mounts[target] = source
    return mounts


def _names_settings_read() -> set[str]:
    """Every NAME in an env helper call (envstr("NAME"...) etc.) in the Django project."""
    names = set()
    for path in (ROOT / "webapp").rglob("*.py"):
        if path.name == "launcher.py":  # the workstation launcher never runs in a container
            continue
        names.update(ENV_CALL.findall(path.read_text(encoding="utf-8")))
    return names


def _healthcheck(service: str) -> list[str]:
    check = SERVICES[service].get("healthcheck")
    assert check and not check.get("disable"), f"{service} has no health check"
    test = check["test"]
    return shlex.split(test) if isinstance(test, str) else test


def test_the_six_services_exist():
    for name in ["web", "worker-train", "worker-default", "beat", "redis", "postgres"]:
        assert name in SERVICES, name


def test_one_beat_runs_the_reaper_schedule():
    argv = _command("beat")
    assert argv[:4] == ["celery", "-A", "webapp", "beat"]
    assert SERVICES["beat"].get("deploy", {}).get("replicas", 1) == 1
    assert "jobs.reap" in {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}


def test_train_worker_stops_jobs_past_soft_and_hard_time_limits():
    argv = _command("worker-train")
    soft, hard = _option(argv, "--soft-time-limit"), _option(argv, "--time-limit")
    assert soft and hard
    env = SERVICES["worker-train"]["environment"]
    assert "TRAIN_SLOTS" in env


def test_minio_is_optional_behind_the_s3_profile():
    for name in ["minio", "minio-bucket"]:
        assert SERVICES[name]["profiles"] == ["s3"], name
    assert not any("minio" in str(SERVICES[name].get("depends_on", {})) for name in APP_SERVICES)


def test_train_worker_takes_one_job_at_a_time_from_the_train_queue():
    argv = _command("worker-train")
    assert _option(argv, "-Q", "--queues") == "train"
    assert _option(argv, "-c", "--concurrency") == "1"
    assert _option(argv, "--prefetch-multiplier") == "1"
    assert _option(argv, "--max-tasks-per-child") == "1"


def test_train_worker_reserves_one_nvidia_gpu():
    devices = SERVICES["worker-train"]["deploy"]["resources"]["reservations"]["devices"]
    assert len(devices) == 1
    assert devices[0]["driver"] == "nvidia"
    assert devices[0]["count"] == 1
    assert "gpu" in devices[0]["capabilities"]


def test_default_worker_listens_on_the_queue_tasks_go_to_by_default():
    argv = _command("worker-default")
    assert _option(argv, "-Q", "--queues") == settings.CELERY_TASK_DEFAULT_QUEUE == "default"
    assert "deploy" not in SERVICES["worker-default"]  # CPU only: must start on a host with no GPU


def test_workers_have_distinct_node_names():
    names = {
        _option(_command(name), "-n", "--hostname") for name in ["worker-train", "worker-default"]
    }
    assert len(names) == 2


def test_celery_commands_name_the_webapp_celery_app():
    from celery.app.utils import find_app

    for name in ["worker-train", "worker-default"]:
        assert _option(_command(name), "-A", "--app") == "webapp"
    assert find_app("webapp").main == "webapp"


def test_every_app_environment_variable_is_read_by_the_code():
    known = _names_settings_read() | NOT_SETTINGS
    assert {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "MEDIA_ROOT"} <= known  # regex sanity
    for service in [*APP_SERVICES, "migrate"]:
        unknown = set(_environment(service)) - known
        assert not unknown, f"{service} sets variables nothing reads: {sorted(unknown)}"


def test_app_services_share_one_production_environment():
    first = _environment("web")
    assert first["DEBUG"] == "0"
    assert ":?" in first["SECRET_KEY"], "a missing SECRET_KEY must stop compose, not default"
    assert first["TORCH_HOME"] == "/data/torch"
    for service in [*APP_SERVICES, "migrate"]:
        assert _environment(service) == first, service


def test_database_and_redis_urls_point_at_the_compose_services():
    env = _environment("web")
    database = urlsplit(_interpolate(env["DATABASE_URL"], POSTGRES_PASSWORD="pw"))
    postgres = _environment("postgres")
    assert database.scheme in {"postgres", "postgresql"}
    assert (database.hostname, database.port) == ("postgres", 5432)
    assert database.username == postgres["POSTGRES_USER"]
    assert database.path.lstrip("/") == postgres["POSTGRES_DB"]
    assert "${POSTGRES_PASSWORD" in env["DATABASE_URL"] and "POSTGRES_PASSWORD" in postgres
    redis_url = urlsplit(env["REDIS_URL"])
    assert (redis_url.scheme, redis_url.hostname, redis_url.port) == ("redis", "redis", 6379)


def test_media_and_weights_volumes_are_shared_by_web_and_workers():
    media_root = _environment("web")["MEDIA_ROOT"]
    for service in APP_SERVICES:
        assert _mounts(service).get(media_root) == "media", service
    for service in ["worker-train", "worker-default"]:
        assert _mounts(service).get(_environment(service)["TORCH_HOME"]) == "torch", service
    assert {"media", "torch", "postgres", "redis"} <= set(COMPOSE["volumes"])


def test_daphne_serves_the_asgi_application_that_imports(tmp_path):
    argv = _command("web")
    assert argv[0] == "daphne"
    module, attribute = argv[-1].split(":")
    assert (module, attribute) == ("webapp.asgi", "application")
    # Import it under the compose environment (DEBUG=0), not only the development defaults.
    secrets = {
        "SECRET_KEY": "test-only",
        "ALLOWED_HOSTS": "manabi.example",
        "POSTGRES_PASSWORD": "pw",
    }
    env = {name: _interpolate(value, **secrets) for name, value in _environment("web").items()}
    env.update(
        PATH="/usr/bin:/bin",
        DJANGO_SETTINGS_MODULE="webapp.settings",
        MANABI_DATA_DIR=str(tmp_path),
        MEDIA_ROOT=str(tmp_path / "media"),
    )
    code = (
        "import importlib, warnings; warnings.simplefilter('ignore');"
        f"app = getattr(importlib.import_module({module!r}), {attribute!r});"
        "print(type(app).__name__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ProtocolTypeRouter"


def test_web_runs_migrations_and_translations_before_it_starts():
    migrate = " ".join(_command("migrate"))
    assert "manage.py migrate --noinput" in migrate
    assert "manage.py compile_translations" in migrate
    assert SERVICES["web"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert SERVICES["migrate"]["restart"] == "no"


def test_redis_keeps_its_data():
    assert _option(_command("redis"), "--appendonly") == "yes"
    assert _mounts("redis").get("/data") == "redis"
    assert SERVICES["redis"]["image"].split(":")[0] == "redis"


def test_postgres_keeps_its_data():
    assert _mounts("postgres").get("/var/lib/postgresql/data") == "postgres"
    assert SERVICES["postgres"]["image"] == "postgres:16"


def test_health_checks_exist_for_web_redis_and_postgres():
    assert "redis-cli ping" in " ".join(_healthcheck("redis"))
    assert "pg_isready" in _healthcheck("postgres")
    web = " ".join(_healthcheck("web"))
    assert "/healthz" not in web or "503" in web, "web's health must not depend on the workers"


def test_web_health_check_passes_only_when_the_sign_in_page_answers(monkeypatch):
    """Run the check's Python against a stand-in connection: 200 passes, 500 or 400 fails."""
    argv = _healthcheck("web")
    assert argv[:3] == ["CMD", "python", "-c"]
    source = argv[3]
    bind_port = int(_option(_command("web"), "-p", "--port"))
    seen = {}

    def run_check(status: int) -> int:
        class FakeConnection:
            def __init__(self, host, port, timeout=None):
                seen.update(host=host, port=port)

            def request(self, method, path, headers=None):
                seen.update(method=method, path=path, headers=headers or {})

            def getresponse(self):
                return type("Response", (), {"status": status})()

        monkeypatch.setattr(http.client, "HTTPConnection", FakeConnection)
        monkeypatch.setenv("ALLOWED_HOSTS", "manabi.example.ac.jp,localhost")
        try:
            exec(compile(source, "healthcheck", "exec"), {})  # noqa: S102 - our own compose file
        except SystemExit as exit_:
            return exit_.code or 0
        return 0

    assert run_check(200) == 0
    assert run_check(500) != 0
    assert run_check(400) != 0  # e.g. a Host header that ALLOWED_HOSTS refuses
    assert (seen["host"], seen["port"]) == ("127.0.0.1", bind_port)
    assert seen["headers"]["Host"] == "manabi.example.ac.jp"
    assert resolve(seen["path"]).url_name == "login"


def test_dependents_wait_for_healthy_postgres_and_redis():
    for name, service in SERVICES.items():
        depends_on = service.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: use the long form with a condition"
        for dependency in {"postgres", "redis"} & set(depends_on):
            assert depends_on[dependency]["condition"] == "service_healthy", (name, dependency)
    for name in APP_SERVICES:
        assert {"postgres", "redis"} <= set(SERVICES[name]["depends_on"]), name


def test_dockerfile_builds_on_python_311_and_exposes_the_web_port():
    base = re.search(r"^FROM\s+(\S+)", DOCKERFILE, re.MULTILINE).group(1)
    assert base.startswith("python:3.11")
    exposed = set(re.findall(r"^EXPOSE\s+(\d+)", DOCKERFILE, re.MULTILINE))
    web_port = _option(_command("web"), "-p", "--port")
    assert web_port in exposed
    assert any(port.endswith(f":{web_port}") for port in SERVICES["web"]["ports"])


def test_dockerfile_collects_static_files_where_the_containers_look_for_them():
    # STATIC_ROOT is MANABI_DATA_DIR/static: build time and run time must agree on the folder.
    built = re.search(r"MANABI_DATA_DIR=(\S+)", DOCKERFILE).group(1)
    assert built == _environment("web")["MANABI_DATA_DIR"]
    assert "collectstatic --noinput" in DOCKERFILE
    # DEBUG=0 at build: the hashed names (manifest) that DEBUG=0 serves.
    assert re.search(r"DEBUG=0\s.*collectstatic", DOCKERFILE)
    # No volume may hide the collected files.
    data_dir = built.rstrip("/")
    for service in APP_SERVICES:
        for target in _mounts(service):
            assert target.rstrip("/") not in {data_dir, f"{data_dir}/static"}, (service, target)


def test_dockerfile_runs_as_an_unprivileged_user():
    users = re.findall(r"^USER\s+(\S+)", DOCKERFILE, re.MULTILINE)
    assert users and users[-1] not in {"root", "0"}


@pytest.mark.parametrize("pattern", [".git", ".env", ".venv", "var"])
def test_dockerignore_keeps_secrets_and_local_state_out_of_the_image(pattern):
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert pattern in ignored
