"""The Train page: choose or build a model, set the hyper-parameters, augmentation and transfer,
then launch one job or a comparison group."""

import json

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from trainer import catalog  # torch-free
from trainer import kinds as trainer_kinds
from webapp.accounts import permissions
from webapp.datasets import queries
from webapp.datasets.models import Dataset, Status
from webapp.datasets.views import _dataset_for
from webapp.jobs import (
    actions,
    kinds,
    launch_form,
    launch_groups,
    layer_builder,
    spec_check,
    summaries,
)
from webapp.jobs.models import Job, JobGroup, JobStatus

MAX_RUNS = 100  # earlier runs listed as transfer sources
PREVIEW_IMAGES = 4


@login_required
@require_http_methods(["GET", "POST"])
def train(request, dataset_id: int):
    dataset = _dataset_for(request, dataset_id, permissions.can_train_on)
    kind = kinds.dataset_kind(dataset)
    runs = earlier_runs(request.user, dataset)
    form = launch_form.initial(kind)
    if request.method == "POST":
        form = launch_form.read(request.POST, {f"job:{run.pk}": run for run in runs}, kind)
        if not form.errors:
            form.spec, problems = spec_check.validate_job(request.user, dataset, form.spec)
            form.add_spec_errors(problems)
        if not form.errors:
            target = _launch(request.user, dataset, form, request.POST.get("action", "train"))
            if target:
                return redirect(target)
    return render(request, "jobs/train.html", _context(request, dataset, form, runs))


def earlier_runs(user, dataset: Dataset) -> list[Job]:
    """Succeeded runs of the class of `dataset`'s kind that `user` may see and start from (k-fold
    runs keep no single model)."""
    course = dataset.course
    jobs = Job.objects.filter(course=course, status=JobStatus.SUCCEEDED)
    if not permissions.can_view_roster(user, course):
        jobs = jobs.filter(owner=user)  # a narrower query; can_view_job decides below
    jobs = (
        jobs.select_related("owner", "course", "dataset")
        # Results (a 1,000-class run's is megabytes) and upload reports are not shown here.
        .defer("result", "dataset__report")
        .order_by("-finished_at", "-pk")
    )
    return [
        job
        for job in jobs[:MAX_RUNS]
        if permissions.can_view_job(user, job)
        and not job.spec.get("kfold")
        and kinds.job_kind(job) == kinds.dataset_kind(dataset)
    ]


def _launch(user, dataset: Dataset, form: launch_form.TrainForm, action: str) -> str | None:
    """Submit what the form asks for; the page to go to next, or None with the form's errors."""
    if isinstance(form.spec.get("model"), list) and not _layers_fit(form, dataset):
        return None
    try:
        if action == "compare_modes":
            if "transfer" not in form.spec:
                form.add_error(
                    "transfer_source",
                    _("Choose ImageNet or an earlier run: the three modes start from it."),
                )
                return None
            group = actions.submit_group(
                user,
                dataset,
                form.spec,
                "transfer.mode",
                list(launch_form.MODES),
                title=_("Transfer modes: scratch, feature extraction, fine-tuning"),
            )
            return _group_url(group)
        if action == "compare":
            return _launch_comparison(user, dataset, form)
        job = actions.submit(user, dataset, form.spec)
    except actions.JobRefused as exc:
        form.add_spec_errors(exc.errors or {"__all__": exc.message})
        return None
    return reverse("job_detail", args=[job.pk])


def _launch_comparison(user, dataset: Dataset, form: launch_form.TrainForm) -> str | None:
    parsed = launch_groups.group_values(form)
    if parsed is None:
        return None
    variable, base, values = parsed
    for value in values:
        spec = actions.set_path(base, variable.path, value)
        for message in spec_check.validate_job(user, dataset, spec)[1].values():
            form.add_error("compare_values", message)
            return None
    title = _("Compare %(setting)s: %(values)s") % {
        "setting": variable.label,
        "values": form.values["compare_values"],
    }
    labels = None
    if variable.key == "dropout":  # the values are whole layer lists: name runs by their rate
        labels = [
            _("dropout %(rate)s")
            % {"rate": next(x["rate"] for x in value if str(x["type"]).lower() == "dropout")}
            for value in values
        ]
    group = actions.submit_group(
        user, dataset, base, variable.path, values, title=title[:200], labels=labels
    )
    return _group_url(group)


def _layers_fit(form: launch_form.TrainForm, dataset: Dataset) -> bool:
    """Whether a layer list builds at the input size (the trainer's shape check, on a worker)."""
    classes = max(1, len(queries.categories_at(dataset)))
    try:
        answer = summaries.model_summary(
            form.spec["model"], form.spec.get("input_size"), None, classes
        )
    except summaries.SummaryUnavailable:
        return True  # no worker free to check now: the job checks it when it starts
    if answer["ok"]:
        return True
    index = answer.get("index")
    if index is not None and index < len(form.spec["model"]):
        message = _("Layer %(n)s: %(problem)s") % {"n": index + 1, "problem": answer["message"]}
    else:
        message = answer["message"]
    form.add_error("layers", message)
    return False


