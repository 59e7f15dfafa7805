"""The job spec: defaults, bounds, cross-field rules and registry checks, each naming its field."""

import json
import subprocess
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

from trainer.spec import (
    MAX_EPOCHS,
    RECIPES,
    Augmentation,
    JobSpec,
    SpecError,
    check_against_registry,
    from_recipe,
    load_manifest,
    load_spec,
)

DATA = {"classes": ["cat", "dog"], "items": [{"path": "a.png", "label": 0}]}


def spec_with(**fields):
    return {"model": "simple_cnn", "epochs": 8, "data": DATA, **fields}


def errors_of(data) -> dict[str, str]:
    with pytest.raises(SpecError) as raised:
        load_spec(data)
    return raised.value.errors


@dataclass
class FakeInfo:
    name: str
    kind: str = "classification"
    description: str = ""
    default_input_size: int = 28
    min_input_size: int = 8
    default_channels: int = 1
    supports_imagenet: bool = False


class FakeShapeError(ValueError):
    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index


def _fake_registry() -> types.ModuleType:
    models = {
        "simple_cnn": FakeInfo("simple_cnn"),
        "mlp_keras": FakeInfo("mlp_keras"),
        "resnet18": FakeInfo("resnet18", min_input_size=32, supports_imagenet=True),
        "unet": FakeInfo("unet", kind="segmentation"),
    }

    def get_info(name):
        return models[name]

    def build_layers(layers, *, num_classes, in_channels, input_size):
        size = input_size
        for index, layer in enumerate(layers):
            if layer.get("type") == "MaxPool":
                size //= 2
                if size < 1:
                    raise FakeShapeError(f"pooling leaves a {size}×{size} image", index)
        return layers

    registry = types.ModuleType("trainer.registry")
    registry.get_info = get_info
    registry.build_layers = build_layers
    registry.list_models = lambda: list(models)
    registry.ShapeError = FakeShapeError
    return registry


@pytest.fixture(autouse=True)
def fake_registry(monkeypatch):
    """Every test sees the same small registry, whether or not the real one exists yet."""
    monkeypatch.setitem(sys.modules, "trainer.registry", _fake_registry())


def test_minimal_spec_fills_every_default():
    spec = load_spec({"model": "simple_cnn", "epochs": 8, "data": DATA})
    assert spec.spec_version == 1
    assert spec.kind == "classification"
    assert type(spec).__name__ == "ClassificationSpec"
    assert (spec.optimizer, spec.lr, spec.betas, spec.momentum) == ("adam", 1e-3, (0.9, 0.999), 0.9)
    assert (spec.batch_size, spec.epochs, spec.kfold, spec.seed) == (64, 8, 0, 0)
    assert spec.input_size is None and spec.channels is None
    assert spec.schedule == "none" and spec.early_stopping is None
    assert spec.augmentation == Augmentation() and not spec.augmentation.enabled
    assert spec.transfer.source == "none" and spec.transfer.mode == "scratch"
    assert (spec.device, spec.precision, spec.compile) == ("auto", "auto", False)
    assert spec.data.items[0].split == "train" and spec.data.items[0].fold == -1


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"lr": 0}, "lr", "must be greater than 0"),
        ({"lr": 11}, "lr", "must be at most 10"),
        ({"lr": "fast"}, "lr", "must be a number"),
        ({"lr": float("nan")}, "lr", "must be a finite number"),
        ({"momentum": 1}, "momentum", "must be less than 1"),
        ({"momentum": -0.1}, "momentum", "must be at least 0"),
        ({"betas": [0.9, 1.0]}, "betas.1", "must be less than 1"),
        ({"betas": [0.9]}, "betas.1", "is required"),
        ({"weight_decay": 2}, "weight_decay", "must be at most 1"),
        ({"step_size": 0}, "step_size", "must be at least 1"),
        ({"gamma": 1}, "gamma", "must be less than 1"),
        ({"gamma": 0}, "gamma", "must be greater than 0"),
        ({"batch_size": 0}, "batch_size", "must be at least 1"),
        ({"batch_size": 5000}, "batch_size", "must be at most 4096"),
        ({"epochs": 0}, "epochs", "must be at least 1"),
        ({"epochs": MAX_EPOCHS + 1}, "epochs", f"must be at most {MAX_EPOCHS}"),
        ({"epochs": 2.5}, "epochs", "must be a whole number"),
        ({"label_smoothing": 1}, "label_smoothing", "must be less than 1"),
        ({"input_size": 4}, "input_size", "must be at least 8"),
        ({"input_size": 2048}, "input_size", "must be at most 1024"),
        ({"channels": 2}, "channels", "must be 1 or 3"),
        ({"kfold": 1}, "kfold", "must be 0 (no cross-validation) or between 2 and 20"),
        ({"kfold": 21}, "kfold", "must be 0 (no cross-validation) or between 2 and 20"),
        ({"spec_version": 2}, "spec_version", "this spec is for version 2"),
        ({"device": "tpu"}, "device", "must be one of 'auto', 'cpu', 'cuda' or 'mps'"),
        ({"compile": "maybe"}, "compile", "must be true or false"),
        ({"early_stopping": {"patience": 0}}, "early_stopping.patience", "must be at least 1"),
        ({"early_stopping": {"metric": "acc"}}, "early_stopping.metric", "must be 'val_loss' or"),
        ({"augmentation": {"rotation": 181}}, "augmentation.rotation", "must be at most 180"),
        ({"augmentation": {"shear": 1.5}}, "augmentation.shear", "must be at most 1"),
        ({"augmentation": {"zoom": -0.1}}, "augmentation.zoom", "must be at least 0"),
        ({"augmentation": {"color_jitter": 2}}, "augmentation.color_jitter", "must be at most 1"),
        ({"augmentation": {"random_crop": 65}}, "augmentation.random_crop", "must be at most 64"),
        ({"transfer": {"backbone_lr_factor": 0}}, "transfer.backbone_lr_factor", "greater than 0"),
        ({"model": ""}, "model", "choose a model"),
        ({"model": []}, "model", "add at least one layer"),
        ({"model": 5}, "model", "must be a model name or a list of layers"),
        ({"model": [{"type": "conv"}, "relu"]}, "model.1", "must be one layer's settings"),
    ],
)
def test_each_bound_names_its_field(fields, field, message):
    errors = errors_of(spec_with(**fields))
    assert message in errors[field], errors


