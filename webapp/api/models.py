"""`/api/v1/models*` and `/api/v1/jobs/validate`: what can be trained with what, a model's
shapes and parameters layer by layer, and a spec's problems before it is submitted."""

from typing import Annotated, Literal

from django.http import Http404, JsonResponse
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from ninja import Query, Router, Schema
from ninja.errors import HttpError
from pydantic import Field, field_validator

from trainer import catalog, kinds, limits  # torch-free
from webapp.accounts import permissions
from webapp.api.base import READ, WRITE, error, errors
from webapp.api.job_schemas import (
    ModelChoice,
    SummaryOut,
    SummaryProblem,
    ValidateIn,
    ValidateOut,
    wrong_types,
)
from webapp.api.schemas import Body
from webapp.datasets.models import Dataset
from webapp.jobs import layer_builder, spec_check, summaries

router = Router(tags=["models"])


def _too_large() -> str:
    """Why a model cannot be summarised: its layers do not fit in the worker's memory."""
    return _(
        "This model does not fit in the worker's memory: use fewer units or filters, fewer "
        "layers or a smaller input size."
    )


class SummaryIn(Body):
    model: ModelChoice = Field(description="a model name, or the builder's list of layers")
    input_size: int | None = Field(None, ge=limits.MIN_INPUT_SIZE, le=limits.MAX_INPUT_SIZE)
    channels: int | None = Field(None, json_schema_extra={"enum": [1, 3, None]})
    classes: int = Field(10, ge=1, le=limits.MAX_CLASSES)

    @field_validator("channels")
    @classmethod
    def _one_or_three(cls, value: int | None) -> int | None:
        # A strict int: Literal[1, 3] would take true and 1.0 for 1.
        if value not in (None, 1, 3):
            raise ValueError(_("Use 1 channel (greyscale) or 3 (colour)."))
        return value


KindName = Literal[kinds.KINDS]  # type: ignore[valid-type]
FamilyName = Literal[catalog.FAMILIES]  # type: ignore[valid-type]


class Texts(Schema):
    ja: str
    en: str


class ModelOut(Schema):
    name: str
    kind: KindName = Field(description="The ML problem it is for.")
    family: FamilyName = Field(
        description="preset: the lecture's own; torchvision: torchvision's architecture; "
        "detector: the lecture's own detector."
    )
    default: bool = Field(description="The model a spec of this kind gets without `model`.")
    description: str = Field(description="One line, in the request's language.")
    descriptions: Texts = Field(description="The one line in Japanese and English.")
    parameters: int = Field(
        description=f"Learnable values, with a head of {catalog.REFERENCE_CLASSES} classes at the "
        "default input size and channels."
    )
    default_input_size: int = Field(description="The square side it trains at by default.")
    min_input_size: int = Field(description="The smallest square side it accepts.")
    channels: int = Field(description="Its default channels: 1 (greyscale) or 3 (colour).")
    weights: Literal["imagenet", "coco"] | None = Field(
        description="What its pretrained weights were trained on (null: it has none)."
    )
    weights_available: bool = Field(
        description="Whether those weights are on this server (nothing is ever downloaded)."
    )
    imagenet: bool = Field(description="Whether its ImageNet weights are on this server.")
    coco: bool = Field(
        description='Whether its COCO weights are on this server (`"transfer": {"source": '
        '"coco"}` starts it from them).'
    )
    cpu_note: str | None = Field(
        description="Why it is slow without a GPU, in the request's language (null: it is not)."
    )


class ModelsOut(Schema):
    kind: str | None = Field(description="The kind asked for (null: every kind).")
    trainable_kinds: list[str] = Field(description="The kinds this server can train.")
    models: list[ModelOut]
    layer_types: dict[str, dict[str, str | int | float]] = Field(
        description="Each layer type of the builder (classification) and its settings' defaults."
    )


KindQuery = Annotated[
    str | None,
    Field(
        max_length=40,
        json_schema_extra={"enum": list(kinds.KINDS)},
        description="Only the models of this kind; another value answers 400 naming `kind`.",
    ),
]