def _group_url(group: JobGroup) -> str:
    try:
        return reverse("job_group", args=[group.pk])
    except NoReverseMatch:  # the group page is not there yet: the first run's page
        return reverse("job_detail", args=[group.jobs.order_by("pk").first().pk])


def _context(request, dataset: Dataset, form: launch_form.TrainForm, runs: list[Job]) -> dict:
    categories = queries.categories_at(dataset)
    values, errors = form.values, form.errors
    kind = kinds.dataset_kind(dataset)
    ready = dataset.status == Status.READY and bool(dataset.head) and dataset.trainable
    return {
        "dataset": dataset,
        "course": dataset.course,
        "ready": ready,
        "classes": categories,
        "num_images": queries.image_count(dataset),
        "form": form,
        "values": values,
        "errors": errors,
        "other_errors": {k: v for k, v in errors.items() if k == "__all__"},
        "kind": kind,
        "torchvision_help": kinds.view(kind).torchvision_help,
        # The kind's own bounds and defaults (its recipe): launch_form.kind_settings.
        "hyper": [_field(s, form) for s in launch_form.hyper(kind) if _applies(s, kind)],
        "offers_kfold": any(s.name == "kfold" and _applies(s, kind) for s in launch_form.HYPER),
        "augment": [_field(s, form) for s in launch_form.augment(kind)],
        "sources": launch_form.model_sources(kind),
        "presets": [_model_option(e) for e in launch_form.model_choices(kind, "preset")],
        "torchvision": [_model_option(e) for e in launch_form.model_choices(kind, "torchvision")],
        # "COCO" is offered where a model of this kind has its COCO file on this server.
        "coco_offered": any(
            catalog.weights_available(entry, "coco") for entry in catalog.models(kind)
        ),
        "runs": [_run_option(request.user, run, dataset) for run in runs],
        "modes": _modes(),
        "compare": launch_groups.COMPARE.values(),
        # Where the workers read ImageNet weights is for the staff (to ask the administrator).
        "checkpoints_dir": catalog.checkpoints_dir()
        if permissions.can_view_roster(request.user, dataset.course)
        else None,
        "samples": _samples(dataset, categories),
        "js": _js_config(dataset, categories, ready),
    }


def _applies(setting: launch_form.Setting, kind: str) -> bool:
    """Whether the spec of `kind` lets this setting vary: it has the field, and its schema does
    not pin it to one value (as a kind without k folds may pin `kfold` to 0)."""
    if not setting.for_kind(kind):
        return False
    if kind not in trainer_kinds.trainable():
        return True  # nothing can be launched: the page shows the usual settings
    schema = launch_form.schema_property(setting.path, kind)
    if schema is None or "const" in schema or len(schema.get("enum", (0, 1))) < 2:
        return False
    return not ("minimum" in schema and schema["minimum"] == schema.get("maximum"))


def _model_option(entry: catalog.ModelEntry) -> dict:
    """One model as the page offers it, in the reader's language."""
    language = get_language() or "en"
    return {
        "entry": entry,
        "description": entry.describe(language),
        "cpu_note": entry.cpu_note_in(language),
        "default": entry.default,
        "imagenet": catalog.weights_available(entry),
        "coco": catalog.weights_available(entry, "coco"),
    }


def _field(setting: launch_form.Setting, form: launch_form.TrainForm) -> dict:
    value = form.values.get(setting.name)
    return {
        "s": setting,
        "value": "" if value is None else value,
        "error": form.errors.get(setting.name, ""),
        "step": "1" if setting.kind == "int" else "any",
    }


def _run_option(user, run: Job, dataset: Dataset) -> dict:
    model = spec_check.model_of(run.spec, kinds.job_kind(run))  # the default if it named none
    name = model if isinstance(model, str) else _("%(n)s layers") % {"n": len(model or [])}
    kind = kinds.job_kind(run)
    figure, value = kinds.primary(kind), kinds.primary_value(kind, run.metrics)
    parts = [f"#{run.pk} {name}", f"{run.dataset.name} v{run.dataset_version}"]
    if value is not None:  # the kind's own figure: accuracy, mAP@0.5, mIoU, PCK
        parts.append(f"{figure.label} {figure.text(value)}")
    if run.owner_id != user.pk:
        parts.append(run.owner.label())
    return {"value": f"job:{run.pk}", "label": " · ".join(parts), "model_json": json.dumps(model)}