def test_several_problems_come_back_together():
    errors = errors_of(spec_with(lr=0, batch_size=0, optimizer="rmsprop"))
    assert set(errors) == {"lr", "batch_size", "optimizer"}


def test_misspelt_optimizer_suggests_the_right_one():
    assert "did you mean 'adam'?" in errors_of(spec_with(optimizer="Adam"))["optimizer"]


def test_unknown_field_is_an_error_with_a_suggestion():
    errors = errors_of(spec_with(epoch=3, learning_rate=0.1, colour="red"))
    assert errors["epoch"] == "is not a setting; did you mean 'epochs'?"
    assert errors["learning_rate"] == "is not a setting; did you mean 'lr'?"
    assert errors["colour"] == "is not a setting"


def test_unknown_nested_field_suggests_within_its_own_section():
    data = {"clases": ["a"], "items": [{"path": "a.png", "lable": 0}]}
    errors = errors_of(spec_with(data=data, augmentation={"rotate": 10}))
    assert errors["data.clases"] == "is not a setting; did you mean 'classes'?"
    assert errors["data.items.0.lable"] == "is not a setting; did you mean 'label'?"
    assert errors["augmentation.rotate"] == "is not a setting; did you mean 'rotation'?"


def test_missing_data_is_explained():
    assert "add the data to train on" in errors_of({"model": "simple_cnn"})["data"]


def test_label_outside_the_classes_names_the_item():
    items = [{"path": f"{i}.png", "label": label} for i, label in enumerate([0, 1, 1, 2, -1])]
    errors = errors_of(spec_with(data={"classes": ["cat", "dog"], "items": items}))
    assert errors["data.items.3.label"] == "label 2 is not a class: use 0 to 1, one per class"
    assert "data.items.4.label" in errors
    assert "data.items.0.label" not in errors


def test_many_bad_labels_are_summed_up():
    items = [{"path": f"{i}.png", "label": 9} for i in range(25)]
    errors = errors_of(spec_with(data={"classes": ["cat"], "items": items}))
    assert len([field for field in errors if field.endswith(".label")]) == 10
    assert errors["data.items"] == "15 more items have a label that is not a class"


