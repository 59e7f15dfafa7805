"""Geometric augmentation for keypoints: the points move with the pixels, and a mirrored figure's
left and right swap names.

Flips are done here, exactly (a point at x becomes S − x: pixel i spans [i, i + 1), so the
pixel's middle i + 0.5 lands on the mirrored pixel's middle), and any mirror image swaps a
figure's sides: after a horizontal flip the left hand is where a right hand would be, so the
"left_hand" and "right_hand" rows trade places (a vertical flip is a horizontal one turned by
180°, so it swaps them too). Which names pair up comes from the names themselves
(`flip_pairs`: the words left/right in any case, or a one-letter l/r, L/R prefix or suffix).
Rotation, shear, zoom, the padded crop and colour run through torchvision's `transforms.v2` with
the points as `tv_tensors.KeyPoints` (and the people's boxes as `BoundingBoxes`), which moves
them with the pixels. A point pushed off the image loses its label (v = 0): the loss ignores it.

Randomness comes only from the generator the driver passes: one seed is drawn from it per batch
and everything runs inside `torch.random.fork_rng`, so a resumed run repeats an uninterrupted
one.
"""

import math
import re

import torch
from torch import Tensor
from torchvision import tv_tensors
from torchvision.transforms import v2

_SIDES = [("left", "right"), ("Left", "Right"), ("LEFT", "RIGHT"), ("左", "右")]
_SEPARATORS = "_. -"  # the hyphen last: a literal in a character class
# A one-letter side as a name's first or last part: "l_eye" ↔ "r_eye", "L-knee" ↔ "R-knee",
# "eye_l" ↔ "eye_r", "knee.R" ↔ "knee.L".
_LETTER = re.compile(rf"^([lLrR])(?=[{_SEPARATORS}])|(?<=[{_SEPARATORS}])([lLrR])$")
_LETTER_SWAP = {"l": "r", "r": "l", "L": "R", "R": "L"}


def _mirror_name(name: str) -> str:
    """The name with left and right swapped wherever they appear ("hand_left" → "hand_right",
    "LeftEye" → "RightEye", "leftEye" → "rightEye", "左手" → "右手")."""
    swaps = {a: b for left, right in _SIDES for a, b in ((left, right), (right, left))}
    pattern = re.compile("|".join(re.escape(word) for word in swaps))
    return pattern.sub(lambda match: swaps[match.group(0)], name)


def _mirror_letter(name: str) -> str:
    """The name with a one-letter side prefix or suffix swapped ("l_eye" → "r_eye", "knee_R" →
    "knee_L"); the name itself when it has none."""
    return _LETTER.sub(lambda match: _LETTER_SWAP[match.group(0)], name)


def flip_pairs(names: list[str]) -> list[int]:
    """For each keypoint, the index of its mirror image's keypoint (itself when it has no other
    side): "left_knee" ↔ "right_knee", "hand_left" ↔ "hand_right", "leftKnee" ↔ "rightKnee",
    "l_knee" ↔ "r_knee", "L_knee" ↔ "R_knee", "knee_l" ↔ "knee_r"; "head" stays. The words
    left and right are looked for first, then a one-letter side at either end."""
    index = {name: i for i, name in enumerate(names)}
    pairs = []
    for i, name in enumerate(names):
        mirrored = next(
            (
                index[other]
                for other in (_mirror_name(name), _mirror_letter(name))
                if other != name and other in index
            ),
            i,
        )
        pairs.append(mirrored)
    return pairs


class KeypointAugment:
    """Augment a batch of uint8 images (B, C, S, S) with their people, one draw per image."""

    def __init__(self, spec, size: int, names: list[str]) -> None:
        self.size = size
        self.hflip, self.vflip = spec.hflip, spec.vflip
        self.mirror = torch.tensor(flip_pairs(names))  # (K,)
        self.transform = build_transform(spec, size)

    def __call__(
        self, images: Tensor, people: list[Tensor], boxes: list[Tensor], generator: torch.Generator
    ) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """images (B, C, S, S), per image (n, K, 3) points and (n, 4) xyxy boxes (input pixels)
        → the same, moved; points off the image get v = 0."""
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        out_images = torch.empty_like(images)
        out_people: list[Tensor] = []
        out_boxes: list[Tensor] = []
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for i in range(images.shape[0]):
                image, points, box = images[i], people[i].clone(), boxes[i].clone()
                if self.hflip and torch.rand(()) < 0.5:
                    image, points, box = self._flip(image, points, box, axis=0)
                if self.vflip and torch.rand(()) < 0.5:
                    image, points, box = self._flip(image, points, box, axis=1)
                if self.transform is not None:
                    image, points, box = self._transform(image, points, box)
                out_images[i] = image
                out_people.append(_unlabel_outside(points, self.size))
                out_boxes.append(box)
        return out_images, out_people, out_boxes

    def _flip(self, image: Tensor, points: Tensor, box: Tensor, axis: int):
        """Mirror along x (axis 0) or y (axis 1); left and right trade rows."""
        side = self.size
        image = image.flip(-1 if axis == 0 else -2)  # (C, S, S)
        points[..., axis] = side - points[..., axis]
        points = points[:, self.mirror.to(points.device)]  # (n, K, 3): sides swapped
        low, high = box[:, axis].clone(), box[:, axis + 2].clone()
        box[:, axis], box[:, axis + 2] = side - high, side - low
        return image, points, box

    def _transform(self, image: Tensor, points: Tensor, box: Tensor):
        canvas = (self.size, self.size)
        n, count = points.shape[:2]
        sample = {
            "image": tv_tensors.Image(image),  # (C, S, S)
            "points": tv_tensors.KeyPoints(points[..., :2].reshape(-1, 2), canvas_size=canvas),
            "boxes": tv_tensors.BoundingBoxes(box, format="XYXY", canvas_size=canvas),
        }
        moved = self.transform(sample)  # type: ignore[misc]
        points = points.clone()
        points[..., :2] = moved["points"].as_subclass(Tensor).reshape(n, count, 2)
        return moved["image"].as_subclass(Tensor), points, moved["boxes"].as_subclass(Tensor)


def build_transform(spec, size: int) -> v2.Compose | None:
    """The spec's rotation, shear, zoom, padded crop and colour as one v2 pipeline for (image,
    points, boxes), flips aside; None when it has none of them."""
    steps: list = []
    if spec.rotation or spec.shear or spec.zoom:
        shear = math.degrees(math.atan(spec.shear))  # a tan factor, as classification uses it
        steps.append(
            v2.RandomAffine(
                degrees=spec.rotation,
                scale=(1 - spec.zoom, 1 + spec.zoom),
                shear=(-shear, shear) if shear else None,
                fill=0,
            )
        )
    if spec.random_crop:
        steps.append(v2.RandomCrop(size, padding=spec.random_crop, fill=0))
    if spec.color_jitter:
        steps.append(v2.ColorJitter(brightness=spec.color_jitter, contrast=spec.color_jitter))
    if not steps:
        return None
    return v2.Compose([*steps, v2.ClampBoundingBoxes()])


def _unlabel_outside(points: Tensor, size: int) -> Tensor:
    """(n, K, 3) points with v = 0 wherever x or y left [0, size)."""
    inside = (points[..., :2] >= 0).all(dim=-1) & (points[..., :2] < size).all(dim=-1)
    points[..., 2] = torch.where(inside, points[..., 2], torch.zeros_like(points[..., 2]))
    return points
