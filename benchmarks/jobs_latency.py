"""Benchmark: submit → `running` with an idle worker, and the gap between back-to-back jobs.

    .venv/bin/python benchmarks/jobs_latency.py [--rounds 15] [--back-to-back 10]

A throwaway installation (SQLite, private Redis, the run command's Celery worker: both queues,
2 processes, prefetch 1, late acknowledgement). Idle rounds: a student submits a tiny job
(logistic, 1 epoch, 8×8 digits) through `jobs.actions.submit`; the time from the commit to the
row's `started_at` (claimed by the worker) and to its first stored event, one job at a time, the
worker idle between jobs. Back to back: ten students submit at once; for each next job, the gap
from the previous one's `finished_at` to its `dispatched_at` (the scheduler, called by the
worker as a job ends) and to its `started_at` (broker and worker pick-up).
"""

import argparse
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.stack import (  # noqa: E402
    Stack,
    compose_command,
    digits,
    machine,
    make_class,
    percentile,
)

SPEC = {"model": "logistic", "epochs": 1, "input_size": 8}
ENDED = ("succeeded", "failed", "cancelled")


def wait_for(job_id: int, field: str, seconds: float = 120):
    """Poll the row until `field` is set (or the job ended); return the row."""
    from webapp.jobs.models import Job

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        if getattr(job, field) is not None or job.status in ENDED:
            return job
        time.sleep(0.02)  # the times come from the row, not from this loop
    raise SystemExit(f"job {job_id}: no {field} after {seconds:.0f} s")


def submit(student, dataset) -> tuple[int, float]:
    """Submit through the action; returns the job id and the wall-clock time of the commit."""
    from django.db import transaction

    from webapp.jobs import actions

    committed: list[float] = []
    with transaction.atomic():
        transaction.on_commit(lambda: committed.append(time.time()))  # runs before dispatch
        job = actions.submit(student, dataset, dict(SPEC))
    return job.pk, committed[0]


def first_event_at(job_id: int) -> float:
    from webapp.jobs.models import JobEvent

    first = JobEvent.objects.filter(job_id=job_id).order_by("number").first()
    return first.created_at.timestamp() if first else float("nan")


def idle_round(student, dataset) -> dict:
    job_id, committed = submit(student, dataset)
    job = wait_for(job_id, "finished_at")
    assert job.status == "succeeded", (job.status, job.error)
    return {
        "id": job_id,
        "dispatch_ms": (job.dispatched_at.timestamp() - committed) * 1000,
        "running_ms": (job.started_at.timestamp() - committed) * 1000,
        "event_ms": (first_event_at(job_id) - committed) * 1000,
        "run_s": (job.finished_at - job.started_at).total_seconds(),
    }


class PoolWatch(threading.Thread):
    """Every 10 ms, the worker's pool processes: when each one exited (a zombie) and when the
    worker reaped it, to explain a gap between jobs. Needs psutil (optional)."""

    def __init__(self, worker_pid: int):
        super().__init__(daemon=True)
        import psutil

        self.psutil, self.main = psutil, psutil.Process(worker_pid)
        self.exited: dict[int, float] = {}
        self.reaped: dict[int, float] = {}
        self.done = threading.Event()

    def run(self) -> None:
        alive: set[int] = set()
        while not self.done.wait(0.01):
            now, seen = time.time(), set()
            try:
                children = self.main.children()
            except self.psutil.Error:
                return  # the worker stopped
            for child in children:
                seen.add(child.pid)
                try:
                    zombie = child.status() == self.psutil.STATUS_ZOMBIE
                except self.psutil.Error:
                    zombie = True
                if zombie:
                    self.exited.setdefault(child.pid, now)
            for pid in alive - seen:
                self.exited.setdefault(pid, now)
                self.reaped.setdefault(pid, now)
            alive = seen

    def between(self, start: float, end: float) -> tuple[float, float] | None:
        """(exited, reaped) of a pool process that ended between the two times, if any."""
        for pid, exited in sorted(self.exited.items(), key=lambda item: item[1]):
            if start <= exited <= end and pid in self.reaped:
                return exited, self.reaped[pid]
        return None


