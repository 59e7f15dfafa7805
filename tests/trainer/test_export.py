"""Round trips of the trainer's artifacts on a tiny conv + linear classifier."""

import importlib.util
import json
import random
from datetime import datetime

import numpy as np
import pytest
import torch
from torch import nn

from trainer import export
from trainer.export import (
    CheckpointError,
    WeightsMismatch,
    export_onnx,
    export_torchscript,
    load_checkpoint,
    load_safetensors,
    model_card,
    predict_topk,
    rng_state,
    safetensors_metadata,
    save_checkpoint,
    save_safetensors,
    set_rng_state,
    write_artifacts,
)

HEAD = ["5.bias", "5.weight"]  # the Linear at index 5 of tiny_model


def tiny_model(num_classes: int = 3, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),  # (B, 4, 8, 8)
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),  # (B, 4, 2, 2)
        nn.Flatten(),  # (B, 16)
        nn.Linear(16, num_classes),  # (B, num_classes)
    )


def trained_a_little(model: nn.Module) -> nn.Module:
    """One training step, so BatchNorm's running statistics differ from their defaults."""
    model.train()
    nn.functional.cross_entropy(
        model(torch.randn(4, 1, 8, 8)), torch.tensor([0, 1, 2, 0])
    ).backward()
    return model.eval()


@pytest.fixture
def images():
    return torch.randn(5, 1, 8, 8, generator=torch.Generator().manual_seed(1))


def test_safetensors_round_trip_gives_identical_outputs(tmp_path, images):
    model = trained_a_little(tiny_model(seed=0))
    save_safetensors(model, tmp_path / "w.safetensors")
    fresh = tiny_model(seed=1).eval()
    assert load_safetensors(fresh, tmp_path / "w.safetensors") == []
    assert torch.equal(fresh(images), model(images))
    assert safetensors_metadata(tmp_path / "w.safetensors")["format"] == "manabi"
    assert not (tmp_path / "w.safetensors.tmp").exists()


def test_skipped_keys_keep_the_models_own_values_and_the_rest_loads(tmp_path):
    source = trained_a_little(tiny_model(num_classes=3, seed=0))
    save_safetensors(source, tmp_path / "w.safetensors")
    target = tiny_model(num_classes=5, seed=1)
    head_before = target[5].weight.detach().clone()
    skipped = load_safetensors(target, tmp_path / "w.safetensors", skip=HEAD)
    assert skipped == HEAD
    assert torch.equal(target[0].weight, source[0].weight)
    assert torch.equal(target[1].running_mean, source[1].running_mean)
    assert torch.equal(target[5].weight, head_before)


def test_a_head_for_another_class_count_is_refused_by_default(tmp_path):
    save_safetensors(tiny_model(num_classes=3), tmp_path / "w.safetensors")
    with pytest.raises(WeightsMismatch, match="5.weight"):
        load_safetensors(tiny_model(num_classes=5), tmp_path / "w.safetensors")


def test_a_backbone_of_other_shapes_is_refused_even_with_the_head_skipped(tmp_path):
    # A layer the file cannot fill would otherwise stay random, and be frozen so by feature
    # extraction.
    wider = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), *tiny_model()[1:])
    save_safetensors(wider, tmp_path / "w.safetensors")
    with pytest.raises(WeightsMismatch, match="0.weight"):
        load_safetensors(tiny_model(), tmp_path / "w.safetensors", skip=HEAD)


def test_weights_of_another_architecture_are_refused_when_strict(tmp_path):
    save_safetensors(nn.ModuleDict({"other": nn.Linear(2, 2)}), tmp_path / "w.safetensors")
    with pytest.raises(WeightsMismatch, match="missing"):
        load_safetensors(tiny_model(), tmp_path / "w.safetensors")


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_torchscript_loads_back_with_the_same_outputs(tmp_path, images):
    model = trained_a_little(tiny_model())
    model.train()  # export must trace in eval mode and leave the caller's mode alone
    export_torchscript(model, images[:2], tmp_path / "m.pt")
    assert model.training
    loaded = torch.jit.load(str(tmp_path / "m.pt"))
    with torch.no_grad():
        expected = model.eval()(images)
        assert torch.allclose(loaded(images), expected, atol=1e-6)  # another batch size


def test_onnx_file_is_valid_with_a_dynamic_batch_axis(tmp_path, images):
    model = trained_a_little(tiny_model())
    path = tmp_path / "m.onnx"
    export_onnx(model, images[:2], path)
    data = path.read_bytes()
    assert data[:1] == b"\x08"  # protobuf field 1 (ir_version): what every ONNX file starts with
    if importlib.util.find_spec("onnx") is not None:
        import onnx

        proto = onnx.load(str(path))
        onnx.checker.check_model(proto)
        assert proto.opset_import[0].version == 17
        assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    if importlib.util.find_spec("onnxruntime") is not None:
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path))
        (got,) = session.run(None, {"input": images.numpy()})
        with torch.no_grad():
            assert np.allclose(got, model(images).numpy(), atol=1e-5)


def card_for(classes):
    return model_card(
        classes=classes,
        input_size=8,
        channels=1,
        mean=[0.5],
        std=[0.25],
        spec={"model": "tiny"},
        data_version=3,
        metrics={"accuracy": 0.5},
        model_name="tiny",
        parameters=123,
    )


def test_model_card_records_input_and_environment():
    card = card_for(["犬", "猫", "鳥"])
    assert card["num_classes"] == 3
    assert card["input"] == {"size": [8, 8], "channels": 1, "mean": [0.5], "std": [0.25]}
    env = card["environment"]
    assert env["torch"] == torch.__version__ and env["python"] and env["torchvision"]
    assert env["device"]
    assert datetime.fromisoformat(env["created_at"]).tzinfo is not None
    json.dumps(card)


