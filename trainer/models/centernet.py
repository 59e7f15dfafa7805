"""CenterNet, tiny: a one-stage, anchor-free detector a student can read in one sitting.

"Objects as points" (Zhou et al., 2019): each object is the peak of a heat map at its box's
centre, one heat map per class, at a quarter of the input's resolution (stride 4). Two more
maps say, at that peak, how wide and high the box is and where exactly inside its 4×4 cell the
centre lies. No anchors, and no non-maximum suppression: a 3×3 max-pool keeps the local peaks.
YOLO works the same way at heart: a grid of cells, each saying "an object's centre is here,
this class, this big".

    input            (B, 3, 128, 128)
    backbone         strided 3×3 convs: stride 4 (B, 32, 32, 32), 8 (B, 64, 16, 16),
                     16 (B, 128, 8, 8): the deeper, the more of the image each cell sees
    neck             upsample and add back up to stride 4: (B, 64, 32, 32)
    heads            heat map (B, classes, 32, 32) logits, size (B, 2, 32, 32) in cells,
                     offset (B, 2, 32, 32) in cells

About 0.5 M parameters: it trains on a laptop's CPU in a minute or two.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainer.models.detector import Detection, Detector, Target
from trainer.registry import register_model

STRIDE = 4  # input pixels per output cell
HEAT_BIAS = -2.19  # sigmoid(-2.19) ≈ 0.1: start out saying "rarely an object" (the paper's)
SIZE_WEIGHT = 0.1  # the paper's weight of the size L1 against the heat map's focal loss
OFFSET_WEIGHT = 1.0
SPREAD = 0.54  # a splat's standard deviation is SPREAD × side / 6 (TTFNet's elliptic splats)


def conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    """Conv 3×3 → BatchNorm → ReLU; stride 2 halves the side."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False),  # BatchNorm's shift replaces the bias
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def head(cin: int, cout: int, width: int) -> nn.Sequential:
    """Conv 3×3 → ReLU → Conv 1×1: one output map per channel of `cout`."""
    return nn.Sequential(
        nn.Conv2d(cin, width, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(width, cout, 1)
    )


class CenterNetTiny(Detector):
    """forward(images) → (heat-map logits, size, offset), all at stride 4."""

    def __init__(self, num_classes: int, in_channels: int = 3) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.stride4 = nn.Sequential(conv(in_channels, 16, 2), conv(16, 32, 2), conv(32, 32))
        self.stride8 = nn.Sequential(conv(32, 64, 2), conv(64, 64))
        self.stride16 = nn.Sequential(conv(64, 128, 2), conv(128, 128))
        self.lateral16 = nn.Conv2d(128, 64, 1)
        self.lateral8 = nn.Conv2d(64, 64, 1)
        self.lateral4 = nn.Conv2d(32, 64, 1)
        self.smooth8 = conv(64, 64)
        self.smooth4 = conv(64, 64)
        self.heatmap = head(64, num_classes, 32)
        self.size = head(64, 2, 32)
        self.offset = head(64, 2, 32)
        last: nn.Conv2d = self.heatmap[-1]  # type: ignore[assignment]
        nn.init.constant_(last.bias, HEAT_BIAS)  # type: ignore[arg-type]

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        c4 = self.stride4(images)  # (B, 32, S/4, S/4)
        c8 = self.stride8(c4)  # (B, 64, S/8, S/8)
        c16 = self.stride16(c8)  # (B, 128, S/16, S/16)
        p8 = self.lateral8(c8) + _upsample(self.lateral16(c16), c8)  # (B, 64, S/8, S/8)
        p8 = self.smooth8(p8)
        p4 = self.lateral4(c4) + _upsample(p8, c4)  # (B, 64, S/4, S/4)
        p4 = self.smooth4(p4)
        # (B, classes, S/4, S/4) logits, (B, 2, S/4, S/4) w h, (B, 2, S/4, S/4) dx dy
        return self.heatmap(p4), self.size(p4), self.offset(p4)

    def losses(self, images: Tensor, targets: list[Target]) -> dict[str, Tensor]:
        return self.losses_of(self(images), targets)

    def losses_of(
        self, outputs: tuple[Tensor, Tensor, Tensor], targets: list[Target]
    ) -> dict[str, Tensor]:
        """Focal loss on the heat maps, L1 on size and offset at the objects' centre cells."""
        heat_logits, size, offset = outputs
        B, C, H, W = heat_logits.shape
        heat, objects = encode_targets(targets, C, H, W, heat_logits.device)
        heatmap_loss = focal_loss(heat_logits.float(), heat)
        image, cy, cx = objects["image"], objects["cy"], objects["cx"]
        count = max(len(image), 1)
        # The size and offset the model says at each object's centre cell: (M, 2) each.
        size_loss = (size[image, :, cy, cx].float() - objects["size"]).abs().sum() / count
        offset_loss = (offset[image, :, cy, cx].float() - objects["offset"]).abs().sum() / count
        loss = heatmap_loss + SIZE_WEIGHT * size_loss + OFFSET_WEIGHT * offset_loss
        return {"loss": loss, "heatmap": heatmap_loss, "size": size_loss, "offset": offset_loss}

    @torch.no_grad()
    def detect(
        self, images: Tensor, *, score_threshold: float = 0.05, max_detections: int = 100
    ) -> list[Detection]:
        heat_logits, size, offset = self(images)
        return decode(
            heat_logits.float(),
            size.float(),
            offset.float(),
            image_size=(images.shape[-2], images.shape[-1]),
            score_threshold=score_threshold,
            max_detections=max_detections,
        )

    @torch.no_grad()
    def evaluate_batch(
        self, images: Tensor, targets: list[Target], *, score_threshold: float, max_detections: int
    ) -> tuple[dict[str, Tensor], list[Detection]]:
        """Losses and boxes from one forward pass."""
        outputs = self(images)
        found = decode(
            *(output.float() for output in outputs),
            image_size=(images.shape[-2], images.shape[-1]),
            score_threshold=score_threshold,
            max_detections=max_detections,
        )
        return self.losses_of(outputs, targets), found

    def head_parameters(self) -> list[nn.Parameter]:
        """The three heads: what sits after the shared stride-4 features."""
        return [*self.heatmap.parameters(), *self.size.parameters(), *self.offset.parameters()]

    def class_keys(self) -> list[str]:
        """The heat map's last conv: one output channel (weight row and bias) per class."""
        return ["heatmap.2.weight", "heatmap.2.bias"]


def _upsample(x: Tensor, like: Tensor) -> Tensor:
    """Nearest-neighbour upsampling to `like`'s height and width (exports to ONNX and traces)."""
    return F.interpolate(x, size=like.shape[-2:], mode="nearest")


def encode_targets(
    targets: list[Target], num_classes: int, height: int, width: int, device: torch.device
) -> tuple[Tensor, dict[str, Tensor]]:
    """The heat maps the model should draw, and where and what each object is.

    Every box becomes a Gaussian "splat" on its class's map, 1 exactly at the cell holding its
    centre; overlapping splats keep the larger value. Returns the heat maps (B, C, H, W) and,
    per object (M of them over the batch): its image, centre cell (cy, cx), size (w, h) in
    cells and the centre's offset inside its cell.
    """
    B = len(targets)
    boxes = torch.cat([t["boxes"].reshape(-1, 4) for t in targets]).to(device, torch.float32)
    labels = torch.cat([t["labels"].reshape(-1) for t in targets]).to(device, torch.int64)
    image = torch.cat(
        [torch.full((len(t["labels"]),), i, dtype=torch.int64) for i, t in enumerate(targets)]
    ).to(device)  # (M,)
    boxes = boxes / STRIDE  # (M, 4) in output cells
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2  # (M, 2) x, y
    size = (boxes[:, 2:] - boxes[:, :2]).clamp(min=0)  # (M, 2) w, h
    cx = centre[:, 0].floor().long().clamp(0, width - 1)  # (M,)
    cy = centre[:, 1].floor().long().clamp(0, height - 1)
    offset = centre - torch.stack([cx, cy], dim=1)  # (M, 2), within [0, 1) inside the image
    sigma = (SPREAD * size / 6).clamp(min=0.1)  # (M, 2)
    xs = torch.arange(width, device=device)
    ys = torch.arange(height, device=device)
    gauss_x = torch.exp(-((xs[None] - cx[:, None]) ** 2) / (2 * sigma[:, :1] ** 2))  # (M, W)
    gauss_y = torch.exp(-((ys[None] - cy[:, None]) ** 2) / (2 * sigma[:, 1:] ** 2))  # (M, H)
    splats = gauss_y[:, :, None] * gauss_x[:, None, :]  # (M, H, W), exactly 1 at (cy, cx)
    heat = torch.zeros(B * num_classes, height * width, device=device)
    rows = (image * num_classes + labels)[:, None].expand(-1, height * width)  # (M, H*W)
    heat.scatter_reduce_(0, rows, splats.flatten(1), "amax")
    objects = {"image": image, "cy": cy, "cx": cx, "size": size, "offset": offset}
    return heat.view(B, num_classes, height, width), objects


def focal_loss(logits: Tensor, heat: Tensor) -> Tensor:
    """CenterNet's penalty-reduced focal loss, summed and divided by the number of objects.

    At the centre cells (heat == 1) it is -(1-p)² log p. Elsewhere it is -p² log(1-p), scaled
    down by (1-heat)⁴: a cell next to a centre is hardly punished for glowing a little.
    """
    p = logits.sigmoid()
    centres = heat.eq(1).float()
    positive = -F.logsigmoid(logits) * (1 - p) ** 2 * centres
    negative = -F.logsigmoid(-logits) * p**2 * (1 - heat) ** 4 * (1 - centres)
    return (positive.sum() + negative.sum()) / centres.sum().clamp(min=1)


@torch.no_grad()
def decode(
    heat_logits: Tensor,
    size: Tensor,
    offset: Tensor,
    *,
    image_size: tuple[int, int],
    score_threshold: float,
    max_detections: int,
) -> list[Detection]:
    """The raw outputs → boxes: local peaks of the heat maps, best `max_detections` per image."""
    B, C, H, W = heat_logits.shape
    heat = heat_logits.sigmoid()
    peaks = heat * (F.max_pool2d(heat, 3, stride=1, padding=1) == heat)  # 0 but at local maxima
    k = min(max_detections, C * H * W)
    scores, index = peaks.flatten(1).topk(k)  # (B, K) best first, over every class and cell
    labels = index // (H * W)  # (B, K)
    cell = index % (H * W)  # (B, K)
    cy, cx = cell // W, cell % W
    at_cell = cell[:, None, :].expand(-1, 2, -1)  # (B, 2, K)
    wh = size.flatten(2).gather(2, at_cell).clamp(min=0)  # (B, 2, K) in cells
    dxy = offset.flatten(2).gather(2, at_cell)  # (B, 2, K)
    x = (cx + dxy[:, 0]) * STRIDE  # (B, K) input pixels
    y = (cy + dxy[:, 1]) * STRIDE
    w, h = wh[:, 0] * STRIDE, wh[:, 1] * STRIDE
    boxes = torch.stack([x - w / 2, y - h / 2, x + w / 2, y + h / 2], dim=-1)  # (B, K, 4)
    height, width = image_size
    boxes[..., 0::2] = boxes[..., 0::2].clamp(0, width)
    boxes[..., 1::2] = boxes[..., 1::2].clamp(0, height)
    found: list[Detection] = []
    for b in range(B):
        keep = scores[b] >= score_threshold  # scores are sorted: a prefix
        found.append(
            {"boxes": boxes[b, keep], "scores": scores[b, keep], "labels": labels[b, keep]}
        )
    return found


@register_model(name="centernet_tiny")  # its facts: trainer/catalog.py
def centernet_tiny(
    *, num_classes: int, in_channels: int, input_size: int, pretrained: bool = False
) -> CenterNetTiny:
    """The default detector: ~0.5 M parameters, outputs at stride 4 (any input size ≥ 32)."""
    if pretrained:
        raise ValueError("centernet_tiny has no pretrained weights; train it from scratch")
    return CenterNetTiny(num_classes, in_channels)
