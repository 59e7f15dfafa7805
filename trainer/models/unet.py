"""U-Net, as the lecture draws it: an encoder that halves the picture four times, a decoder that
doubles it back, and skip connections that hand each decoder step the encoder's map of the same
size, so the output knows both *what* (from deep down) and *where* (from the skips).

Ronneberger et al., 2015. Written plainly: every block is a double convolution (3×3 conv →
BatchNorm → ReLU, twice; "same" padding, so sides only change at the pools and the up-convs),
down is a 2×2 max-pool, up is a 2×2 transposed convolution, and a skip is a concatenation along
the channels. With `width` w (the spec's `width`, 16 by default; the paper's is 64) and a
128×128 RGB input:

    enc1    double conv 3 → w            (B, w, 128, 128)
    enc2    pool, double conv w → 2w     (B, 2w, 64, 64)
    enc3    pool, double conv 2w → 4w    (B, 4w, 32, 32)
    enc4    pool, double conv 4w → 8w    (B, 8w, 16, 16)
    bottom  pool, double conv 8w → 16w   (B, 16w, 8, 8): each cell sees ~140 input pixels across,
                                         more than the largest shape of a 64-128 px picture
    dec4    up-conv 16w → 8w, cat enc4, double conv 16w → 8w   (B, 8w, 16, 16)
    dec3    up-conv 8w → 4w, cat enc3, double conv 8w → 4w     (B, 4w, 32, 32)
    dec2    up-conv 4w → 2w, cat enc2, double conv 4w → 2w     (B, 2w, 64, 64)
    dec1    up-conv 2w → w, cat enc1, double conv 2w → w       (B, w, 128, 128)
    head    1×1 conv w → classes + 1     (B, classes + 1, 128, 128) logits; channel 0 is the
                                         background, channel i + 1 the run's class i

About 1.9 M parameters at w = 16 (they grow with w²). A side that is not a multiple of 16 is
padded with zeros up to one before the encoder, and the logits are cropped back, so every input
size from 16 up works and the output always has the input's size.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainer.registry import register_model

DEPTH = 4  # pools: the side is divided by 2**DEPTH = 16 at the bottom
DEFAULT_WIDTH = 16


def double_conv(cin: int, cout: int) -> nn.Sequential:
    """(3×3 conv → BatchNorm → ReLU) × 2, keeping the side."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),  # BatchNorm's shift replaces the bias
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class Up(nn.Module):
    """Double the side with a 2×2 transposed conv, concatenate the skip, double conv."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(cin, cout, kernel_size=2, stride=2)
        self.conv = double_conv(2 * cout, cout)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = self.up(x)  # (B, cin, s, s) → (B, cout, 2s, 2s), the skip's size
        x = torch.cat([skip, x], dim=1)  # (B, 2·cout, 2s, 2s): the encoder's channels first
        return self.conv(x)  # (B, cout, 2s, 2s)


class UNet(nn.Module):
    """forward(images (B, C, H, W)) → logits (B, num_classes + 1, H, W), channel 0 background."""

    def __init__(self, num_classes: int, in_channels: int = 3, width: int = DEFAULT_WIDTH) -> None:
        super().__init__()
        w = width
        self.num_classes = num_classes
        self.width = width
        self.enc1 = double_conv(in_channels, w)
        self.enc2 = double_conv(w, 2 * w)
        self.enc3 = double_conv(2 * w, 4 * w)
        self.enc4 = double_conv(4 * w, 8 * w)
        self.bottom = double_conv(8 * w, 16 * w)
        self.pool = nn.MaxPool2d(2)
        self.dec4 = Up(16 * w, 8 * w)
        self.dec3 = Up(8 * w, 4 * w)
        self.dec2 = Up(4 * w, 2 * w)
        self.dec1 = Up(2 * w, w)
        self.head = nn.Conv2d(w, num_classes + 1, kernel_size=1)

    def forward(self, images: Tensor) -> Tensor:
        height, width = images.shape[-2], images.shape[-1]
        multiple = 2**DEPTH
        pad_h, pad_w = -height % multiple, -width % multiple
        x = F.pad(images, (0, pad_w, 0, pad_h))  # (B, C, H', W'); a copy when nothing is added
        e1 = self.enc1(x)  # (B, w, H', W')
        e2 = self.enc2(self.pool(e1))  # (B, 2w, H'/2, W'/2)
        e3 = self.enc3(self.pool(e2))  # (B, 4w, H'/4, W'/4)
        e4 = self.enc4(self.pool(e3))  # (B, 8w, H'/8, W'/8)
        b = self.bottom(self.pool(e4))  # (B, 16w, H'/16, W'/16)
        d = self.dec4(b, e4)  # (B, 8w, H'/8, W'/8)
        d = self.dec3(d, e3)  # (B, 4w, H'/4, W'/4)
        d = self.dec2(d, e2)  # (B, 2w, H'/2, W'/2)
        d = self.dec1(d, e1)  # (B, w, H', W')
        logits = self.head(d)  # (B, classes + 1, H', W')
        return logits[..., :height, :width]  # (B, classes + 1, H, W)

    def head_parameters(self) -> list[nn.Parameter]:
        """The decoder and the 1×1 head: what feature extraction trains (the encoder stays)."""
        parts = (self.dec4, self.dec3, self.dec2, self.dec1, self.head)
        return [q for part in parts for q in part.parameters()]

    def class_keys(self) -> list[str]:
        """The state_dict keys with one row per output channel (background first)."""
        return ["head.weight", "head.bias"]

    def class_rows(self, key: str, order: list[int]) -> list[int]:
        """The head's rows for classes taken in `order` (new class i is old class order[i]):
        the background's row 0 stays first."""
        return [0, *(1 + old for old in order)]


@register_model(name="unet")  # its facts: trainer/catalog.py
def unet(
    *,
    num_classes: int,
    in_channels: int,
    input_size: int,
    pretrained: bool = False,
    width: int = DEFAULT_WIDTH,
) -> UNet:
    """The default segmentation model: num_classes object classes + background, any side ≥ 16."""
    if pretrained:
        raise ValueError("unet has no pretrained weights; train it from scratch")
    return UNet(num_classes, in_channels, width)
