"""Benchmark: a student's first run of each kind's sample with the defaults, end to end.

    .venv/bin/python benchmarks/kinds_e2e_bench.py [--kinds detection,segmentation,keypoints]
        [--no-bare] [--keep]

A throwaway installation (benchmarks/stack.py: SQLite, a private Redis, the run command's Celery
worker). For each kind, a student's copy of the built-in sample (shapes_detection, 300 images;
shapes_segmentation, 1,000; keypoints, 1,000 stick figures; all 64×64, the lecture's 8:2 split)
is submitted with an empty spec, as `POST /api/v1/jobs` with `"spec": {}` or the Train page's
initial values give it (`jobs.actions.submit`): the kind's default model and its recipe
(`JobSpec.RECIPE`). Printed per kind:
- commit → the first stored epoch event whose validation figure reaches the target
  (detection mAP@0.5, segmentation mIoU, keypoints PCK@0.1, each ≥ 0.8) and → `succeeded`
  (targets: under 2, 6 and 3 minutes);
- the worker's run (the row's started_at → finished_at: decoding, epochs with validation,
  checkpoints, exports, the card) beside a bare loop of the same model, recipe and data (the
  job's own spec and items, `jobs.tasks.build_spec`) in this process: decode, train with AdamW
  and one-cycle, evaluate the validation split once (target: the trainer within 1.2×).
The bare loops are the kinds' benchmarks' own (benchmarks/detection.py, segmentation_bench.py,
keypoints_bench.py). The machine's load is printed before and after each kind: the figures mean
little on a shared machine.
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.stack import Stack, machine, make_class  # noqa: E402

TARGET = 0.8
KINDS = {
    # kind: (sample, the epoch event's validation figure, its name, the target's minutes)
    "detection": ("shapes_detection", "val_map50", "mAP@0.5", 2),
    "segmentation": ("shapes_segmentation", "val_miou", "mIoU", 6),
    "keypoints": ("keypoints", "val_pck", "PCK@0.1", 3),
}
ENDED = ("succeeded", "failed", "cancelled")


def copy_sample(student, course, key: str):
    """The student's own copy of a sample, ingested in this process (as the tests do)."""
    from webapp.datasets import tasks
    from webapp.datasets.models import Dataset
    from webapp.datasets.samples import SAMPLES

    sample = SAMPLES[key]
    dataset = Dataset.objects.create(
        course=course, owner=student, name=key, kind=sample.kind, source=f"sample:{key}"
    )
    tasks.copy_sample(dataset.pk, key, "en")
    dataset.refresh_from_db()
    assert dataset.status == "ready", dataset.error
    return dataset


def submit(student, dataset) -> tuple[int, float]:
    """An empty spec through the web app's submit; the job's id and the commit's wall time."""
    from django.db import transaction

    from webapp.jobs import actions

    committed: list[float] = []
    with transaction.atomic():
        transaction.on_commit(lambda: committed.append(time.time()))  # before the dispatch
        job = actions.submit(student, dataset, {})
    return job.pk, committed[0]


def wait(job_id: int, seconds: float = 900):
    from webapp.jobs.models import Job

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        if job.status in ENDED:
            return job
        time.sleep(0.2)  # the times come from the rows, not from this loop
    raise SystemExit(f"job {job_id} did not end within {seconds:.0f} s")


def epochs_of(job_id: int, figure: str) -> list[tuple[int, float, float]]:
    """(epoch, wall time stored, validation figure) of each stored epoch event."""
    from webapp.jobs.models import JobEvent

    rows = JobEvent.objects.filter(job_id=job_id, kind="epoch").order_by("number")
    return [
        (event.data.get("epoch"), event.created_at.timestamp(), event.data.get(figure) or 0.0)
        for event in rows
    ]


