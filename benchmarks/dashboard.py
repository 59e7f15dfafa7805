"""Benchmark: the class dashboard with 200 students × 10 jobs; the queue with 2,000 jobs in line.

    .venv/bin/python benchmarks/dashboard.py [--students 200] [--jobs 10] [--rounds 5]

A throwaway SQLite database with production settings (DEBUG off). One class: a teacher, a TA,
200 students with 10 jobs each (finished ones with full results: confusion matrix, per-class
figures, 200 misclassified images with their probabilities; a few failed, cancelled, waiting,
one running), three assignments with scored submissions. Django's test client, in this
process, asks for each page in turn, `--requests` times per round, alternating with the class
page as a reference; prints medians, p95 and SQL queries per request. Then every student adds
10 waiting jobs (2,000 in line) and the queue page, a waiting job in the API and the dashboard
are timed again.
"""

import argparse
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.stack import Stack, machine, make_class, percentile  # noqa: E402

CLASSES = 10
SPEC = {"model": "simple_cnn", "epochs": 10, "input_size": 32, "batch_size": 64, "lr": 0.005}


def evaluation(rng: random.Random, accuracy: float) -> dict:
    """An Evaluation dict as the trainer returns it, at full size."""
    confusion = [
        [rng.randrange(40, 60) if t == p else rng.randrange(0, 4) for p in range(CLASSES)]
        for t in range(CLASSES)
    ]
    per_class = [
        {
            "index": c,
            "precision": rng.random(),
            "recall": rng.random(),
            "f1": rng.random(),
            "support": 50,
        }
        for c in range(CLASSES)
    ]
    misclassified = []
    for _ in range(200):
        probabilities = [rng.random() for _ in range(CLASSES)]
        total = sum(probabilities)
        probabilities = [round(p / total, 4) for p in probabilities]
        misclassified.append(
            {
                "id": rng.randrange(1, 10**6),
                "true": rng.randrange(CLASSES),
                "predicted": rng.randrange(CLASSES),
                "probabilities": probabilities,
                "confidence": max(probabilities),
            }
        )
    return {
        "loss": rng.uniform(0.1, 1.0),
        "accuracy": accuracy,
        "top5": min(1.0, accuracy + 0.1),
        "confusion": confusion,
        "per_class": per_class,
        "misclassified": misclassified,
    }


def make_job(rng: random.Random, course, owner, dataset, status: str, now):
    from webapp.jobs.models import Job

    created = now - timedelta(days=rng.uniform(0, 28))
    job = Job(
        course=course,
        owner=owner,
        dataset=dataset,
        dataset_version=1,
        spec=dict(SPEC, lr=rng.choice([0.01, 0.005, 0.001])),
        status=status,
        created_at=created,
    )
    if status == "queued":
        return job
    job.attempts = 1
    job.dispatched_at = job.started_at = created + timedelta(seconds=rng.uniform(1, 600))
    job.worker = "gpu-1"
    job.gpu_seconds = rng.uniform(30, 600)
    epochs = rng.randrange(1, 11)
    val_acc = rng.uniform(0.5, 0.99)
    job.metrics = {
        "epoch": epochs,
        "train_loss": rng.uniform(0.05, 1.0),
        "train_acc": rng.uniform(0.5, 1.0),
        "val_loss": rng.uniform(0.05, 1.0),
        "val_acc": val_acc,
        "best_val_acc": val_acc + 0.005,
        "fold": 0,
    }
    if status == "running":
        job.progress, job.heartbeat_at = 0.4, now
        job.started_at = now - timedelta(seconds=job.gpu_seconds)
        return job
    job.finished_at = job.heartbeat_at = job.started_at + timedelta(seconds=job.gpu_seconds)
    job.progress = 1.0
    if status == "succeeded":
        job.result = {"test": evaluation(rng, val_acc - 0.01), "val": evaluation(rng, val_acc)}
        job.metrics.update(test_accuracy=val_acc - 0.01, val_accuracy=val_acc)
    elif status == "failed":
        job.error = "CUDA out of memory: try a smaller batch size."
    return job


def build(students: int, jobs_per_student: int) -> dict:
    """The class, its jobs and its assignments; returns the ids the pages need."""
    from django.utils import timezone

    from webapp.accounts.actions import issue_token
    from webapp.assignments.models import Assignment, Submission
    from webapp.datasets.models import Dataset
    from webapp.jobs.models import Job

    rng = random.Random(0)  # noqa: S311 - made-up figures, not secrets
    now = timezone.now()
    teacher, course, tas, people = make_class(students, tas=1)
    dataset = Dataset.objects.create(
        course=course, owner=teacher, name="flowers", kind="classification", status="ready", head=1
    )
    hidden = Dataset.objects.create(
        course=course,
        owner=teacher,
        name="flowers (hidden)",
        kind="classification",
        status="ready",
        head=1,
        visibility="hidden_test",
    )
    mix = ["succeeded"] * 7 + ["failed", "cancelled", "succeeded"]
    rows = []
    for n, student in enumerate(people):
        statuses = [mix[i % len(mix)] for i in range(jobs_per_student)]
        if n % 5 == 0:
            statuses[-1] = "queued"  # 40 students wait for a turn
        rows += [make_job(rng, course, student, dataset, s, now) for s in statuses]
    rows.append(make_job(rng, course, people[0], dataset, "running", now))
    Job.objects.bulk_create(rows, batch_size=200)
    assignments = [
        Assignment.objects.create(
            course=course,
            created_by=teacher,
            title=f"Assignment {i + 1}",
            dataset=dataset,
            dataset_version=1,
            hidden_test=hidden,
            deadline=now + timedelta(days=7 * (i - 1)),
        )
        for i in range(3)
    ]
    done = list(Job.objects.filter(course=course, status="succeeded").values_list("pk", "owner"))
    Submission.objects.bulk_create(
        [
            Submission(
                assignment=rng.choice(assignments),
                student_id=owner,
                job_id=pk,
                status="scored",
                score=rng.uniform(0.5, 0.99),
                hidden_version=1,
                scored_at=now,
            )
            for pk, owner in done[::3]
        ]
    )
    raw, _ = issue_token(people[1])
    return {
        "teacher": teacher,
        "course": course,
        "dataset": dataset,
        "students": people,
        "token": raw,
        "jobs": Job.objects.filter(course=course).count(),
        "result_mb": sum(len(str(job.result)) for job in rows) / 1e6,
    }


