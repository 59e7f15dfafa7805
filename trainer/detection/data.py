"""Manifest items → one uint8 tensor of images and, per image, its boxes in input pixels.

Every image is resized (stretched, as classification does) to the model's square input size, so
a box's x scales by `size / width` and its y by `size / height`. Each image keeps its original
width and height: predictions are mapped back with them, and metrics are computed there.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from trainer.data import DataError
from trainer.models.detector import Target


@dataclass
class DetectionSplit:
    """One split in memory: images (N, C, S, S) uint8, and each image's objects and size."""

    images: Tensor
    boxes: list[Tensor]  # per image (n, 4) float32, x1 y1 x2 y2 in input pixels
    labels: list[Tensor]  # per image (n,) int64, 0-based class indices
    ids: list
    sizes: Tensor  # (N, 2) float64: each image's original width and height

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def device(self) -> torch.device:
        return self.images.device

    @property
    def input_size(self) -> int:
        return self.images.shape[-1]

    @property
    def objects(self) -> int:
        return sum(len(labels) for labels in self.labels)

    def subset(self, index: Tensor) -> "DetectionSplit":
        picked = index.tolist()
        return DetectionSplit(
            self.images[index],
            [self.boxes[i] for i in picked],
            [self.labels[i] for i in picked],
            [self.ids[i] for i in picked],
            self.sizes[index.cpu()],
        )

    def to(self, device: torch.device) -> "DetectionSplit":
        return DetectionSplit(
            self.images.to(device),
            [b.to(device) for b in self.boxes],
            [label.to(device) for label in self.labels],
            self.ids,
            self.sizes,
        )

    def targets(self, index: Tensor) -> list[Target]:
        """The boxes and labels of a batch's images, as a detector's `losses` takes them."""
        return [{"boxes": self.boxes[i], "labels": self.labels[i]} for i in index.tolist()]

    def scales(self) -> Tensor:
        """(N, 2) input pixels per original pixel, along x and along y."""
        return self.input_size / self.sizes


def decode_image(image: Image.Image, size: int, channels: int) -> tuple[np.ndarray, tuple]:
    """An opened image as (C, size, size) uint8 (bilinear, like `trainer.data.decode`), and its
    original (width, height)."""
    original = image.size
    image = image.convert("L" if channels == 1 else "RGB")
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    array = np.asarray(image, dtype=np.uint8)
    pixels = array[None] if channels == 1 else array.transpose(2, 0, 1)  # (C, H, W)
    return pixels, original


def _boxes_of(item, scale_x: float, scale_y: float) -> tuple[Tensor, Tensor]:
    """An item's boxes [x, y, w, h] (original pixels) → (n, 4) xyxy input pixels, labels (n,).

    Objects without a box (a polygon only) and crowd regions (one box around many objects,
    which COCO's evaluation ignores) are left out of training.
    """
    kept = [a for a in item.annotations if a.bbox is not None and not a.iscrowd]
    if not kept:
        return torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64)
    xywh = torch.tensor([a.bbox for a in kept], dtype=torch.float64)  # (n, 4)
    xyxy = torch.cat([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], dim=1)
    xyxy *= torch.tensor([scale_x, scale_y, scale_x, scale_y], dtype=torch.float64)
    labels = torch.tensor([a.category for a in kept], dtype=torch.int64)
    return xyxy.float(), labels


def load_split(items: Sequence, root: str | None, size: int, channels: int) -> DetectionSplit:
    """Decode every item of a split once, with its boxes scaled to the input size."""
    base = Path(root) if root else Path()
    images = np.empty((len(items), channels, size, size), dtype=np.uint8)  # (N, C, S, S)
    sizes = torch.empty(len(items), 2, dtype=torch.float64)
    boxes, labels = [], []
    for i, item in enumerate(items):
        path = base / item.path
        try:
            with Image.open(path) as opened:
                images[i], (width, height) = decode_image(opened, size, channels)
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: cannot be read as an image ({exc})") from None
        sizes[i] = torch.tensor([width, height])
        item_boxes, item_labels = _boxes_of(item, size / width, size / height)
        boxes.append(item_boxes)
        labels.append(item_labels)
    ids = [item.id if item.id is not None else item.path for item in items]
    return DetectionSplit(torch.from_numpy(images), boxes, labels, ids, sizes)


def to_original(boxes: Tensor, width: float, height: float, input_size: int) -> list[list[float]]:
    """(K, 4) xyxy input pixels → [[x, y, w, h], ...] in the original image's pixels."""
    scale = torch.tensor(
        [width / input_size, height / input_size] * 2, dtype=torch.float64, device="cpu"
    )
    xyxy = boxes.detach().to("cpu", torch.float64) * scale  # (K, 4)
    xywh = torch.cat([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], dim=1)
    return [[round(v, 2) for v in row] for row in xywh.tolist()]
