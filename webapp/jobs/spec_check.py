"""The web side's check of a job spec a user sent: `validate_job`, one function for every way in.

The API's submit and validate, the Train page (and its comparison groups) and the worker, again
before it trains, all ask `validate_job`: it fills in what a spec may leave out (the kind, from
the dataset; the kind's default model, from the trainer's catalog) and names every problem by
field. Nothing here imports torch. A spec from a user never names a file: an earlier run is
"job:<id>", and only the worker turns it into the run's weights (`source_file`).
"""

from django.core.files.storage import default_storage
from django.utils.translation import gettext as _

from trainer import catalog  # torch-free
from trainer import kinds as trainer_kinds
from webapp.accounts import permissions
from webapp.accounts.models import User
from webapp.datasets import queries
from webapp.datasets.models import Dataset
from webapp.datasets.records import sigmas_problem
from webapp.jobs import kinds
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
    if source in ("none", "imagenet", "coco"):
        return None  # pretrained weights: `catalog_problems` checks the model has them
    job_id = source_job_id(spec)
    if job_id is None:
        return _(
            "Transfer from “none”, “imagenet”, “coco” or an earlier run of yours as “job:<id>” "
            "(for example job:12); files on the server cannot be named."
        )
    job = Job.objects.select_related("course", "dataset").filter(pk=job_id).first()
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
    if model_of(job.spec, kinds.job_kind(job)) != model_of(spec, spec_kind(spec)):
        return _(
            "Run %(id)s trained another model; choose that model above, or a run of the model "
            "you chose."
        ) % {"id": job.pk}
    return None


def validate_job(user: User, dataset: Dataset, spec) -> tuple[dict, dict[str, str]]:
    """The spec as a job stores it (its kind and model filled in) and every problem of it, keyed
    "spec.<field>" (or "dataset"); no problems means it may be queued on `dataset` by `user`.

    Who may train on the dataset is the caller's check (`permissions.can_train_on`).
    """
    if not isinstance(spec, dict):
        return {}, {"spec": _("The spec must be an object of settings.")}
    if "data" in spec:
        return dict(spec), {
            "spec": _("The spec must be an object without “data”: the dataset is chosen.")
        }
    spec = dict(spec)  # nested settings are read, never changed
    problems: dict[str, str] = {}
    kind = kinds.dataset_kind(dataset)
    given = spec.pop("task", None)  # the deprecated name of `kind`
    if given is not None and spec.get("kind", given) != given:
        problems["spec.kind"] = _("Give the kind once: “task” is its old name.")
    given = spec.get("kind", given)
    if given is not None and given != kind:
        problems.setdefault(
            "spec.kind",
            _("This dataset is for %(kind)s; leave the kind out, or give “%(value)s”.")
            % {"kind": kinds.kind_name(kind), "value": kind},
        )
    spec["kind"] = kind
    if kind not in trainer_kinds.trainable():
        problems["dataset"] = _(
            "Training for %(kind)s is not available yet; this server trains %(kinds)s."
        ) % {
            "kind": kinds.kind_name(kind),
            "kinds": ", ".join(kinds.kind_name(k) for k in trainer_kinds.trainable()),
        }
        return spec, problems
    if spec.get("model") is None:
        try:
            spec["model"] = catalog.default_for(kind)
        except KeyError:  # a kind whose models the catalog does not list yet
            problems["spec.model"] = _("Choose a model from the list.")
            return spec, problems
    source = source_problem(user, spec)
    if source:
        problems["spec.transfer.source"] = source
    categories = queries.categories_at(dataset)  # the head's size; the names come later
    has_keypoints = kinds.shape(kind).has_keypoints
    keypoints = keypoint_schema(categories) if has_keypoints else None
    if has_keypoints and keypoints is None:
        problems["dataset"] = _(
            "This dataset names no keypoints: its category needs keypoint names (COCO's "
            "categories[].keypoints) before a pose network can learn them."
        )
        return spec, problems
    checked = {**spec, "data": placeholder_data(len(categories), kind, keypoints)}
    for key, message in trainer_problems(checked).items():
        problems.setdefault(f"spec.{key}", message)
    for key, message in catalog_problems(spec).items():
        problems.setdefault(key, message)
    return spec, problems


def spec_problems(user: User, spec: dict, dataset: Dataset) -> dict[str, str]:
    """Only the problems of `validate_job` (for callers that keep the spec as they sent it)."""
    return validate_job(user, dataset, spec)[1]


def spec_kind(spec: dict) -> str:
    """The kind a stored spec is for (specs stored before kinds are classification's)."""
    return spec.get("kind") or spec.get("task") or "classification"


def model_of(spec: dict, kind: str):
    """The model a spec trains: its own, or the kind's default when it names none."""
    model = spec.get("model")
    if model is not None:
        return model
    try:
        return catalog.default_for(kind)
    except KeyError:  # a kind without models trains nothing
        return None


