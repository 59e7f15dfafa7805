"""Request and response shapes of `/api/v1/datasets/*` and `/api/v1/uploads/*`."""

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from ninja import Schema
from pydantic import Field

from trainer.limits import MAX_KFOLD
from webapp.api.schemas import MAX_ID, Body, Count, Id
from webapp.datasets.models import Kind, Split, Visibility
from webapp.datasets.samples import SAMPLES

MAX_EDIT_ITEMS = 10_000  # images one edit may name (a page shows 100)
MAX_PAGE = 1_000_000  # of 100 items: a hundred million images
MAX_SEED = 2**32 - 1


def one_of(values, default: Any = None) -> Any:
    """A text field documented with the values it may take (and null where it may be left out);
    the action refuses others (400) with a message for the student."""
    allowed = [*values, None] if default is None else list(values)
    return Field(default, json_schema_extra={"enum": allowed})


KINDS = Kind.values
VISIBILITIES = Visibility.values
SPLITS = Split.values
EXPORT_FORMATS = ("imagefolder", "coco")


def kind_field() -> Any:
    """`kind`: the ML problem the dataset is for. Required unless the deprecated `task` is sent."""
    return Field(
        None,
        description="classification, detection, segmentation or keypoints.",
        json_schema_extra={"enum": [*KINDS, None]},
    )


def deprecated_task_field() -> Any:
    """`task`: the old name of `kind`, still read so that older clients keep working."""
    return Field(
        None,
        description="Deprecated: the old name of `kind`. Send `kind`; if both are sent they "
        "must be equal.",
        # In the schema only: pydantic's own `deprecated=True` would warn on every read.
        json_schema_extra={"enum": [*KINDS, None], "deprecated": True},
    )


def _text_of(values) -> Any:
    return Annotated[str, Field(json_schema_extra={"enum": list(values)})]


# Query parameters (the action refuses a value outside the list with a 400).
SplitFilter = Literal[("", *SPLITS)]  # "" for every split
ExportFormat = _text_of(EXPORT_FORMATS)
ClassFilter = Annotated[str, Field(max_length=200)]
Page = Annotated[int, Field(ge=1, le=MAX_PAGE)]
Offset = Annotated[int, Field(ge=0, le=MAX_ID)]


class Created(Schema):
    id: int
    status: Literal["processing", "ready", "failed"]


class DatasetForm(Schema):
    """The form fields of a one-request upload (with the ZIP as `file`)."""

    course: Id
    name: str = Field(min_length=1, max_length=200)
    kind: str | None = kind_field()
    task: str | None = deprecated_task_field()
    visibility: str = one_of(VISIBILITIES, "private")


class SampleIn(Body):
    course: Id
    sample: str = one_of(SAMPLES, ...)
    name: str = Field("", max_length=200)
    visibility: str = one_of(VISIBILITIES, "private")


class SampleOut(Schema):
    key: str
    kind: Literal[tuple(KINDS)]  # type: ignore[valid-type]
    count: int
    title: dict[str, str] = Field(description="The sample's name by language (ja, en).")
    description: dict[str, str]


class UploadIn(Body):
    course: Id
    file_name: str = Field(min_length=1, max_length=255)
    size: int = Field(gt=0, le=MAX_ID, description="The whole file's size in bytes.")


class UploadOut(Schema):
    id: UUID
    file_name: str
    size: int
    received: int
    chunk_size: int


class CompleteIn(Body):
    name: str = Field(min_length=1, max_length=200)
    kind: str | None = kind_field()
    task: str | None = deprecated_task_field()
    visibility: str = one_of(VISIBILITIES, "private")


class DatasetPatch(Body):
    name: str | None = Field(None, min_length=1, max_length=200)
    visibility: str | None = one_of(VISIBILITIES)


class ClassCount(Schema):
    name: str
    count: int


class Rejected(Schema):
    file: str
    reason: str


class DatasetOut(Schema):
    id: int
    course: int
    name: str
    kind: Literal[tuple(KINDS)]  # type: ignore[valid-type]
    visibility: Literal[tuple(VISIBILITIES)]  # type: ignore[valid-type]
    owner: str | None = Field(description="Only for who may see the images.")
    status: Literal["processing", "ready", "failed"]
    progress: float
    num_images: int
    classes: list[ClassCount]
    rejected: list[Rejected] = Field(description="Files that were not used, and why.")
    rejected_total: int
    error: str
    version: int = Field(description="The current version's number; 0 before the first.")
    splits: dict[str, dict[str, int]] = Field(
        description="Images per split and class of the current version."
    )


class VersionOut(Schema):
    number: int
    created_at: datetime
    summary: str
    counts: dict[str, dict[str, int]]
    split_settings: dict[str, float | int] = Field(description="val, test, seed and folds.")


class RleMask(Schema):
    size: list[int] = Field(description="[height, width] of the image.")
    counts: str | list[int] = Field(
        description="COCO run lengths, column by column from background: a list, or "
        "pycocotools' compressed string."
    )


class Annotation(Schema):
    category: str
    bbox: list[float] | None
    segmentation: list[list[float]] | RleMask | None = Field(
        description="COCO polygons [[x1, y1, x2, y2, ...], ...] or an RLE mask, as uploaded."
    )
    keypoints: list[float] | None = Field(description="x, y, v per keypoint (v: 0, 1, 2).")
    iscrowd: bool = False


class ItemOut(Schema):
    id: int
    path: str
    split: Literal[tuple(SPLITS)]  # type: ignore[valid-type]
    fold: int
    label: str | None
    width: int
    height: int
    image_url: str
    thumb_url: str
    annotations: list[Annotation]


class ItemsPage(Schema):
    version: int
    page: int
    count: int
    items: list[ItemOut]


class EditIn(Body):
    op: str = one_of(("relabel", "move", "delete", "rename_class", "merge_classes", "resplit"), ...)
    items: list[Id] = Field([], max_length=MAX_EDIT_ITEMS)
    category: str = Field("", max_length=200)
    split: str = one_of(["", *SPLITS], "")
    index: Count | None = None
    name: str = Field("", max_length=200)
    source: Count | None = None
    target: Count | None = None
    val: float = Field(0.2, ge=0, le=1, allow_inf_nan=False)
    test: float = Field(0.0, ge=0, le=1, allow_inf_nan=False)
    seed: int = Field(0, ge=0, le=MAX_SEED)
    folds: int = Field(0, ge=0, le=MAX_KFOLD)


class EditOut(Schema):
    version: int
    summary: str
    counts: dict[str, dict[str, int]]
