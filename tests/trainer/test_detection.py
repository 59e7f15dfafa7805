"""Detection: targets encode and decode back, boxes move with the pixels, a run through the
driver emits its events and writes its artifacts, resumes, transfers, predicts and scores."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from trainer import driver, events, scoring
from trainer.detection import BoxAugment, shapes
from trainer.detection.inference import predict
from trainer.events import ListReporter
from trainer.models.centernet import CenterNetTiny, decode, encode_targets
from trainer.spec import Augmentation, load_spec


def test_an_encoded_box_decodes_back():
    targets = [
        {"boxes": torch.tensor([[10.0, 20.0, 50.0, 44.0], [70.0, 5.0, 90.0, 61.0]]),
         "labels": torch.tensor([0, 1])},
        {"boxes": torch.tensor([[33.3, 40.1, 60.7, 100.9]]), "labels": torch.tensor([1])},
    ]  # fmt: skip
    heat, objects = encode_targets(targets, 2, 32, 32, torch.device("cpu"))
    assert heat.shape == (2, 2, 32, 32)
    assert int(heat.eq(1).sum()) == 3  # one peak per object, on its own class's map
    # A model that outputs exactly the targets: heat as logits, size and offset at the peaks.
    size, offset = torch.zeros(2, 2, 32, 32), torch.zeros(2, 2, 32, 32)
    image, cy, cx = objects["image"], objects["cy"], objects["cx"]
    size[image, :, cy, cx] = objects["size"]
    offset[image, :, cy, cx] = objects["offset"]
    logits = torch.logit(heat.clamp(1e-4, 1 - 1e-4))
    found = decode(logits, size, offset, image_size=(128, 128), score_threshold=0.5,
                   max_detections=10)  # fmt: skip
    for target, one in zip(targets, found, strict=True):
        order = one["labels"].argsort(stable=True)
        assert torch.equal(one["labels"][order], target["labels"])
        assert torch.allclose(one["boxes"][order], target["boxes"], atol=1e-4)


def test_losses_are_named_scalars_and_lower_for_the_truth():
    torch.manual_seed(0)
    model = CenterNetTiny(2).eval()
    images = torch.randn(2, 3, 64, 64)
    targets = [
        {"boxes": torch.tensor([[8.0, 8.0, 30.0, 24.0]]), "labels": torch.tensor([1])},
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)},  # no objects
    ]
    parts = model.losses(images, targets)
    assert set(parts) == {"loss", "heatmap", "size", "offset"}
    assert all(value.dim() == 0 and torch.isfinite(value) for value in parts.values())
    heat, objects = encode_targets(targets, 2, 16, 16, torch.device("cpu"))
    outputs = model(images)
    perfect = (torch.logit(heat.clamp(1e-4, 1 - 1e-4)), *outputs[1:])
    assert model.losses_of(perfect, targets)["heatmap"] < parts["heatmap"] / 10


def _square_image(size=64, box=(5, 10, 20, 30)):
    image = torch.zeros(3, size, size, dtype=torch.uint8)
    x1, y1, x2, y2 = box
    image[:, y1:y2, x1:x2] = 255  # pixels x1..x2-1: the box [x1, y1, x2, y2] holds them exactly
    return image, torch.tensor([box], dtype=torch.float32)


def _lit_box(image):
    ys, xs = torch.nonzero(image[0] > 127, as_tuple=True)
    return [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]


def test_a_horizontal_flip_flips_the_box_with_the_pixels():
    image, box = _square_image()
    augment = BoxAugment(Augmentation(hflip=True), 64)
    flipped = 0
    for seed in range(8):  # a flip half the time
        out, boxes, labels = augment(
            image[None], [box], [torch.tensor([2])], torch.Generator().manual_seed(seed)
        )
        lit = _lit_box(out[0])
        assert boxes[0].tolist()[0] == lit and labels[0].tolist() == [2]
        flipped += lit == [64 - 20, 10, 64 - 5, 30]
    assert 0 < flipped < 8


def test_rotation_zoom_and_crop_keep_the_pixels_inside_their_box():
    image, box = _square_image(box=(20, 18, 40, 36))
    augment = BoxAugment(Augmentation(rotation=30, zoom=0.3, random_crop=8, vflip=True), 64)
    for seed in range(6):
        out, boxes, _ = augment(
            image[None], [box], [torch.tensor([0])], torch.Generator().manual_seed(seed)
        )
        x1, y1, x2, y2 = boxes[0][0].tolist()
        lx1, ly1, lx2, ly2 = _lit_box(out[0])
        assert x1 - 1.5 <= lx1 and y1 - 1.5 <= ly1 and lx2 <= x2 + 1.5 and ly2 <= y2 + 1.5
        # The upright box around the turned, zoomed one: at most twice its area at 30°, ×1.3².
        assert (x2 - x1) * (y2 - y1) < 2 * 1.3**2 * 20 * 18


def test_the_same_generator_gives_the_same_augmentation_and_slivers_are_dropped():
    image, box = _square_image()
    sliver = torch.tensor([[40.0, 40.0, 40.5, 50.0]])  # half a pixel wide
    augment = BoxAugment(Augmentation(preset="lecture"), 64)
    args = (image[None].repeat(2, 1, 1, 1), [box, sliver], [torch.tensor([0]), torch.tensor([1])])
    first = augment(*args, torch.Generator().manual_seed(3))
    again = augment(*args, torch.Generator().manual_seed(3))
    assert torch.equal(first[0], again[0])
    assert all(torch.equal(a, b) for a, b in zip(first[1], again[1], strict=True))
    flips = BoxAugment(Augmentation(hflip=True), 64)(*args, torch.Generator().manual_seed(3))
    assert flips[1][1].shape == (0, 4) and flips[2][1].shape == (0,)  # dropped with its label
    assert flips[1][0].shape == (1, 4)


@pytest.fixture(scope="module")
def shapes_data(tmp_path_factory):
    return shapes.write_shapes(tmp_path_factory.mktemp("shapes"), 24, size=64, splits=(0.5, 0.25))


def _spec(data, check_registry=True, **settings):
    return load_spec(
        {"kind": "detection", "data": data, "input_size": 64, "batch_size": 8, "epochs": 2,
         "lr": 0.002, "device": "cpu", **settings},
        local_files=True,
        check_registry=check_registry,
    )  # fmt: skip


def _kinds(reporter, kind):
    return [event["data"] for event in reporter.events if event["kind"] == kind]


@pytest.fixture(scope="module")
def trained(shapes_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    reporter = ListReporter()
    result = driver.run(_spec(shapes_data), out, reporter)
    return out, reporter, result


def test_a_run_emits_detection_events(trained, shapes_data):
    _, reporter, result = trained
    (started,) = _kinds(reporter, "started")
    assert started["kind"] == "detection" and started["model"] == "centernet_tiny"
    assert started["classes"] == shapes_data["classes"]
    assert started["sizes"] == {"train": 12, "val": 6, "test": 6}
    epochs = _kinds(reporter, "epoch")
    assert [e["epoch"] for e in epochs] == [1, 2]
    for epoch in epochs:
        for name in ("train_loss", "train_heatmap", "train_size", "train_offset", "val_loss"):
            assert isinstance(epoch[name], float)
        assert 0 <= epoch["val_map50"] <= 1 and 0 <= epoch["val_map"] <= epoch["val_map50"]
    (finished,) = _kinds(reporter, "finished")
    assert finished["kind"] == "detection"
    test = finished["test"]
    assert set(test) == {"loss", "map50", "map", "per_class", "pr_curves", "images", "objects"}
    assert [row["name"] for row in test["per_class"]] == shapes_data["classes"]
    assert test["images"] == 6 and result["test"] == test
    # The web app reads them through the typed events: they fit without a complaint.
    assert events.StartedEvent.model_validate(started).kind == "detection"
    assert events.EpochEvent.model_validate(epochs[-1]).figures()["val_map50"] is not None
    typed = events.FinishedEvent.model_validate(finished).evaluation("test")
    assert [row.name for row in typed.per_class] == shapes_data["classes"]
    assert set(typed.pr_curves) <= set(shapes_data["classes"])


def test_predictions_are_written_in_original_pixels(trained, shapes_data):
    out, _, _ = trained
    rows = json.loads((out / driver.TEST_PREDICTIONS).read_text())
    test_items = [item for item in shapes_data["items"] if item["split"] == "test"]
    assert [row["id"] for row in rows] == [item["id"] for item in test_items]
    for row, item in zip(rows, test_items, strict=True):
        assert (row["width"], row["height"]) == (64, 64)
        truth = [v for a in item["annotations"] for v in a["bbox"]]
        assert [v for box in row["truth"]["boxes"] for v in box] == pytest.approx(truth, abs=0.02)
        assert len(row["boxes"]) == len(row["scores"]) == len(row["labels"]) <= 100
        assert row["scores"] == sorted(row["scores"], reverse=True)
        assert all(score >= 0.05 for score in row["scores"])
        assert all(len(box) == 4 for box in row["boxes"])
        assert {e["type"] for e in row["errors"]} <= {
            "false_positive", "missed", "wrong_class", "poor_localisation"
        }  # fmt: skip
        assert isinstance(row["severity"], float)
    assert json.loads((out / driver.VAL_PREDICTIONS).read_text())


def test_artifacts_and_card(trained, shapes_data):
    import onnx

    out, _, _ = trained
    card = json.loads((out / "model_card.json").read_text())
    assert card["kind"] == "detection" and card["classes"] == shapes_data["classes"]
    assert card["boxes"]["format"].startswith("xywh, original image pixels")
    assert card["exports"] == {
        "safetensors": "model.safetensors",
        "torchscript": "model.torchscript.pt",
        "onnx": "model.onnx",
    }
    onnx.checker.check_model(str(out / "model.onnx"))
    graph = onnx.load(str(out / "model.onnx")).graph
    assert [o.name for o in graph.output] == ["heatmap", "size", "offset"]
    traced = torch.jit.load(str(out / "model.torchscript.pt"))
    heat, size, offset = traced(torch.zeros(2, 3, 64, 64))
    assert heat.shape == (2, 3, 16, 16) and size.shape == offset.shape == (2, 2, 16, 16)


def test_try_it_and_scoring_use_the_saved_model(trained, shapes_data):
    out, _, result = trained
    first = shapes_data["items"][0]
    photo = Image.open(f"{shapes_data['root']}/{first['path']}").resize((128, 96))
    found = predict(out, photo, score_threshold=0.0)
    assert found and all(set(f) == {"box", "score", "label", "class"} for f in found)
    assert all(f["class"] in shapes_data["classes"] for f in found)
    assert max(f["box"][0] + f["box"][2] for f in found) <= 128.01  # photo pixels
    test = [item for item in _spec(shapes_data).data.items if item.split == "test"]
    # The hidden set names its classes in another order: matched by name.
    reordered = list(reversed(shapes_data["classes"]))
    for item in test:
        for a in item.annotations:
            a.category = reordered.index(shapes_data["classes"][a.category])
    score = scoring.score_detection_model(out, test, reordered, root=shapes_data["root"])
    assert score.images == 6
    assert score.map50 == pytest.approx(result["test"]["map50"], abs=1e-6)


def test_a_killed_run_resumes_to_the_same_result(shapes_data, tmp_path):
    # A 2-epoch run stands in for a 3-epoch one killed after epoch 2 only with a schedule that
    # does not depend on the number of epochs (the recipe's one-cycle does).
    fixed = {"schedule": "none"}
    whole = driver.run(_spec(shapes_data, epochs=3, **fixed), tmp_path / "whole", ListReporter())
    driver.run(_spec(shapes_data, epochs=2, **fixed), tmp_path / "cut", ListReporter())
    reporter = ListReporter()
    resumed = driver.run(
        _spec(shapes_data, epochs=3, **fixed), tmp_path / "cut", reporter, resume=True
    )
    assert _kinds(reporter, "started")[0]["resumed_from"] == 2
    assert [e["epoch"] for e in _kinds(reporter, "epoch")] == [3]
    assert resumed["test"]["map50"] == pytest.approx(whole["test"]["map50"], abs=1e-9)
    assert resumed["test"]["loss"] == pytest.approx(whole["test"]["loss"], rel=1e-5)


def test_transfer_keeps_the_heat_map_only_for_the_same_classes(trained, shapes_data, tmp_path):
    out, _, _ = trained
    source = str(out / "model.safetensors")
    for classes, head in ((shapes_data["classes"], "kept"), (["a", "b", "c"], "new")):
        data = {**shapes_data, "classes": classes}
        # The spec's architecture check (the registry's) lets the per-class heat map differ.
        transfer = {"source": source, "mode": "fine_tuning"}
        spec = _spec(data, epochs=1, transfer=transfer)
        reporter = ListReporter()
        driver.run(spec, tmp_path / head, reporter)
        assert _kinds(reporter, "started")[0]["head"] == head
    more = {**shapes_data, "classes": [*shapes_data["classes"], "star"]}
    assert _spec(more, transfer={"source": source, "mode": "fine_tuning"}).transfer.source


@pytest.mark.slow
def test_the_detector_learns_shapes(tmp_path):
    data = shapes.write_shapes(tmp_path, 240, size=64, splits=(0.75, 0.0))
    spec = _spec(data, epochs=15, batch_size=16, schedule="cosine", lr=0.003)
    result = driver.run(spec, tmp_path / "out", ListReporter())
    assert result["test"]["map50"] >= 0.5, result["test"]


def test_detection_images_keep_their_original_size(tmp_path):
    from trainer.detection import load_split

    Image.fromarray(np.zeros((30, 80, 3), np.uint8)).save(tmp_path / "wide.png")
    spec = _spec(
        {"classes": ["x"], "root": str(tmp_path), "items": [
            {"path": "wide.png", "annotations": [{"category": 0, "bbox": [40, 15, 20, 6]}]}
        ]}
    )  # fmt: skip
    split = load_split(spec.data.items, str(tmp_path), 64, 3)
    assert split.sizes.tolist() == [[80.0, 30.0]]
    assert split.boxes[0].tolist() == [pytest.approx([32.0, 32.0, 48.0, 44.8])]


def test_a_torchvision_detector_runs_through_the_same_driver_and_transfers(shapes_data, tmp_path):
    # SSDlite: the torchvision detector fast enough for a CPU test. Its evaluation has no loss
    # (val_loss None), and a same-classes transfer keeps its class rows in torchvision's layout.
    spec = _spec(shapes_data, model="ssdlite320_mobilenet_v3_large", epochs=1, batch_size=4)
    reporter = ListReporter()
    result = driver.run(spec, tmp_path / "first", reporter)
    (epoch,) = _kinds(reporter, "epoch")
    assert epoch["val_loss"] is None and 0 <= epoch["val_map50"] <= 1
    assert result["test"]["loss"] is None and 0 <= result["test"]["map50"] <= 1
    assert (tmp_path / "first" / "predictions_test.json").exists()
    source = str(tmp_path / "first" / "model.safetensors")
    transfer = {"source": source, "mode": "fine_tuning"}
    reporter = ListReporter()
    driver.run(_spec(shapes_data, model="ssdlite320_mobilenet_v3_large", epochs=1, batch_size=4,
                     transfer=transfer), tmp_path / "second", reporter)  # fmt: skip
    assert _kinds(reporter, "started")[0]["head"] == "kept"
