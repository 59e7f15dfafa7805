"""Manifest → tensors, and augmentation applied to whole batches on the device.

Small datasets are decoded once and held as one uint8 tensor (N, C, H, W) — on the GPU when
there is one — so an epoch is index, convert, augment: no per-image Python in the loop.
"""

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class DataError(ValueError):
    """The data cannot be used; the message names the file and the reason."""


@dataclass
class Split:
    """One split held in memory: images (N, C, H, W) uint8, labels (N,) int64, ids."""

    images: torch.Tensor
    labels: torch.Tensor
    ids: list

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def device(self) -> torch.device:
        """Where the images live (batch indices are made there)."""
        return self.images.device

    def to(self, device: torch.device) -> "Split":
        return Split(self.images.to(device), self.labels.to(device), self.ids)

    def pinned(self) -> "Split":
        """Stay in host memory, page-locked, for fast non-blocking copies to the GPU."""
        return Split(self.images.pin_memory(), self.labels.pin_memory(), self.ids)

    def subset(self, index: torch.Tensor) -> "Split":
        picked = index.tolist()
        return Split(self.images[index], self.labels[index], [self.ids[i] for i in picked])


GPU_RESIDENT_BYTES = 1024**3  # datasets up to ~1 GB decoded live on the GPU itself


def place(split: Split, device: torch.device) -> Split:
    """Put a decoded split where the loop reads it fastest."""
    if device.type != "cuda":
        return split.to(device)
    if split.images.numel() <= GPU_RESIDENT_BYTES:
        return split.to(device)
    return split.pinned()  # each batch is copied with non_blocking=True


def decode(path: Path, size: int, channels: int) -> np.ndarray:
    """One image as (C, size, size) uint8, resized with bilinear filtering."""
    try:
        with Image.open(path) as opened:
            return decode_image(opened, size, channels)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot be read as an image ({exc})") from None


def decode_image(image: Image.Image, size: int, channels: int) -> np.ndarray:
    """An opened image as (C, size, size) uint8, as `decode` reads files (Try it's photos)."""
    image = image.convert("L" if channels == 1 else "RGB")
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    array = np.asarray(image, dtype=np.uint8)
    return array[None] if channels == 1 else array.transpose(2, 0, 1)  # (C, H, W)


def load_split(items, root: str | None, size: int, channels: int) -> Split:
    """Decode every item of a split once into a uint8 tensor."""
    base = Path(root) if root else Path()
    count = len(items)
    images = np.empty((count, channels, size, size), dtype=np.uint8)  # (N, C, H, W)
    for i, item in enumerate(items):
        images[i] = decode(base / item.path, size, channels)
    labels = torch.tensor([item.label for item in items], dtype=torch.int64)
    ids = [item.id if item.id is not None else item.path for item in items]
    return Split(torch.from_numpy(images), labels, ids)


def channel_stats(images: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 images, in 0..1 units."""
    x = images.float().div_(255)  # (N, C, H, W)
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return mean.tolist(), std.tolist()


class Normalise:
    """uint8 (B, C, H, W) → float, scaled and normalised, on the batch's device."""

    def __init__(self, mean, std, device: torch.device, channels_last: bool = False):
        self.device = torch.device(device)
        self.mean = torch.tensor(mean, device=device).view(1, -1, 1, 1) * 255
        self.std = torch.tensor(std, device=device).view(1, -1, 1, 1) * 255
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = images.to(torch.float32).sub_(self.mean).div_(self.std)
        return x.contiguous(memory_format=self.memory_format)


def batches(
    count: int, batch_size: int, *, shuffle: bool, generator: torch.Generator | None, device
) -> Iterator[torch.Tensor]:
    """Index tensors of each batch (the last may be smaller)."""
    order = (
        torch.randperm(count, generator=generator).to(device)
        if shuffle
        else torch.arange(count, device=device)
    )
    for start in range(0, count, batch_size):
        index = order[start : start + batch_size]
        if shuffle and len(index) == 1 and count > 1:
            return  # a lone last image cannot train batch norm: it joins the next epoch instead
        yield index


class Augment:
    """The lecture's ImageDataGenerator, batched: one affine warp per image, on the device.

    Rotation (degrees), shear and zoom as in Keras; flips; shifts from `random_crop` padding;
    brightness/contrast jitter. Random numbers come from the given generator only, so a
    resumed run draws exactly what an uninterrupted one would.
    """

    def __init__(self, spec, size: int):
        self.spec = spec
        self.size = size

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        s = self.spec
        batch = x.shape[0]  # x: (B, C, H, W) float, normalised

        def uniform(low: float, high: float) -> torch.Tensor:
            return torch.rand(batch, generator=generator) * (high - low) + low

        angle = uniform(-s.rotation, s.rotation) * math.pi / 180
        shear = uniform(-s.shear, s.shear)
        zoom = uniform(1 - s.zoom, 1 + s.zoom)
        flip_x = torch.where(torch.rand(batch, generator=generator) < 0.5, -1.0, 1.0)
        flip_y = torch.where(torch.rand(batch, generator=generator) < 0.5, -1.0, 1.0)
        shift = 2 * s.random_crop / self.size
        tx, ty = uniform(-shift, shift), uniform(-shift, shift)
        cos, sin = torch.cos(angle), torch.sin(angle)
        theta = torch.zeros(batch, 2, 3)  # (B, 2, 3) maps output to input coordinates
        theta[:, 0, 0] = cos / zoom
        theta[:, 0, 1] = (-sin + shear * cos) / zoom
        theta[:, 1, 0] = sin / zoom
        theta[:, 1, 1] = (cos + shear * sin) / zoom
        theta[:, 0, 2], theta[:, 1, 2] = tx, ty
        if s.hflip:
            theta[:, :, 0] *= flip_x[:, None]
        if s.vflip:
            theta[:, :, 1] *= flip_y[:, None]
        grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        if s.color_jitter:
            j = s.color_jitter
            gain = uniform(1 - j, 1 + j).to(x.device, x.dtype).view(-1, 1, 1, 1)
            offset = uniform(-j, j).to(x.device, x.dtype).view(-1, 1, 1, 1)
            x = x * gain + offset
        return x
