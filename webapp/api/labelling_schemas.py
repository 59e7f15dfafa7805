"""Shapes of the labelling assignments' read-only API (webapp/api/labelling.py)."""

from datetime import datetime
from typing import Literal

from ninja import Schema
from pydantic import Field

STATUSES = Literal["waiting", "agreed", "disagree", "resolved"]


class LabellingOut(Schema):
    """A labelling assignment. `figures` only for the class's teachers and TAs; a student gets
    `given` and `done`, their own counts."""

    id: int
    course: int
    dataset: int
    kind: str
    title: str
    instructions: str
    per_image: int = Field(description="Students each image goes to (1–3).")
    deadline: datetime | None
    published_version: int | None = Field(description="The dataset version it was published as.")
    images: int
    given: int | None = None
    done: int | None = None
    figures: "FiguresOut | None" = None


class FiguresOut(Schema):
    """Agreement over the images every student given them has answered. Classification:
    `observed` (mean share of agreeing pairs), Fleiss' kappa, Cohen's kappa (only when the same
    two students labelled every image compared); other kinds: `mean`, the mean IoU (boxes,
    masks) or OKS (keypoints) per image, unmatched objects counting 0."""

    images: int
    compared: int
    waiting: int
    agreed: int
    disagree: int
    resolved: int
    publishable: int
    mean: float | None
    observed: float | None = None
    fleiss: float | None = None
    cohen: float | None = None
    threshold: float = Field(description="Below this mean IoU / OKS an image is a disagreement.")


class LabellingVersionOut(Schema):
    """One student's version of an image: the class (classification) or how many objects."""

    student: str = Field(description="The student's user name.")
    answered: bool
    done: bool
    label: int | None = None
    objects: int | None = None


class ImageOut(Schema):
    item: str = Field(description="The image's uid in the dataset.")
    path: str | None
    status: STATUSES | None = Field(description="null for a student (it speaks of the others).")
    agreement: float | None
    chosen: str | None = Field(description="Whose version is published (agreed or resolved).")
    versions: list[LabellingVersionOut]


class ImagePage(Schema):
    images: list[ImageOut]
    total: int
    offset: int
    next: int | None


class ProgressOut(Schema):
    student: str
    name: str
    given: int
    answered: int
    done: int


class ProgressPage(Schema):
    students: list[ProgressOut]
    total: int
    offset: int
    next: int | None


LabellingOut.model_rebuild()