def test_data_needs_items_or_a_manifest_but_not_both():
    both = {"classes": ["a"], "items": [{"path": "a.png"}], "manifest": "m.jsonl"}
    assert "not both" in errors_of(spec_with(data=both))["data.manifest"]
    assert "no images" in errors_of(spec_with(data={"classes": ["a"]}))["data.items"]
    assert load_spec(spec_with(data={"classes": ["a"], "manifest": "m.jsonl"})).data.items == []


def test_every_kind_needs_a_class_and_untrained_kinds_are_refused_by_name(monkeypatch):
    from trainer import kinds

    # A trainer without a segmentation loop module (trainer/loops/segmentation.py) names it.
    monkeypatch.setattr(kinds, "trainable", lambda: ("classification", "detection"))
    data = {"classes": [], "manifest": "m.jsonl"}
    assert errors_of(spec_with(data=data))["data.classes"] == "add at least one class"
    detection = spec_with(data=data, kind="detection", model="centernet_tiny")
    assert errors_of(detection)["data.classes"] == "add at least one class"
    refused = errors_of(spec_with(kind="segmentation"))["kind"]
    assert "segmentation is not available yet" in refused and "detection" in refused
    assert "must be one of" in errors_of(spec_with(kind="clasification"))["kind"]


def test_task_is_the_deprecated_name_of_kind():
    data = {"classes": ["a"], "items": [{"path": "x.png", "annotations": []}]}
    spec = load_spec(spec_with(data=data, task="detection", model=None), check_registry=False)
    assert spec.kind == "detection" and type(spec).__name__ == "DetectionSpec"
    assert spec.model == "centernet_tiny"  # the kind's default model when none is named
    both = spec_with(data=data, task="detection", kind="classification")
    assert "once" in errors_of(both)["kind"]


def test_detection_spec_has_its_own_settings_and_refuses_classification_ones():
    data = {
        "classes": ["a", "b"],
        "items": [{"path": "x.png", "annotations": [{"category": 1, "bbox": [1, 2, 3, 4]}]}],
    }
    spec = load_spec(spec_with(data=data, kind="detection", model=None), check_registry=False)
    assert (spec.score_threshold, spec.max_detections) == (0.05, 100)
    assert spec.data.items[0].annotations[0].bbox == [1, 2, 3, 4]
    errors = errors_of(spec_with(data=data, kind="detection", kfold=3, label_smoothing=0.1))
    assert set(errors) >= {"kfold", "label_smoothing"}
    assert "is not a setting" in errors_of(spec_with(score_threshold=0.3))["score_threshold"]
    bad = {**data, "items": [{"path": "x", "annotations": [{"category": 2, "bbox": [0, 0, 1, 1]}]}]}
    assert (
        "not a class"
        in errors_of(spec_with(data=bad, kind="detection"))["data.items.0.annotations.0.category"]
    )
    flat = {
        **data,
        "items": [{"path": "x", "annotations": [{"category": 0, "bbox": [0, 0, 0, 1]}]}],
    }
    assert (
        "width"
        in errors_of(spec_with(data=flat, kind="detection"))["data.items.0.annotations.0.bbox"]
    )


def test_duplicate_class_is_an_error():
    data = {"classes": ["cat", "cat"], "manifest": "m.jsonl"}
    assert "listed twice" in errors_of(spec_with(data=data))["data.classes"]


def test_manifest_item_split_and_fold_are_checked():
    items = [{"path": "a.png", "split": "holdout", "fold": -2}]
    errors = errors_of(spec_with(data={"classes": ["a"], "items": items}))
    assert "must be one of 'train', 'val' or 'test'" in errors["data.items.0.split"]
    assert errors["data.items.0.fold"] == "must be at least -1"


def test_transfer_mode_needs_a_source():
    errors = errors_of(spec_with(transfer={"mode": "fine_tuning"}))
    assert errors["transfer.source"] == "choose a source to transfer from"


def test_transfer_from_local_files_accepts_only_safetensors_checkpoints():
    pt = spec_with(transfer={"source": "runs/7/model.pt", "mode": "fine_tuning"})
    with pytest.raises(SpecError) as refused:
        load_spec(pt, local_files=True)
    assert "only .safetensors checkpoints are accepted" in refused.value.errors["transfer.source"]
    spec = load_spec(
        spec_with(transfer={"source": "runs/7/model.safetensors", "mode": "fine_tuning"}),
        local_files=True,
    )
    assert spec.transfer.mode == "fine_tuning" and spec.transfer.backbone_lr_factor == 0.1


