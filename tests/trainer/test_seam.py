"""The seam every kind plugs into: the kinds the trainer can train, the loop protocol, and the
typed events the web app reads."""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from trainer import events, kinds, loops
from trainer.events import ListReporter
from trainer.spec import load_spec

PROTOCOL = (
    "KIND", "FIGURES", "WATCH", "prepare", "build_model", "head_parameters", "make_step",
    "train_step", "evaluate", "export", "predict", "score",
)  # fmt: skip


def test_trainable_kinds_are_the_loop_modules_and_need_no_torch():
    found = kinds.trainable()
    assert found[0] == "classification" and "detection" in found
    assert set(found) <= set(kinds.KINDS)
    for kind in kinds.KINDS:
        has_module = (Path(loops.__file__).parent / f"{kind}.py").exists()
        assert (kind in found) == has_module, kind
    code = (
        "import sys; import trainer.kinds as k; assert k.trainable();\n"
        "assert 'torch' not in sys.modules, 'trainer.kinds imported torch'\n"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "module", ["trainer.kinds", "trainer.catalog", "trainer.spec", "trainer.keypoint_metrics"]
)
def test_what_the_web_app_imports_of_the_trainer_needs_no_torch(module):
    """The web processes read these (kinds, the model list, spec checks, the keypoint editor's
    and labelling's default sigmas) without loading PyTorch."""
    code = f"import sys, {module}; assert 'torch' not in sys.modules, '{module} imported torch'"
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("kind", kinds.trainable())
def test_every_loop_module_follows_the_protocol(kind):
    module = importlib.import_module(f"trainer.loops.{kind}")
    missing = [name for name in PROTOCOL if not hasattr(module, name)]
    assert not missing, f"trainer/loops/{kind}.py lacks {missing}"
    assert kind == module.KIND
    assert kind in kinds.FIGURES and kind in kinds.PRIMARY and kind in events.EVALUATIONS
    epoch_figures = {f"val_{name}" for name in module.FIGURES} | {"train_loss"}
    assert epoch_figures <= set(kinds.EPOCH_FIGURES[kind]), kind


def test_a_classification_run_speaks_the_typed_events(small_digits, tmp_path):
    reporter = ListReporter()
    spec = load_spec(
        {"data": small_digits, "model": "logistic", "input_size": 8, "epochs": 2}, local_files=True
    )
    loops.run(spec, tmp_path, reporter)
    started = events.StartedEvent.model_validate(reporter.of_kind("started")[0])
    assert started.kind == "classification" and started.classes == small_digits["classes"]
    epochs = [events.EpochEvent.model_validate(e) for e in reporter.of_kind("epoch")]
    assert [e.epoch for e in epochs] == [1, 2]
    figures = epochs[-1].figures()
    assert set(kinds.EPOCH_FIGURES["classification"]) <= set(figures)
    assert 0 <= figures["val_acc"] <= 1 and figures["train_loss"] > 0
    finished = events.FinishedEvent.model_validate(reporter.of_kind("finished")[0])
    test = finished.evaluation("test")
    assert isinstance(test, events.ClassificationEvaluation) and 0 <= test.accuracy <= 1
    with pytest.raises(Exception):  # noqa: B017, PT011 - pydantic's ValidationError
        events.parse_evaluation("detection", {"loss": 1.0, "accuracy": 0.5})
