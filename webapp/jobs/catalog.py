"""What the Train page offers, without importing torch: the trainer's models and layer types.

`trainer.registry` imports torch, which a web request must not; these tables copy what it
registers (a test keeps them equal), and shapes and parameter counts come from the trainer
itself through the `jobs.summarize` task on a worker (`model_summary`).
"""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from django.core.cache import cache
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from trainer import limits  # plain numbers: no torch
from webapp.env import envstr

SUMMARY_TIMEOUT = 10  # seconds a request waits for a worker's summary
SUMMARY_CACHE_SECONDS = 24 * 3600  # the same model, size and class count always gives the same
MAX_LAYERS = limits.MAX_LAYERS


class SummaryUnavailable(Exception):
    """No worker answered in time: shapes are shown later, and checked again when the job runs."""


@dataclass(frozen=True)
class ModelEntry:
    name: str
    kind: str  # "preset" | "torchvision"
    description: dict[str, str]  # {"ja", "en"}
    default_input_size: int
    min_input_size: int
    default_channels: int
    supports_imagenet: bool = False
    weights_file: str = ""  # torchvision's file name under $TORCH_HOME/hub/checkpoints/

    def describe(self) -> str:
        """The one-line description in the current language."""
        return self.description["ja" if (get_language() or "").startswith("ja") else "en"]


def _tv(name: str, en: str, ja: str, weights_file: str) -> ModelEntry:
    return ModelEntry(name, "torchvision", {"ja": ja, "en": en}, 224, 32, 3, True, weights_file)


MODELS: tuple[ModelEntry, ...] = (
    ModelEntry(
        "simple_cnn",
        "preset",
        {
            "ja": "シンプルなCNN：畳み込み3ブロック（32→64→128）と全体平均プーリング。CPUでも速い",
            "en": "Simple CNN: three conv blocks (32→64→128) and global average pooling; "
            "fast on a CPU",
        },
        32,
        8,
        1,
    ),
    ModelEntry(
        "mlp_keras",
        "preset",
        {
            "ja": "MLP（Kerasの例）：全結合512 ReLU、ドロップアウト0.2を2回、出力層",
            "en": "MLP (Keras example): Dense 512 ReLU, Dropout 0.2, twice, then the output layer",
        },
        28,
        1,
        1,
    ),
    ModelEntry(
        "lenet_lecture",
        "preset",
        {
            "ja": "LeNet（講義版）：畳み込み6@10×10・16@5×5・16@5×5と平均プーリング、全結合120・48",
            "en": "LeNet (lecture): Conv 6@10×10, 16@5×5, 16@5×5 with average pooling, "
            "Dense 120, 48",
        },
        64,
        32,
        1,
    ),
    ModelEntry(
        "logistic",
        "preset",
        {
            "ja": "ロジスティック回帰：1層のニューラルネット（平坦化→全結合）",
            "en": "Logistic regression: a one-layer network (Flatten → Dense)",
        },
        28,
        1,
        1,
    ),
    _tv(
        "resnet18",
        "ResNet-18: residual learning, 11.7 M parameters; a good first transfer model",
        "ResNet-18：残差学習、1170万パラメータ。転移学習の最初の一台に",
        "resnet18-f37072fd.pth",
    ),
    _tv(
        "resnet34",
        "ResNet-34: deeper residual network, 21.8 M parameters",
        "ResNet-34：より深い残差ネットワーク、2180万パラメータ",
        "resnet34-b627a593.pth",
    ),
    _tv(
        "resnet50",
        "ResNet-50: bottleneck residual blocks, 25.6 M parameters",
        "ResNet-50：ボトルネック型の残差ブロック、2560万パラメータ",
        "resnet50-11ad3fa6.pth",
    ),
    _tv(
        "vgg11_bn",
        "VGG-11 with batch normalisation: plain 3×3 convolutions, 132.9 M parameters",
        "VGG-11（BN付き）：3×3畳み込みを重ねた構成、1億3290万パラメータ",
        "vgg11_bn-6002323d.pth",
    ),
    _tv(
        "vgg16_bn",
        "VGG-16 with batch normalisation: 138.4 M parameters; slow without a GPU",
        "VGG-16（BN付き）：1億3840万パラメータ。GPUなしでは遅い",
        "vgg16_bn-6c64b313.pth",
    ),
    _tv(
        "densenet121",
        "DenseNet-121: every layer sees all earlier feature maps, 8.0 M parameters",
        "DenseNet-121：各層がそれまでの全特徴マップを受け取る、800万パラメータ",
        "densenet121-a639ec97.pth",
    ),
    _tv(
        "mobilenet_v3_small",
        "MobileNetV3 Small: built for phones, 2.5 M parameters; fast on a CPU",
        "MobileNetV3 Small：スマホ向けの軽量モデル、250万パラメータ。CPUでも速い",
        "mobilenet_v3_small-047dcff4.pth",
    ),
    _tv(
        "mobilenet_v3_large",
        "MobileNetV3 Large: light and accurate, 5.5 M parameters",
        "MobileNetV3 Large：軽量で高精度、550万パラメータ",
        "mobilenet_v3_large-5c1a4163.pth",
    ),
    _tv(
        "efficientnet_b0",
        "EfficientNet-B0: depth, width and resolution scaled together, 5.3 M parameters",
        "EfficientNet-B0：深さ・幅・解像度をバランスよく拡大、530万パラメータ",
        "efficientnet_b0_rwightman-7f5810bc.pth",
    ),
)
BY_NAME = {entry.name: entry for entry in MODELS}
PRESETS = tuple(entry for entry in MODELS if entry.kind == "preset")
TORCHVISION = tuple(entry for entry in MODELS if entry.kind == "torchvision")

