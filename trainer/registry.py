"""Model registry: name → builder. Every other fact about a model is in `trainer.catalog`.

Like torchvision's: builders register themselves with `@register_model(name=...)` where they are
defined, and `build` calls one by name with keyword-only arguments. The facts a student chooses
by (kind, description, sizes, parameter count, weights) live in the torch-free catalog, so the
web app reads them without importing torch; registering a name the catalog lacks is refused.
Every classifier ends in one `nn.Linear` head, so transfer learning (freeze the backbone,
replace the head) works the same way for all of them.
"""

import importlib
from collections.abc import Callable
from typing import Any

from torch import nn

from trainer import catalog
from trainer.catalog import ModelEntry
from trainer.models import ShapeError, WeightsUnavailable
from trainer.models.layers import build_layers
from trainer.models.summary import SummaryRow, summary

__all__ = [
    "ModelEntry",
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
ModelInfo = ModelEntry  # the name code written before the catalog uses

_BUILDERS: dict[str, Builder] = {}


def register_model(*, name: str) -> Callable[[Builder], Builder]:
    """Decorator: register `builder(*, num_classes, in_channels, input_size[, pretrained])` as
    the builder of the catalog's model `name` (its facts are the catalog's, nowhere else)."""
    catalog.get(name)  # KeyError: add the model's entry to trainer/catalog.py first

    def register(builder: Builder) -> Builder:
        if name in _BUILDERS:
            raise ValueError(f"a model named {name!r} is already registered")
        _BUILDERS[name] = builder
        return builder

    return register


def list_models(kind: str | None = None) -> list[ModelEntry]:
    """Every model that can be built (of one kind, if given), lecture presets first."""
    return [entry for entry in catalog.models(kind) if entry.name in _BUILDERS]


def get_info(name: str) -> ModelEntry:
    """The catalog entry of one buildable model; KeyError naming the known models if none."""
    if name not in _BUILDERS:
        known = ", ".join(entry.name for entry in list_models())
        raise KeyError(f"unknown model {name!r}; the models are: {known}")
    return catalog.get(name)


def build(
    name: str,
    *,
    num_classes: int,
    in_channels: int,
    input_size: int,
    pretrained: bool | str = False,
    **options: Any,
) -> nn.Module:
    """A fresh model giving (B, num_classes) logits for (B, in_channels, input_size, input_size).

    pretrained: False, "imagenet" (or True: the backbone's ImageNet weights) or "coco" (a
    torchvision detector's or segmenter's COCO weights, class layers new), read from the local
    cache only. `options` are the builder's own settings (a U-Net's `width`), passed on as
    they are."""
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
    source = "imagenet" if pretrained is True else (pretrained or "none")
    if source not in ("none", "imagenet", "coco"):
        raise ValueError(f"{name}: pretrained must be False, 'imagenet' or 'coco', not {source!r}")
    if source == "imagenet" and not info.supports_imagenet:
        raise ValueError(f"{name} has no ImageNet weights; train it from scratch")
    if source == "coco" and not info.supports_coco:
        raise ValueError(f"{name} has no COCO weights; train it from scratch")
    # A builder with ImageNet weights only takes True, as before "coco" existed.
    extra = {} if source == "none" else {"pretrained": True if source == "imagenet" else source}
    builder = _BUILDERS[name]
    return builder(
        num_classes=num_classes, in_channels=in_channels, input_size=input_size, **extra, **options
    )


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
# (whichever of registry and a model module is imported first, all end up registered). Which
# modules: those the catalog names, so that a new model is one catalog entry and its builder.
for _module in dict.fromkeys(entry.module for entry in catalog.models()):
    importlib.import_module(_module)
