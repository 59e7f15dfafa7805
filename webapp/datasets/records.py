"""What importers and samples produce, before anything is stored: plain data, no Django models.

An importer reads a safe archive (see archive.py) and yields SourceImage for each picture it
understood and Rejection for each file it could not use. Ingest validates and stores them.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trainer import kinds

KINDS = kinds.KINDS  # the one list of kinds (torch-free), which importers and samples use
SPLITS = ("train", "val", "test")


@dataclass
class SourceAnnotation:
    """One COCO-shaped annotation, in pixels of the image as stored (after EXIF rotation)."""

    category: str
    bbox: list[float] | None = None  # [x, y, width, height]
    # polygons [[x1, y1, x2, y2, ...], ...], or an RLE mask {"size": [h, w], "counts": ...}
    segmentation: list[list[float]] | dict[str, Any] | None = None
    # [x1, y1, v1, x2, y2, v2, ...]; v: 0 not labelled, 1 labelled but hidden, 2 visible
    keypoints: list[float] | None = None
    iscrowd: bool = False


@dataclass
class SourceImage:
    """One picture with its labels. Exactly one of `read` (encoded bytes) or `pixels` is set."""

    path: str  # its path inside the upload: data to show, never a storage name
    read: Callable[[], bytes] | None = None  # PNG, JPEG, ... bytes, read lazily
    pixels: np.ndarray | None = None  # (H, W) or (H, W, 3) uint8, for IDX / CIFAR records
    label: str | None = None  # the class, for classification
    annotations: list[SourceAnnotation] = field(default_factory=list)
    split: str | None = None  # when the format itself says (MNIST t10k, a COCO "val" file)


@dataclass
class Rejection:
    """A file that was not used, and why, in words a student understands."""

    path: str
    reason: str


MAX_SIGMA = 1.0  # an OKS sigma is a share of the object's size: above 1 it means nothing


def sigmas_problem(sigmas: object, count: int) -> str | None:
    """Why `sigmas` are not OKS sigmas for `count` keypoints (one positive number each, at most
    MAX_SIGMA), or None when they are; in the reader's language."""
    from django.utils.translation import gettext as _

    if not isinstance(sigmas, list) or len(sigmas) != count:
        return _("give one sigma per keypoint (%(count)s)") % {"count": count}
    for value in sigmas:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not 0 < value <= MAX_SIGMA:  # NaN fails the bounds too
            return _("every sigma is a number above 0 and at most %(limit)s") % {
                "limit": f"{MAX_SIGMA:g}"
            }
    return None


@dataclass
class CategoryInfo:
    """A category as a format declares it (keypoint names and skeleton for keypoint sets)."""

    name: str
    keypoints: list[str] = field(default_factory=list)
    skeleton: list[list[int]] = field(default_factory=list)  # 1-based pairs, as in COCO
    sigmas: list[float] = field(default_factory=list)  # OKS sigmas per keypoint; empty: defaults


@dataclass
class ImportResult:
    """An importer's answer: the format it recognised, the categories it declares, the records."""

    format: str
    records: Iterator[SourceImage | Rejection]
    categories: list[CategoryInfo] = field(default_factory=list)
