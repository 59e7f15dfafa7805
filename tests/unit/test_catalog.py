"""The model catalog (trainer/catalog.py): torch-free facts, one default per kind, and the
registry's builders agreeing with it, parameter for parameter."""

import subprocess
import sys
from pathlib import Path

import pytest

from trainer import catalog, kinds

ROOT = Path(__file__).resolve().parents[2]
# Built at their usual size in well under a second each; the rest are marked slow below.
QUICK = {"simple_cnn", "mlp_keras", "lenet_lecture", "logistic", "centernet_tiny"}


def test_importing_the_catalog_imports_neither_torch_nor_django():
    code = (
        "import sys, trainer.catalog as c\n"
        "c.models(); c.default_for('detection'); c.weights_available(c.get('resnet18'))\n"
        "print(sorted(n for n in sys.modules if n.split('.')[0] in ('torch', 'django')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env={"PATH": ""}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_every_entry_is_complete_and_of_a_known_kind_and_family():
    entries = catalog.models()
    assert len({e.name for e in entries}) == len(entries)
    for entry in entries:
        assert entry.kind in kinds.KINDS, entry.name
        assert entry.family in catalog.FAMILIES, entry.name
        assert entry.description["ja"] and entry.description["en"], entry.name
        assert "\n" not in entry.description["ja"] + entry.description["en"]
        assert 1 <= entry.min_input_size <= entry.default_input_size
        assert entry.default_channels in (1, 3)
        assert entry.parameters > 0
        assert entry.weights_from in ("", "imagenet", "coco")
        assert bool(entry.weights_file) == bool(entry.weights_from), entry.name
        if entry.cpu_note is not None:
            assert entry.cpu_note["ja"] and entry.cpu_note["en"], entry.name


def test_each_kind_with_models_has_exactly_one_default():
    for kind in kinds.KINDS:
        defaults = [e.name for e in catalog.models(kind) if e.default]
        assert len(defaults) == (1 if catalog.models(kind) else 0), kind
    assert catalog.default_for("classification") == "simple_cnn"
    assert catalog.default_for("detection") == "centernet_tiny"
    with pytest.raises(KeyError):
        catalog.default_for("no-such-kind")


def test_the_trainer_can_train_every_kind_the_catalog_has_a_default_for():
    for kind in kinds.trainable():
        assert catalog.default_for(kind) in catalog.names(kind)


def test_the_default_models_are_the_specs_defaults():
    from trainer.spec import ClassificationSpec, DetectionSpec

    for spec_class in (ClassificationSpec, DetectionSpec):
        kind = spec_class.model_fields["kind"].default
        assert spec_class.model_fields["model"].default == catalog.default_for(kind)


def test_the_models_of_a_kind_are_listed_presets_first():
    assert catalog.names("classification")[:4] == [
        "simple_cnn",
        "mlp_keras",
        "lenet_lecture",
        "logistic",
    ]
    assert "centernet_tiny" in catalog.names("detection")
    assert "centernet_tiny" not in catalog.names("classification")
    with pytest.raises(KeyError, match="simple_cnn"):
        catalog.get("resnet9000")


def test_weights_are_found_under_torch_home_as_torch_looks_for_them(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    resnet = catalog.get("resnet18")
    assert not catalog.weights_available(resnet)
    folder = tmp_path / "th" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / resnet.weights_file).write_bytes(b"weights")
    assert catalog.weights_available(resnet)
    assert not catalog.weights_available(catalog.get("simple_cnn"))  # it has none at all
    monkeypatch.delenv("TORCH_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert catalog.checkpoints_dir() == tmp_path / "xdg" / "torch" / "hub" / "checkpoints"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert catalog.checkpoints_dir() == Path.home() / ".cache" / "torch" / "hub" / "checkpoints"


def test_the_checkpoints_folder_is_torch_hubs():
    import torch

    assert catalog.checkpoints_dir() == Path(torch.hub.get_dir()) / "checkpoints"


# --- the registry builds what the catalog lists -------------------------------------------------


def test_every_catalog_entry_has_a_builder_and_every_builder_an_entry():
    from trainer import registry

    assert set(registry._BUILDERS) == set(catalog.names())
    assert registry.list_models() == catalog.models()
    assert registry.get_info("centernet_tiny") is catalog.get("centernet_tiny")


def test_a_builder_without_a_catalog_entry_is_refused():
    from trainer import registry

    with pytest.raises(KeyError, match="unknown model"):
        registry.register_model(name="not_in_the_catalog")


def test_the_weights_files_are_torchvisions_names():
    from trainer.models.torchvision_models import imagenet_weights_path

    for entry in catalog.models():
        if entry.family == "torchvision" and entry.kind == "classification":
            assert entry.weights_file == imagenet_weights_path(entry.name).name, entry.name


def _params(name: str):
    marks = () if name in QUICK else (pytest.mark.slow,)
    return pytest.param(name, marks=marks, id=name)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("name", [_params(e.name) for e in catalog.models()])
def test_the_catalogs_parameter_count_is_the_built_models(name):
    from trainer import registry

    entry = catalog.get(name)
    model = registry.build(
        name,
        num_classes=catalog.REFERENCE_CLASSES,
        in_channels=entry.default_channels,
        input_size=entry.default_input_size,
    )
    assert registry.parameter_count(model) == entry.parameters