def back_to_back(students, dataset, watch: PoolWatch | None = None) -> list[dict]:
    from webapp.jobs.models import Job

    ids = [submit(student, dataset)[0] for student in students]
    for job_id in ids:
        wait_for(job_id, "finished_at", seconds=300)
    jobs = sorted(Job.objects.filter(pk__in=ids), key=lambda job: job.started_at)
    assert all(job.status == "succeeded" for job in jobs), [(j.pk, j.error) for j in jobs]
    gaps = []
    for before, after in zip(jobs, jobs[1:], strict=False):
        end, started = before.finished_at.timestamp(), after.started_at.timestamp()
        gap = {
            "dispatch_ms": (after.dispatched_at.timestamp() - end) * 1000,
            "running_ms": (started - end) * 1000,
        }
        pool = watch.between(end, started) if watch else None
        if pool:
            gap["exited_ms"], gap["reaped_ms"] = ((t - end) * 1000 for t in pool)
        gaps.append(gap)
    return gaps


def summary(label: str, values: list[float], unit: str = "ms") -> str:
    return (
        f"{label}: median {statistics.median(values):.0f} {unit}, "
        f"p95 {percentile(values, 95):.0f} {unit}, max {max(values):.0f} {unit}"
    )


WORKERS = {
    "run": "the run command's worker (both queues, 2 processes, prefetch 1, late ack)",
    "compose": "docker-compose's worker-train (train queue, 1 process, prefetch 1, late ack, "
    "a fresh process per job)",
}


def idle_rounds(students, dataset, rounds: int, idle: float) -> None:
    cold = idle_round(students[0], dataset)  # the pool process imports torch: not counted
    print(
        f"cold (first job): running after {cold['running_ms']:.0f} ms, "
        f"first event after {cold['event_ms']:.0f} ms"
    )
    results = []
    for number in range(1, rounds + 1):
        time.sleep(idle)  # the worker sits idle, waiting on the broker
        results.append(idle_round(students[0], dataset))
        r = results[-1]
        print(
            f"round {number:2d}: dispatched {r['dispatch_ms']:6.1f} ms | running "
            f"{r['running_ms']:6.1f} ms | first event {r['event_ms']:6.0f} ms | "
            f"job ran {r['run_s']:.2f} s"
        )
    if results:
        print(summary("commit → dispatched", [r["dispatch_ms"] for r in results]))
        print(summary("commit → running (target < 1000)", [r["running_ms"] for r in results]))
        print(summary("commit → first stored event", [r["event_ms"] for r in results]))


def burst(students, dataset, watch: PoolWatch | None) -> None:
    gaps = back_to_back(students, dataset, watch)
    for number, gap in enumerate(gaps, start=2):
        pool = ""
        if "exited_ms" in gap:
            pool = (
                f" | the old pool process exited at {gap['exited_ms']:4.0f} ms, "
                f"was reaped at {gap['reaped_ms']:5.0f} ms"
            )
        print(
            f"job {number:2d} of {len(students)}: previous finished → dispatched "
            f"{gap['dispatch_ms']:5.0f} ms, running {gap['running_ms']:5.0f} ms{pool}"
        )
    print(summary("back to back, finished → next dispatched", [g["dispatch_ms"] for g in gaps]))
    print(summary("back to back, finished → next running", [g["running_ms"] for g in gaps]))


def scenario(kind: str, args: argparse.Namespace) -> None:
    print(f"\n== {kind}: {WORKERS[kind]}", flush=True)
    with Stack(keep=args.keep) as stack:
        teacher, course, _, students = make_class(max(1, args.back_to_back))
        dataset = digits(teacher, course)
        command = [*compose_command("worker-train"), "-l", "INFO"]  # INFO: the log says "ready."
        worker = stack.start_worker(command if kind == "compose" else None)
        idle_rounds(students, dataset, args.rounds, args.idle)
        if args.back_to_back > 1:
            time.sleep(args.idle)
            watch = PoolWatch(worker.pid) if args.timeline else None
            if watch:
                watch.start()
            burst(students[: args.back_to_back], dataset, watch)
            if watch:
                watch.done.set()
        time.sleep(1.0)  # let the last task return before the worker is stopped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15, help="idle-worker submissions")
    parser.add_argument("--back-to-back", type=int, default=10, help="jobs submitted at once")
    parser.add_argument("--idle", type=float, default=1.0, help="seconds idle between rounds")
    parser.add_argument(
        "--workers", default="run,compose", help="worker configurations: run, compose or both"
    )
    parser.add_argument(
        "--timeline",
        action="store_true",
        help="watch the worker's pool processes during back to back (needs psutil)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the data folders and logs")
    args = parser.parse_args()
    kinds = [kind.strip() for kind in args.workers.split(",")]
    if len(kinds) == 1:
        scenario(kinds[0], args)
        return
    print(machine())
    for kind in kinds:  # Django is set up once per process: one process per configuration
        subprocess.run([sys.executable, __file__, *sys.argv[1:], "--workers", kind], check=True)


if __name__ == "__main__":
    main()
