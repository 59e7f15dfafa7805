"""The keypoint models: their budgets bound what torch builds, and torchvision's Keypoint R-CNN
builds, takes a training step on a tiny input, finds people and exports (slow: ~60 M
parameters)."""

import json

import pytest
import torch
from torch import nn

from trainer import budget, registry
from trainer.keypoints.figures import NAMES
from trainer.keypoints.inference import find_people
from trainer.spec import load_spec


def _spec(model: str, size: int, channels: int, count: int):
    names = [f"p{i}" for i in range(count)]
    items = [{"path": "x.png", "annotations": [{"category": 0, "keypoints": [1, 1, 2] * count}]}]
    data = {"classes": ["person"], "items": items, "keypoints": {"names": names}}
    raw = {"kind": "keypoints", "model": model, "input_size": size, "channels": channels}
    raw["data"] = data
    return load_spec(raw, check_registry=False)


def _largest_activation(model: nn.Module, channels: int, size: int) -> int:
    largest = [channels * size * size]
    hooks = [
        module.register_forward_hook(
            lambda _m, _i, out: largest.append(out[0].numel()) if torch.is_tensor(out) else None
        )
        for module in model.modules()
        if not list(module.children())
    ]
    with torch.no_grad():
        model.eval()(torch.zeros(1, channels, size, size))
    for hook in hooks:
        hook.remove()
    return max(largest)


@pytest.mark.parametrize(("size", "channels", "count"), [(128, 3, 9), (67, 1, 17), (16, 3, 1)])
def test_the_budget_of_pose_unet_is_what_torch_builds(size, channels, count):
    sizes = budget.model_sizes(_spec("pose_unet", size, channels, count))
    built = registry.build("pose_unet", num_classes=count, in_channels=channels, input_size=size)
    assert sum(s.parameters for s in sizes) == registry.parameter_count(built)
    real = _largest_activation(built, channels, size)
    assert real <= max(s.values for s in sizes)
    if size >= 64:  # at a usual size a bound not far off (it adds 3 pixels to every side)
        assert max(s.values for s in sizes) <= 1.25 * real


@pytest.mark.slow
def test_keypoint_rcnn_trains_finds_people_and_exports(tmp_path):
    import onnx

    torch.manual_seed(0)
    count = len(NAMES)
    model = registry.build(
        "keypointrcnn_resnet50_fpn", num_classes=count, in_channels=3, input_size=64
    )
    sizes = budget.model_sizes(_spec("keypointrcnn_resnet50_fpn", 64, 3, count))
    assert sum(s.parameters for s in sizes) == registry.parameter_count(model)
    points = torch.rand(1, count, 3) * 40 + 10
    points[..., 2] = 2
    targets = [
        {"boxes": torch.tensor([[8.0, 8.0, 56.0, 60.0]]), "keypoints": points},
        {"boxes": torch.zeros(0, 4), "keypoints": torch.zeros(0, count, 3)},  # nobody
    ]
    largest, batch = [0], [2]  # the largest output of any layer per image
    hooks = [
        module.register_forward_hook(
            lambda _m, _i, out: (
                largest.append(out.numel() // batch[0]) if torch.is_tensor(out) else None
            )
        )
        for module in model.modules()
        if not list(module.children())
    ]
    model.train()
    parts = model.losses(torch.randn(2, 3, 64, 64), targets)
    assert {"loss", "loss_keypoint", "loss_classifier"} <= set(parts)
    assert all(value.dim() == 0 and torch.isfinite(value) for value in parts.values())
    parts["loss"].backward()
    model(torch.randn(2, 3, 64, 64))  # the driver's BatchNorm refresh: a pass without targets
    found = model.detect(torch.randn(2, 3, 64, 64), score_threshold=0.0, max_detections=3)
    for hook in hooks:
        hook.remove()
    assert max(largest) <= max(s.values for s in sizes)
    assert [one["keypoints"].shape[1:] for one in found] == [(count, 3)] * 2
    assert all(len(one["boxes"]) <= 3 for one in found)
    people = find_people(model, torch.randn(1, 3, 64, 64), [(128, 96)], score_threshold=0.0)
    assert all(len(p["keypoints"]) == count and len(p["box"]) == 4 for p in people[0])
    assert [key for key in model.keypoint_keys()] == [
        "model.roi_heads.keypoint_predictor.kps_score_lowres.weight",
        "model.roi_heads.keypoint_predictor.kps_score_lowres.bias",
    ]
    from trainer import export

    exporters = model.export_formats()
    card = {"classes": ["person"]}
    export.write_artifacts(model.eval(), tmp_path, example_input=torch.zeros(1, 3, 64, 64),
                           card=card, exporters=exporters)  # fmt: skip
    written = json.loads((tmp_path / "model_card.json").read_text())["exports"]
    assert written["torchscript"] == "model.torchscript.pt", written
    assert written["onnx"] == "model.onnx", written
    onnx.checker.check_model(str(tmp_path / "model.onnx"))
    scripted = torch.jit.load(str(tmp_path / "model.torchscript.pt"))
    assert "keypoints" in scripted(torch.zeros(1, 3, 64, 64))[0]


@pytest.mark.slow
def test_keypoint_rcnn_runs_through_the_same_driver(tmp_path):
    from PIL import Image

    from trainer import driver, events
    from trainer.events import ListReporter
    from trainer.keypoints.figures import write_figures
    from trainer.loops import keypoints as loop

    data = write_figures(tmp_path / "figures", 6, size=64, splits=(0.34, 0.33))
    spec = load_spec(
        {"kind": "keypoints", "model": "keypointrcnn_resnet50_fpn", "data": data,
         "input_size": 64, "batch_size": 2, "epochs": 1, "device": "cpu",
         "augmentation": {"hflip": True}},
        local_files=True,
    )  # fmt: skip
    reporter = ListReporter()
    result = driver.run(spec, tmp_path / "out", reporter)
    (epoch,) = reporter.of_kind("epoch")
    figures = events.EpochEvent.model_validate(epoch).figures()
    assert figures["val_loss"] is None and figures["train_loss"] > 0  # no loss in eval mode
    assert 0 <= figures["val_pck"] <= 1
    events.FinishedEvent.model_validate(reporter.of_kind("finished")[0])
    assert result["test"]["loss"] is None and result["test"]["images"] == 2
    rows = json.loads((tmp_path / "out" / driver.TEST_PREDICTIONS).read_text())
    assert len(rows) == 2 and all(len(row["truth"]) == 9 for row in rows)
    photo = Image.open(f"{data['root']}/{data['items'][0]['path']}")
    (answer,) = loop.predict(tmp_path / "out", [photo])
    assert answer["names"] == NAMES and isinstance(answer["people"], list)