def test_nesterov_needs_momentum():
    errors = errors_of(spec_with(optimizer="sgd", nesterov=True, momentum=0))
    assert "needs a momentum above 0" in errors["nesterov"]


def test_early_stopping_true_switches_it_on_with_defaults():
    spec = load_spec(spec_with(early_stopping=True))
    assert spec.early_stopping is not None
    assert (spec.early_stopping.patience, spec.early_stopping.metric) == (5, "val_loss")
    assert load_spec(spec_with(early_stopping=False)).early_stopping is None


def test_lecture_augmentation_preset_fills_the_lecture_values():
    augmentation = load_spec(spec_with(augmentation={"preset": "lecture"})).augmentation
    assert (augmentation.rotation, augmentation.shear, augmentation.zoom) == (45, 0.3, 0.4)
    assert augmentation.hflip and not augmentation.vflip and augmentation.enabled


def test_lecture_preset_keeps_values_set_explicitly():
    augmentation = Augmentation(preset="lecture", rotation=10, hflip=False)
    assert (augmentation.rotation, augmentation.hflip, augmentation.zoom) == (10, False, 0.4)


def test_json_round_trip_is_stable(tmp_path):
    data = spec_with(
        lr=1,
        channels=1,
        augmentation={"preset": "lecture"},
        early_stopping=True,
        kfold=5,
        data={"classes": ["猫", "犬"], "items": [{"path": "a.png", "label": 1, "id": 7}]},
    )
    spec = load_spec(data)
    text = spec.to_json()
    assert load_spec(text) == spec
    assert load_spec(text).to_json() == text
    assert "猫" in text  # Japanese class names stay readable
    path = tmp_path / "spec.json"
    path.write_text(text, encoding="utf-8")
    assert load_spec(path) == spec and load_spec(str(path)) == spec


def test_layer_list_model_round_trips():
    layers = [{"type": "conv2d", "filters": 6, "kernel": 5}, {"type": "MaxPool"}]
    spec = load_spec(spec_with(model=layers, input_size=28))
    assert load_spec(spec.to_json()).model == spec.model
    # The builder gets plain dicts, its types as it spells them, the defaults filled in.
    assert spec.layers == [
        {"type": "Conv2d", "filters": 6, "kernel": 5, "stride": 1, "padding": "same"},
        {"type": "MaxPool", "size": 2},
    ]
    assert spec.summary()["model"] == "2 layers"


def test_bad_json_and_missing_file_are_spec_errors(tmp_path):
    assert "not valid JSON (line 1" in errors_of('{"model": }')["spec"]
    assert "cannot read" in errors_of(tmp_path / "nope.json")["spec"]
    assert errors_of("[1, 2]")["spec"] == "must be a JSON object of settings"


def test_spec_error_is_a_value_error_that_lists_its_problems():
    with pytest.raises(ValueError, match="lr: must be greater than 0"):
        load_spec(spec_with(lr=0))


def test_json_schema_is_generated():
    schema = JobSpec.model_json_schema()
    assert schema["required"] == ["data"]
    assert schema["properties"]["epochs"]["maximum"] == MAX_EPOCHS
    assert "Augmentation" in schema["$defs"] and "ManifestItem" in schema["$defs"]
    json.dumps(schema)


def test_recipe_is_the_lecture_keras_mlp():
    assert RECIPES["mlp_keras"]["batch_size"] == 128
    spec = load_spec(from_recipe("mlp_keras", epochs=3, data=DATA))
    assert (spec.model, spec.optimizer, spec.lr, spec.betas) == (
        "mlp_keras",
        "adam",
        1e-3,
        (0.9, 0.999),
    )
    assert (spec.batch_size, spec.epochs) == (128, 3)
    assert RECIPES["mlp_keras"]["epochs"] == 5  # overrides never change the recipe itself


def test_unknown_recipe_lists_the_known_ones():
    with pytest.raises(SpecError) as raised:
        from_recipe("vgg_party")
    assert "choose one of: mlp_keras" in raised.value.errors["recipe"]


def test_registry_unknown_model_lists_the_models():
    errors = errors_of(spec_with(model="resnet9000"))
    assert errors["model"].startswith("unknown model 'resnet9000'; choose one of: simple_cnn")


def test_registry_input_size_below_the_model_minimum():
    assert load_spec(spec_with(input_size=8)).input_size == 8
    errors = errors_of(spec_with(model="resnet18", input_size=16))
    assert errors["input_size"] == "resnet18 needs at least 32×32 pixels"