def bare_run(kind: str, spec_dict: dict) -> tuple[float, float]:
    """The kind's bench bare loop on the job's own spec and data; (seconds, val figure)."""
    import torch

    from trainer.loops import detection, keypoints, segmentation
    from trainer.spec import load_spec

    start = time.perf_counter()
    spec = load_spec({**spec_dict, "device": "cpu"}, local_files=True)
    loop = {"detection": detection, "segmentation": segmentation, "keypoints": keypoints}[kind]
    p = loop.prepare(spec, torch.device("cpu"))
    torch.manual_seed(0)
    model = loop.build_model(p)
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    steps = len(p.train) // spec.batch_size + 1
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=spec.lr, epochs=spec.epochs, steps_per_epoch=steps
    )
    step = loop.make_step(p, model, None)
    normalise, generator = step.extra["normalise"], torch.Generator().manual_seed(0)
    for _epoch in range(spec.epochs):
        args = (model, optimizer, scheduler, p.train, normalise, spec.batch_size)
        if kind == "detection":
            from benchmarks import detection as bench

            bench._bare_epoch(*args, generator)
        elif kind == "segmentation":
            from benchmarks import segmentation_bench as bench

            bench._bare_epoch(*args, generator, spec.dice_weight)
        else:
            from benchmarks import keypoints_bench as bench

            bench._bare_epoch(*args, spec.sigma, generator)
    result = loop.evaluate(step, p.val)
    figure = {"detection": "map50", "segmentation": "miou", "keypoints": "pck"}[kind]
    return time.perf_counter() - start, (getattr(result, figure, None) or 0.0) if result else 0.0


def run_kind(kind: str, student, course, bare: bool) -> dict:
    from trainer.spec import spec_class
    from webapp.jobs import tasks

    sample, figure, name, minutes = KINDS[kind]
    dataset = copy_sample(student, course, sample)
    load_before = os.getloadavg()[0]
    job_id, committed = submit(student, dataset)
    job = wait(job_id)
    assert job.status == "succeeded", (job.status, job.error)
    epochs = epochs_of(job_id, figure)
    reached = next(((e, t - committed, v) for e, t, v in epochs if v >= TARGET), None)
    total = job.finished_at.timestamp() - committed
    run = (job.finished_at - job.started_at).total_seconds()
    recipe = {key: job.spec.get(key) for key in ("model",)} | spec_class(kind).RECIPE
    print(f"\n== {kind}: {sample} ({dataset.items.count()} images), spec {job.spec}")
    print(f"   recipe: {recipe}, load {load_before:.1f} before")
    for epoch, stored, value in epochs:
        print(f"   epoch {epoch:2d} at {stored - committed:6.1f} s: val {name} {value:.3f}")
    row = {"kind": kind, "total": total, "run": run, "reached": reached, "epochs": epochs}
    at = f"{reached[1]:.1f} s (epoch {reached[0]}, {reached[2]:.3f})" if reached else "never"
    met = "✔" if reached and reached[1] < minutes * 60 else "✘"
    print(
        f"   commit → val {name} ≥ {TARGET}: {at} (target < {minutes} min {met}); → succeeded "
        f"{total:.1f} s (within {minutes} min {'✔' if total < minutes * 60 else '✘'}); "
        f"worker's run {run:.1f} s; final val {name} {job.metrics.get(figure, float('nan')):.3f}",
        flush=True,
    )
    if bare:
        spec_dict = tasks.build_spec(job)
        seconds, value = bare_run(kind, spec_dict)
        row["bare"] = seconds
        print(
            f"   bare loop: {seconds:.1f} s, val {name} {value:.3f}; worker's run / bare "
            f"{run / seconds:.2f} (≤ 1.2), submit → succeeded / bare {total / seconds:.2f}",
            flush=True,
        )
    print(f"   load {os.getloadavg()[0]:.1f} after", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma-separated kinds")
    parser.add_argument("--no-bare", action="store_true", help="skip the bare loops")
    parser.add_argument("--keep", action="store_true", help="keep the data folders and logs")
    args = parser.parse_args()
    kinds = [kind.strip() for kind in args.kinds.split(",") if kind.strip()]
    print(machine(), flush=True)
    with Stack(keep=args.keep) as stack:
        _teacher, course, _, students = make_class(1)
        stack.start_worker()
        for kind in kinds:
            run_kind(kind, students[0], course, bare=not args.no_bare)
        time.sleep(1.0)  # let the last task return before the worker is stopped


if __name__ == "__main__":
    main()
