"""Classification runs older than their figures in `Job.metrics` get them from their result.

The job task keeps `Job.metrics` from the finished event (webapp/jobs/kinds.py, `_finished`):
test_accuracy, test_loss, val_accuracy, val_loss, kfold_mean, kfold_std. Runs that finished
before it did had them only in the (large) `Job.result`, so the job page, the compare page and
the API each read the result as a fallback. They are written into `metrics` once, here, and
the readers ask `metrics` alone. Only keys a run lacks are added; nothing else is changed.

The figures are read as they were stored then (a frozen copy of the rule, not the app's code:
a migration keeps meaning the same when the app changes).
"""

import math

from django.db import migrations

# Job.metrics key: (the result's split, its figure). A k-fold run's result is its summary.
SPLIT_FIGURES = {
    "test_accuracy": ("test", "accuracy"),
    "test_loss": ("test", "loss"),
    "val_accuracy": ("val", "accuracy"),
    "val_loss": ("val", "loss"),
}
KFOLD_FIGURES = {"kfold_mean": "mean_accuracy", "kfold_std": "std_accuracy"}
BATCH = 500


def _number(value):
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def figures_of(result) -> dict:
    """The Job.metrics figures a classification run's stored result holds."""
    if not isinstance(result, dict):
        return {}
    found = {}
    for key, (split, name) in SPLIT_FIGURES.items():
        evaluation = result.get(split)
        if isinstance(evaluation, dict) and evaluation:
            value = _number(evaluation.get(name))
            if value is not None or name != "loss":  # as the job task: a loss only when known
                found[key] = value
    if "mean_accuracy" in result:  # a k-fold run's summary
        for key, name in KFOLD_FIGURES.items():
            found[key] = _number(result.get(name))
    return found


def _classification(job) -> bool:
    kind = (job.spec or {}).get("kind") if isinstance(job.spec, dict) else None
    return (kind or getattr(job.dataset, "kind", "") or "classification") == "classification"


def backfill_metrics(apps, schema_editor):
    Job = apps.get_model("jobs", "Job")
    changed = []
    runs = (
        Job.objects.exclude(result={})
        .select_related("dataset")
        .only("pk", "spec", "metrics", "result", "dataset__kind")
    )
    for job in runs.iterator(chunk_size=BATCH):
        if not _classification(job):
            continue
        metrics = job.metrics if isinstance(job.metrics, dict) else {}
        missing = {k: v for k, v in figures_of(job.result).items() if k not in metrics}
        if not missing:
            continue
        job.metrics = {**metrics, **missing}
        changed.append(job)
        if len(changed) >= BATCH:
            Job.objects.bulk_update(changed, ["metrics"])
            changed = []
    if changed:
        Job.objects.bulk_update(changed, ["metrics"])


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0004_spec_task_to_kind"),
        ("datasets", "0002_dataset_kind"),
    ]

    operations = [
        # Going back leaves the figures: every reader understands them.
        migrations.RunPython(backfill_metrics, migrations.RunPython.noop),
    ]
