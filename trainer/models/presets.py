"""The lecture's own small models, layer for layer as the seeds write them."""

from torch import nn

from trainer.models.layers import GlobalAvgPool
from trainer.registry import register_model


@register_model(name="simple_cnn")
def simple_cnn(*, num_classes: int, in_channels: int, input_size: int) -> nn.Module:
    """(Conv 3×3 → BatchNorm → ReLU → MaxPool 2) × 3 → global average pool → Linear."""

    def block(cin: int, cout: int) -> nn.Sequential:
        # No conv bias: BatchNorm's shift replaces it. All four ops run well in channels_last.
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),  # (B, cin, H, W) -> (B, cout, H, W)
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # (B, cout, H, W) -> (B, cout, H/2, W/2)
        )

    return nn.Sequential(
        block(in_channels, 32),
        block(32, 64),
        block(64, 128),  # (B, 128, S/8, S/8)
        GlobalAvgPool(),  # (B, 128)
        nn.Linear(128, num_classes),  # (B, num_classes)
    )


@register_model(name="mlp_keras")
def mlp_keras(*, num_classes: int, in_channels: int, input_size: int) -> nn.Module:
    """Flatten → Dense 512 ReLU → Dropout 0.2 → Dense 512 ReLU → Dropout 0.2 → Dense C."""
    return nn.Sequential(
        nn.Flatten(),  # (B, C, H, W) -> (B, C*H*W)
        nn.Linear(in_channels * input_size * input_size, 512),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.Linear(512, 512),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.Linear(512, num_classes),  # (B, num_classes)
    )


# Each 5×5 valid conv takes 4 pixels off a side; each pool halves it (rounding down). The smallest
# input that leaves one pixel: 32 →same 32 →pool 16 →conv 12 →pool 6 →conv 2 →pool 1.
LENET_MIN_INPUT = 32


def _lenet_feature_side(input_size: int) -> int:
    side = input_size // 2  # Conv 10×10 same keeps the side; AvgPool 2 halves it
    side = (side - 4) // 2  # Conv 5×5 valid, AvgPool 2
    return (side - 4) // 2  # Conv 5×5 valid, AvgPool 2


@register_model(name="lenet_lecture")
def lenet_lecture(*, num_classes: int, in_channels: int, input_size: int) -> nn.Module:
    """The LeNet-style net of seed 003 (64×64 grayscale in the lecture)."""
    side = _lenet_feature_side(input_size)  # 5 for 64×64
    return nn.Sequential(
        nn.Conv2d(in_channels, 6, 10, padding="same"),  # (B, 6, S, S)
        nn.ReLU(),
        nn.AvgPool2d(2),  # (B, 6, S/2, S/2)
        nn.Conv2d(6, 16, 5),  # (B, 16, S/2-4, S/2-4)
        nn.Tanh(),
        nn.AvgPool2d(2),
        nn.Conv2d(16, 16, 5),
        nn.Tanh(),
        nn.AvgPool2d(2),  # (B, 16, side, side)
        nn.Flatten(),  # (B, 16*side*side)
        nn.Linear(16 * side * side, 120),
        nn.ReLU(),
        nn.BatchNorm1d(120),
        nn.Linear(120, 48),
        nn.ReLU(),
        nn.Linear(48, num_classes),  # (B, num_classes)
    )


@register_model(name="logistic")
def logistic(*, num_classes: int, in_channels: int, input_size: int) -> nn.Module:
    """Flatten → Linear C: softmax regression on the raw pixels."""
    return nn.Sequential(
        nn.Flatten(),  # (B, C*H*W)
        nn.Linear(in_channels * input_size * input_size, num_classes),  # (B, num_classes)
    )
