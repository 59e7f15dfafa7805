"""How big a job would be, from shapes alone (no torch): the parameters of each layer and of the
model, and the largest activation of a batch; `check` names the setting to change when one of
them passes its limit (`trainer.limits`).

A layer list is followed layer by layer as `trainer.models.layers` builds it. A named model is
described here without torch: the lecture's presets as the layer lists they amount to, and
torchvision's models by a few numbers measured once. tests/trainer/test_spec_bounds.py keeps
both equal to the real models.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from trainer import limits
from trainer.kinds import shape
from trainer.layer_spec import Conv2dLayer, DenseLayer, Layer

if TYPE_CHECKING:
    from trainer.spec import JobSpec


@dataclass(frozen=True)
class Size:
    """One step of the model: its learnable parameters and its output's values per image."""

    field: str  # the setting that makes it big: "model.3.units", "input_size", "model"
    parameters: int
    values: int


@dataclass(frozen=True)
class Excess:
    """A size over its limit, the setting to change, and the numbers that say why."""

    field: str
    code: str  # "layer_parameters", "model_parameters", "layer_values", "model_values", …
    amount: int
    limit: int
    batch: int = 1
    fits: int = 0  # for "batch_values": the largest batch size that fits

    def numbers(self) -> dict[str, str]:
        """The numbers of the message, written with thousands separators."""
        shown = {"n": self.amount, "limit": self.limit, "batch": self.batch, "fits": self.fits}
        return {key: f"{value:,}" for key, value in shown.items()}

    def message(self) -> str:
        """The problem in English, for the trainer's own errors (the web app translates)."""
        return _MESSAGES[self.code].format(**self.numbers())


_MESSAGES = {
    "layer_parameters": (
        "this layer would have {n} parameters; the limit is {limit}: use fewer units or "
        "filters, or make its input smaller first (pooling, a stride)"
    ),
    "model_parameters": (
        "the model would have {n} parameters; the limit is {limit}: use fewer or smaller "
        "layers, or a smaller input size"
    ),
    "layer_values": (
        "this layer's output would hold {n} values per image; the limit is {limit}: use fewer "
        "filters or units, or a smaller input size"
    ),
    "model_values": (
        "the largest layer of this model would hold {n} values per image at this input size; "
        "the limit is {limit}: use a smaller input size"
    ),
    "batch_values": (
        "a batch of {batch} images would need {n} values at the largest layer; the limit is "
        "{limit}: use a batch size of at most {fits}"
    ),
}


def check(spec: JobSpec) -> list[Excess]:
    """Every size of the spec's model that passes its limit (none for a model not known here)."""
    sizes = model_sizes(spec)
    if not sizes:
        return []
    total = sum(size.parameters for size in sizes)
    largest = max(size.values for size in sizes)
    excesses: list[Excess] = []
    if isinstance(spec.model, list):  # name the layer to change
        for size in sizes:
            if size.parameters > limits.MAX_PARAMETERS:
                excesses.append(
                    Excess(size.field, "layer_parameters", size.parameters, limits.MAX_PARAMETERS)
                )
            if size.values > limits.MAX_ACTIVATION:
                excesses.append(
                    Excess(size.field, "layer_values", size.values, limits.MAX_ACTIVATION)
                )
        if total > limits.MAX_PARAMETERS and not excesses:
            excesses.append(Excess("model", "model_parameters", total, limits.MAX_PARAMETERS))
    else:  # a named model grows with the input size only
        if total > limits.MAX_PARAMETERS:
            excesses.append(Excess("input_size", "model_parameters", total, limits.MAX_PARAMETERS))
        if largest > limits.MAX_ACTIVATION:
            excesses.append(Excess("input_size", "model_values", largest, limits.MAX_ACTIVATION))
    if largest <= limits.MAX_ACTIVATION < largest * spec.batch_size:
        excesses.append(
            Excess(
                "batch_size",
                "batch_values",
                largest * spec.batch_size,
                limits.MAX_ACTIVATION,
                batch=spec.batch_size,
                fits=limits.MAX_ACTIVATION // largest,
            )
        )
    return excesses


