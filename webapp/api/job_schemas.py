"""Request and response shapes of jobs, models and assignments.

A job's spec is documented with the trainer's own `JobSpec` (less `data`, which the dataset
gives), so the schema says what every setting may be; the web side still checks it with
`spec_check.spec_problems`, which answers 422 keyed `spec.<field>` as the contract says.
"""

import json
from datetime import datetime
from typing import Annotated, Any, Literal, Union

from django.utils.translation import gettext as _
from ninja import Schema
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    TypeAdapter,
    ValidationError,
    create_model,
)
from pydantic.fields import FieldInfo
from pydantic_core import core_schema

from trainer.events import KINDS
from trainer.spec import SPECS, EarlyStopping, JobSpec
from webapp.api.schemas import MAX_ID, Body, ErrorOut, Id
from webapp.assignments.models import Metric, SubmissionStatus
from webapp.jobs import kinds
from webapp.jobs.models import JobStatus

_SETTINGS: dict[str, Any] = {
    name: (field.annotation, field) for name, field in JobSpec.model_fields.items()
}
del _SETTINGS["data"]  # the dataset gives the data
# Left out or null: the kind's default model (trainer.catalog.default_for).
_SETTINGS["model"] = (
    JobSpec.model_fields["model"].annotation | None,
    Field(None, description="A model name or a list of layers; null: the kind's default model."),
)
# The settings only some kinds have (a U-Net's width, a detector's score threshold), each
# documented with the kinds it is for; a spec of another kind refuses them (422).
_OWN: dict[str, list[str]] = {}
for _kind, _class in SPECS.items():
    for _name in _class.model_fields:
        if _name not in JobSpec.model_fields:
            _OWN.setdefault(_name, []).append(_kind)
for _name, _kinds in _OWN.items():
    _field = next(SPECS[k] for k in _kinds).model_fields[_name]
    _SETTINGS[_name] = (
        Annotated[(_field.annotation, *_field.metadata)],  # its bounds
        Field(
            _field.default,
            description=" ".join(filter(None, (_field.description, f"({', '.join(_kinds)} only)"))),
        ),
    )
# A form's checkbox: true turns early stopping on with its defaults, false turns it off; each
# kind watches its own figure (val_acc, val_map50, val_miou, val_pck) or the loss.
_STOPPING = tuple(
    SPECS[k].model_fields["early_stopping"].annotation for k in SPECS if k != "classification"
)
_SETTINGS["early_stopping"] = (
    Union[(EarlyStopping, *_STOPPING, bool)],  # noqa: UP007
    Field(None, description=JobSpec.model_fields["early_stopping"].description),
)
# `task`: the deprecated old name of `kind`, still read (spec_check.validate_job) so that older
# clients keep working; both sent must be equal.
_SETTINGS["task"] = (
    str | None,
    Field(
        None,
        description="Deprecated: the old name of `kind`. Send `kind` (or leave it out: the "
        "dataset gives it); if both are sent they must be equal.",
        # In the schema only: pydantic's own `deprecated=True` would warn on every read.
        json_schema_extra={"enum": [*SPECS, None], "deprecated": True},
    ),
)
# A kind's recipe (JobSpec.RECIPE) changes some defaults: the schema's default is
# classification's, and the description names every kind's.
for _name in sorted({name for spec in SPECS.values() for name in spec.RECIPE}):
    _annotation, _field = _SETTINGS[_name]
    _defaults = "; ".join(f"{k} {SPECS[k].model_fields[_name].default}" for k in SPECS)
    _described = f"{_field.description or ''} Default by kind: {_defaults}.".strip()
    _SETTINGS[_name] = (_annotation, FieldInfo.merge_field_infos(_field, description=_described))
JobSpecSettings = create_model(
    "JobSpecSettings",
    __config__=ConfigDict(extra="forbid"),
    __doc__="A job's settings: trainer.spec.JobSpec without `data`.",
    **_SETTINGS,
)


class _DocumentedAs:
    """Validate as plain JSON, document as `target`: the spec's own checks answer with the
    contract's 422 keyed `spec.<field>`, and a stored spec is shown as it was sent."""

    def __init__(self, target: Any) -> None:
        self.target = target

    def __get_pydantic_core_schema__(self, source: Any, handler) -> core_schema.CoreSchema:
        return handler(source)

    def __get_pydantic_json_schema__(self, schema, handler: GetJsonSchemaHandler) -> Any:
        return handler(TypeAdapter(self.target).core_schema)


