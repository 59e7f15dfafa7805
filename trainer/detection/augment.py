"""Geometric augmentation for detection: the boxes move with the pixels.

torchvision's `transforms.v2` knows that a `tv_tensors.BoundingBoxes` is geometry: a flip, a
rotation, a zoom or a crop of the image moves, turns, scales or cuts its boxes the same way.
Afterwards boxes are clipped to the image, and those left (nearly) empty — an object rotated or
cropped out of the picture — are dropped with their labels.

A rotated box becomes the upright box around its four turned corners, so it is larger than the
object: a known cost of axis-aligned boxes; keep rotations small for detection (the lecture
preset's 45° widens boxes noticeably).

Randomness comes only from the generator the driver passes: one seed is drawn from it per batch
and v2's transforms (which use torch's global generator) run inside `torch.random.fork_rng`, so
the same generator gives the same augmentation, and a resumed run repeats an uninterrupted one.
"""

import math

import torch
from torch import Tensor
from torchvision import tv_tensors
from torchvision.transforms import v2

MIN_BOX_SIDE = 1.0  # input pixels; a box thinner than this after a crop is no object any more


def build_transform(spec, size: int) -> v2.Compose:
    """The spec's Augmentation settings as one v2 pipeline for (image, boxes, labels)."""
    steps: list = []
    if spec.hflip:
        steps.append(v2.RandomHorizontalFlip(0.5))
    if spec.vflip:
        steps.append(v2.RandomVerticalFlip(0.5))
    if spec.rotation or spec.shear or spec.zoom:
        # Shear as classification uses it (a tan factor, as in Keras), in degrees for v2.
        shear = math.degrees(math.atan(spec.shear))
        steps.append(
            v2.RandomAffine(
                degrees=spec.rotation,
                scale=(1 - spec.zoom, 1 + spec.zoom),
                shear=(-shear, shear) if shear else None,
                fill=0,  # black, not the border repeated: no half-objects without boxes
            )
        )
    if spec.random_crop:
        steps.append(v2.RandomCrop(size, padding=spec.random_crop, fill=0))
    if spec.color_jitter:
        steps.append(v2.ColorJitter(brightness=spec.color_jitter, contrast=spec.color_jitter))
    steps += [v2.ClampBoundingBoxes(), v2.SanitizeBoundingBoxes(min_size=MIN_BOX_SIDE)]
    return v2.Compose(steps)


class BoxAugment:
    """Augment a batch of uint8 images (B, C, S, S) with their boxes, one draw per image."""

    def __init__(self, spec, size: int) -> None:
        self.size = size
        self.transform = build_transform(spec, size)

    def __call__(
        self, images: Tensor, boxes: list[Tensor], labels: list[Tensor], generator: torch.Generator
    ) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        out_images = torch.empty_like(images)
        out_boxes: list[Tensor] = []
        out_labels: list[Tensor] = []
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for i in range(images.shape[0]):
                sample = {
                    "image": tv_tensors.Image(images[i]),  # (C, S, S)
                    "boxes": tv_tensors.BoundingBoxes(
                        boxes[i], format="XYXY", canvas_size=(self.size, self.size)
                    ),
                    "labels": labels[i],
                }
                moved = self.transform(sample)
                out_images[i] = moved["image"]
                out_boxes.append(moved["boxes"].as_subclass(Tensor))  # (n', 4), n' ≤ n
                out_labels.append(moved["labels"])
        return out_images, out_boxes, out_labels