def test_registry_imagenet_needs_a_model_with_imagenet_weights():
    imagenet = {"source": "imagenet", "mode": "feature_extraction"}
    assert load_spec(spec_with(model="resnet18", transfer=imagenet)).transfer.source == "imagenet"
    assert "no ImageNet weights" in errors_of(spec_with(transfer=imagenet))["transfer.source"]
    layers = [{"type": "Conv2d", "filters": 4, "kernel": 3}]
    assert (
        "no ImageNet weights"
        in errors_of(spec_with(model=layers, transfer=imagenet))["transfer.source"]
    )


def test_registry_layer_shape_error_names_the_layer():
    layers = [{"type": "Conv2d", "filters": 4, "kernel": 3}] + [{"type": "MaxPool"}] * 4
    errors = errors_of(spec_with(model=layers, input_size=8))
    assert errors == {"model.4": "pooling leaves a 0×0 image"}


def test_registry_model_kind_must_match_the_spec_kind():
    assert "segmentation model" in errors_of(spec_with(model="unet"))["model"]


def test_registry_checks_are_skipped_without_a_registry(monkeypatch):
    monkeypatch.setitem(sys.modules, "trainer.registry", None)  # import raises ImportError
    spec = load_spec(spec_with(model="anything_at_all", input_size=8))
    assert check_against_registry(spec) == []


def test_spec_module_imports_without_the_registry_or_torch():
    code = (
        "import sys; sys.modules['trainer.registry'] = None\n"
        "import trainer.spec\n"
        "assert 'torch' not in sys.modules, 'trainer.spec imported torch'\n"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_registry_checks_can_be_left_to_the_worker():
    spec = load_spec(spec_with(model="resnet9000"), check_registry=False)
    assert spec.model == "resnet9000"


def test_real_registry_accepts_the_defaults_and_the_recipes(monkeypatch):
    # Undo the fake and import the real registry for good: a registry imported, dropped and
    # imported again would be a second, empty one (its model modules register only once).
    monkeypatch.undo()
    pytest.importorskip("trainer.registry")
    assert load_spec(spec_with()).model == "simple_cnn"
    for name in RECIPES:
        load_spec(from_recipe(name, data=DATA))
    assert "choose one of: simple_cnn" in errors_of(spec_with(model="nope"))["model"]


def test_manifest_file_as_json_lines(tmp_path):
    path = tmp_path / "manifest.jsonl"
    path.write_text(
        '{"path": "a.png", "label": 0}\n\n{"path": "b.png", "label": 1, "split": "val"}\n'
    )
    items = load_manifest(path, classes=["cat", "dog"])
    assert [(item.path, item.label, item.split) for item in items] == [
        ("a.png", 0, "train"),
        ("b.png", 1, "val"),
    ]


def test_manifest_file_as_a_json_list_or_object(tmp_path):
    listed, wrapped = tmp_path / "list.json", tmp_path / "object.json"
    listed.write_text(json.dumps([{"path": "a.png"}, {"path": "b.png"}], indent=2))
    wrapped.write_text(json.dumps({"items": [{"path": "a.png"}]}, indent=2))
    assert len(load_manifest(listed)) == 2 and len(load_manifest(wrapped)) == 1


def test_manifest_problems_name_the_line(tmp_path):
    path = tmp_path / "manifest.jsonl"
    path.write_text('{"path": "a.png", "label": 5}\n{"path": "b.png", "lable": 1}\n{oops\n')
    with pytest.raises(SpecError) as raised:
        load_manifest(path, classes=["cat", "dog"])
    errors = raised.value.errors
    assert errors["data.manifest.1.lable"] == "line 2: is not a setting; did you mean 'label'?"
    assert errors["data.manifest.2"].startswith("line 3: not valid JSON")
    with pytest.raises(SpecError) as raised:
        load_manifest(tmp_path / "missing.jsonl")
    assert "cannot read" in raised.value.errors["data.manifest"]


def test_manifest_labels_are_checked_against_the_classes(tmp_path):
    path = tmp_path / "manifest.jsonl"
    path.write_text('{"path": "a.png", "label": 5}\n')
    with pytest.raises(SpecError) as raised:
        load_manifest(path, classes=["cat", "dog"])
    assert raised.value.errors == {
        "data.manifest.0.label": "label 5 is not a class: use 0 to 1, one per class"
    }