def model_out(entry: catalog.ModelEntry, language: str) -> dict:
    """One catalog entry as the API shows it, in `language` (and both languages)."""
    available = catalog.weights_available(entry)
    return {
        "name": entry.name,
        "kind": entry.kind,
        "family": entry.family,
        "default": entry.default,
        "description": entry.describe(language),
        "descriptions": entry.description,
        "parameters": entry.parameters,
        "default_input_size": entry.default_input_size,
        "min_input_size": entry.min_input_size,
        "channels": entry.default_channels,
        "weights": entry.weights_from or None,
        "weights_available": available,
        "imagenet": available and entry.weights_from == "imagenet",
        "coco": entry.supports_coco and catalog.weights_available(entry, source="coco"),
        "cpu_note": entry.cpu_note_in(language),
    }


# `?task=`: the old name of `kind`, still read so that older clients keep working. Marked
# deprecated on the parameter (ninja's Query), where OpenAPI readers look for it.
TASK_QUERY = Query(
    None,
    max_length=40,
    deprecated=True,
    description="Deprecated: the old name of `kind`. Send `kind`; if both are sent they must "
    "be equal.",
)


@router.get("/models", response={200: ModelsOut, **errors(*READ)})
def list_models(request, kind: KindQuery = None, task: str | None = TASK_QUERY):
    """What can be trained with what: the models of every kind, or of `?kind=detection`, with
    `"default": true` on the one a spec without `model` gets, whether their pretrained weights
    are on this server, and the layer builder's types. `?task=` is the deprecated old name of
    `kind`."""
    if task is not None:
        if kind is not None and kind != task:
            message = _("“kind” and its old name “task” disagree; send only “kind”.")
            return error(message, 400, {"task": message})
        if task not in kinds.KINDS:
            message = _("Choose a kind: %(kinds)s.") % {"kinds": ", ".join(kinds.KINDS)}
            return error(message, 400, {"task": message})
        kind = task
    if kind is not None and kind not in kinds.KINDS:
        message = _("Choose a kind: %(kinds)s.") % {"kinds": ", ".join(kinds.KINDS)}
        return error(message, 400, {"kind": message})
    language = get_language() or "en"
    return {
        "kind": kind,
        "trainable_kinds": list(kinds.trainable()),
        "models": [model_out(entry, language) for entry in catalog.models(kind)],
        "layer_types": layer_builder.LAYER_TYPES,
    }


@router.post(
    "/models/summary",
    response={200: SummaryOut, **errors(*WRITE, 503), 422: SummaryProblem},
)
def model_summary(request, payload: SummaryIn):
    """Output shape and parameters after each layer, from the trainer's own shape inference;
    422 naming the layer (`model.<i>`) or the setting that does not fit."""
    model = payload.model
    if isinstance(model, list) and not 1 <= len(model) <= layer_builder.MAX_LAYERS:
        message = _("Use between 1 and %(n)s layers.") % {"n": layer_builder.MAX_LAYERS}
        return error(message, 422, {"model": message})
    problems = wrong_types(model, "model", layers_only=True)
    if problems:
        return error(next(iter(problems.values())), 422, problems)
    try:
        answer = summaries.model_summary(
            model, payload.input_size, payload.channels, payload.classes
        )
    except summaries.SummaryUnavailable:
        raise HttpError(
            503, _("No worker is free to compute the shapes right now; try again in a moment.")
        ) from None
    if not answer["ok"]:
        message = _too_large() if answer.get("too_large") else answer["message"]
        # The error shape, plus the rows of the layers before the one that does not fit.
        return JsonResponse(
            {
                "detail": message,
                "errors": {answer["field"]: message},
                "index": answer.get("index"),
                "input": answer.get("input"),
                "rows": answer.get("rows", []),
            },
            status=422,
        )
    return answer


@router.post("/jobs/validate", response={200: ValidateOut, **errors(*WRITE, 404)})
def validate_spec(request, payload: ValidateIn):
    """Every problem a job with this spec would be refused for, keyed `spec.<field>`; 200 when
    there is none. The spec may leave out `model` (the kind's default) and `kind` (the
    dataset's; `task` is its deprecated name). Nothing is submitted."""
    dataset = Dataset.objects.select_related("course").filter(pk=payload.dataset).first()
    if dataset is None or not permissions.can_view_dataset(request.user, dataset):
        raise Http404
    if not permissions.can_train_on(request.user, dataset):
        raise HttpError(403, _("You may not train on this dataset."))
    problems = wrong_types(payload.spec, "spec")
    if not problems:
        _spec, problems = spec_check.validate_job(request.user, dataset, payload.spec)
    if problems:
        return error(_("Some settings are not valid."), 422, problems)
    return {"ok": True, "errors": {}}