def test_write_artifacts_writes_all_four_files(tmp_path, images):
    model = trained_a_little(tiny_model())
    paths = write_artifacts(
        model, tmp_path / "out", example_input=images[:1], card=card_for(list("abc"))
    )
    assert set(paths) == {"safetensors", "torchscript", "onnx", "card"}
    for path in paths.values():
        assert (tmp_path / "out" / path.rsplit("/", 1)[-1]).stat().st_size > 0
    card = json.loads((tmp_path / "out" / "model_card.json").read_text(encoding="utf-8"))
    assert card["exports"] == {
        "safetensors": "model.safetensors",
        "torchscript": "model.torchscript.pt",
        "onnx": "model.onnx",
    }
    assert card["classes"] == ["a", "b", "c"]


def test_a_failing_exporter_is_recorded_and_the_others_are_kept(tmp_path, images, monkeypatch):
    def unsupported(model, example_input, path):
        path.write_bytes(b"half")
        raise RuntimeError("Exporting the operator 'aten::magic' to ONNX is not supported")

    monkeypatch.setattr(export, "export_onnx", unsupported)
    out = tmp_path / "out"
    paths = write_artifacts(tiny_model(), out, example_input=images[:1], card={"model_name": "t"})
    assert set(paths) == {"safetensors", "torchscript", "card"}
    assert not (out / "model.onnx").exists()
    card = json.loads((out / "model_card.json").read_text())
    assert card["exports"]["onnx"].startswith("failed: RuntimeError: Exporting the operator")
    assert card["exports"]["torchscript"] == "model.torchscript.pt"


def test_checkpoint_restores_model_optimizer_scheduler_and_rng(tmp_path):
    random.seed(0), np.random.seed(0)
    model = tiny_model(seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)

    def step(m, opt, sched):
        x = torch.randn(4, 1, 8, 8)
        y = torch.randint(0, 3, (4,))
        opt.zero_grad()
        nn.functional.cross_entropy(m(x), y).backward()
        opt.step()
        sched.step()
        return random.random(), float(np.random.rand())

    step(model, optimizer, scheduler), step(model, optimizer, scheduler)
    path = tmp_path / "last.pt"
    save_checkpoint(
        path,
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        epoch=2,
        rng=rng_state(),
        extra={"best_accuracy": 0.5, "run": "r1", "history": [1.0, 0.5]},
    )
    assert not (tmp_path / "last.pt.tmp").exists()
    expected_draws = step(model, optimizer, scheduler)
    expected_params = [p.detach().clone() for p in model.parameters()]

    torch.manual_seed(99), random.seed(99), np.random.seed(99)  # a fresh process, in effect
    resumed = tiny_model(seed=7)
    resumed_optimizer = torch.optim.Adam(resumed.parameters(), lr=1e-2)
    resumed_scheduler = torch.optim.lr_scheduler.StepLR(resumed_optimizer, step_size=1, gamma=0.5)
    checkpoint = load_checkpoint(path)
    resumed.load_state_dict(checkpoint["model"])
    resumed_optimizer.load_state_dict(checkpoint["optimizer"])
    resumed_scheduler.load_state_dict(checkpoint["scheduler"])
    set_rng_state(checkpoint["rng"])
    assert checkpoint["epoch"] == 2
    assert checkpoint["extra"] == {"best_accuracy": 0.5, "run": "r1", "history": [1.0, 0.5]}
    assert resumed_scheduler.get_last_lr() == pytest.approx([1e-2 * 0.25])

    assert step(resumed, resumed_optimizer, resumed_scheduler) == expected_draws
    for got, want in zip(resumed.parameters(), expected_params, strict=True):
        assert torch.equal(got, want)  # same data, same Adam moments, same lr


def test_save_checkpoint_refuses_objects_weights_only_could_not_load(tmp_path):
    model = tiny_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(CheckpointError, match=r"checkpoint\['extra'\]\['when'\] is a datetime"):
        save_checkpoint(
            tmp_path / "c.pt",
            model=model,
            optimizer=optimizer,
            scheduler=None,
            epoch=0,
            rng={},
            extra={"when": datetime.now()},
        )
    assert not (tmp_path / "c.pt").exists()


RAN = []


def _ran_on_unpickle():
    RAN.append(True)


class _Payload:
    """Unpickling this would call _ran_on_unpickle: what a malicious file would do."""

    def __reduce__(self):
        return (_ran_on_unpickle, ())


def test_load_checkpoint_refuses_a_pickle_with_a_custom_class(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": export.CHECKPOINT_FORMAT, "model": _Payload()}, path)
    with pytest.raises(CheckpointError, match="evil.pt"):
        load_checkpoint(path)
    assert RAN == []


def test_load_checkpoint_refuses_a_file_that_is_not_a_checkpoint(tmp_path):
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a Manabi checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_predict_topk_orders_probabilities_that_sum_to_one(images):
    model = trained_a_little(tiny_model())
    model.train()
    predictions = predict_topk(model, images, classes=["犬", "猫", "鳥"], k=5)
    assert model.training  # the caller's mode is restored
    assert len(predictions) == len(images)
    for row in predictions:
        assert len(row) == 3  # k clipped to the number of classes
        probabilities = [item["probability"] for item in row]
        assert probabilities == sorted(probabilities, reverse=True)
        assert sum(probabilities) == pytest.approx(1.0, abs=1e-6)
        assert {item["class"] for item in row} == {"犬", "猫", "鳥"}
    assert len(predict_topk(model, images, classes=["犬", "猫", "鳥"], k=1)[0]) == 1
