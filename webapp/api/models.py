"""`/api/v1/models*` and `/api/v1/jobs/validate`: what can be trained, a model's shapes and
parameters layer by layer, and a spec's problems before it is submitted."""

from django.http import Http404, JsonResponse
from django.utils.translation import gettext as _
from ninja import Router
from ninja.errors import HttpError
from pydantic import Field, field_validator

from trainer import limits  # plain numbers, no torch
from webapp.accounts import permissions
from webapp.api.base import WRITE, error, errors
from webapp.api.job_schemas import (
    ModelChoice,
    ModelsOut,
    SummaryOut,
    SummaryProblem,
    ValidateIn,
    ValidateOut,
    wrong_types,
)
from webapp.api.schemas import Body
from webapp.datasets.models import Dataset
from webapp.jobs import catalog, spec_check

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


@router.get("/models", response={200: ModelsOut, **errors(401)})
def list_models(request):
    """The models one may train: lecture presets and torchvision models (with whether their
    ImageNet weights are on this server), and the builder's layer types."""
    return {
        "models": [
            {
                "name": entry.name,
                "kind": entry.kind,
                "description": entry.describe(),
                "default_input_size": entry.default_input_size,
                "min_input_size": entry.min_input_size,
                "imagenet": catalog.imagenet_ready(entry.name),
            }
            for entry in catalog.MODELS
        ],
        "layer_types": catalog.LAYER_TYPES,
    }


@router.post(
    "/models/summary",
    response={200: SummaryOut, **errors(*WRITE, 503), 422: SummaryProblem},
)
def model_summary(request, payload: SummaryIn):
    """Output shape and parameters after each layer, from the trainer's own shape inference;
    422 naming the layer (`model.<i>`) or the setting that does not fit."""
    model = payload.model
    if isinstance(model, list) and not 1 <= len(model) <= catalog.MAX_LAYERS:
        return error(
            _("Use between 1 and %(n)s layers.") % {"n": catalog.MAX_LAYERS},
            422,
            {"model": _("Use between 1 and %(n)s layers.") % {"n": catalog.MAX_LAYERS}},
        )
    problems = wrong_types(model, "model", layers_only=True)
    if problems:
        return error(next(iter(problems.values())), 422, problems)
    try:
        answer = catalog.model_summary(model, payload.input_size, payload.channels, payload.classes)
    except catalog.SummaryUnavailable:
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
    there is none. Nothing is submitted."""
    dataset = Dataset.objects.select_related("course").filter(pk=payload.dataset).first()
    if dataset is None or not permissions.can_view_dataset(request.user, dataset):
        raise Http404
    if not permissions.can_train_on(request.user, dataset):
        raise HttpError(403, _("You may not train on this dataset."))
    problems = wrong_types(payload.spec, "spec") or spec_check.spec_problems(
        request.user, payload.spec, dataset
    )
    if problems:
        return error(_("Some settings are not valid."), 422, problems)
    return {"ok": True, "errors": {}}