Spec = Annotated[dict[str, Any], _DocumentedAs(JobSpecSettings)]
# A model name or the builder's layers, checked by the trainer on a worker (422 `model.<i>`).
ModelChoice = Annotated[
    str | list[dict[str, Any]], _DocumentedAs(JobSpec.model_fields["model"].annotation)
]


_SPEC_TYPES = TypeAdapter(JobSpecSettings)
_NUMBER_CHOICES = ("spec_version", "channels")
_MODEL_TYPES = TypeAdapter(JobSpec.model_fields["model"].annotation)


def _type_message(kind: str) -> str:
    messages = {
        "int_type": _("Write a whole number here, without quotes."),
        "float_type": _("Write a number here, without quotes."),
        "bool_type": _("Write true or false here, without quotes."),
        "string_type": _("Write a text in quotes here."),
        "list_type": _("Write a list here: [ ... ]."),
        "tuple_type": _("Write a list here: [ ... ]."),
        "dict_type": _("Write an object of settings here: { ... }."),
        "model_type": _("Write an object of settings here: { ... }."),
    }
    return messages.get(kind, _("This value is not of the type the schema gives."))


def wrong_types(value: Any, prefix: str, *, layers_only: bool = False) -> dict[str, str]:
    """Values of another JSON type than the schema says, keyed `<prefix>.<path>`: `"5"` for a
    number, `false` for 0 or 1.0 for 1, which the trainer's pydantic would quietly convert."""
    adapter = _MODEL_TYPES if layers_only else _SPEC_TYPES
    text = json.dumps(value)
    try:
        adapter.validate_json(text)
    except ValidationError:
        return {}  # refused anyway, by the spec's own checks, with their messages
    problems: dict[str, str] = {}
    if not layers_only and isinstance(value, dict):
        # pydantic takes true and 1.0 for a choice among numbers even when strict (true == 1).
        for name in _NUMBER_CHOICES:
            if isinstance(value.get(name), bool | float):
                problems[f"{prefix}.{name}"] = _type_message("int_type")
    try:
        adapter.validate_json(text, strict=True)
    except ValidationError as exc:  # taken only by converting a value: each error is one
        for item in exc.errors():
            path = ".".join([prefix, *_field_path(value, item["loc"])])
            problems.setdefault(path, _type_message(item["type"]))
    # A union's other branches complain at the field itself: the deepest place says more.
    return {
        path: message
        for path, message in problems.items()
        if not any(other.startswith(f"{path}.") for other in problems)
    }


def _field_path(value: Any, loc: tuple) -> list[str]:
    """The fields and indices of an error's location, without the union branches it names
    ("str", "list[Layer]", "int", a layer's type), which are no fields of the value."""
    path: list[str] = []
    for part in loc:
        if isinstance(part, int) and isinstance(value, list) and part < len(value):
            value = value[part]
            path.append(str(part))
        elif isinstance(part, str) and isinstance(value, dict) and part in value:
            value = value[part]
            path.append(part)
    return path


class JobIn(Body):
    dataset: Id
    spec: Spec


class ValidateIn(JobIn):
    pass


class ValidateOut(Schema):
    ok: Literal[True]
    errors: dict[str, str]


class Metrics(BaseModel):  # not ninja's Schema, which drops the keys it does not declare
    """A run's figures so far as flat keys, which depend on its kind (webapp/jobs/kinds.py),
    null until known, with the last epoch's figures. Classification always answers
    test_accuracy, val_accuracy and val_loss; detection map50 and map (0.5:0.95; the test
    split's when there is one, else validation's), val_map50 and test_map50."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra=lambda schema, _model: schema.update(properties=kinds.api_description()),
    )


class JobOut(Schema):
    id: int
    course: int
    dataset: int
    dataset_version: int
    owner: str
    spec: Spec
    status: Literal[tuple(JobStatus.values)]  # type: ignore[valid-type]
    queue_position: int | None = Field(description="1 = next; null once it has a worker.")
    estimated_start: datetime | None
    progress: float
    metrics: Metrics
    group: int | None
    label: str
    priority: int
    attempts: int
    error: str
    result: dict[str, Any] | None = Field(description="The trainer's final figures.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    gpu_seconds: float


class EventOut(Schema):
    """A stored event: its number in the job, kind, attempt and time, and the kind's fields."""

    model_config = ConfigDict(extra="allow")

    seq: int
    type: Literal[KINDS]  # type: ignore[valid-type]
    attempt: int
    time: datetime


class EventsOut(Schema):
    status: Literal[tuple(JobStatus.values)]  # type: ignore[valid-type]
    events: list[EventOut]


