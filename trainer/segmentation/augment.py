"""Geometric augmentation for segmentation: the class map moves with the pixels.

torchvision's `transforms.v2` knows that a `tv_tensors.Mask` is geometry: a flip, a rotation, a
zoom, a shear or a crop moves the map exactly as it moves the image, sampled with the nearest
pixel so a class stays a class (never the average of two). What comes in from outside the
picture (a turned corner, the crop's padding) is black in the image and background in the map.
Colour jitter changes the image only. An instance model's object masks move the same way, and
their boxes are then drawn again around what is left of each (an object turned or cropped out of
the picture is dropped with its label).

The settings are the spec's `Augmentation` (the lecture preset: rotation 45°, shear 0.3, zoom
0.4, horizontal flips), as classification and detection use them. Randomness comes only from
the generator the driver passes: one seed is drawn from it per batch and v2 (which draws from
torch's global generator) runs inside `torch.random.fork_rng`, so a resumed run repeats an
uninterrupted one.
"""

import torch
from torch import Tensor
from torchvision import tv_tensors
from torchvision.transforms import v2

from trainer.detection.augment import build_transform as _detection_steps
from trainer.segmentation.data import Instances


def build_transform(spec, size: int) -> v2.Compose:
    """The spec's Augmentation settings as one v2 pipeline for (image, class map[, masks]).

    The same steps as detection's (trainer.detection.augment), without its box clean-up: a
    class map has no boxes to clip."""
    steps = [
        step
        for step in _detection_steps(spec, size).transforms
        if not isinstance(step, v2.ClampBoundingBoxes | v2.SanitizeBoundingBoxes)
    ]
    return v2.Compose(steps)


class MaskAugment:
    """Augment a batch of uint8 images (B, C, S, S) with their class maps (B, S, S) (and an
    instance model's object masks), one draw per image."""

    def __init__(self, spec, size: int) -> None:
        self.size = size
        self.transform = build_transform(spec, size)

    def __call__(
        self,
        images: Tensor,
        masks: Tensor,
        generator: torch.Generator,
        instances: list[Instances] | None = None,
    ) -> tuple[Tensor, Tensor, list[Instances] | None]:
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        out_images, out_masks = torch.empty_like(images), torch.empty_like(masks)
        moved_instances: list[Instances] = []
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for i in range(images.shape[0]):
                sample = {
                    "image": tv_tensors.Image(images[i]),  # (C, S, S)
                    "mask": tv_tensors.Mask(masks[i]),  # (S, S)
                }
                if instances is not None:
                    sample["objects"] = tv_tensors.Mask(instances[i].masks)  # (n, S, S)
                moved = self.transform(sample)
                out_images[i] = moved["image"]
                out_masks[i] = moved["mask"]
                if instances is not None:
                    moved_instances.append(_redraw(instances[i], moved["objects"]))
        return out_images, out_masks, moved_instances if instances is not None else None


def _redraw(before: Instances, masks: Tensor) -> Instances:
    """The objects after the move: boxes drawn again around their masks, empty ones dropped."""
    from torchvision.ops import masks_to_boxes

    masks = masks.as_subclass(Tensor)  # (n, S, S) uint8
    keep = masks.flatten(1).any(dim=1)  # (n,)
    masks = masks[keep]
    boxes = masks_to_boxes(masks) + torch.tensor([0.0, 0.0, 1.0, 1.0], device=masks.device)
    return Instances(masks, before.labels[keep], boxes, before.crowd[keep])
