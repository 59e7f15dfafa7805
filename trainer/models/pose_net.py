"""PoseUNet: a small U-Net that finds one figure's keypoints as heat maps.

Each keypoint gets one heat map; its brightest cell is where the network thinks the point is
(OpenPose and the "simple baselines" of Xiao et al. 2018 work this way). The U shape lets the
deep, coarse layers decide *which* blob is the left foot while the skips bring back the fine
detail of *where exactly* it is.

    input            (B, C, S, S)          S padded up to a multiple of 8 inside forward
    down1  2×conv    (B, w, S, S)
    down2  pool+2×conv (B, 2w, S/2, S/2)   ──────────────────────────┐ skip
    down3  pool+2×conv (B, 4w, S/4, S/4)   ───────────┐ skip           │
    bottom pool+2×conv (B, 8w, S/8, S/8)               │                │
    up3    ConvT ×2  (B, 4w, S/4, S/4) ++ skip → 2×conv (B, 4w, S/4, S/4)
    up2    ConvT ×2  (B, 2w, S/2, S/2) ++ skip → 2×conv (B, 2w, S/2, S/2)
    head   1×1 conv  (B, K, S/2, S/2)      one heat map (logits) per keypoint

The heat maps are at stride 2, not at the input's resolution: a decoder level at full
resolution would cost as much as the rest of the network together (two 3×3 convs on four times
the pixels), while the sub-pixel decoding below recovers what the coarser grid loses (the
stick-figure benchmark's PCK@0.1 threshold is 2-3 cells wide at stride 2).

Training target: per keypoint, a Gaussian (standard deviation `sigma` cells) at its place,
normalised to sum to 1 over the map; the loss is the cross-entropy between it and the softmax
of the map's logits over all its cells (a "spatial softmax"), minus the target's own entropy:
the KL divergence, so that a perfect map scores 0 (same gradients as the cross-entropy). A
per-pixel MSE against the Gaussian barely moves at the start: almost every pixel's target is 0,
and predicting 0 everywhere is already a low loss. Keypoints without a label (v = 0) or outside
the image add nothing.

Decoding: the arg-max cell, refined to a fraction of a cell by a parabola through the
log-probabilities of the peak and its two neighbours on each axis (exact for a Gaussian peak;
"DARK", Zhang et al. 2020); the score is the softmax probability in the peak's 3×3 cells (a
perfect σ = 2 map puts 0.3 there, its single peak cell only 0.04, which would read as "4 %
sure").
"""

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainer.registry import register_model

STRIDE = 2  # input pixels per heat-map cell
DEPTH = 3  # poolings: the input is padded to a multiple of 2**DEPTH


