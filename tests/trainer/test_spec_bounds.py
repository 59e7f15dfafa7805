"""Every number of the spec is bounded (and the JSON schema says so), and the torch-free size
budget agrees with the models torch builds."""

import pytest
import torch
from torch import nn

from trainer import budget, limits, registry
from trainer.layer_spec import Layer
from trainer.spec import JobSpec, SpecError, load_spec

DATA = {"classes": [str(i) for i in range(10)], "items": [{"path": "a.png", "label": 0}]}


def _errors(**fields) -> dict[str, str]:
    with pytest.raises(SpecError) as refused:
        load_spec({"data": DATA, **fields}, check_registry=False)
    return refused.value.errors


# --- bounds -------------------------------------------------------------------------------------


def _numbers(schema, defs, path="", seen=()):
    """(path, schema) of every integer or number in a JSON schema, following $refs."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name not in seen:
            yield from _numbers(defs[name], defs, path, (*seen, name))
        return
    if schema.get("type") in ("integer", "number") and not {"enum", "const"} & set(schema):
        yield path, schema
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for i, part in enumerate(schema.get(key, [])):
            yield from _numbers(part, defs, f"{path}[{i}]", seen)
    if isinstance(schema.get("items"), dict):
        yield from _numbers(schema["items"], defs, f"{path}.*", seen)
    for name, part in schema.get("properties", {}).items():
        yield from _numbers(part, defs, f"{path}.{name}", seen)


def test_every_number_of_the_spec_has_bounds_in_the_json_schema():
    schema = JobSpec.model_json_schema()
    numbers = dict(_numbers(schema, schema["$defs"]))
    unbounded = [
        path
        for path, number in numbers.items()
        if not ({"minimum", "exclusiveMinimum"} & set(number))
        or not ({"maximum", "exclusiveMaximum"} & set(number))
    ]
    assert unbounded == []
    shown = {path.split("]")[-1]: number for path, number in numbers.items()}
    assert shown[".units"]["maximum"] == limits.MAX_UNITS
    assert shown[".filters"]["maximum"] == limits.MAX_FILTERS
    assert shown[".kernel"]["maximum"] == limits.MAX_KERNEL
    assert shown[".seed"]["maximum"] == limits.MAX_SEED
    assert shown[".batch_size"]["maximum"] == limits.MAX_BATCH_SIZE
    assert len(numbers) > 30  # the walk really reached the layers, augmentation, transfer …


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"model": [{"type": "Flatten"}, {"type": "Dense", "units": 1e12}]}, "model.1.units",
         "must be at most 65536"),
        ({"model": [{"type": "Conv2d", "filters": 1e9, "kernel": 3}]}, "model.0.filters",
         "must be at most 4096"),
        ({"model": [{"type": "Conv2d", "filters": 8, "kernel": 99}]}, "model.0.kernel",
         "must be at most 31"),
        ({"model": [{"type": "Conv2d", "filters": 8, "kernel": 3, "stride": 0}]},
         "model.0.stride", "must be at least 1"),
        ({"model": [{"type": "Conv2d", "filters": 8, "kernel": 3, "padding": 33}]},
         "model.0.padding", "must be"),
        ({"model": [{"type": "MaxPool", "size": 1e6}]}, "model.0.size", "must be at most 64"),
        ({"model": [{"type": "Dropout", "rate": 1}]}, "model.0.rate", "must be less than 1"),
        ({"model": [{"type": "Dense", "units": 4, "activation": "softmax"}]},
         "model.0.activation", "no softmax here"),
        ({"model": [{"type": "Dense", "units": 4, "filters": 3}]}, "model.0.filters",
         "is not a setting; Dense takes activation, units"),
        ({"model": [{"type": "Dense", "units": 4}] * 65}, "model", "use at most 64 layers"),
        ({"seed": 10**23}, "seed", "must be at most 2147483647"),
        ({"seed": 1e23}, "seed", "must be at most 2147483647"),
        ({"seed": -1}, "seed", "must be at least 0"),
        ({"input_size": 1e23}, "input_size", "must be at most 1024"),
        ({"step_size": 10**9}, "step_size", "must be at most 300"),
        ({"kfold": 10**9}, "kfold", "must be 0 (no cross-validation) or between 2 and 20"),
    ],
)  # fmt: skip
def test_each_number_past_its_bound_names_its_field(fields, field, message):
    errors = _errors(**fields)
    assert message in errors[field], errors


# --- the budget ---------------------------------------------------------------------------------


def test_a_layer_list_too_big_for_a_worker_is_refused_naming_what_to_change():
    flat = [{"type": "Flatten"}, {"type": "Dense", "units": 65536}]
    errors = _errors(model=flat, input_size=1024, channels=3)
    assert errors["model.1.units"].startswith("this layer would have 206,158,495,744 parameters")
    wide = [{"type": "Conv2d", "filters": 4096, "kernel": 3}, {"type": "GlobalAvgPool"}]
    errors = _errors(model=wide, input_size=1024)
    assert "4,294,967,296 values per image" in errors["model.0.filters"]
    batch = [{"type": "Conv2d", "filters": 512, "kernel": 3}, {"type": "GlobalAvgPool"}]
    errors = _errors(model=batch, input_size=1024, batch_size=64)
    assert errors == {
        "batch_size": "a batch of 64 images would need 34,359,738,368 values at the largest "
        "layer; the limit is 2,147,483,648: use a batch size of at most 4"
    }
    many = [{"type": "Flatten"}] + [{"type": "Dense", "units": 12_000}] * 3
    assert "the model would have" in _errors(model=many, input_size=64)["model"]


def test_named_models_are_refused_only_far_past_their_usual_sizes():
    for info in registry.list_models():
        # torchvision's detectors hold 1,000 regions of 256×7×7 values per image (Faster R-CNN;
        # Keypoint R-CNN 128 of 512×14×14), its segmenters full-size maps: batches of 64
        batch = (
            64 if info.kind != "classification" else 256 if info.family == "torchvision" else 1024
        )
        load_spec({"data": DATA, "model": info.name, "batch_size": batch}, check_registry=False)
    big = {"data": DATA, "model": "resnet50", "input_size": 224, "channels": 3, "batch_size": 256}
    load_spec(big, check_registry=False)
    assert "batch_size" in _errors(model="vgg16_bn", batch_size=1024)
    assert "input_size" in _errors(model="mlp_keras", input_size=1024, channels=3)


def _largest_activation(model: nn.Module, channels: int, size: int) -> int:
    largest = [channels * size * size]
    hooks = [
        module.register_forward_hook(
            lambda _m, _i, out: largest.append(out[0].numel()) if torch.is_tensor(out) else None
        )
        for module in model.modules()
        if not list(module.children())
    ]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, channels, size, size))
    for hook in hooks:
        hook.remove()
    return max(largest)


def _spec(model, size: int, channels: int, classes: int = 10) -> JobSpec:
    data = {**DATA, "classes": [str(i) for i in range(classes)]}
    raw = {"data": data, "model": model, "input_size": size, "channels": channels}
    return load_spec(raw, check_registry=False)


LAYER_LISTS = [
    [{"type": "Conv2d", "filters": 8, "kernel": 3, "activation": "relu"}, {"type": "MaxPool"},
     {"type": "Flatten"}, {"type": "Dense", "units": 16}, {"type": "Dropout", "rate": 0.2}],
    [{"type": "Conv2d", "filters": 6, "kernel": 4}, {"type": "BatchNorm"},
     {"type": "Conv2d", "filters": 12, "kernel": 5, "stride": 2, "padding": "same"},
     {"type": "AvgPool", "size": 3, "stride": 2}, {"type": "LeakyReLU"},
     {"type": "Conv2d", "filters": 7, "kernel": 3, "stride": 3, "padding": 2},
     {"type": "Conv2d", "filters": 5, "kernel": 2, "padding": "valid"}, {"type": "GlobalAvgPool"},
     {"type": "BatchNorm"}, {"type": "Dense", "units": 9, "activation": "tanh"}],
]  # fmt: skip


@pytest.mark.parametrize("layers", LAYER_LISTS)
@pytest.mark.parametrize(("size", "channels"), [(32, 1), (37, 3)])
def test_the_budget_of_a_layer_list_is_what_torch_builds(layers, size, channels):
    spec = _spec(layers, size, channels, classes=4)
    sizes = budget.model_sizes(spec)
    built = registry.build_layers(spec.layers, num_classes=4, in_channels=channels, input_size=size)
    assert sum(s.parameters for s in sizes) == registry.parameter_count(built)
    assert max(s.values for s in sizes) == _largest_activation(built, channels, size)


@pytest.mark.parametrize("name", ["simple_cnn", "mlp_keras", "lenet_lecture", "logistic"])
def test_the_budget_of_a_preset_is_what_torch_builds(name):
    for size, channels in [(64, 1), (97, 3)]:
        spec = _spec(name, size, channels)
        sizes = budget.model_sizes(spec)
        built = registry.build(name, num_classes=10, in_channels=channels, input_size=size)
        counted, real = sum(s.parameters for s in sizes), registry.parameter_count(built)
        biases = 32 + 64 + 128 if name == "simple_cnn" else 0  # its convolutions have none
        assert counted == real + biases, name
        assert max(s.values for s in sizes) == _largest_activation(built, channels, size)


def test_every_registered_model_has_a_budget_with_its_defaults():
    assert set(budget.NAMED) == {info.name for info in registry.list_models()}
    for info in registry.list_models():
        named = budget.NAMED[info.name]
        assert (named.size, named.channels) == (info.default_input_size, info.default_channels)


@pytest.mark.parametrize(
    "name",
    [i.name for i in registry.list_models("classification") if i.family == "torchvision"],
)
def test_the_budget_of_a_torchvision_model_bounds_what_torch_builds(name):
    for size, channels, classes in [(32, 3, 10), (67, 1, 3)]:
        spec = _spec(name, size, channels, classes)
        sizes = budget.model_sizes(spec)
        built = registry.build(name, num_classes=classes, in_channels=channels, input_size=size)
        assert sum(s.parameters for s in sizes) == registry.parameter_count(built)
        real = _largest_activation(built, channels, size)
        assert real <= max(s.values for s in sizes) <= 1.25 * real  # an upper bound, not far off


def test_the_layer_models_are_the_builders_layer_types():
    from typing import get_args

    from trainer.models import layers

    ours = {
        model.model_fields["type"].annotation.__args__[0]: set(model.model_fields) - {"type"}
        for model in get_args(get_args(Layer)[0])
    }
    theirs = {name: set(settings) for name, settings in layers._TYPES.values()}
    assert ours == theirs


# --- torchvision's detectors --------------------------------------------------------------------


def _largest_detector_activation(model: nn.Module, size: int) -> int:
    """The largest output of any layer per image, training (a batch of 2) and detecting."""
    largest, batch = [3 * size * size], [2]
    hooks = [
        module.register_forward_hook(
            lambda _m, _i, out: (
                largest.append(out.numel() // batch[0]) if torch.is_tensor(out) else None
            )
        )
        for module in model.modules()
        if not list(module.children())
    ]
    images = torch.randn(2, 3, size, size)
    box = {"boxes": torch.tensor([[2.0, 3.0, size / 2, size - 4.0]]), "labels": torch.tensor([0])}
    with torch.no_grad():
        model.train()
        model.losses(images, [box, box])
        batch[0] = 1
        model.detect(images[:1], score_threshold=0.0, max_detections=100)
    for hook in hooks:
        hook.remove()
    return max(largest)


HEAVY_DETECTORS = {"fasterrcnn_resnet50_fpn", "retinanet_resnet50_fpn", "fcos_resnet50_fpn"}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(i.name, marks=(pytest.mark.slow,) * (i.name in HEAVY_DETECTORS), id=i.name)
        for i in registry.list_models("detection")
        if i.family == "torchvision"
    ],
)
def test_the_budget_of_a_torchvision_detector_bounds_what_torch_builds(name):
    info = registry.get_info(name)
    for size, channels, classes in [(64, 1, 3), (64, 3, 300), (info.default_input_size, 3, 10)]:
        spec = _spec(name, size, channels, classes)
        sizes = budget.model_sizes(spec)
        built = registry.build(name, num_classes=classes, in_channels=channels, input_size=size)
        assert sum(s.parameters for s in sizes) == registry.parameter_count(built)
        real = _largest_detector_activation(built, size)
        assert real <= max(s.values for s in sizes)
    assert max(s.values for s in sizes) <= 1.25 * real  # at its usual size, not far off


# --- an RLE mask is bounded too ------------------------------------------------------------------


def _segmentation_errors(segmentation) -> dict[str, str]:
    data = {"classes": ["a"], "items": [{"path": "a.png", "annotations": [{"category": 0}]}]}
    data["items"][0]["annotations"][0]["segmentation"] = segmentation
    with pytest.raises(SpecError) as refused:
        load_spec({"kind": "segmentation", "data": data}, check_registry=False)
    return refused.value.errors


FIELD = "data.items.0.annotations.0.segmentation"


@pytest.mark.parametrize(
    ("rle", "field", "message"),
    [
        ({"size": [4, limits.MAX_IMAGE_SIDE + 1], "counts": [16]}, "size.1", "must be at most"),
        ({"size": [0, 4], "counts": [16]}, "size.0", "must be at least 1"),
        ({"size": [4, 4, 4], "counts": [16]}, "size", "can have at most 2 entries"),
        ({"size": [4, 4], "counts": "0" * (limits.MAX_RLE_COUNTS + 1)}, "counts", "at most"),
        ({"size": [4, 4], "counts": [1] * (limits.MAX_RLE_COUNTS + 1)}, "counts", "at most"),
        ({"size": [4, 4], "counts": [-1, 17]}, "counts.0", "must be at least 0"),
        ({"size": [4, 4], "counts": "~~"}, "counts", "must match"),
        ({"size": [4, 4]}, "counts", "is required"),
        ({"size": [4, 4], "counts": [16], "note": "x"}, "note", "is not a setting"),
    ],
)
def test_an_rle_mask_is_bounded_and_its_errors_name_the_part(rle, field, message):
    errors = _segmentation_errors(rle)
    assert message in errors[f"{FIELD}.{field}"], errors
    assert FIELD not in errors  # no word from the polygons' branch


@pytest.mark.parametrize("counts", ["04", [0, 16]])
def test_a_valid_rle_mask_is_kept_as_the_dict_the_decoders_read(counts):
    data = {"classes": ["a"], "items": [{"path": "a.png", "annotations": []}]}
    data["items"][0]["annotations"].append(
        {"category": 0, "segmentation": {"size": [4, 4], "counts": counts}}
    )
    spec = load_spec({"kind": "segmentation", "data": data}, check_registry=False)
    assert spec.data.items[0].annotations[0].segmentation == {"size": [4, 4], "counts": counts}


def test_the_schema_shows_the_rle_mask_bounded():
    from trainer.spec import ObjectAnnotation

    schema = ObjectAnnotation.model_json_schema()
    rle = schema["$defs"]["RLE"]
    assert rle["additionalProperties"] is False
    assert rle["properties"]["size"]["maxItems"] == 2
    text, runs = rle["properties"]["counts"]["oneOf"]
    assert text["maxLength"] == runs["maxItems"] == limits.MAX_RLE_COUNTS
    assert runs["items"]["maximum"] == limits.MAX_IMAGE_SIDE**2
