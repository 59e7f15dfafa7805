"""The model registry: presets, the layer-list builder, torchvision wrappers, heads and weights."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from trainer import registry
from trainer.models import presets, torchvision_models
from trainer.models.layers import GlobalAvgPool
from trainer.registry import ShapeError, WeightsUnavailable

# LeNet's 10×10 "same" convolution pads unevenly (4 + 5), as Keras does; PyTorch notes the copy.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")

ROOT = Path(__file__).resolve().parents[2]
PRESETS = ["simple_cnn", "mlp_keras", "lenet_lecture", "logistic"]
TORCHVISION = [
    "resnet18", "resnet34", "resnet50", "vgg11_bn", "vgg16_bn", "densenet121",
    "mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0",
]  # fmt: skip


def logits(model: nn.Module, channels: int, size: int, batch: int = 2) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.randn(batch, channels, size, size))


def linear(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def conv(c_in: int, c_out: int, k: int, bias: bool = True) -> int:
    return c_in * c_out * k * k + (c_out if bias else 0)


# --- the registry -------------------------------------------------------------------------------


def test_registry_lists_the_presets_first_then_the_torchvision_models():
    infos = registry.list_models("classification")
    assert [i.name for i in infos] == PRESETS + TORCHVISION
    for info in infos:
        assert info.description["ja"] and info.description["en"]
        assert "\n" not in info.description["ja"] + info.description["en"]
        assert info.min_input_size <= info.default_input_size
        assert info.default_channels in (1, 3)
        assert info.supports_imagenet == (info.family == "torchvision")


def test_unknown_model_name_lists_the_known_ones():
    with pytest.raises(KeyError, match="simple_cnn.*resnet18"):
        registry.get_info("resnet9000")


def test_registering_a_taken_name_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        registry.register_model(name="simple_cnn")(presets.logistic)
    assert registry.get_info("simple_cnn").family == "preset"


def test_importing_the_registry_loads_neither_django_nor_torchvision_models():
    code = (
        "import sys, trainer.registry as r\n"
        "r.list_models()\n"
        "print(sorted(n for n in sys.modules if n.split('.')[0] in ('django', 'webapp')"
        " or n == 'torchvision.models'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env={"PATH": ""}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# --- every model gives (B, C) logits ------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", PRESETS)
def test_preset_gives_logits_at_default_and_min_size(name, channels):
    info = registry.get_info(name)
    for size in (info.default_input_size, info.min_input_size):
        model = registry.build(name, num_classes=7, in_channels=channels, input_size=size)
        assert logits(model, channels, size).shape == (2, 7)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", TORCHVISION)
def test_torchvision_model_gives_logits_at_its_min_size(name, channels):
    size = registry.get_info(name).min_input_size
    assert size == 32
    model = registry.build(name, num_classes=7, in_channels=channels, input_size=size)
    assert logits(model, channels, size).shape == (2, 7)


@pytest.mark.parametrize("name", ["lenet_lecture", "simple_cnn", "resnet18"])
def test_input_below_the_min_size_is_refused(name):
    size = registry.get_info(name).min_input_size - 1
    with pytest.raises(ValueError, match="at least"):
        registry.build(name, num_classes=2, in_channels=1, input_size=size)


def test_lenet_min_size_is_the_smallest_that_leaves_one_pixel():
    assert presets._lenet_feature_side(presets.LENET_MIN_INPUT) == 1
    assert presets._lenet_feature_side(presets.LENET_MIN_INPUT - 1) == 0
    assert presets._lenet_feature_side(64) == 5


def test_simple_cnn_runs_in_channels_last():
    model = registry.build("simple_cnn", num_classes=10, in_channels=1, input_size=32).eval()
    x = torch.randn(4, 1, 32, 32)
    with torch.no_grad():
        expected = model(x)
        model = model.to(memory_format=torch.channels_last)
        got = model(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


# --- the presets, parameter for parameter -------------------------------------------------------


def test_preset_parameter_counts_match_the_lecture():
    def count(name, size, channels=1):
        model = registry.build(name, num_classes=10, in_channels=channels, input_size=size)
        return registry.parameter_count(model)

    assert count("mlp_keras", 28) == 784 * 512 + 512 + 512 * 512 + 512 + 512 * 10 + 10 == 669_706
    assert count("logistic", 28) == 784 * 10 + 10 == 7_850
    assert count("logistic", 32, channels=3) == 3 * 32 * 32 * 10 + 10
    lenet = (
        conv(1, 6, 10) + conv(6, 16, 5) + conv(16, 16, 5)
        + linear(16 * 5 * 5, 120) + 2 * 120 + linear(120, 48) + linear(48, 10)
    )  # fmt: skip
    assert count("lenet_lecture", 64) == lenet == 64_096
    simple = (
        conv(1, 32, 3, bias=False) + 2 * 32
        + conv(32, 64, 3, bias=False) + 2 * 64
        + conv(64, 128, 3, bias=False) + 2 * 128
        + linear(128, 10)
    )  # fmt: skip
    assert count("simple_cnn", 32) == simple == 94_186
    assert count("simple_cnn", 96) == simple  # global average pooling: any size, same weights


def test_lenet_layers_and_output_shapes_follow_the_lecture():
    model = registry.build("lenet_lecture", num_classes=10, in_channels=1, input_size=64)
    rows = registry.summary(model, (1, 64, 64))
    layers = [re.fullmatch(r"\S+ \((\w+)\)", row.layer).group(1) for row in rows]
    assert list(zip(layers, [row.output_shape for row in rows], strict=True)) == [
        ("Conv2d", (6, 64, 64)),
        ("ReLU", (6, 64, 64)),
        ("AvgPool2d", (6, 32, 32)),
        ("Conv2d", (16, 28, 28)),
        ("Tanh", (16, 28, 28)),
        ("AvgPool2d", (16, 14, 14)),
        ("Conv2d", (16, 10, 10)),
        ("Tanh", (16, 10, 10)),
        ("AvgPool2d", (16, 5, 5)),
        ("Flatten", (400,)),
        ("Linear", (120,)),
        ("ReLU", (120,)),
        ("BatchNorm1d", (120,)),
        ("Linear", (48,)),
        ("ReLU", (48,)),
        ("Linear", (10,)),
    ]
    assert sum(row.params for row in rows) == registry.parameter_count(model)


def test_summary_counts_a_reused_module_once_and_keeps_training_mode():
    model = registry.build("resnet18", num_classes=3, in_channels=1, input_size=32)
    rows = registry.summary(model, (1, 32, 32))
    assert model.training
    assert rows[0].layer == "conv1 (Conv2d)" and rows[0].output_shape == (64, 16, 16)
    assert rows[-1].layer == "fc (Linear)" and rows[-1].output_shape == (3,)
    assert sum(row.params for row in rows) == registry.parameter_count(model)


# --- the layer-list builder ---------------------------------------------------------------------

BROWSER_MODEL = [
    {"type": "Conv2d", "filters": 8, "kernel": 3, "activation": "relu"},
    {"type": "BatchNorm"},
    {"type": "MaxPool", "size": 2},
    {"type": "Conv2d", "filters": 16, "kernel": 5, "padding": "valid", "activation": "Tanh"},
    {"type": "AvgPool"},
    {"type": "Flatten"},
    {"type": "Dense", "units": 32, "activation": "leaky_relu"},
    {"type": "BatchNorm"},
    {"type": "Dropout", "rate": 0.25},
    {"type": "GELU"},
]


def test_layer_list_matches_the_hand_built_model():
    model = registry.build_layers(BROWSER_MODEL, num_classes=10, in_channels=1, input_size=28)
    by_hand = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(8), nn.MaxPool2d(2),  # 14×14
        nn.Conv2d(8, 16, 5), nn.Tanh(), nn.AvgPool2d(2),  # 10×10 -> 5×5
        nn.Flatten(), nn.Linear(16 * 5 * 5, 32), nn.LeakyReLU(), nn.BatchNorm1d(32),
        nn.Dropout(0.25), nn.GELU(), nn.Linear(32, 10),
    )  # fmt: skip
    assert registry.parameter_count(model) == registry.parameter_count(by_hand)
    assert [type(m) for m in model] == [type(m) for m in by_hand]
    assert logits(model, 1, 28).shape == (2, 10)
    assert registry.head(model) is model[-1]


@pytest.mark.parametrize(
    "layers, size",
    [
        ([{"type": "Conv2d", "filters": 4, "kernel": 3, "stride": 2}], 7),  # same: ceil(7/2)
        ([{"type": "Conv2d", "filters": 4, "kernel": 4, "stride": 1}], 7),  # same, even kernel
        ([{"type": "Conv2d", "filters": 4, "kernel": 3, "stride": 2, "padding": 2}], 9),
        ([{"type": "Conv2d", "filters": 4, "kernel": 7, "padding": "valid"}], 7),
        ([{"type": "MaxPool", "size": 3, "stride": 2}, {"type": "AvgPool", "size": 2}], 11),
        ([{"type": "MaxPool", "size": 2, "stride": None}, {"type": "GlobalAvgPool"}], 5),
        ([{"type": "Sigmoid"}, {"type": "LeakyReLU", "slope": 0.2}, {"type": "ReLU"}], 4),
    ],
)
def test_layer_list_shape_inference_agrees_with_pytorch(layers, size):
    flat = layers if layers[-1]["type"] == "GlobalAvgPool" else [*layers, {"type": "Flatten"}]
    model = registry.build_layers(flat, num_classes=3, in_channels=2, input_size=size)
    assert logits(model, 2, size).shape == (2, 3)  # the output Linear's in_features were right


def test_batchnorm_follows_the_shape():
    layers = [{"type": "BatchNorm"}, {"type": "GlobalAvgPool"}, {"type": "BatchNorm"}]
    model = registry.build_layers(layers, num_classes=2, in_channels=3, input_size=8)
    assert [type(m) for m in model[:3]] == [nn.BatchNorm2d, GlobalAvgPool, nn.BatchNorm1d]


def test_empty_layer_list_is_refused_at_the_output_layer():
    with pytest.raises(ShapeError) as caught:
        registry.build_layers([], num_classes=2, in_channels=1, input_size=8)
    assert caught.value.index == 0 and "Flatten or GlobalAvgPool" in caught.value.message


def test_shape_error_reads_as_the_lecture_would_say_it():
    layers = [{"type": "MaxPool"}, {"type": "MaxPool"}, {"type": "MaxPool", "size": 2}]
    with pytest.raises(ShapeError) as caught:
        registry.build_layers(layers, num_classes=2, in_channels=1, input_size=4)
    expected = "layer 3 (MaxPool 2): the input is 1×1, too small to pool with size 2"
    assert str(caught.value) == expected
    assert caught.value.index == 2


DENSE = {"type": "Dense", "units": 8}
FLAT = {"type": "Flatten"}


@pytest.mark.parametrize(
    "layers, index, phrase",
    [
        ([DENSE], 0, "add Flatten or GlobalAvgPool"),
        ([FLAT, {"type": "Conv3d"}], 1, "unknown layer type 'Conv3d'"),
        ([{"type": "Conv2d", "filters": 4, "kernel": 9, "padding": "valid"}, FLAT], 0, "larger"),
        ([{"type": "Conv2d", "filters": 4, "kernel": 3, "padding": -1}, FLAT], 0, "at least 0"),
        ([FLAT, {"type": "Dense", "units": -5}], 1, "units must be at least 1"),
        ([FLAT, {"type": "Dense", "units": "64"}], 1, "whole number"),
        ([FLAT, {"type": "Dense", "units": True}], 1, "whole number"),
        ([FLAT, {"type": "Dense"}], 1, '"units" is missing'),
        ([{"type": "Conv2d", "kernel": 3}, FLAT], 0, '"filters" is missing'),
        ([FLAT, {"type": "Conv2d", "filters": 4, "kernel": 3}], 1, "already flat"),
        ([FLAT, {"type": "GlobalAvgPool"}], 1, "already flat"),
        ([{"type": "MaxPool", "size": 0}, FLAT], 0, "size must be at least 1"),
        ([{"type": "Conv2d", "filters": 4, "kernel": 3}], 1, "end the list with Flatten"),
        ([FLAT, {"type": "Dropout", "rate": 1.5}], 1, "less than 1.0"),
        ([FLAT, {"type": "Dense", "units": 8, "activation": "softmax"}], 1, "no softmax"),
        ([FLAT, {"type": "Dense", "units": 8, "activation": "swish"}], 1, "unknown activation"),
        ([FLAT, {"type": "Dense", "units": 8, "unit": 3}], 1, "unknown setting 'unit'"),
        ([{"type": "Conv2d", "filters": 4, "kernel": 2, "stride": 2}, FLAT], 0, "odd kernel"),
        ([{"type": "Conv2d", "filters": 4, "kernel": 3, "padding": "full"}, FLAT], 0, "'same'"),
        ([FLAT, "Dense"], 1, 'must be an object with a "type"'),
    ],
)
def test_invalid_layer_list_names_the_layer(layers, index, phrase):
    with pytest.raises(ShapeError) as caught:
        registry.build_layers(layers, num_classes=2, in_channels=1, input_size=8)
    assert caught.value.index == index
    assert phrase in caught.value.message
    assert str(caught.value).startswith(f"layer {index + 1} (")


# --- heads, for transfer learning ---------------------------------------------------------------


def expected_head(name: str, model: nn.Module) -> nn.Module:
    if name.startswith("resnet"):
        return model.fc
    if name.startswith("densenet"):
        return model.classifier
    if name in TORCHVISION:
        return model.classifier[-1]
    return model[-1]


@pytest.mark.parametrize("name", PRESETS + TORCHVISION)
def test_head_and_backbone_partition_the_parameters(name):
    size = registry.get_info(name).min_input_size
    model = registry.build(name, num_classes=5, in_channels=1, input_size=max(size, 8))
    head = registry.head(model)
    assert isinstance(head, nn.Linear) and head is expected_head(name, model)
    assert head.out_features == 5
    in_head = {id(p) for p in head.parameters()}
    in_backbone = {id(p) for p in registry.backbone_parameters(model)}
    assert in_head and not in_head & in_backbone  # logistic regression is all head
    assert in_head | in_backbone == {id(p) for p in model.parameters()}

    registry.replace_head(model, 3)
    new = registry.head(model)
    assert new is not head and new is expected_head(name, model)
    assert (new.in_features, new.out_features) == (head.in_features, 3)
    assert logits(model, 1, max(size, 8)).shape == (2, 3)


def test_presets_have_no_imagenet_weights():
    with pytest.raises(ValueError, match="no ImageNet weights"):
        registry.build("simple_cnn", num_classes=2, in_channels=1, input_size=32, pretrained=True)


# --- ImageNet weights, from the local cache only ------------------------------------------------


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    return tmp_path


def test_missing_weights_say_which_file_to_put_where(torch_home):
    expected = torch_home / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    with pytest.raises(WeightsUnavailable) as caught:
        registry.build("resnet18", num_classes=2, in_channels=3, input_size=32, pretrained=True)
    assert str(expected) in str(caught.value)
    assert not expected.exists()


def test_unreadable_weights_file_is_reported(torch_home):
    path = torchvision_models.imagenet_weights_path("mobilenet_v3_small")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsUnavailable, match="could not be read"):
        registry.build(
            "mobilenet_v3_small", num_classes=2, in_channels=3, input_size=32, pretrained=True
        )


@pytest.mark.parametrize("channels", [3, 1])
def test_cached_weights_load_into_everything_but_the_head(torch_home, channels):
    path = torch_home / "hub" / "checkpoints" / "mobilenet_v3_small-047dcff4.pth"
    assert torchvision_models.imagenet_weights_path("mobilenet_v3_small") == path
    saved = torchvision.models.mobilenet_v3_small(weights=None).state_dict()
    path.parent.mkdir(parents=True)
    torch.save(saved, path)

    model = registry.build(
        "mobilenet_v3_small", num_classes=4, in_channels=channels, input_size=32, pretrained=True
    )
    loaded = model.state_dict()
    stem, head = "features.0.0.weight", ("classifier.3.weight", "classifier.3.bias")
    for key, value in saved.items():
        if key in head:
            assert loaded[key].shape[0] == 4
        elif key == stem and channels == 1:
            torch.testing.assert_close(loaded[key], value.sum(dim=1, keepdim=True))
        else:
            torch.testing.assert_close(loaded[key], value, msg=key)
    assert logits(model, channels, 32).shape == (2, 4)


def test_old_densenet_key_names_are_renamed():
    old = {
        "features.denseblock1.denselayer1.norm.1.weight": torch.ones(1),
        "features.denseblock1.denselayer1.conv.2.weight": torch.ones(1),
        "features.conv0.weight": torch.ones(1),
    }
    assert set(torchvision_models._rename_old_densenet_keys(old)) == {
        "features.denseblock1.denselayer1.norm1.weight",
        "features.denseblock1.denselayer1.conv2.weight",
        "features.conv0.weight",
    }
