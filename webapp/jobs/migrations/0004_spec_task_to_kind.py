"""Stored job specs name their kind `kind`: specs written before the rename said `task`.

Readers keep accepting `task` from API clients (trainer.spec.load_spec, spec_check), but the
rows themselves are rewritten once, so code reading `job.spec["kind"]` never meets the old key.
"""

from django.db import migrations


def rename_task_to_kind(apps, schema_editor):
    Job = apps.get_model("jobs", "Job")
    changed = []
    for job in Job.objects.filter(spec__has_key="task").only("spec").iterator(chunk_size=500):
        spec = dict(job.spec)
        task = spec.pop("task")
        # Both given: `kind` is the newer word and wins (it was checked against the dataset).
        spec.setdefault("kind", task or "classification")
        job.spec = spec
        changed.append(job)
        if len(changed) >= 500:
            Job.objects.bulk_update(changed, ["spec"])
            changed = []
    if changed:
        Job.objects.bulk_update(changed, ["spec"])


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0003_artifact_bytes"),
    ]

    operations = [
        # Going back leaves `kind`: every reader understands it.
        migrations.RunPython(rename_task_to_kind, migrations.RunPython.noop),
    ]
