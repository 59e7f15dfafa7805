"""Model registry: name → builder, with what a student needs to know to choose one.

Like torchvision's: builders register themselves with `@register_model(...)`, and `build` calls
one by name with keyword-only arguments. Every model ends in one `nn.Linear` head, so transfer
learning (freeze the backbone, replace the head) works the same way for all of them.
"""

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from trainer.models import ShapeError, WeightsUnavailable
from trainer.models.layers import build_layers
from trainer.models.summary import SummaryRow, summary

__all__ = [
    "ModelInfo",
    "ShapeError",
    "SummaryRow",
    "WeightsUnavailable",
    "backbone_parameters",
    "build",
    "build_layers",
    "get_info",
    "head",
    "list_models",
    "parameter_count",
    "register_model",
    "replace_head",
    "summary",
]

Builder = Callable[..., nn.Module]


@dataclass(frozen=True)
class ModelInfo:
    name: str  # "simple_cnn"
    kind: str  # "preset" | "torchvision"
    description: dict[str, str]  # {"ja": ..., "en": ...}, one line each
    default_input_size: int  # square side used when the spec says nothing
    min_input_size: int  # smallest side the architecture accepts
    default_channels: int  # 1 or 3
    supports_imagenet: bool = False  # ImageNet weights can be loaded from the local cache


_MODELS: dict[str, tuple[ModelInfo, Builder]] = {}


def register_model(
    *,
    name: str,
    kind: str,
    description: dict[str, str],
    default_input_size: int,
    min_input_size: int,
    default_channels: int,
    supports_imagenet: bool = False,
) -> Callable[[Builder], Builder]:
    """Decorator: register `builder(*, num_classes, in_channels, input_size[, pretrained])`."""
    info = ModelInfo(
        name,
        kind,
        description,
        default_input_size,
        min_input_size,
        default_channels,
        supports_imagenet,
    )

    def register(builder: Builder) -> Builder:
        if name in _MODELS:
            raise ValueError(f"a model named {name!r} is already registered")
        _MODELS[name] = (info, builder)
        return builder

    return register


def list_models() -> list[ModelInfo]:
    """Every registered model, lecture presets first."""
    return sorted((info for info, _ in _MODELS.values()), key=lambda info: info.kind != "preset")


def get_info(name: str) -> ModelInfo:
    """The metadata of one model; KeyError naming the known models if there is none."""
    if name not in _MODELS:
        raise KeyError(f"unknown model {name!r}; the models are: {', '.join(_MODELS)}")
    return _MODELS[name][0]


def build(
    name: str, *, num_classes: int, in_channels: int, input_size: int, pretrained: bool = False
) -> nn.Module:
    """A fresh model giving (B, num_classes) logits for (B, in_channels, input_size, input_size)."""
    info = get_info(name)
    if num_classes < 1 or in_channels < 1:
        raise ValueError(
            f"{name}: num_classes and in_channels must be at least 1 "
            f"(got {num_classes} and {in_channels})"
        )
    if input_size < info.min_input_size:
        raise ValueError(
            f"{name} needs images of at least {info.min_input_size}×{info.min_input_size} pixels; "
            f"the input size is {input_size}×{input_size}"
        )
    if pretrained and not info.supports_imagenet:
        raise ValueError(f"{name} has no ImageNet weights; train it from scratch")
    extra = {"pretrained": True} if pretrained else {}
    builder = _MODELS[name][1]
    return builder(num_classes=num_classes, in_channels=in_channels, input_size=input_size, **extra)


def _head_name(model: nn.Module) -> str:
    # Every model here registers its classifier last: resnet .fc, vgg/mobilenet/efficientnet
    # .classifier[-1], densenet .classifier, and the presets' and layer lists' final Linear.
    names = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    if not names:
        raise ValueError(f"{type(model).__name__} has no nn.Linear head")
    return names[-1]


def head(model: nn.Module) -> nn.Linear:
    """The final classifier layer."""
    return model.get_submodule(_head_name(model))  # type: ignore[return-value]


def backbone_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Every parameter but the head's: what feature extraction freezes."""
    in_head = {id(p) for p in head(model).parameters()}
    return [p for p in model.parameters() if id(p) not in in_head]


def replace_head(model: nn.Module, num_classes: int) -> None:
    """Put a fresh nn.Linear(in_features, num_classes) where the head was."""
    name = _head_name(model)
    old = head(model)
    new = nn.Linear(old.in_features, num_classes)
    model.set_submodule(name, new.to(device=old.weight.device, dtype=old.weight.dtype))


def parameter_count(model: nn.Module) -> int:
    """Number of learnable values (BatchNorm running statistics are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters())


# The model modules register themselves with the decorator above, so they are imported last
# (whichever of registry and a model module is imported first, all end up registered).
from trainer.models import presets, torchvision_models  # noqa: E402, F401, I001
