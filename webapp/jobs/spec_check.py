"""The web side's check of a job spec a user sent: one function for every way in.

The API's submit and validate, the Train page and its comparison groups all ask `spec_problems`;
the worker asks `source_problem` again when the job starts, since its owner may have lost the
run meanwhile. A spec from a user never names a file: an earlier run is "job:<id>", and only
the worker turns it into the run's weights (`source_file`).
"""

import os

from django.core.files.storage import default_storage
from django.utils.translation import gettext as _

from webapp.accounts import permissions
from webapp.accounts.models import User
from webapp.datasets import queries
from webapp.datasets.models import Dataset
from webapp.jobs import catalog
from webapp.jobs.models import Job, JobStatus

JOB_SOURCE = "job:"


def source_job_id(spec: dict) -> int | None:
    """The earlier run a spec transfers from (`"transfer": {"source": "job:<id>"}`), if any."""
    from trainer.spec import JOB_SOURCE as pattern  # pydantic only: no torch

    transfer = spec.get("transfer") if isinstance(spec, dict) else None
    source = transfer.get("source") if isinstance(transfer, dict) else None
    if isinstance(source, str) and pattern.fullmatch(source):
        return int(source[len(JOB_SOURCE) :])
    return None


def source_file(job_id: int) -> str:
    """Where the weights of run `job_id` are on this server (never shown to anybody)."""
    return default_storage.path(f"jobs/{job_id}/model.safetensors")


def source_problem(user: User, spec: dict) -> str | None:
    """Why `user` may not start from the spec's transfer source, or None when they may."""
    transfer = spec.get("transfer") if isinstance(spec, dict) else None
    source = transfer.get("source", "none") if isinstance(transfer, dict) else "none"
    if source in ("none", "imagenet"):
        return None
    job_id = source_job_id(spec)
    if job_id is None:
        return _(
            "Transfer from “none”, “imagenet” or an earlier run of yours as “job:<id>” (for "
            "example job:12); files on the server cannot be named."
        )
    job = Job.objects.select_related("course").filter(pk=job_id).first()
    if job is None or not permissions.can_start_from(user, job):
        return _("No earlier run with this id is yours.")
    if (
        job.status != JobStatus.SUCCEEDED
        or job.spec.get("kfold")
        or not os.path.exists(source_file(job.pk))
    ):
        return _(
            "Run %(id)s has no trained model to start from (it did not finish, or it was a "
            "k-fold run)."
        ) % {"id": job.pk}
    if job.spec.get("model", "simple_cnn") != spec.get("model", "simple_cnn"):
        return _(
            "Run %(id)s trained another model; choose that model above, or a run of the model "
            "you chose."
        ) % {"id": job.pk}
    return None


def spec_problems(user: User, spec: dict, dataset: Dataset) -> dict[str, str]:
    """Every problem of a spec (without its data) that `user` sends to train on `dataset`,
    keyed "spec.<field>"; {} when it may be queued. Nothing here imports torch."""
    from trainer.spec import SpecError, load_spec  # pydantic only: no torch in a web request

    if not isinstance(spec, dict):
        return {"spec": _("The spec must be an object of settings.")}
    if "data" in spec:
        return {"spec": _("The spec must be an object without “data”: the dataset is chosen.")}
    problems: dict[str, str] = {}
    source = source_problem(user, spec)
    if source:
        problems["spec.transfer.source"] = source
    count = max(1, len(queries.categories_at(dataset)))  # the head's size; the names come later
    data = {"classes": [str(i) for i in range(count)], "items": [{"path": "x.png", "label": 0}]}
    try:
        load_spec({**spec, "data": data}, check_registry=False)
    except SpecError as exc:
        for key, message in exc.errors.items():
            problems.setdefault(f"spec.{key}", message)
    for key, message in catalog.registry_problems(spec).items():
        problems.setdefault(key, message)
    return problems