EventsAfter = Annotated[int, Field(ge=0, le=MAX_ID)]
EventsLimit = Annotated[int, Field(ge=1, le=5000)]
ArtifactName = Annotated[
    str,
    Field(
        json_schema_extra={
            "enum": [
                "model.safetensors",
                "model.torchscript.pt",
                "model.onnx",
                "model_card.json",
                "predictions_test.json",
                "predictions_val.json",
            ]
        }
    ),
]


class MoveIn(Body):
    where: str = Field(json_schema_extra={"enum": ["top", "up", "down", "bottom"]})


class QueueOut(Schema):
    jobs: list[JobOut]


class TopClass(Schema):
    class_: str = Field(alias="class")
    probability: float


class DetectedBox(Schema):
    box: list[float] = Field(description="[x, y, width, height] in the image's own pixels.")
    score: float
    label: int = Field(description="The class's index in the model card's classes (-1: unknown).")
    class_: str = Field(alias="class")


class MaskClass(Schema):
    index: int = Field(
        description="The class's channel: its index in the model card's classes + 1."
    )
    name: str
    share: float = Field(description="The share of the image's pixels given this class.")


class PredictedPoint(Schema):
    name: str
    x: float = Field(description="In the image's own pixels.")
    y: float
    score: float


class PredictedPerson(Schema):
    score: float
    box: list[float] = Field(description="[x, y, width, height] in the image's own pixels.")
    keypoints: list[PredictedPoint] = Field(description="One per name, in the order of `names`.")


class PredictOut(Schema):
    """What the run's model sees in the image, in its kind's shape (docs/architecture.md,
    "Try it answers"); the fields of the other kinds are absent."""

    top: list[TopClass] | None = Field(
        None, description="Classification: the five likeliest classes."
    )
    boxes: list[DetectedBox] | None = Field(
        None, description="Detection: the boxes found, the most confident first (at most 100)."
    )
    width: int | None = Field(None, description="The image's width in pixels (not classification).")
    height: int | None = Field(None, description="The image's height in pixels.")
    size: list[int] | None = Field(
        None, description="Segmentation: the masks' [height, width] (stretched over the image)."
    )
    classes: list[MaskClass] | None = Field(
        None, description="Segmentation: the classes found (not the background)."
    )
    masks: dict[str, str] | None = Field(
        None,
        description="Segmentation: per class channel (as a string), its mask as COCO compressed "
        "RLE counts (pycocotools' format, column-major) at `size`.",
    )
    names: list[str] | None = Field(None, description="Keypoints: the keypoints' names.")
    skeleton: list[list[int]] | None = Field(
        None, description="Keypoints: the skeleton's edges as 0-based index pairs into `names`."
    )
    people: list[PredictedPerson] | None = Field(
        None, description="Keypoints: the figures found (the default model finds one)."
    )
    seconds: float


class SummaryRow(Schema):
    """One row of a summary: a module of a named model, or one of the builder's layers."""

    layer: str | None = None
    index: int | None = None
    type: str | None = None
    shape: list[int]
    params: int


class SummaryOut(Schema):
    ok: Literal[True]
    input: list[int]
    parameters: int
    rows: list[SummaryRow]
    truncated: bool = False


class SummaryProblem(ErrorOut):
    """422: the layer or setting that does not fit, with the rows of the layers before it."""

    index: int | None = None
    input: list[int] | None = None
    rows: list[SummaryRow] = []


class AssignmentOut(Schema):
    id: int
    course: int
    title: str
    description: str
    description_html: str
    dataset: int
    dataset_version: int
    metric: Literal[tuple(Metric.values)]  # type: ignore[valid-type]
    deadline: datetime
    open: bool
    daily_limit: int
    hidden_test: int | None = Field(None, description="Only for the class's teachers and TAs.")


class SubmissionIn(Body):
    job: Id


class SubmissionCreated(Schema):
    id: int
    status: Literal[tuple(SubmissionStatus.values)]  # type: ignore[valid-type]


class SubmissionOut(Schema):
    id: int
    assignment: int
    job: int
    student: str
    status: Literal[tuple(SubmissionStatus.values)]  # type: ignore[valid-type]
    score: float | None
    error: str
    created_at: datetime
    scored_at: datetime | None


class LeaderboardEntry(Schema):
    rank: int
    name: str | None = Field(description="Null where the teacher hides names.")
    username: str | None
    you: bool
    score: float
    submitted_at: datetime


class LeaderboardOut(Schema):
    assignment: int
    metric: Literal[tuple(Metric.values)]  # type: ignore[valid-type]
    entries: list[LeaderboardEntry]


class ArtifactOut(Schema):
    name: str
    size: int = Field(description="Bytes.")
    url: str


class ArtifactsOut(Schema):
    artifacts: list[ArtifactOut]
