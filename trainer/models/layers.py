"""The browser's model builder: a list of layer dicts → nn.Sequential, shapes checked on the way.

    [{"type": "Conv2d", "filters": 16, "kernel": 3, "activation": "relu"},
     {"type": "MaxPool"}, {"type": "Flatten"}, {"type": "Dense", "units": 64}]

The shape is followed layer by layer, (C, H, W) for images and (F,) once flat, so a list that
does not fit fails before any tensor exists, with a ShapeError naming the layer. The output
layer, Linear(F, num_classes), is appended automatically.
"""

from collections.abc import Callable
from typing import Any, NoReturn

from torch import nn

from trainer.models import ShapeError

Shape = tuple[int, ...]  # (C, H, W) or (F,)


class GlobalAvgPool(nn.Module):
    """The mean of each feature map: (B, C, H, W) -> (B, C)."""

    def forward(self, x):
        return x.mean(dim=(2, 3))


_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "leakyrelu": nn.LeakyReLU,
    "gelu": nn.GELU,
}

# type (lower case, as matched) -> (name as written in messages, the settings it takes)
_TYPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "dense": ("Dense", ("units", "activation")),
    "conv2d": ("Conv2d", ("filters", "kernel", "stride", "padding", "activation")),
    "maxpool": ("MaxPool", ("size", "stride")),
    "avgpool": ("AvgPool", ("size", "stride")),
    "batchnorm": ("BatchNorm", ()),
    "dropout": ("Dropout", ("rate",)),
    "relu": ("ReLU", ()),
    "sigmoid": ("Sigmoid", ()),
    "tanh": ("Tanh", ()),
    "leakyrelu": ("LeakyReLU", ("slope",)),
    "gelu": ("GELU", ()),
    "flatten": ("Flatten", ()),
    "globalavgpool": ("GlobalAvgPool", ()),
}


class _Layer:
    """One layer dict, with the index and label that its error messages name."""

    def __init__(self, index: int, raw: Any) -> None:
        self.index, self.raw, self.label = index, raw, "?"
        if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
            self.fail('each layer must be an object with a "type", e.g. {"type": "ReLU"}')
        self.kind = raw["type"].lower()
        if self.kind not in _TYPES:
            self.label = raw["type"]
            known = ", ".join(name for name, _ in _TYPES.values())
            self.fail(f"unknown layer type {raw['type']!r}; the types are: {known}")
        name, settings = _TYPES[self.kind]
        self.label = _label(name, raw)
        for key in raw:
            if key != "type" and key not in settings:
                takes = ", ".join(settings) or "no settings"
                self.fail(f"unknown setting {key!r}; {name} takes {takes}")

    def fail(self, message: str) -> NoReturn:
        raise ShapeError(self.index, self.label, message)

    def whole(self, key: str, default: int | None = None, minimum: int = 1) -> int:
        value = self.raw.get(key)
        if value is None:
            if default is None:
                self.fail(f'"{key}" is missing')
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
            self.fail(f"{key} must be a whole number, not {value!r}")
        if value < minimum:
            self.fail(f"{key} must be at least {minimum}, not {value}")
        return int(value)

    def number(self, key: str, default: float, low: float, high: float) -> float:
        """A number in [low, high)."""
        value = self.raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(f"{key} must be a number, not {value!r}")
        if not low <= value < high:
            self.fail(f"{key} must be at least {low} and less than {high}, not {value}")
        return float(value)

    def image(self, shape: Shape) -> tuple[int, int, int]:
        if len(shape) != 3:
            self.fail(
                f"the input is already flat ({shape[0]} values) but this layer needs feature "
                "maps (channels×height×width); move it before Flatten or GlobalAvgPool"
            )
        return shape[0], shape[1], shape[2]

    def activation(self) -> list[nn.Module]:
        value = self.raw.get("activation")
        if value is None or str(value).lower() in ("", "none", "linear"):
            return []
        name = str(value).lower().replace("_", "").replace("-", "")
        if name == "softmax":
            self.fail("no softmax here: the output layer is added for you and the loss applies it")
        if name not in _ACTIVATIONS:
            self.fail(f"unknown activation {value!r}; choose relu, sigmoid, tanh, leaky_relu, gelu")
        return [_ACTIVATIONS[name]()]


def _label(name: str, raw: dict) -> str:
    if name == "Dense":
        return f"Dense {raw.get('units', '?')}"
    if name == "Conv2d":
        kernel = raw.get("kernel", "?")
        return f"Conv2d {raw.get('filters', '?')}@{kernel}×{kernel}"
    if name in ("MaxPool", "AvgPool"):
        return f"{name} {raw.get('size', 2)}"
    if name == "Dropout":
        return f"Dropout {raw.get('rate', 0.5)}"
    return name


