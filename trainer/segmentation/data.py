"""Manifest items → one uint8 tensor of images and one tensor of class maps, at the input size.

Every image is resized (stretched, as classification and detection do) to the model's square
input size S, and its objects' outlines are drawn straight into an S×S class map: a polygon's
points are scaled by S / width and S / height and filled by pycocotools (COCO's own
rasteriser), an RLE mask (stored at the original size) is decoded and resized with the nearest
pixel. In the map, 0 is the background and i + 1 the run's class i; where objects overlap the
later annotation wins. An object with a box but no outline is IGNORE inside its box: those
pixels are neither its class nor background, and neither the loss nor the metrics count them.
Everything about a split's quality is measured on these S×S maps.

An instance model (Mask R-CNN) also gets each object's own S×S mask, its label and the box
around the mask; crowd regions (one outline around many objects) are kept apart, as COCO's
evaluation wants them.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from trainer.data import DataError
from trainer.detection.data import decode_image

IGNORE = -1  # class map value (int16 maps: 0 background, 1..10,000 classes) that counts for nothing


@dataclass
class Instances:
    """One image's objects for an instance model, at the input size."""

    masks: Tensor  # (n, S, S) uint8, 1 inside the object
    labels: Tensor  # (n,) int64, 0-based class indices
    boxes: Tensor  # (n, 4) float32 xyxy input pixels, around the mask
    crowd: Tensor  # (n,) bool: a crowd region (COCO's iscrowd), not trained on

    def to(self, device: torch.device) -> "Instances":
        return Instances(*(t.to(device) for t in (self.masks, self.labels, self.boxes, self.crowd)))

    def target(self) -> dict[str, Tensor]:
        """The objects a model trains on (crowd regions left out)."""
        keep = ~self.crowd
        return {"masks": self.masks[keep], "labels": self.labels[keep], "boxes": self.boxes[keep]}


@dataclass
class SegmentationSplit:
    """One split in memory: images (N, C, S, S) uint8 and class maps (N, S, S) int16."""

    images: Tensor
    masks: Tensor  # (N, S, S): 0 background, i + 1 class i, IGNORE
    ids: list
    sizes: Tensor  # (N, 2) float64: each image's original width and height
    instances: list[Instances] | None = None  # instance models only

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def device(self) -> torch.device:
        return self.images.device

    @property
    def input_size(self) -> int:
        return self.images.shape[-1]

    def labelled_pixels(self) -> int:
        """Pixels of any class (not background, not IGNORE)."""
        return int((self.masks > 0).sum())

    def subset(self, index: Tensor) -> "SegmentationSplit":
        picked = index.tolist()
        return SegmentationSplit(
            self.images[index],
            self.masks[index],
            [self.ids[i] for i in picked],
            self.sizes[index.cpu()],
            [self.instances[i] for i in picked] if self.instances is not None else None,
        )

    def to(self, device: torch.device) -> "SegmentationSplit":
        return SegmentationSplit(
            self.images.to(device),
            self.masks.to(device),
            self.ids,
            self.sizes,
            [one.to(device) for one in self.instances] if self.instances is not None else None,
        )


def _mask_util() -> Any:
    from pycocotools import mask as mask_util  # imported on use: no work at import time

    return mask_util


def polygons_mask(polygons: Sequence[Sequence[float]], scale_x: float, scale_y: float, size: int):
    """COCO polygons [[x1, y1, x2, y2, ...], ...] in original pixels → (size, size) uint8."""
    scaled = []
    for polygon in polygons:
        points = np.asarray(polygon, dtype=np.float64).reshape(-1, 2) * (scale_x, scale_y)
        if len(points) >= 3:  # a polygon needs three corners to hold a pixel
            scaled.append(points.reshape(-1).tolist())
    if not scaled:
        return np.zeros((size, size), dtype=np.uint8)
    mask_util = _mask_util()
    rle = mask_util.merge(mask_util.frPyObjects(scaled, size, size))
    return mask_util.decode(rle)  # (size, size) uint8


