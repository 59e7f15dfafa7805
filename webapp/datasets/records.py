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


@dataclass
class CategoryInfo:
    """A category as a format declares it (keypoint names and skeleton for keypoint sets)."""

    name: str
    keypoints: list[str] = field(default_factory=list)
    skeleton: list[list[int]] = field(default_factory=list)  # 1-based pairs, as in COCO


@dataclass
class ImportResult:
    """An importer's answer: the format it recognised, the categories it declares, the records."""

    format: str
    records: Iterator[SourceImage | Rejection]
    categories: list[CategoryInfo] = field(default_factory=list)
