"""Shapes of the annotation studio's API: annotations, deltas, drafts (webapp/datasets/drafts.py).

One annotation shape everywhere (COCO's fields, with a stable `uid` and a `revision`); every
number bounded, every list capped, so that no request can ask for more than a page or a stroke.
"""

from typing import Annotated, Literal

from ninja import Schema
from pydantic import Field

from webapp.api.schemas import Body, ErrorOut
from webapp.datasets.drafts import MAX_CHANGES, MAX_KEYPOINTS, MAX_POLYGON_NUMBERS, MAX_POLYGONS

Uuid = Annotated[
    str,
    Field(
        pattern=r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$",
        description="A UUID (the client makes one for each new annotation).",
    ),
]
Coordinate = Annotated[float, Field(ge=-1e6, le=1e6, allow_inf_nan=False)]
Revision = Annotated[int, Field(ge=0, le=2**31 - 1)]
CategoryIndex = Annotated[int, Field(ge=0, le=2**31 - 1)]


class Rle(Schema):
    """A brush mask: COCO compressed RLE of the image's [height, width]."""

    size: list[Annotated[int, Field(ge=1, le=100_000)]] = Field(min_length=2, max_length=2)
    counts: str = Field(min_length=1, max_length=2_000_000)


Polygons = list[Annotated[list[Coordinate], Field(max_length=MAX_POLYGON_NUMBERS)]]


class AnnotationData(Body):
    category: CategoryIndex
    bbox: list[Coordinate] | None = Field(None, min_length=4, max_length=4)
    segmentation: Annotated[Polygons, Field(max_length=MAX_POLYGONS)] | Rle | None = None
    keypoints: list[Coordinate] | None = Field(None, max_length=3 * MAX_KEYPOINTS)
    iscrowd: bool = False


class ChangeIn(Body):
    """One delta: create / update / delete an annotation, label an image, add a class, or accept
    a proposal. `revision` is the annotation's revision the change was made on."""

    op: Literal["create", "update", "delete", "label", "category", "accept"]
    item: Uuid | None = None
    uid: Uuid | None = None
    revision: Revision | None = None
    data: AnnotationData | None = None
    category: CategoryIndex | None = None
    name: str | None = Field(None, max_length=200)


class ChangesIn(Body):
    changes: list[ChangeIn] = Field(min_length=1, max_length=MAX_CHANGES)


class ProposalOut(Schema):
    score: float
    job: int | None = None
    category: int | None = None
    scores: dict[str, float] | None = None


class AnnotationOut(Schema):
    uid: str
    item: str
    revision: int
    category: int
    bbox: list[float] | None
    segmentation: list[list[float]] | Rle | None
    keypoints: list[float] | None
    iscrowd: bool
    area: float
    proposal: ProposalOut | None


class ConflictOut(Schema):
    uid: str
    item: str
    theirs: dict | None = Field(description="What was committed meanwhile (null: deleted).")
    yours: dict | None = Field(description="Your draft's change (null: you deleted it).")
    by: str | None = Field(None, description="Who committed their side.")


class RefusedChange(Schema):
    index: int
    uid: str
    field: str
    detail: str


class CategoryOut(Schema):
    index: int
    name: str
    keypoints: list[str]
    skeleton: list[list[int]]
    sigmas: list[float] = Field(
        default_factory=list, description="OKS sigmas, one per keypoint (empty: the defaults)."
    )


class DraftState(Schema):
    base: int
    head: int
    changes: int


class ChangesOut(Schema):
    applied: list[str]
    refused: list[RefusedChange]
    conflicts: list[ConflictOut]
    categories: list[CategoryOut] | None = None
    draft: DraftState


class StudioItem(Schema):
    uid: str
    id: int
    path: str
    width: int
    height: int
    image: str
    thumb: str
    split: str
    category: int | None
    proposal: ProposalOut | None


class ItemView(Schema):
    item: StudioItem
    version: int | None = Field(description="null: the caller's draft over the head version.")
    editable: bool
    annotations: list[AnnotationOut]
    conflicts: list[ConflictOut]
    others_editing: list[str]


class QueueItem(Schema):
    uid: str
    id: int
    thumb: str
    image: str
    category: int | None
    proposal: ProposalOut | None
    objects: int


class QueuePage(Schema):
    items: list[QueueItem]
    total: int
    offset: int
    next: int | None


class DraftOut(Schema):
    base: int
    head: int
    changes: int
    items: int
    proposals: int
    conflicts: int


class CommitIn(Body):
    message: str = Field("", max_length=300)


class CommitOut(Schema):
    version: int


class CommitConflictOut(ErrorOut):
    conflicts: list[ConflictOut] = []


class ResolveIn(Body):
    uid: Uuid
    keep: Literal["mine", "theirs"]


class ResolveOut(Schema):
    uid: str
    kept: Literal["mine", "theirs"]
    annotation: AnnotationOut | None = Field(
        description="The annotation as the image now shows it (null: gone)."
    )
    category: int | None = Field(description="The image's class now (classification).")


class KeypointsIn(Body):
    keypoints: list[Annotated[str, Field(min_length=1, max_length=60)]] = Field(
        min_length=1, max_length=MAX_KEYPOINTS
    )
    skeleton: list[
        Annotated[
            list[Annotated[int, Field(ge=1, le=MAX_KEYPOINTS)]], Field(min_length=2, max_length=2)
        ]
    ] = Field(default_factory=list, max_length=MAX_KEYPOINTS * 4)
    sources: list[Annotated[int, Field(ge=1, le=MAX_KEYPOINTS)] | None] | None = Field(
        None,
        max_length=MAX_KEYPOINTS,
        description="For each new point, the old point (1-based) it was, or null for a new "
        "one; without it, points are kept by name.",
    )
    sigmas: list[float] | None = Field(
        None,
        max_length=MAX_KEYPOINTS,
        description="OKS sigmas, one per keypoint, each above 0 and at most 1 (COCO's "
        "categories[].sigmas); [] for the defaults (COCO's for COCO's 17 names, else 0.05); "
        "without it, each kept point keeps its own.",
    )