def build_layers(
    layers: list[dict], *, num_classes: int, in_channels: int, input_size: int
) -> nn.Sequential:
    """nn.Sequential of the layers plus Linear(F, num_classes); ShapeError where they do not fit."""
    if not isinstance(layers, list):
        raise ValueError("the model must be a list of layers")
    if num_classes < 1 or in_channels < 1 or input_size < 1:
        raise ValueError("num_classes, in_channels and input_size must be at least 1")
    shape: Shape = (in_channels, input_size, input_size)
    modules: list[nn.Module] = []
    for index, raw in enumerate(layers):
        layer = _Layer(index, raw)
        new, shape = _BUILDERS[layer.kind](layer, shape)
        modules.extend(new)
    if len(shape) != 1:
        c, h, w = shape
        raise ShapeError(
            len(layers),
            f"output Dense {num_classes}",
            f"the output layer needs a flat input but gets {c}×{h}×{w} feature maps; "
            "end the list with Flatten or GlobalAvgPool",
        )
    modules.append(nn.Linear(shape[0], num_classes))  # (B, F) -> (B, num_classes)
    return nn.Sequential(*modules)


def _dense(layer: _Layer, shape: Shape) -> tuple[list[nn.Module], Shape]:
    if len(shape) != 1:
        c, h, w = shape
        layer.fail(
            f"Dense needs a flat input but gets {c}×{h}×{w} feature maps; "
            "add Flatten or GlobalAvgPool before it"
        )
    units = layer.whole("units")
    return [nn.Linear(shape[0], units), *layer.activation()], (units,)


def _conv2d(layer: _Layer, shape: Shape) -> tuple[list[nn.Module], Shape]:
    c, h, w = layer.image(shape)
    filters, kernel, stride = (
        layer.whole("filters"),
        layer.whole("kernel"),
        layer.whole("stride", 1),
    )
    padding = layer.raw.get("padding", "same")
    if padding == "same" and stride == 1:
        conv = nn.Conv2d(c, filters, kernel, padding="same")  # PyTorch pads even kernels too
        return [conv, *layer.activation()], (filters, h, w)
    if padding == "same":
        if kernel % 2 == 0:
            layer.fail("padding 'same' with a stride above 1 needs an odd kernel size")
        pad = kernel // 2  # gives ceil(H / stride), as Keras does
    elif padding == "valid":
        pad = 0
    elif isinstance(padding, str):
        layer.fail(f"padding must be 'same', 'valid' or a whole number, not {padding!r}")
    else:
        pad = layer.whole("padding", minimum=0)
    if min(h, w) + 2 * pad < kernel:
        layer.fail(f"the kernel {kernel}×{kernel} is larger than the {h}×{w} input (padding {pad})")
    out_h, out_w = (h + 2 * pad - kernel) // stride + 1, (w + 2 * pad - kernel) // stride + 1
    conv = nn.Conv2d(c, filters, kernel, stride=stride, padding=pad)
    return [conv, *layer.activation()], (filters, out_h, out_w)


def _pool(layer: _Layer, shape: Shape) -> tuple[list[nn.Module], Shape]:
    c, h, w = layer.image(shape)
    size = layer.whole("size", 2)
    stride = layer.whole("stride", size)
    if min(h, w) < size:
        layer.fail(f"the input is {h}×{w}, too small to pool with size {size}")
    pool = nn.MaxPool2d(size, stride) if layer.kind == "maxpool" else nn.AvgPool2d(size, stride)
    return [pool], (c, (h - size) // stride + 1, (w - size) // stride + 1)


def _batchnorm(layer: _Layer, shape: Shape) -> tuple[list[nn.Module], Shape]:
    return [nn.BatchNorm1d(shape[0]) if len(shape) == 1 else nn.BatchNorm2d(shape[0])], shape


def _dropout(layer: _Layer, shape: Shape) -> tuple[list[nn.Module], Shape]:
    return [nn.Dropout(layer.number("rate", 0.5, 0.0, 1.0))], shape


def _activation(layer: _Layer, shape: Shape) -> tuple[list[nn.Module], Shape]:
    if layer.kind == "leakyrelu":
        return [nn.LeakyReLU(layer.number("slope", 0.01, 0.0, 1.0))], shape
    return [_ACTIVATIONS[layer.kind]()], shape


def _flatten(layer: _Layer, shape: Shape) -> tuple[list[nn.Module], Shape]:
    features = 1
    for side in shape:
        features *= side
    return [nn.Flatten()], (features,)  # (B, C, H, W) -> (B, C*H*W)


def _global_avg_pool(layer: _Layer, shape: Shape) -> tuple[list[nn.Module], Shape]:
    c, _, _ = layer.image(shape)
    return [GlobalAvgPool()], (c,)


_BUILDERS: dict[str, Callable[[_Layer, Shape], tuple[list[nn.Module], Shape]]] = {
    "dense": _dense,
    "conv2d": _conv2d,
    "maxpool": _pool,
    "avgpool": _pool,
    "batchnorm": _batchnorm,
    "dropout": _dropout,
    "relu": _activation,
    "sigmoid": _activation,
    "tanh": _activation,
    "leakyrelu": _activation,
    "gelu": _activation,
    "flatten": _flatten,
    "globalavgpool": _global_avg_pool,
}
