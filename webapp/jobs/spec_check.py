"""The web side's check of a job spec a user sent: one function for every way in.

The API's submit and validate, the Train page and its comparison groups all ask `spec_problems`;
the worker asks `source_problem` again when the job starts, since its owner may have lost the
run meanwhile. A spec from a user never names a file: an earlier run is "job:<id>", and only
the worker turns it into the run's weights (`source_file`).
"""


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


def source_name(job_id: int) -> str:
    """The storage name of run `job_id`'s weights."""
    return f"jobs/{job_id}/model.safetensors"


def source_file(job_id: int) -> str:
    """Where the worker finds run `job_id`'s weights (never shown to anybody); the trainer
    reads local files, as it writes its run folder (`tasks.train`)."""
    return default_storage.path(source_name(job_id))


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
        or not default_storage.exists(source_name(job.pk))
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
    if not isinstance(spec, dict):
        return {"spec": _("The spec must be an object of settings.")}
    if "data" in spec:
        return {"spec": _("The spec must be an object without “data”: the dataset is chosen.")}
    problems: dict[str, str] = {}
    source = source_problem(user, spec)
    if source:
        problems["spec.transfer.source"] = source
    classes = len(queries.categories_at(dataset))  # the head's size; the names come later
    for key, message in trainer_problems({**spec, "data": placeholder_data(classes)}).items():
        problems.setdefault(f"spec.{key}", message)
    for key, message in catalog.registry_problems(spec).items():
        problems.setdefault(key, message)
    return problems


def summary_problem(model, input_size: int | None, channels: int | None, classes: int):
    """(field, message) of the first thing a model summary must not ask a worker for (a bound,
    the size budget at a batch of one), or None; the worker checks the shapes."""
    spec = {"model": model, "input_size": input_size, "channels": channels, "batch_size": 1}
    problems = trainer_problems({**spec, "data": placeholder_data(classes)})
    return next(iter(problems.items()), None)


def placeholder_data(classes: int) -> dict:
    """Data of `classes` classes for checking a spec before its items exist."""
    names = [str(i) for i in range(max(1, classes))]
    return {"classes": names, "items": [{"path": "x.png", "label": 0}]}


def trainer_problems(spec: dict) -> dict[str, str]:
    """What the trainer's own check finds (its fields' bounds and the size budget of
    `trainer.budget`, no torch), by field; the sizes in the reader's language."""
    from trainer.spec import SpecError, load_spec  # pydantic only: no torch in a web request

    try:
        load_spec(spec, check_registry=False)
    except SpecError as exc:
        return {
            field: _size_message(exc.details[field]) if field in exc.details else message
            for field, message in exc.errors.items()
        }
    return {}


def _size_message(detail: dict) -> str:
    """A size over its limit (`trainer.budget.Excess`), worded for a student."""
    texts = {
        "layer_parameters": _(
            "This layer would have %(n)s parameters; the limit is %(limit)s. Use fewer units or "
            "filters, or make its input smaller first (pooling, a stride)."
        ),
        "model_parameters": _(
            "The model would have %(n)s parameters; the limit is %(limit)s. Use fewer or "
            "smaller layers, or a smaller input size."
        ),
        "layer_values": _(
            "This layer's output would hold %(n)s values per image; the limit is %(limit)s. Use "
            "fewer filters or units, or a smaller input size."
        ),
        "model_values": _(
            "The largest layer of this model would hold %(n)s values per image at this input "
            "size; the limit is %(limit)s. Use a smaller input size."
        ),
        "batch_values": _(
            "A batch of %(batch)s images would need %(n)s values at the largest layer; the limit "
            "is %(limit)s. Use a batch size of at most %(fits)s."
        ),
    }
    return texts[detail["code"]] % detail