def catalog_problems(spec: dict) -> dict[str, str]:
    """What the trainer's registry would refuse, found in its torch-free catalog: an unknown
    model or one of another kind, images too small, ImageNet or COCO weights that the model
    lacks or the server does not have."""
    kind = spec_kind(spec)
    model = model_of(spec, kind)
    transfer = spec.get("transfer")
    source = transfer.get("source", "none") if isinstance(transfer, dict) else "none"
    problems: dict[str, str] = {}
    if isinstance(model, list):
        if source == "imagenet":
            problems["spec.transfer.source"] = _(
                "A model built from layers has no ImageNet weights: transfer from an earlier run "
                "or train from scratch."
            )
        elif source == "coco":
            problems["spec.transfer.source"] = _(
                "A model built from layers has no COCO weights: transfer from an earlier run "
                "or train from scratch."
            )
        return problems
    try:
        entry = catalog.get(model) if isinstance(model, str) else None
    except KeyError:
        entry = None
    if entry is None:
        problems["spec.model"] = _("Unknown model “%(name)s”; choose one from the list.") % {
            "name": model
        }
        return problems
    if entry.kind != kind:
        problems["spec.model"] = _(
            "%(model)s is a model for %(model_kind)s; this dataset is for %(kind)s."
        ) % {
            "model": entry.name,
            "model_kind": kinds.kind_name(entry.kind),
            "kind": kinds.kind_name(kind),
        }
        return problems
    size = spec.get("input_size")
    if isinstance(size, int) and size < entry.min_input_size:
        problems["spec.input_size"] = _(
            "%(model)s needs images of at least %(n)s×%(n)s pixels."
        ) % {"model": entry.name, "n": entry.min_input_size}
    if source == "imagenet" and not entry.supports_imagenet:
        problems["spec.transfer.source"] = _(
            "%(model)s has no ImageNet weights: choose a torchvision model, or transfer from an "
            "earlier run."
        ) % {"model": entry.name}
    elif source == "imagenet" and not catalog.weights_available(entry):
        problems["spec.transfer.source"] = _(
            "The ImageNet weights of %(model)s are not on this server; ask the administrator to "
            "add them, or transfer from an earlier run."
        ) % {"model": entry.name}
    elif source == "coco" and not entry.supports_coco:
        problems["spec.transfer.source"] = _(
            "%(model)s has no COCO weights: choose one of torchvision's detection, segmentation "
            "or keypoint models, or transfer from an earlier run."
        ) % {"model": entry.name}
    elif source == "coco" and not catalog.weights_available(entry, "coco"):
        problems["spec.transfer.source"] = _(
            "The COCO weights of %(model)s (%(file)s) are not on this server; ask the "
            "administrator to add them, or transfer from ImageNet or an earlier run."
        ) % {"model": entry.name, "file": entry.coco_weights_file}
    return problems


def summary_problem(model, input_size: int | None, channels: int | None, classes: int):
    """(field, message) of the first thing a model summary must not ask a worker for (a bound,
    the size budget at a batch of one), or None; the worker checks the shapes."""
    spec = {"model": model, "input_size": input_size, "channels": channels, "batch_size": 1}
    problems = trainer_problems({**spec, "data": placeholder_data(classes)})
    return next(iter(problems.items()), None)


def placeholder_data(
    classes: int, kind: str = "classification", keypoints: dict | None = None
) -> dict:
    """Data of `classes` classes for checking a spec of `kind` before its items exist (a
    keypoint set's points, where the kind has them: they size a pose network)."""
    names = [str(i) for i in range(max(1, classes))]
    if kinds.shape(kind).one_label_per_image:
        return {"classes": names, "items": [{"path": "x.png", "label": 0}]}
    box: dict = {"category": 0, "bbox": [0, 0, 1, 1]}  # one object: the annotations' shape
    data: dict = {"classes": names, "items": [{"path": "x.png", "annotations": [box]}]}
    if keypoints is not None:
        box["keypoints"] = [0, 0, 2] * len(keypoints["names"])
        data["keypoints"] = keypoints
    return data


def keypoint_schema(categories) -> dict | None:
    """The keypoint set of a version's categories (trainer.spec.KeypointSchema): the names,
    skeleton and OKS sigmas (when it has its own, one per keypoint; else the trainer picks its
    defaults) of the first category that has keypoints; None when none has."""
    for category in categories:
        names = [str(name) for name in (category.keypoints or [])]
        if names:
            count = len(names)
            pairs = [p for p in (category.skeleton or []) if isinstance(p, list) and len(p) == 2]
            skeleton = [
                [a, b]
                for a, b in pairs
                if type(a) is int and type(b) is int and 1 <= a <= count and 1 <= b <= count
            ]
            schema: dict = {"names": names, "skeleton": skeleton}
            sigmas = list(getattr(category, "sigmas", None) or [])
            if sigmas_problem(sigmas, count) is None:
                schema["sigmas"] = [float(value) for value in sigmas]
            return schema
    return None


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
