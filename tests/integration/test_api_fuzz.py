"""Schemathesis fuzzes the API from its own OpenAPI schema against daphne and a real worker.

Signed in as a teacher and as a student (bearer tokens, fetched again whenever the fuzzer revokes
its own), every check on: no answer may be a server error, a status the operation does not
document, or a body that does not match its documented schema. Each persona works in a class of
its own made for the run (the fuzzer archives and renames classes, resets passwords and removes
members). About three minutes in all; `MANABI_FUZZ_SECONDS=900 ./manabi test -k fuzz` runs longer.
The only 5xx allowed is the documented 503 of the two operations that wait for a worker, when the
fuzzer itself has kept every worker process busy; how often that happened is in the summary.
"""

import contextlib
import json
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.conf import global_settings
from django.utils import timezone

from tests import live
from tests.conftest import PASSWORD, add_member, make_course, make_user
from webapp.assignments.models import Assignment
from webapp.datasets import tasks as dataset_tasks
from webapp.datasets.models import Dataset, Upload
from webapp.env import envint, envstr
from webapp.errors import Refused
from webapp.jobs import actions as job_actions
from webapp.jobs import tasks
from webapp.jobs.models import FINISHED, Job

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

FUZZ_SECONDS = envint("MANABI_FUZZ_SECONDS", 180)  # wall time; the personas run side by side
ONLY_PATHS = envstr("MANABI_FUZZ_PATHS")  # a regex, to fuzz a few operations while fixing them
REPORTS = live.ROOT / "test-artifacts" / "fuzz"
REQUEST_TIMEOUT = 45  # longer than the server waits for a worker (summaries 10 s, predictions 30 s)
# A prediction may wait 30 s for a worker by design; nothing else should come near.
MAX_RESPONSE_SECONDS = 40
WORKER_PROCESSES = 8
# The two operations a request waits on a worker for (a summary 10 s, a prediction 30 s). When
# every worker process is busy that long with the copies, uploads and runs the fuzzer sends on
# two CPU cores, they answer the documented 503 "no worker is free, try again": the machine is
# full, not the code wrong. Every other operation may answer no 5xx at all.
WAITS_FOR_A_WORKER = r"^/api/v1/(models/summary|jobs/\{job_id\}/predict|faces|poses)$"
# The sample a valid copy asks for: a copy runs the same code for every sample, and the fuzzer
# copying 5,000 MNIST digits every few seconds would only measure that two cores ingest them
# slowly while summaries wait behind them.
CHEAP_SAMPLE = "faces"

# How often a path, query or body id is one of the run's real objects rather than a drawn number:
# drawn ids reach the bounds and the 404s, real ones the code behind them.
REAL_ID_PROBABILITY = 0.5
# What `positive_data_acceptance` lets a request that fits the schema get. Beyond its default
# (2xx, 401, 403, 404, 409, 429): refusals a schema cannot foresee, with the error shape and
# documented on each operation: 400 (the run has already ended, the dataset is not yours),
# 413 (the storage quota is full), 422 (the model does not take this input size, the dataset is
# still being read).
ACCEPTED_REFUSALS = ["2xx", "400", "401", "403", "404", "409", "413", "422", "429"]


@dataclass
class FuzzClass:
    """A throwaway class for one persona's run, and the ids of what is in it."""

    username: str
    ids: dict[str, list]


def _fuzz_class(tag: str, persona: str) -> FuzzClass:
    teacher = make_user(f"fuzz_{tag}_teacher", teacher=True)
    student = make_user(f"fuzz_{tag}_student")
    course = make_course(teacher, f"Fuzz class {tag}")
    add_member(course, student)
    owner = teacher if persona == "teacher" else student
    dataset = Dataset.objects.create(
        course=course,
        owner=owner,
        name=f"digits {tag}",
        kind="classification",
        source="sample:digits",
        visibility="shared" if persona == "teacher" else "private",
    )
    dataset_tasks.copy_sample(dataset.pk, "digits", "en")
    dataset.refresh_from_db()
    job = Job.objects.create(
        course=course,
        owner=owner,
        dataset=dataset,
        dataset_version=dataset.head,
        spec={"model": "logistic", "epochs": 1, "input_size": 8, "lr": 0.05},
    )
    tasks.train(job.pk)  # here: a finished run for artifacts, predictions and submissions
    assignment = Assignment.objects.create(
        course=course,
        created_by=teacher,
        title=f"Digits {tag}",
        dataset=dataset,
        dataset_version=dataset.head,
        hidden_test=dataset,
        deadline=timezone.now() + timedelta(days=7),
    )
    upload = Upload.objects.create(owner=owner, course=course, file_name="a.zip", size=1000)
    for user in (teacher, student):
        user.set_password(PASSWORD)  # the server's own hasher: the fuzzer signs in through it
        user.save(update_fields=["password"])
    return FuzzClass(
        username=owner.username,
        ids={
            "course": [course.pk],
            "dataset": [dataset.pk],
            "job": [job.pk],
            "assignment": [assignment.pk],
            "user": [teacher.pk, student.pk],
            "upload": [str(upload.pk)],
        },
    )