def _modes() -> list[dict]:
    return [
        {
            "value": "scratch",
            "label": _("From scratch"),
            "help": _("Every weight starts at random; the source is not used."),
        },
        {
            "value": "feature_extraction",
            "label": _("Feature extraction"),
            "help": _(
                "Freeze the transferred convolutional part and train only the new classifier: "
                "fast, and enough with few images."
            ),
        },
        {
            "value": "fine_tuning",
            "label": _("Fine-tuning"),
            "help": _(
                "Start from the transferred weights and train all layers, the transferred ones "
                "with a smaller learning rate."
            ),
        },
    ]


def _samples(dataset: Dataset, categories) -> list[str]:
    """Thumbnails of a few training images, one per class, for the augmentation preview."""
    if not dataset.head:
        return []
    items = queries.items_at(dataset).filter(split="train")
    urls = []
    for category in categories[:PREVIEW_IMAGES]:
        pk = items.filter(category_index=category.index).values_list("pk", flat=True).first()
        if pk is not None:
            urls.append(reverse("dataset_thumb", args=[dataset.pk, pk]))
    return urls


def _js_config(dataset: Dataset, categories, ready: bool) -> dict:
    """What the page's scripts need: endpoints, the layer types, and their words here."""
    return {
        "dataset": dataset.pk,
        "ready": ready,
        "fieldOfPath": launch_form.FIELD_OF_PATH,
        "classes": max(1, len(categories)),
        "summaryUrl": "/api/v1/models/summary",
        "validateUrl": "/api/v1/jobs/validate",
        "layerTypes": layer_builder.LAYER_TYPES,
        "activations": layer_builder.ACTIVATIONS,
        "layersInputSize": layer_builder.LAYERS_INPUT_SIZE,
        "defaults": {e.name: e.default_input_size for e in catalog.models()},
        "minSizes": {e.name: e.min_input_size for e in catalog.models()},
        "text": _js_text(),
    }


def _js_text() -> dict:
    return {
        "add": _("Add"),
        "remove": _("Remove"),
        "up": _("Move up"),
        "down": _("Move down"),
        "output": _("Output layer (one unit per class)"),
        "input": _("Input"),
        "parameters": _("%(n)s parameters"),
        "checking": _("Checking the shapes…"),
        "busy": _(
            "The shapes cannot be checked right now (the workers are busy); the job checks them "
            "when it starts."
        ),
        "layer": _("Layer %(n)s"),
        "wholeNumber": _("Enter a whole number."),
        "number": _("Enter a number."),
        "value": _("Enter a value."),
        "rangeClosed": _("Enter a value from %(low)s to %(high)s."),
        "rangeAbove": _("Enter a value above %(low)s and at most %(high)s."),
        "rangeBelow": _("Enter a value of at least %(low)s and below %(high)s."),
        "kfold": launch_form.kfold_message(),
        "fixFirst": _("Fix the marked settings first."),
        "example": _("For example:"),
        "nLayers": _("%(n)s layers"),
        "epochs": _("epochs: %(n)s"),
        "batch": _("batch size: %(n)s"),
        "augmented": _("augmented"),
        "folds": _("k-fold: %(n)s"),
        "transfer": _("transfer: %(mode)s"),
        "yourLayers": _("a model built from layers"),
        "original": _("original"),
        "random": _("random"),
        "noImagenet": _("Only torchvision models have ImageNet weights."),
        "noWeights": _("The administrator has not provided this model's ImageNet weights."),
        "noCoco": _(
            "Only torchvision's detection, segmentation and keypoint models have COCO weights."
        ),
        "noCocoWeights": _("The administrator has not provided this model's COCO weights."),
        "sourceModel": _("This run trained %(model)s: the model above was switched to it."),
        "settings": {
            "filters": _("filters"),
            "kernel": _("kernel"),
            "stride": _("stride"),
            "padding": _("padding"),
            "activation": _("activation"),
            "size": _("size"),
            "rate": _("rate"),
            "units": _("units"),
            "slope": _("slope"),
        },
        "layerHelp": {
            "Conv2d": _("Convolution: filters slide over the image and find local features."),
            "MaxPool": _("Max pooling: keeps the largest value of each window; halves the size."),
            "AvgPool": _("Average pooling: the mean of each window; halves the size."),
            "BatchNorm": _("Batch normalisation: keeps each layer's inputs well scaled."),
            "Dropout": _("Dropout: drops random units while training, against overfitting."),
            "Flatten": _("Flatten: feature maps → one vector, for Dense layers."),
            "GlobalAvgPool": _("Global average pooling: the mean of each feature map."),
            "Dense": _("Dense (fully connected): every input to every unit."),
            "ReLU": _("ReLU activation: max(0, x)."),
            "Sigmoid": _("Sigmoid activation: squashes to 0…1."),
            "Tanh": _("Tanh activation: squashes to −1…1."),
            "LeakyReLU": _("Leaky ReLU: like ReLU with a small slope below 0."),
            "GELU": _("GELU activation: a smooth ReLU."),
        },
    }