# What the trainer gives a layer list when the spec says nothing (trainer/fit.py).
LAYERS_INPUT_SIZE = 32
LAYERS_CHANNELS = 1

# The builder's layer types and the settings each takes, with the values a new layer starts
# from (trainer/models/layers.py accepts exactly these settings).
LAYER_TYPES: dict[str, dict[str, object]] = {
    "Conv2d": {"filters": 16, "kernel": 3, "stride": 1, "padding": "same", "activation": "relu"},
    "MaxPool": {"size": 2, "stride": 2},
    "AvgPool": {"size": 2, "stride": 2},
    "BatchNorm": {},
    "Dropout": {"rate": 0.25},
    "Flatten": {},
    "GlobalAvgPool": {},
    "Dense": {"units": 64, "activation": "relu"},
    "ReLU": {},
    "Sigmoid": {},
    "Tanh": {},
    "LeakyReLU": {"slope": 0.01},
    "GELU": {},
}
ACTIVATIONS = ("none", "relu", "sigmoid", "tanh", "leaky_relu", "gelu")


def checkpoints_dir() -> Path:
    """Where torchvision (and so the trainer) looks for ImageNet weights: torch.hub's rule."""
    torch_home = envstr("TORCH_HOME")
    if not torch_home:
        cache_home = envstr("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        torch_home = str(Path(cache_home) / "torch")
    return Path(torch_home).expanduser() / "hub" / "checkpoints"


def imagenet_ready(name: str) -> bool:
    """Whether the administrator has put `name`'s ImageNet weights where the trainer reads them."""
    entry = BY_NAME.get(name)
    if entry is None or not entry.supports_imagenet:
        return False
    return (checkpoints_dir() / entry.weights_file).is_file()


def registry_problems(spec: dict) -> dict[str, str]:
    """What the trainer's registry would refuse, found from the tables: unknown model, images
    too small, ImageNet weights that the model lacks or the server does not have."""
    model = spec.get("model", "simple_cnn")
    transfer = spec.get("transfer")
    source = transfer.get("source", "none") if isinstance(transfer, dict) else "none"
    problems: dict[str, str] = {}
    if isinstance(model, list):
        if source == "imagenet":
            problems["spec.transfer.source"] = _(
                "A model built from layers has no ImageNet weights: transfer from an earlier run "
                "or train from scratch."
            )
        return problems
    entry = BY_NAME.get(model) if isinstance(model, str) else None
    if entry is None:
        problems["spec.model"] = _("Unknown model “%(name)s”; choose one from the list.") % {
            "name": model
        }
        return problems
    size = spec.get("input_size")
    if isinstance(size, int) and size < entry.min_input_size:
        problems["spec.input_size"] = _(
            "%(model)s needs images of at least %(n)s×%(n)s pixels."
        ) % {"model": entry.name, "n": entry.min_input_size}
    if source == "imagenet" and not entry.supports_imagenet:
        problems["spec.transfer.source"] = _(
            "%(model)s has no ImageNet weights: choose a torchvision model, or transfer from an "
            "earlier run."
        ) % {"model": entry.name}
    elif source == "imagenet" and not imagenet_ready(entry.name):
        problems["spec.transfer.source"] = _(
            "The ImageNet weights of %(model)s are not on this server; ask the administrator to "
            "add them, or transfer from an earlier run."
        ) % {"model": entry.name}
    return problems


def model_summary(model, input_size: int | None, channels: int | None, classes: int) -> dict:
    """Rows of output shape and parameters per layer, computed by the trainer on a worker.

    A model past the limits (a bound, the size budget) is answered here, without a worker.
    Answers are cached: the same model at the same size always gives the same rows. Raises
    SummaryUnavailable when no worker answers within SUMMARY_TIMEOUT seconds.
    """
    from celery.exceptions import TimeoutError as CeleryTimeout

    from webapp.api.tasks import summarize
    from webapp.jobs import spec_check  # it reads these tables

    problem = spec_check.summary_problem(model, input_size, channels, classes)
    if problem is not None:  # never ask a worker for a model past the limits
        field, message = problem
        index = int(field.split(".")[1]) if field.startswith("model.") else None
        return {"ok": False, "field": field, "index": index, "message": message, "rows": []}
    args = {"model": model, "input_size": input_size, "channels": channels, "classes": classes}
    digest = hashlib.sha256(json.dumps(args, sort_keys=True).encode()).hexdigest()[:32]
    key = f"model-summary:{digest}"
    answer = cache.get(key)
    if answer is None:
        try:
            answer = summarize.delay(**args).get(timeout=SUMMARY_TIMEOUT)
        except CeleryTimeout:
            raise SummaryUnavailable from None
        cache.set(key, answer, SUMMARY_CACHE_SECONDS)
    return answer