def _toml(value) -> str:
    return json.dumps(value)  # JSON strings, numbers and lists are TOML too


def _config(fuzz: FuzzClass, seconds: int) -> str:
    """schemathesis.toml for one persona's run."""
    bindings = {
        "course": ["path.course_id", "query.course", "body.course"],
        "dataset": ["path.dataset_id", "body.dataset"],
        "job": ["path.job_id", "body.job"],
        "assignment": ["path.assignment_id"],
        "user": ["path.user_id"],
        "upload": ["path.upload_id"],
    }
    # One thread per run: on Python 3.11, hypothesis describing a strategy parses source with
    # `ast` from two threads at once and CPython's AST validator, whose recursion counter is
    # shared, fails with "AST constructor recursion depth mismatch" (a fuzzer error, not the
    # API's). The two personas run side by side in two processes instead (`_fuzz_both`).
    lines = [f"max-time = {seconds}", "workers = 1", f"request-timeout = {REQUEST_TIMEOUT}", ""]
    lines += ["[generation]", "database = 'none'", ""]
    lines += ["[cache]", "enabled = false", ""]  # every run starts afresh: no replayed crashes
    for kind in bindings:
        lines += [f"[dictionaries.{kind}]", f"values = {_toml(fuzz.ids[kind])}", ""]
    lines += ["[dictionaries.samples]", f"values = {_toml([CHEAP_SAMPLE])}", ""]
    lines.append("[parameters]")
    for kind, keys in bindings.items():
        for key in keys:
            lines.append(
                f'"{key}" = {{ dictionary = "{kind}", probability = {REAL_ID_PROBABILITY} }}'
            )
    lines.append('"body.sample" = { dictionary = "samples", probability = 1.0 }')
    lines += [
        "",
        "[[operations]]",
        f"include-path-regex = {_toml(WAITS_FOR_A_WORKER)}",
        f"checks.not_a_server_error.expected-statuses = {_toml(['2xx', '3xx', '4xx', '503'])}",
        f"checks.positive_data_acceptance.expected-statuses = {_toml([*ACCEPTED_REFUSALS, '503'])}",
        "",
        # A multipart form sends nothing for an empty list, so `job: []` (an optional field
        # made "invalid") reaches the server as no `job` at all, a valid request; schemathesis
        # tells so for plain fields but not beside a file part. tests/unit/test_poses.py holds
        # what a bad `job` gets (422 naming it) instead.
        "[[operations]]",
        'include-path-regex = "^/api/v1/poses$"',
        "checks.negative_data_rejection.enabled = false",
        "",
        "[checks]",
        f"max_response_time = {MAX_RESPONSE_SECONDS}",
        "",
        "[checks.positive_data_acceptance]",
        f"expected-statuses = {_toml(ACCEPTED_REFUSALS)}",
        "",
        "[auth.dynamic.openapi.BearerToken]",
        'path = "/api/v1/auth/token"',
        f"payload = {{ username = {_toml(fuzz.username)}, password = {_toml(PASSWORD)} }}",
        'extract_selector = "/token"',
        "retry_on = [401]",
    ]
    return "\n".join(lines) + "\n"


def _start_fuzz(url: str, fuzz: FuzzClass, persona: str, seconds: int):
    """Start schemathesis for one persona; (process, its log, its report, its log file)."""
    REPORTS.mkdir(parents=True, exist_ok=True)
    config = REPORTS / f"schemathesis-{persona}.toml"
    config.write_text(_config(fuzz, seconds))
    report = REPORTS / f"report-{persona}.json"
    report.unlink(missing_ok=True)
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config),
        "run", f"{url}/api/v1/openapi.json", "--checks", "all",
        "--report", "json,junit", "--report-dir", str(REPORTS),
        "--report-json-path", str(report),
        "--report-junit-path", str(REPORTS / f"junit-{persona}.xml"),
        "--no-color",
    ]  # fmt: skip
    if ONLY_PATHS:
        command += ["--include-path-regex", ONLY_PATHS]
    log = REPORTS / f"schemathesis-{persona}.log"
    out = log.open("w")
    process = subprocess.Popen(command, cwd=REPORTS, stdout=out, stderr=subprocess.STDOUT)
    return process, log, report, out