def model_sizes(spec: JobSpec) -> list[Size] | None:
    """The input and every step of the spec's model, or None where it is not known here (an
    unknown name, or layers whose shapes do not fit: the builder says why)."""
    classes = max(len(spec.data.classes), 1)
    if shape(spec.kind).has_keypoints and spec.data.keypoints is not None:
        classes = len(spec.data.keypoints.names)  # a pose model's outputs are its keypoints
    if isinstance(spec.model, list):
        channels: int = spec.channels or 1  # as trainer/fit.py does
        return layer_sizes(
            spec.model, channels=channels, size=spec.input_size or 32, classes=classes
        )
    if spec.model == "unet":
        return unet_sizes(spec, classes)
    named = NAMED.get(spec.model)
    if named is None:
        return None
    channels, size = spec.channels or named.channels, spec.input_size or named.size
    if named.layers is not None:
        return layer_sizes(
            _preset_layers(spec.model), channels=channels, size=size, classes=classes
        )
    backbone = named.parameters + named.stem * (channels - 3)  # a grey stem has fewer weights
    head = named.features * classes + classes
    side = -(-size // named.pad) * named.pad  # a detector pads its batch to a multiple of pad
    per_pixel = max(named.values_per_pixel, named.class_values_per_pixel * classes)
    largest = max(
        math.ceil(per_pixel * (side + 3) ** 2),  # an upper bound at any size
        named.fixed_values + named.class_fixed_values * classes,
    )
    return [
        Size("input_size", 0, channels * size * size),
        Size("input_size", backbone, largest),
        Size("input_size", head, classes),
    ]


def unet_sizes(spec: JobSpec, classes: int) -> list[Size]:
    """The lecture's U-Net (trainer/models/unet.py) at the spec's width, counted exactly: double
    convs (two 3×3 convs without bias, each with a BatchNorm) at widths w, 2w, … 16w; 2×2 up-convs
    back; a 1×1 head to the classes and the background. The largest activation is the top
    skip's concatenation, 2w channels at the side padded to a multiple of 16."""
    w = int(getattr(spec, "width", 16))
    channels, size = spec.channels or 3, spec.input_size or NAMED["unet"].size

    def double(cin: int, cout: int) -> int:
        return 9 * cout * (cin + cout) + 4 * cout

    body = double(channels, w) + sum(double(w << i, w << (i + 1)) for i in range(4))
    body += sum(4 * (w << (i + 1)) * (w << i) + (w << i) + double(2 * (w << i), w << i)
                for i in range(4))  # fmt: skip
    outputs = classes + 1  # channel 0 is the background
    side = -(-size // 16) * 16
    return [
        Size("input_size", 0, channels * size * size),
        Size("input_size", body, max(2 * w, outputs) * side * side),
        Size("input_size", w * outputs + outputs, outputs),
    ]


def layer_sizes(
    layers: list[Layer], *, channels: int, size: int, classes: int
) -> list[Size] | None:
    """The input, each layer and the output layer of a layer list; None if the shapes do not
    fit (the builder names the layer)."""
    shape: tuple[int, ...] = (channels, size, size)
    sizes = [Size("input_size", 0, math.prod(shape))]
    for index, layer in enumerate(layers):
        step = _step(layer, shape)
        if step is None:
            return None
        parameters, shape = step
        field = f"model.{index}"
        if isinstance(layer, DenseLayer):
            field += ".units"
        elif isinstance(layer, Conv2dLayer):
            field += ".filters"
        sizes.append(Size(field, parameters, math.prod(shape)))
    if len(shape) != 1:
        return None
    sizes.append(Size("model", shape[0] * classes + classes, classes))  # the output layer
    return sizes


def _step(layer: Any, shape: tuple[int, ...]) -> tuple[int, tuple[int, ...]] | None:
    """(parameters, output shape) of one layer, as trainer/models/layers.py builds it."""
    kind = layer.type
    if kind == "Dense":
        if len(shape) != 1:
            return None
        return shape[0] * layer.units + layer.units, (layer.units,)
    if kind == "BatchNorm":
        return 2 * shape[0], shape  # a scale and a shift per channel or feature
    if kind == "Flatten":
        return 0, (math.prod(shape),)
    if kind not in ("Conv2d", "MaxPool", "AvgPool", "GlobalAvgPool"):
        return 0, shape  # activations and dropout keep the shape
    if len(shape) != 3:
        return None
    c, h, w = shape
    if kind == "GlobalAvgPool":
        return 0, (c,)
    if kind in ("MaxPool", "AvgPool"):
        stride = layer.stride or layer.size
        if min(h, w) < layer.size:
            return None
        return 0, (c, (h - layer.size) // stride + 1, (w - layer.size) // stride + 1)
    k, stride, padding = layer.kernel, layer.stride, layer.padding
    weights = c * layer.filters * k * k + layer.filters
    if padding == "same" and stride == 1:
        return weights, (layer.filters, h, w)
    if padding == "same" and k % 2 == 0:
        return None
    pad = k // 2 if padding == "same" else 0 if padding == "valid" else int(padding)
    if min(h, w) + 2 * pad < k:
        return None
    return weights, (
        layer.filters,
        (h + 2 * pad - k) // stride + 1,
        (w + 2 * pad - k) // stride + 1,
    )


@dataclass(frozen=True)
class Named:
    """A registered model without torch: its defaults, and the layers or numbers it amounts to."""

    size: int  # the default input size
    channels: int  # the default channel count
    layers: tuple[dict[str, Any], ...] | None = None  # a preset: the layer list it amounts to
    parameters: int = 0  # torchvision, measured for RGB at 224×224, without the classifier
    stem: int = 0  # weights of the first convolution per input channel
    features: int = 0  # the classifier's inputs
    values_per_pixel: float = 0.0  # the largest activation per image / side², at 224×224
    # Detectors only: sides padded to a multiple of `pad`; class scores per class / side² (a
    # one-stage detector's, over every anchor); values whatever the image size (Faster R-CNN's
    # regions: 1,000 per image × 256 × 7 × 7 when it detects) and per class (their boxes).
    pad: int = 1
    class_values_per_pixel: float = 0.0
    fixed_values: int = 0
    class_fixed_values: int = 0


def _conv_block(filters: int) -> tuple[dict[str, Any], ...]:
    # simple_cnn's convolutions have no bias (BatchNorm's shift replaces it): 224 fewer
    # parameters than this list counts; a bound, not a count.
    conv = {"type": "Conv2d", "filters": filters, "kernel": 3, "padding": "same"}
    return (conv, {"type": "BatchNorm"}, {"type": "ReLU"}, {"type": "MaxPool", "size": 2})


NAMED: dict[str, Named] = {
    # CenterNet-tiny (trainer/models/centernet.py): measured like the torchvision models.
    "centernet_tiny": Named(
        64,
        3,
        parameters=435_700,
        stem=144,
        features=32,
        values_per_pixel=4.0,
        class_values_per_pixel=0.0625,
    ),  # fmt: skip
    "simple_cnn": Named(
        32, 1, (*_conv_block(32), *_conv_block(64), *_conv_block(128), {"type": "GlobalAvgPool"})
    ),
    "mlp_keras": Named(
        28,
        1,
        (
            {"type": "Flatten"},
            {"type": "Dense", "units": 512, "activation": "relu"},
            {"type": "Dropout", "rate": 0.2},
            {"type": "Dense", "units": 512, "activation": "relu"},
            {"type": "Dropout", "rate": 0.2},
        ),
    ),
    "lenet_lecture": Named(
        64,
        1,
        (
            {"type": "Conv2d", "filters": 6, "kernel": 10, "padding": "same", "activation": "relu"},
            {"type": "AvgPool", "size": 2},
            {
                "type": "Conv2d",
                "filters": 16,
                "kernel": 5,
                "padding": "valid",
                "activation": "tanh",
            },
            {"type": "AvgPool", "size": 2},
            {
                "type": "Conv2d",
                "filters": 16,
                "kernel": 5,
                "padding": "valid",
                "activation": "tanh",
            },
            {"type": "AvgPool", "size": 2},
            {"type": "Flatten"},
            {"type": "Dense", "units": 120, "activation": "relu"},
            {"type": "BatchNorm"},
            {"type": "Dense", "units": 48, "activation": "relu"},
        ),
    ),
    "logistic": Named(28, 1, ({"type": "Flatten"},)),
    # name: (parameters without the classifier, stem weights per channel, classifier inputs,
    # largest activation per image / 224²), measured with torchvision 0.2x at 224×224.
    "resnet18": Named(224, 3, None, 11_176_512, 3136, 512, 16.0),
    "resnet34": Named(224, 3, None, 21_284_672, 3136, 512, 16.0),
    "resnet50": Named(224, 3, None, 23_508_032, 3136, 2048, 16.0),
    "vgg11_bn": Named(224, 3, None, 128_771_840, 576, 4096, 64.0),
    "vgg16_bn": Named(224, 3, None, 134_268_992, 576, 4096, 64.0),
    "densenet121": Named(224, 3, None, 6_953_856, 3136, 1024, 16.0),
    "mobilenet_v3_small": Named(224, 3, None, 1_517_856, 144, 1024, 4.5),
    "mobilenet_v3_large": Named(224, 3, None, 4_202_032, 144, 1280, 16.0),
    "efficientnet_b0": Named(224, 3, None, 4_007_548, 288, 1280, 24.0),
    # torchvision's detectors from scratch, measured with torchvision 0.29: the parameters
    # without the class-specific layers, those per class - 1 as `features`, no stem (a grey
    # image is fed as RGB), and 16 values per padded pixel (64 channels at stride 2).
    "fasterrcnn_resnet50_fpn": Named(
        512,
        3,
        parameters=43_251_028,
        features=5_124,
        values_per_pixel=16.0,
        pad=32,
        fixed_values=12_544_000,
        class_fixed_values=4_000,
    ),
    "fasterrcnn_mobilenet_v3_large_fpn": Named(
        320,
        3,
        parameters=18_949_504,
        features=5_124,
        values_per_pixel=16.0,
        pad=32,
        fixed_values=12_544_000,
        class_fixed_values=4_000,
    ),
    # Scores for 9 anchors per cell (FCOS: 1) on P3-P7: 9 / 64 × (1 + 1/4 + 1/16 + …) per class.
    "retinanet_resnet50_fpn": Named(
        512,
        3,
        parameters=32_180_324,
        features=20_744,
        values_per_pixel=16.0,
        pad=32,
        class_values_per_pixel=0.1875,
    ),
    "fcos_resnet50_fpn": Named(
        512,
        3,
        parameters=32_112_965,
        features=2_304,
        values_per_pixel=16.0,
        pad=32,
        class_values_per_pixel=0.0209,
    ),
    # 6 anchors per cell from stride 16 down to 1×1 maps: 0.03 per class at 320, more when small.
    "ssdlite320_mobilenet_v3_large": Named(
        320,
        3,
        parameters=2_192_660,
        features=13_859,
        values_per_pixel=16.0,
        class_values_per_pixel=0.1,
    ),
    # Keypoints: "classes" are the keypoints (one heat map each; model_sizes counts them).
    # pose_unet (trainer/models/pose_net.py): its largest maps are w = 16 channels at the
    # input's side padded to a multiple of 8; the 1×1 head has 32 inputs per keypoint.
    "pose_unet": Named(
        64, 3, parameters=473_680, stem=144, features=32, values_per_pixel=16.0, pad=8
    ),
    # Keypoint R-CNN from scratch (torchvision 0.29): 8,193 parameters per keypoint in its
    # predictor; at most 128 positive regions × 512 × 14 × 14 in its keypoint head while
    # training, and 128 × 56 × 56 heat-map values per keypoint.
    "keypointrcnn_resnet50_fpn": Named(
        512,
        3,
        parameters=59_051_097,
        features=8_192,
        values_per_pixel=16.0,
        pad=32,
        fixed_values=12_845_056,
        class_fixed_values=401_408,
    ),
    # Segmentation: the U-Net is counted at the spec's width (unet_sizes); this entry holds its
    # defaults. torchvision's models from scratch, measured with torchvision 0.29 at 224×224:
    # the background's output row counted in `parameters`, a class's rows as `features` (+ its
    # bias; LR-ASPP has two classifiers: 168 inputs and 2 biases); logits (classes + 1) at the
    # input's side. Mask R-CNN: 400 regions of 256×14×14 while training, and a 28×28 mask per
    # class for each of at most 128 positive regions.
    "unet": Named(64, 3),
    "deeplabv3_resnet50": Named(
        512,
        3,
        parameters=39_633_729,
        features=256,
        values_per_pixel=32.0,
        class_values_per_pixel=1.0,
    ),
    "deeplabv3_mobilenet_v3_large": Named(
        320,
        3,
        parameters=11_020_337,
        features=256,
        values_per_pixel=16.0,
        class_values_per_pixel=1.0,
    ),
    "fcn_resnet50": Named(
        512,
        3,
        parameters=32_946_753,
        features=512,
        values_per_pixel=32.0,
        class_values_per_pixel=1.0,
    ),
    "lraspp_mobilenet_v3_large": Named(
        320,
        3,
        parameters=3_218_138,
        features=169,
        values_per_pixel=16.0,
        class_values_per_pixel=1.0,
    ),
    "maskrcnn_resnet50_fpn": Named(
        512,
        3,
        parameters=45_875_029,
        features=5_381,
        values_per_pixel=16.0,
        pad=32,
        fixed_values=20_070_400,
        class_fixed_values=100_352,
    ),
}


@cache
def _preset_layers(name: str) -> list[Layer]:
    from pydantic import TypeAdapter

    return TypeAdapter(list[Layer]).validate_python(list(NAMED[name].layers or ()))