def double_conv(cin: int, cout: int) -> nn.Sequential:
    """(Conv 3×3 → BatchNorm → ReLU) twice: the U-Net's block; the side stays."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),  # BatchNorm's shift replaces the bias
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class PoseUNet(nn.Module):
    """forward(images (B, C, S, S)) → heat-map logits (B, K, ⌈S/2⌉, ⌈S/2⌉)."""

    def __init__(self, num_keypoints: int, in_channels: int = 3, width: int = 16) -> None:
        super().__init__()
        w = width
        self.num_keypoints = num_keypoints
        self.down1 = double_conv(in_channels, w)
        self.down2 = double_conv(w, 2 * w)
        self.down3 = double_conv(2 * w, 4 * w)
        self.bottom = double_conv(4 * w, 8 * w)
        self.up3 = nn.ConvTranspose2d(8 * w, 4 * w, 2, stride=2)
        self.merge3 = double_conv(8 * w, 4 * w)
        self.up2 = nn.ConvTranspose2d(4 * w, 2 * w, 2, stride=2)
        self.merge2 = double_conv(4 * w, 2 * w)
        self.head = nn.Conv2d(2 * w, num_keypoints, 1)

    def forward(self, images: Tensor) -> Tensor:
        height, width = images.shape[-2:]
        multiple = 2**DEPTH
        pad_y, pad_x = -height % multiple, -width % multiple
        x = F.pad(images, (0, pad_x, 0, pad_y))  # (B, C, P, P); P = S when S divides already
        x1 = self.down1(x)  # (B, w, P, P)
        x2 = self.down2(F.max_pool2d(x1, 2))  # (B, 2w, P/2, P/2)
        x3 = self.down3(F.max_pool2d(x2, 2))  # (B, 4w, P/4, P/4)
        x4 = self.bottom(F.max_pool2d(x3, 2))  # (B, 8w, P/8, P/8)
        y3 = self.merge3(torch.cat([self.up3(x4), x3], dim=1))  # (B, 4w, P/4, P/4)
        y2 = self.merge2(torch.cat([self.up2(y3), x2], dim=1))  # (B, 2w, P/2, P/2)
        heat = self.head(y2)  # (B, K, P/2, P/2)
        return heat[..., : -(-height // STRIDE), : -(-width // STRIDE)]  # the padding cut off

    def head_parameters(self) -> list[nn.Parameter]:
        """The last decoder level and the 1×1 head: what feature extraction trains."""
        return [*self.up2.parameters(), *self.merge2.parameters(), *self.head.parameters()]

    def keypoint_keys(self) -> dict[str, int]:
        """{state_dict key: the dimension with one entry per keypoint}: what a transfer keeps
        only for the same keypoint names (reordered by name)."""
        return {"head.weight": 0, "head.bias": 0}


# --- targets, loss and decoding (shared with the loop's evaluation and "try it") -----------------


def gaussian_targets(points: Tensor, height: int, width: int, sigma: float) -> Tensor:
    """(B, K, 3) keypoints (x, y, v) in input pixels → (B, K, H, W) Gaussians that sum to 1.

    The heat-map cell (i, j) covers input pixels [2j, 2j + 2) × [2i, 2i + 2): its centre is the
    point (2j + 1, 2i + 1). A keypoint without a label, or outside the map, gets an all-zero map.
    """
    u = points[..., 0] / STRIDE - 0.5  # (B, K) in cell units, cell centres at whole numbers
    v = points[..., 1] / STRIDE - 0.5
    xs = torch.arange(width, device=points.device, dtype=points.dtype)  # (W,)
    ys = torch.arange(height, device=points.device, dtype=points.dtype)  # (H,)
    gx = torch.exp(-((xs - u[..., None]) ** 2) / (2 * sigma**2))  # (B, K, W)
    gy = torch.exp(-((ys - v[..., None]) ** 2) / (2 * sigma**2))  # (B, K, H)
    maps = gy[..., :, None] * gx[..., None, :]  # (B, K, H, W)
    total = maps.sum(dim=(-2, -1), keepdim=True)
    return maps / total.clamp_min(1e-12) * labelled(points, height, width)[..., None, None]


def labelled(points: Tensor, height: int, width: int) -> Tensor:
    """(B, K) 1.0 where a keypoint has a label (v > 0) and lies on the map, else 0.0."""
    inside = (
        (points[..., 0] >= 0)
        & (points[..., 0] < width * STRIDE)
        & (points[..., 1] >= 0)
        & (points[..., 1] < height * STRIDE)
    )
    return ((points[..., 2] > 0) & inside).to(points.dtype)


def heatmap_loss(logits: Tensor, points: Tensor, sigma: float) -> Tensor:
    """Spatial-softmax KL divergence between each map and its keypoint's Gaussian, averaged
    over the labelled keypoints (0-d; 0 with a gradient when a batch has none)."""
    batch, count, height, width = logits.shape
    logits = logits.float()
    targets = gaussian_targets(points.float(), height, width, sigma)  # (B, K, H, W)
    mask = labelled(points.float(), height, width)  # (B, K)
    log_p = F.log_softmax(logits.reshape(batch, count, -1), dim=-1)  # (B, K, H·W)
    t = targets.reshape(batch, count, -1)
    # Σ t·(log t − log p): cross-entropy minus the target's entropy (0 where t is 0).
    kl = (t * (torch.log(t.clamp_min(1e-12)) - log_p)).sum(dim=-1)  # (B, K)
    return (kl * mask).sum() / mask.sum().clamp_min(1.0)


def decode(logits: Tensor) -> Tensor:
    """(B, K, H, W) heat-map logits → (B, K, 3): x, y in input pixels and a score in [0, 1]."""
    batch, count, height, width = logits.shape
    log_p = F.log_softmax(logits.float().reshape(batch, count, -1), dim=-1)
    log_p = log_p.reshape(batch, count, height, width)  # (B, K, H, W)
    peak = log_p.reshape(batch, count, -1).argmax(dim=-1)  # (B, K)
    row, col = peak // width, peak % width
    padded = F.pad(log_p, (1, 1, 1, 1), value=-math.inf)  # (B, K, H+2, W+2): edges have no side
    b = torch.arange(batch, device=logits.device)[:, None, None, None]
    k = torch.arange(count, device=logits.device)[None, :, None, None]
    step = torch.arange(3, device=logits.device)
    rows = row[..., None, None] + step[:, None]  # (B, K, 3, 1) in the padded map
    cols = col[..., None, None] + step[None, :]  # (B, K, 1, 3)
    around = padded[b, k, rows, cols]  # (B, K, 3, 3): the peak and its eight neighbours
    dx = _parabola_offset(around[..., 1, 0], around[..., 1, 1], around[..., 1, 2])  # (B, K)
    dy = _parabola_offset(around[..., 0, 1], around[..., 1, 1], around[..., 2, 1])
    score = around.exp().sum(dim=(-2, -1))  # (B, K): probability in the 3×3 cells
    x = (col.float() + dx + 0.5) * STRIDE
    y = (row.float() + dy + 0.5) * STRIDE
    return torch.stack([x, y, score.clamp(0, 1)], dim=-1)


def _parabola_offset(before: Tensor, at: Tensor, after: Tensor) -> Tensor:
    """Where a parabola through three equally spaced values peaks, relative to the middle one
    (in [-0.5, 0.5]; 0 at an edge or on a flat top)."""
    curvature = before - 2 * at + after
    slope = (after - before) / 2
    usable = torch.isfinite(curvature) & (curvature < -1e-6)
    offset = -slope / torch.where(usable, curvature, torch.full_like(curvature, -1.0))
    return torch.where(usable, offset.clamp(-0.5, 0.5), torch.zeros_like(offset))


@register_model(name="pose_unet")  # its facts: trainer/catalog.py
def pose_unet(
    *, num_classes: int, in_channels: int, input_size: int, pretrained: bool = False
) -> PoseUNet:
    """The default keypoint model: num_classes is the number of keypoints (heat maps)."""
    if pretrained:
        raise ValueError("pose_unet has no pretrained weights; train it from scratch")
    return PoseUNet(num_classes, in_channels)