def _fuzz_both(url: str, classes: dict[str, FuzzClass], seconds: int) -> dict[str, dict]:
    """Both personas' runs side by side, each in its own process; their JSON reports."""
    started = {
        persona: _start_fuzz(url, fuzz, persona, seconds) for persona, fuzz in classes.items()
    }
    reports = {}
    for persona, (process, log, report, out) in started.items():
        try:
            process.wait(timeout=seconds + 300)
        finally:
            if process.poll() is None:
                process.kill()
            out.close()
        assert report.exists(), f"schemathesis wrote no report: see {log}"
        reports[persona] = json.loads(report.read_text())
    return reports


@pytest.fixture
def server(settings):
    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS  # what daphne checks with
    # The fuzzer signs in with made-up names hundreds of times from this one address; the
    # address lock would then refuse its own sign-in when it fetches a new token. Neither may
    # the account lock refuse the personas' own sign-in, whatever the fuzzer did before.
    proc, url = live.start_daphne(
        live.ROOT / "test-artifacts" / "logs" / "daphne-fuzz.log",
        LOGIN_FAILURES_PER_ADDRESS="1000000",
        LOGIN_FAILURES_PER_ACCOUNT="1000000",
    )
    yield url
    live.stop(proc)


@pytest.fixture
def worker():
    """The run command's worker with more processes, so that summaries and predictions (which
    a request waits for) do not queue behind the copies, uploads and runs the fuzzer sends
    every few seconds. Its training runs stop after a minute, and its work ends with it."""
    log = live.ROOT / "test-artifacts" / "logs" / "celery-worker-fuzz.log"
    proc = live.start_worker(
        log,
        "fuzz",
        ("-c", str(WORKER_PROCESSES)),
        CELERY_TASK_SOFT_TIME_LIMIT="60",
        CELERY_TASK_TIME_LIMIT="90",
        INGEST_PROCESSES="1",  # a copy forks no pool of its own next to seven others
    )
    yield proc
    for job in Job.objects.exclude(status__in=FINISHED):
        with contextlib.suppress(Refused):  # it ended meanwhile
            job_actions.cancel(job)
    live.stop(proc)
    from webapp.celery import app

    app.control.purge()  # what the fuzzer queued and nobody took: no later test inherits it


def _summary(report: dict) -> dict:
    failures = {group["title"]: group["count"] for group in report["failures"]}
    return {
        "operations": report["operations"]["tested"],
        "cases": report["test_cases"]["generated"],
        "failures": failures,
        "errors": report["errors"],
    }


def _errors_of(log) -> str:
    """The ERRORS section of a schemathesis log, for the assertion message."""
    text = log.read_text(errors="replace") if log.exists() else ""
    start = text.find("= ERRORS =")
    return text[start : start + 3000] if start >= 0 else ""


def test_fuzzed_requests_get_documented_answers_never_a_server_error(server, worker):
    classes = {persona: _fuzz_class(persona[0], persona) for persona in ("teacher", "student")}
    reports = _fuzz_both(server, classes, max(10, FUZZ_SECONDS))
    results: dict = {persona: _summary(report) for persona, report in reports.items()}
    access_log = (live.ROOT / "test-artifacts" / "logs" / "daphne-fuzz.log").read_text()
    results["busy_503"] = access_log.count('" 503 ')  # no worker free in time: recorded
    (REPORTS / "summary.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    for persona in ("teacher", "student"):
        result = results[persona]
        log = REPORTS / f"schemathesis-{persona}.log"
        assert result["operations"] > 0, (persona, result)
        assert not result["failures"] and not result["errors"], (
            f"{persona}: {result}; see {log}\n{_sign_in(server, classes[persona].username)}\n"
            f"{_errors_of(log)}"
        )


def _sign_in(url: str, username: str) -> str:
    """What the token endpoint answers the persona now: why the fuzzer's sign-in failed."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(  # noqa: S310 - our own loopback server
        f"{url}/api/v1/auth/token",
        data=json.dumps({"username": username, "password": PASSWORD}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - loopback
            return f"sign-in as {username} now: {answer.status}"
    except urllib.error.HTTPError as refused:
        return f"sign-in as {username} now: {refused.code} {refused.read()[:300]!r}"
    except OSError as failed:
        return f"sign-in as {username} now: {failed!r}"


def test_daphne_leaves_a_multipart_body_it_cannot_parse_to_django(server):
    """Twisted answered such a body itself with a bare 400 (no JSON, no Content-Type)."""
    import urllib.error
    import urllib.request

    boundary = "ab8818a335d08266ed8404e24ed53d29"
    request = urllib.request.Request(  # noqa: S310 - our own loopback server
        f"{server}/api/v1/jobs/1/predict",
        data=f"--{boundary}--\r\n".encode(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)  # noqa: S310 - loopback
    assert refused.value.code == 401
    assert refused.value.headers["Content-Type"] == "application/json"
    assert json.loads(refused.value.read())["detail"]
