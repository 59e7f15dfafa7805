"""Manifest items → one uint8 tensor of images and, per image, its people's keypoints in input
pixels.

Every image is resized (stretched, as classification and detection do) to the model's square
input size, so a point's x scales by `size / width` and its y by `size / height`. A keypoint is
(x, y, v) as COCO writes it: v = 0 not labelled, 1 labelled but hidden, 2 visible; coordinates
are continuous (pixel i spans [i, i + 1)). Each image keeps its original width and height and
its people in original pixels, for the metrics and the predictions file.

The default model finds ONE figure per image: its target is the image's first annotation with
a labelled keypoint (`KeypointSplit.points`); images with several people keep them all in
`people` (Keypoint R-CNN trains on every one, and OKS AP counts every one).
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

MIN_BOX_SIDE = 2.0  # input pixels: a box from one point's "extent" still has an area


@dataclass
class KeypointSplit:
    """One split in memory: images (N, C, S, S) uint8, each image's people and size."""

    images: Tensor
    points: Tensor  # (N, K, 3) float32: the target figure's x, y, v in input pixels (v 0: none)
    people: list[Tensor]  # per image (n, K, 3) float32, every person, input pixels
    boxes: list[Tensor]  # per image (n, 4) float32 xyxy input pixels (bbox, else the extent)
    truth: list[list[dict[str, Any]]]  # per image its people in original pixels (see `_person`)
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
    def figures(self) -> int:
        return sum(len(people) for people in self.truth)

    def subset(self, index: Tensor) -> "KeypointSplit":
        picked = index.tolist()
        return KeypointSplit(
            self.images[index],
            self.points[index],
            [self.people[i] for i in picked],
            [self.boxes[i] for i in picked],
            [self.truth[i] for i in picked],
            [self.ids[i] for i in picked],
            self.sizes[index.cpu()],
        )

    def to(self, device: torch.device) -> "KeypointSplit":
        return KeypointSplit(
            self.images.to(device),
            self.points.to(device),
            [p.to(device) for p in self.people],
            [b.to(device) for b in self.boxes],
            self.truth,
            self.ids,
            self.sizes,
        )


def keypoint_count(items: Sequence) -> int:
    """The number of keypoints the annotations hold (their longest list / 3)."""
    longest = max(
        (len(a.keypoints) for item in items for a in item.annotations if a.keypoints), default=0
    )
    return longest // 3


def _person(annotation, count: int, where: str) -> dict[str, Any] | None:
    """An annotation as {"keypoints": [[x, y, v], ...] (K), "box": [x, y, w, h]} in original
    pixels, or None when it labels no keypoint. The box is the annotation's, else the labelled
    points' extent."""
    flat = annotation.keypoints
    if not flat:
        return None
    if len(flat) != 3 * count:
        raise DataError(
            f"{where}: an object has {len(flat) // 3} keypoints where the data set has {count}"
        )
    points = [
        [float(flat[3 * k]), float(flat[3 * k + 1]), int(flat[3 * k + 2])] for k in range(count)
    ]
    labelled = [(x, y) for x, y, v in points if v > 0]
    if not labelled:
        return None
    if annotation.bbox is not None:
        box = [float(v) for v in annotation.bbox]
    else:
        xs, ys = [x for x, _ in labelled], [y for _, y in labelled]
        box = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
    return {"keypoints": points, "box": box}


def to_input(people: list[dict[str, Any]], scale_x: float, scale_y: float, count: int):
    """People in original pixels → (n, K, 3) keypoints and (n, 4) xyxy boxes in input pixels."""
    if not people:
        return torch.zeros(0, count, 3), torch.zeros(0, 4)
    points = torch.tensor([p["keypoints"] for p in people], dtype=torch.float64)  # (n, K, 3)
    points[..., 0] *= scale_x
    points[..., 1] *= scale_y
    xywh = torch.tensor([p["box"] for p in people], dtype=torch.float64)  # (n, 4)
    xyxy = torch.cat([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], dim=1)
    xyxy *= torch.tensor([scale_x, scale_y, scale_x, scale_y], dtype=torch.float64)
    short = (xyxy[:, 2:] - xyxy[:, :2]) < MIN_BOX_SIDE  # (n, 2): widen around the middle
    middle = (xyxy[:, :2] + xyxy[:, 2:]) / 2
    xyxy[:, :2] = torch.where(short, middle - MIN_BOX_SIDE / 2, xyxy[:, :2])
    xyxy[:, 2:] = torch.where(short, middle + MIN_BOX_SIDE / 2, xyxy[:, 2:])
    return points.float(), xyxy.float()


def load_split(
    items: Sequence, root: str | None, size: int, channels: int, count: int
) -> KeypointSplit:
    """Decode every item of a split once, with its people's keypoints at the input size."""
    base = Path(root) if root else Path()
    images = np.empty((len(items), channels, size, size), dtype=np.uint8)  # (N, C, S, S)
    sizes = torch.empty(len(items), 2, dtype=torch.float64)
    points = torch.zeros(len(items), count, 3)  # (N, K, 3)
    people, boxes, truth = [], [], []
    for i, item in enumerate(items):
        path = base / item.path
        try:
            with Image.open(path) as opened:
                images[i], (width, height) = decode_image(opened, size, channels)
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: cannot be read as an image ({exc})") from None
        sizes[i] = torch.tensor([width, height])
        found = [_person(a, count, str(item.path)) for a in item.annotations if not a.iscrowd]
        figures = [person for person in found if person is not None]
        item_points, item_boxes = to_input(figures, size / width, size / height, count)
        if figures:
            points[i] = item_points[0]  # the default model's one figure: the first
        people.append(item_points)
        boxes.append(item_boxes)
        truth.append(figures)
    ids = [item.id if item.id is not None else item.path for item in items]
    return KeypointSplit(torch.from_numpy(images), points, people, boxes, truth, ids, sizes)


def to_original(points: Tensor, width: float, height: float, input_size: int) -> list[list[float]]:
    """(K, 3) x, y (input pixels), score → [[x, y, score], ...] in the original image's pixels."""
    scale = torch.tensor([width / input_size, height / input_size, 1.0], dtype=torch.float64)
    shown = points.detach().to("cpu", torch.float64) * scale  # (K, 3)
    return [[round(x, 2), round(y, 2), round(s, 4)] for x, y, s in shown.tolist()]