def add_waiting(world: dict, per_student: int) -> int:
    """Every student adds `per_student` waiting jobs; returns one of them (mid-line)."""
    from django.utils import timezone

    from webapp.jobs.models import Job

    rng = random.Random(1)  # noqa: S311
    now = timezone.now()
    rows = [
        make_job(rng, world["course"], student, world["dataset"], "queued", now)
        for _ in range(per_student)
        for student in world["students"]
    ]
    for i, job in enumerate(rows):
        job.created_at = now - timedelta(seconds=len(rows) - i)  # submitted in turns
    Job.objects.bulk_create(rows, batch_size=500)
    return (
        Job.objects.filter(owner=world["students"][1], status="queued")
        .order_by("created_at")[per_student // 2]
        .pk
    )


def timed(client, url: str, headers: dict) -> tuple[float, int]:
    """(milliseconds, SQL queries) for one GET; the response must be a 200."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    connection.queries_log.clear()  # a full log (9,000 queries) would stop the count
    with CaptureQueriesContext(connection) as queries:
        start = time.perf_counter()
        response = client.get(url, **headers)
        ms = (time.perf_counter() - start) * 1000
    if response.status_code != 200:
        raise SystemExit(f"{url}: {response.status_code} {response.content[:300]!r}")
    return ms, len(queries)


def measure(pages: list[tuple[str, str, dict]], rounds: int, requests: int) -> dict:
    """Each page `requests` times per round, pages alternating; per page all times + queries."""
    from django.test import Client

    clients: dict[int, Client] = {}
    times: dict[str, list[float]] = {label: [] for label, _, _ in pages}
    medians: dict[str, list[float]] = {label: [] for label, _, _ in pages}
    queries: dict[str, int] = {}
    for _ in range(rounds):
        for label, url, who in pages:
            user = who.get("user")
            client = clients.get(id(user))
            if client is None:
                client = clients[id(user)] = Client(HTTP_HOST="localhost")
                if user is not None:
                    client.force_login(user)
            timed(client, url, who.get("headers", {}))  # warm: templates, connections
            batch = []
            for _ in range(requests):
                ms, queries[label] = timed(client, url, who.get("headers", {}))
                batch.append(ms)
            times[label] += batch
            medians[label].append(statistics.median(batch))
    return {
        label: {
            "median": statistics.median(medians[label]),
            "p95": percentile(times[label], 95),
            "queries": queries[label],
        }
        for label in times
    }


def report(results: dict, targets: dict) -> None:
    for label, r in results.items():
        target = f" (target < {targets[label]} ms)" if label in targets else ""
        print(
            f"{label:44s} median {r['median']:7.1f} ms, p95 {r['p95']:7.1f} ms, "
            f"{r['queries']:3d} queries{target}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--students", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=10, help="jobs per student")
    parser.add_argument("--waiting", type=int, default=10, help="waiting jobs added per student")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=5, help="requests per page per round")
    parser.add_argument(
        "--analyze", action="store_true", help="at the end, time the dashboard after ANALYZE"
    )
    parser.add_argument("--keep", action="store_true", help="keep the data folder")
    args = parser.parse_args()
    print(machine())
    with Stack(keep=args.keep):
        start = time.perf_counter()
        world = build(args.students, args.jobs)
        print(
            f"{args.students} students, {world['jobs']} jobs ({world['result_mb']:.0f} MB of "
            f"results), made in {time.perf_counter() - start:.0f} s"
        )
        course, teacher = world["course"].pk, {"user": world["teacher"]}
        student = {"user": world["students"][1]}
        bearer = {"headers": {"HTTP_AUTHORIZATION": f"Bearer {world['token']}"}}
        pages = [
            ("class page, student (reference)", f"/courses/{course}/", student),
            ("dashboard, teacher", f"/courses/{course}/dashboard/", teacher),
            ("dashboard live part", f"/courses/{course}/dashboard/live/", teacher),
            ("queue page, teacher", f"/courses/{course}/queue/", teacher),
            ("class page, teacher (roster)", f"/courses/{course}/", teacher),
        ]
        targets = {"dashboard, teacher": 200, "dashboard live part": 200}
        report(measure(pages, args.rounds, args.requests), targets)
        if args.waiting:
            waiting = add_waiting(world, args.waiting)
            print(f"\nwith {args.students * args.waiting} more jobs waiting in line:")
            pages += [
                ("queue page, student", f"/courses/{course}/queue/", student),
                ("API job (waiting, mid-line), its owner", f"/api/v1/jobs/{waiting}", bearer),
                ("API class queue, its student", f"/api/v1/courses/{course}/queue", bearer),
            ]
            report(measure(pages, args.rounds, args.requests), targets)
        if args.analyze:
            from django.db import connection

            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
            print("\nafter SQLite's ANALYZE (an experiment; Django never runs it):")
            report(measure(pages[:3], args.rounds, args.requests), targets)


if __name__ == "__main__":
    main()