def rle_mask(rle: dict, size: int) -> np.ndarray:
    """A COCO RLE {"size": [h, w], "counts": str or list} → (size, size) uint8, nearest pixel.

    Raises ValueError when it is not one."""
    shape = rle.get("size")
    counts = rle.get("counts")
    if (
        not isinstance(shape, list | tuple)
        or len(shape) != 2
        or not all(isinstance(v, int) and 0 < v <= 16_384 for v in shape)
    ):
        raise ValueError('an RLE mask needs "size": [height, width]')
    height, width = shape
    mask_util = _mask_util()
    if isinstance(counts, list):  # uncompressed: run lengths
        if not all(isinstance(v, int) and v >= 0 for v in counts) or sum(counts) != height * width:
            raise ValueError("the RLE's run lengths do not add up to its height × width")
        compressed = mask_util.frPyObjects(
            {"size": [height, width], "counts": counts}, height, width
        )
    elif isinstance(counts, str):
        compressed = {"size": [height, width], "counts": counts.encode("ascii")}
    else:
        raise ValueError('an RLE mask needs "counts": a string or a list of run lengths')
    full = mask_util.decode(compressed)  # (h, w) uint8
    if full.shape != (size, size):
        full = np.asarray(Image.fromarray(full).resize((size, size), Image.Resampling.NEAREST))
    return full


def object_mask(annotation: Any, scale_x: float, scale_y: float, size: int) -> np.ndarray | None:
    """One annotation's outline as (size, size) uint8, or None when it has none."""
    outline = annotation.segmentation
    if isinstance(outline, dict):
        return rle_mask(outline, size)
    if outline:
        return polygons_mask(outline, scale_x, scale_y, size)
    return None


def class_map(
    annotations: Sequence[Any], width: float, height: float, size: int, *, instances: bool = False
) -> tuple[np.ndarray, Instances | None]:
    """An image's objects → (size, size) int16 class map (and its instances, when asked)."""
    scale_x, scale_y = size / width, size / height
    mask = np.zeros((size, size), dtype=np.int16)
    for a in annotations:  # boxes without outlines first: any outline drawn over them wins
        if a.segmentation is None and a.bbox is not None:
            x, y, w, h = a.bbox
            x1, y1 = max(int(x * scale_x), 0), max(int(y * scale_y), 0)
            x2, y2 = int(np.ceil((x + w) * scale_x)), int(np.ceil((y + h) * scale_y))
            mask[y1:y2, x1:x2] = IGNORE
    masks, labels, crowd = [], [], []
    for a in annotations:
        one = object_mask(a, scale_x, scale_y, size)
        if one is None or not one.any():
            continue
        mask[one.astype(bool)] = a.category + 1
        if instances:
            masks.append(one)
            labels.append(a.category)
            crowd.append(a.iscrowd)
    if not instances:
        return mask, None
    return mask, _instances(masks, labels, crowd, size)


def _instances(masks: list, labels: list, crowd: list, size: int) -> Instances:
    from torchvision.ops import masks_to_boxes

    if not masks:
        return Instances(
            torch.zeros(0, size, size, dtype=torch.uint8),
            torch.zeros(0, dtype=torch.int64),
            torch.zeros(0, 4),
            torch.zeros(0, dtype=torch.bool),
        )
    stacked = torch.from_numpy(np.stack(masks))  # (n, S, S) uint8
    boxes = masks_to_boxes(stacked) + torch.tensor([0.0, 0.0, 1.0, 1.0])  # around whole pixels
    return Instances(
        stacked,
        torch.tensor(labels, dtype=torch.int64),
        boxes,
        torch.tensor(crowd, dtype=torch.bool),
    )


def load_split(
    items: Sequence, root: str | None, size: int, channels: int, *, instances: bool = False
) -> SegmentationSplit:
    """Decode every item of a split once, with its class map at the input size."""
    base = Path(root) if root else Path()
    images = np.empty((len(items), channels, size, size), dtype=np.uint8)  # (N, C, S, S)
    masks = np.empty((len(items), size, size), dtype=np.int16)  # (N, S, S)
    sizes = torch.empty(len(items), 2, dtype=torch.float64)
    objects: list[Instances] = []
    for i, item in enumerate(items):
        path = base / item.path
        try:
            with Image.open(path) as opened:
                images[i], (width, height) = decode_image(opened, size, channels)
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: cannot be read as an image ({exc})") from None
        sizes[i] = torch.tensor([width, height])
        try:
            masks[i], found = class_map(item.annotations, width, height, size, instances=instances)
        except (ValueError, TypeError) as exc:
            raise DataError(f"{item.path}: an object's outline cannot be read ({exc})") from None
        if found is not None:
            objects.append(found)
    ids = [item.id if item.id is not None else item.path for item in items]
    return SegmentationSplit(
        torch.from_numpy(images),
        torch.from_numpy(masks),
        ids,
        sizes,
        objects if instances else None,
    )
