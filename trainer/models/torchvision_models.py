"""torchvision classifiers for any class and channel count; ImageNet weights from the local cache.

Nothing is downloaded: the weights are read from torchvision's own cache layout,
`$TORCH_HOME/hub/checkpoints/<file name of the weights' url>`, where an administrator puts them.
"""

import pickle
import re
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainer import catalog
from trainer.models import WeightsUnavailable
from trainer.registry import register_model, replace_head

# Their facts (descriptions, sizes, parameter counts, weights files) are in trainer/catalog.py.
_CLASSIFIERS = [
    entry.name
    for entry in catalog.models("classification")
    if entry.module == __name__ and entry.family == "torchvision"
]


def imagenet_weights_path(name: str) -> Path:
    """Where torchvision's cache keeps `name`'s ImageNet weights (the file need not exist)."""
    from torchvision.models import get_model_weights

    url = get_model_weights(name).DEFAULT.url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def build_torchvision(
    name: str, *, num_classes: int, in_channels: int, input_size: int, pretrained: bool = False
) -> nn.Module:
    """torchvision's `name` with a num_classes head and an in_channels stem; any input ≥ 32."""
    # Importing torchvision.models takes seconds, so listing the registry does not do it.
    from torchvision.models import get_model

    if not pretrained:
        model = get_model(name, weights=None, num_classes=num_classes)
        if in_channels != 3:
            _replace_stem(model, in_channels, keep_weights=False)
        return model
    state = _load_imagenet_state(name)
    model = get_model(name, weights=None)  # the 1000-class head the weights were saved with
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        path = imagenet_weights_path(name)
        raise WeightsUnavailable(
            f"{path} does not hold {name}'s ImageNet weights ({str(exc).splitlines()[0]}); "
            f"replace it with torchvision's {path.name}"
        ) from exc
    if in_channels != 3:
        _replace_stem(model, in_channels, keep_weights=True)
    replace_head(model, num_classes)
    return model


def _load_imagenet_state(name: str) -> dict[str, torch.Tensor]:
    path = imagenet_weights_path(name)
    if not path.is_file():
        from torchvision.models import get_model_weights

        url = get_model_weights(name).DEFAULT.url
        raise WeightsUnavailable(
            f"The ImageNet weights of {name} are not on this server. An administrator can put "
            f"torchvision's file {path.name} (from {url}) at {path}; Manabi never downloads "
            "weights itself."
        )
    state = read_weights_file(path)
    return _rename_old_densenet_keys(state) if name.startswith("densenet") else state


def read_weights_file(path: Path) -> dict[str, torch.Tensor]:
    """A torchvision weight file an administrator put in the cache, read without unpickling
    code (weights_only); WeightsUnavailable naming the file when it is not one."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        raise WeightsUnavailable(
            f"{path} could not be read as PyTorch weights ({exc}); "
            f"replace it with torchvision's {path.name}"
        ) from exc
    if not isinstance(state, dict):
        raise WeightsUnavailable(f"{path} holds no state_dict; replace it with {path.name}")
    return state


def _rename_old_densenet_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchvision's DenseNet files name "denselayer1.norm.1.weight" what is now "norm1.weight"."""
    pattern = re.compile(
        r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
    )
    renamed = {}
    for key, value in state.items():
        match = pattern.match(key)
        renamed[match.group(1) + match.group(2) if match else key] = value
    return renamed


def _first_conv(model: nn.Module) -> tuple[str, nn.Conv2d]:
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return name, module
    raise ValueError(f"{type(model).__name__} has no Conv2d")


def _replace_stem(model: nn.Module, in_channels: int, *, keep_weights: bool) -> None:
    """Swap the first convolution (the RGB stem of every family here) for an in_channels one."""
    name, old = _first_conv(model)
    geometry: dict[str, Any] = {
        "kernel_size": old.kernel_size,
        "stride": old.stride,
        "padding": old.padding,
        "dilation": old.dilation,
        "groups": old.groups,
    }
    new = nn.Conv2d(in_channels, old.out_channels, bias=old.bias is not None, **geometry)
    with torch.no_grad():
        if keep_weights:
            # A gray pixel g is the RGB pixel (g, g, g), so the summed RGB filters give the same
            # response to it; with more channels the sum is shared out equally.
            rgb_sum = old.weight.sum(dim=1, keepdim=True)  # (out, 1, k, k)
            new.weight.copy_(rgb_sum.repeat(1, in_channels, 1, 1) / in_channels)
            if old.bias is not None and new.bias is not None:
                new.bias.copy_(old.bias)
        else:
            nn.init.kaiming_normal_(new.weight, mode="fan_out", nonlinearity="relu")
            if new.bias is not None:
                nn.init.zeros_(new.bias)
    model.set_submodule(name, new)


for _name in _CLASSIFIERS:
    register_model(name=_name)(partial(build_torchvision, _name))
