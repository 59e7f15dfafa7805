"""Segmentation: outlines decode to class maps at the input size, maps move with the pixels, the
loss has its parts, and a run through the driver emits typed events, writes its predictions and
exports, resumes, transfers, predicts and scores."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_util

from trainer import driver, events, kinds, scoring
from trainer.events import ListReporter
from trainer.loops import segmentation
from trainer.segmentation import IGNORE, MaskAugment, load_split, shapes
from trainer.spec import Augmentation, load_spec

# --- data -----------------------------------------------------------------------------------------


def _spec(data, check_registry=True, **settings):
    return load_spec(
        {"kind": "segmentation", "data": data, "input_size": 32, "batch_size": 8, "epochs": 2,
         "lr": 0.01, "optimizer": "adamw", "device": "cpu", "width": 8, **settings},
        local_files=True,
        check_registry=check_registry,
    )  # fmt: skip


def test_polygons_rle_and_boxes_become_one_class_map_at_the_input_size(tmp_path):
    Image.fromarray(np.zeros((40, 80, 3), np.uint8)).save(tmp_path / "wide.png")  # w 80, h 40
    rle = np.zeros((40, 80), np.uint8)
    rle[0:10, 60:80] = 1  # the top-right corner, at the original size
    counts = mask_util.encode(np.asfortranarray(rle))["counts"].decode("ascii")
    data = {"classes": ["a", "b", "c"], "root": str(tmp_path), "items": [{
        "path": "wide.png",
        "annotations": [
            {"category": 0, "segmentation": [[0, 0, 40, 0, 40, 20, 0, 20]]},  # the top-left quarter
            {"category": 1, "segmentation": {"size": [40, 80], "counts": counts}},
            {"category": 2, "bbox": [40, 20, 40, 20]},  # a box only: nothing is known inside
        ],
    }]}  # fmt: skip
    split = load_split(_spec(data).data.items, str(tmp_path), 16, 3)
    assert split.sizes.tolist() == [[80.0, 40.0]] and split.masks.shape == (1, 16, 16)
    class_map = split.masks[0]
    assert (class_map[:8, :8] == 1).all() and (class_map[:4, 12:] == 2).all()
    assert (class_map[8:, 8:] == IGNORE).all()
    assert (class_map[8:, :8] == 0).all()  # the rest is background
    assert split.labelled_pixels() == 64 + 16


def test_a_bad_rle_names_the_image(tmp_path):
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "x.png")
    bad = {"category": 0, "segmentation": {"size": [4, 4], "counts": [1, 2]}}
    data = {
        "classes": ["a"],
        "root": str(tmp_path),
        "items": [{"path": "x.png", "annotations": [bad]}],
    }
    with pytest.raises(segmentation.data.DataError, match="x.png.*run lengths"):
        load_split(_spec(data).data.items, str(tmp_path), 8, 3)


def _square(size=32, box=(4, 6, 12, 20)):
    image = torch.zeros(3, size, size, dtype=torch.uint8)
    mask = torch.zeros(size, size, dtype=torch.int16)
    x1, y1, x2, y2 = box
    image[:, y1:y2, x1:x2] = 255
    mask[y1:y2, x1:x2] = 2
    return image[None], mask[None]


def test_a_horizontal_flip_flips_the_mask_with_the_pixels():
    image, mask = _square()
    augment = MaskAugment(Augmentation(hflip=True), 32)
    flipped = 0
    for seed in range(8):  # a flip half the time
        out, moved, _ = augment(image, mask, torch.Generator().manual_seed(seed))
        assert torch.equal(out[0, 0] > 127, moved[0] == 2)  # the class sits on its pixels
        flipped += bool((moved[0, 6:20, 32 - 12 : 32 - 4] == 2).all())
    assert 0 < flipped < 8


def test_rotation_zoom_shear_and_crop_keep_the_mask_on_its_pixels():
    image, mask = _square(box=(8, 8, 24, 20))
    augment = MaskAugment(Augmentation(preset="lecture", random_crop=4, vflip=True), 32)
    for seed in range(6):
        out, moved, _ = augment(image, mask, torch.Generator().manual_seed(seed))
        lit, labelled = out[0, 0] > 127, moved[0] == 2
        assert set(moved.unique().tolist()) <= {0, 2}  # nearest pixel: never a blend of classes
        # The image is resampled bilinearly, the map by the nearest pixel: they differ at most
        # along the object's edge.
        assert (lit ^ labelled).sum() <= 0.35 * labelled.sum() + 4
    first = augment(image, mask, torch.Generator().manual_seed(3))
    again = augment(image, mask, torch.Generator().manual_seed(3))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])


def test_the_loss_has_its_parts_and_is_low_for_the_truth():
    target = torch.zeros(2, 8, 8, dtype=torch.int16)
    target[0, 2:6, 2:6] = 1
    target[1, :, :4] = 2
    target[1, 0, 0] = IGNORE
    perfect = torch.nn.functional.one_hot(target.long().clamp(min=0), 3).permute(0, 3, 1, 2) * 20.0
    parts = segmentation.segmentation_loss(perfect, target, 0.5)
    assert set(parts) == {"loss", "ce", "dice"} and all(v.dim() == 0 for v in parts.values())
    assert parts["ce"] < 1e-6 and parts["dice"] < 1e-3
    guess = segmentation.segmentation_loss(torch.zeros(2, 3, 8, 8), target, 0.5)
    assert guess["loss"] == pytest.approx(guess["ce"] + 0.5 * guess["dice"])
    assert guess["dice"] > 0.3 and guess["ce"] == pytest.approx(np.log(3), rel=1e-5)


# --- a run through the driver -------------------------------------------------------------------


@pytest.fixture(scope="module")
def shapes_data(tmp_path_factory):
    return shapes.write_shapes(tmp_path_factory.mktemp("shapes"), 16, size=48, splits=(0.5, 0.25))


def _kinds(reporter, kind):
    return [event["data"] for event in reporter.events if event["kind"] == kind]


@pytest.fixture(scope="module")
def trained(shapes_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    reporter = ListReporter()
    spec = _spec(shapes_data, augmentation={"hflip": True})
    result = driver.run(spec, out, reporter)
    return out, reporter, result


def test_a_run_emits_typed_segmentation_events(trained, shapes_data):
    _, reporter, result = trained
    (started,) = _kinds(reporter, "started")
    assert started["kind"] == "segmentation" and started["model"] == "unet"
    assert started["sizes"] == {"train": 8, "val": 4, "test": 4}
    epochs = _kinds(reporter, "epoch")
    assert [e["epoch"] for e in epochs] == [1, 2]
    for epoch in epochs:
        typed = events.EpochEvent.model_validate(epoch).figures()
        assert set(kinds.EPOCH_FIGURES["segmentation"]) <= set(typed)
        assert typed["train_loss"] == pytest.approx(typed["train_ce"] + 0.5 * typed["train_dice"])
        assert 0 <= typed["val_miou"] <= 1 and 0 <= typed["val_pixel_accuracy"] <= 1
    (finished,) = _kinds(reporter, "finished")
    test = events.FinishedEvent.model_validate(finished).evaluation("test")
    assert isinstance(test, events.SegmentationEvaluation)
    assert [row.name for row in test.per_class] == ["background", *shapes_data["classes"]]
    assert test.per_class[0].background and test.images == 4 and test.segm_ap is None
    assert sum(row.pixels for row in test.per_class) == 4 * 32 * 32
    assert result["test"] == finished["test"] and result["test"]["miou"] == test.miou


def test_predictions_hold_rle_regions_at_the_input_size(trained, shapes_data):
    out, _, _ = trained
    rows = json.loads((out / driver.TEST_PREDICTIONS).read_text())
    test_items = [item for item in shapes_data["items"] if item["split"] == "test"]
    assert [row["id"] for row in rows] == [item["id"] for item in test_items]
    for row, item in zip(rows, test_items, strict=True):
        assert (row["width"], row["height"], row["size"]) == (48, 48, [32, 32])
        truth_classes = {str(a["category"] + 1) for a in item["annotations"]}
        assert set(row["truth"]) == truth_classes
        for counts in [*row["truth"].values(), *row["predicted"].values()]:
            decoded = mask_util.decode({"size": row["size"], "counts": counts.encode("ascii")})
            assert decoded.shape == (32, 32) and decoded.any()
        assert set(row["classes_iou"]) <= set(row["truth"]) | set(row["predicted"])
        assert 0 <= row["pixel_accuracy"] <= 1
    assert json.loads((out / driver.VAL_PREDICTIONS).read_text())


def test_artifacts_and_card(trained, shapes_data):
    import onnx

    out, _, _ = trained
    card = json.loads((out / "model_card.json").read_text())
    assert card["kind"] == "segmentation" and card["classes"] == shapes_data["classes"]
    assert card["masks"]["channels"] == ["background", *shapes_data["classes"]]
    assert card["build"] == {"width": 8} and card["masks"]["size"] == [32, 32]
    assert card["exports"] == {
        "safetensors": "model.safetensors",
        "torchscript": "model.torchscript.pt",
        "onnx": "model.onnx",
    }
    onnx.checker.check_model(str(out / "model.onnx"))
    traced = torch.jit.load(str(out / "model.torchscript.pt"))
    model = scoring.load_model(out, card)  # the card's width rebuilds the same U-Net
    x = torch.randn(2, 3, 32, 32)
    assert traced(x).shape == (2, 4, 32, 32)
    assert torch.allclose(traced(x), model(x), atol=1e-4)


def test_each_pixels_confidence_is_its_class_probability_or_its_objects_score():
    from trainer.segmentation.inference import maps_and_confidence

    class Semantic(torch.nn.Module):
        def forward(self, x):  # (B, 3 classes, 2, 2) logits: each class 2 at one pixel
            logits = torch.zeros(x.shape[0], 3, 2, 2)
            logits[:, 0, 0, 0] = logits[:, 1, 0, 1] = logits[:, 2, 1, 0] = 2.0
            return logits

    maps, sure = maps_and_confidence(Semantic(), torch.zeros(1, 3, 2, 2))
    p = float(torch.tensor([2.0, 0.0, 0.0]).softmax(0)[0])
    assert maps[0].tolist() == [[0, 1], [2, 0]]
    assert torch.allclose(sure[0], torch.tensor([[p, p], [p, 1 / 3]]))

    class Instance(torch.nn.Module):
        def segment(self, x, score_threshold, max_detections):
            masks = torch.zeros(2, 4, 4)
            masks[0, :, :2] = 1  # the surer object: the left half
            masks[1, :2, :] = 1  # the top half, under the first where they overlap
            return [
                {"masks": masks, "scores": torch.tensor([0.9, 0.6]), "labels": torch.tensor([0, 1])}
            ]

    maps, sure = maps_and_confidence(Instance(), torch.zeros(1, 3, 4, 4))
    assert maps[0].tolist() == [[1, 1, 2, 2], [1, 1, 2, 2], [1, 1, 0, 0], [1, 1, 0, 0]]
    expected = [[0.9, 0.9, 0.6, 0.6], [0.9, 0.9, 0.6, 0.6], [0.9, 0.9, 1, 1], [0.9, 0.9, 1, 1]]
    assert torch.allclose(sure[0], torch.tensor(expected))


def test_try_it_and_scoring_use_the_saved_model(trained, shapes_data):
    out, _, result = trained
    first = shapes_data["items"][0]
    photo = Image.open(f"{shapes_data['root']}/{first['path']}").resize((96, 72))
    (answer,) = segmentation.predict(out, [photo])
    assert (answer["width"], answer["height"], answer["size"]) == (96, 72, [32, 32])
    assert set(answer["masks"]) == {str(c["index"]) for c in answer["classes"]}
    assert all(c["name"] == shapes_data["classes"][c["index"] - 1] for c in answer["classes"])
    assert sum(c["share"] for c in answer["classes"]) <= 1
    assert all(0 < c["score"] <= 1 for c in answer["classes"])  # mean confidence over its pixels
    test = [item for item in _spec(shapes_data).data.items if item.split == "test"]
    # The hidden set names its classes in another order: matched by name.
    reordered = list(reversed(shapes_data["classes"]))
    for item in test:
        for a in item.annotations:
            a.category = reordered.index(shapes_data["classes"][a.category])
    data = _spec(shapes_data).data
    figures = segmentation.score(out, test, reordered, data).to_dict()
    assert figures["images"] == 4 and "miou" in figures
    assert figures["miou"] == pytest.approx(result["test"]["miou"], abs=1e-9)
    assert figures["pixel_accuracy"] == pytest.approx(result["test"]["pixel_accuracy"], abs=1e-9)


def test_a_killed_run_resumes_to_the_same_result(shapes_data, tmp_path):
    # A 2-epoch run stands in for a 3-epoch one killed after epoch 2 only with a schedule that
    # does not depend on the number of epochs (the recipe's one-cycle does).
    spec = {"augmentation": {"preset": "lecture"}, "schedule": "none"}
    whole = driver.run(_spec(shapes_data, epochs=3, **spec), tmp_path / "whole", ListReporter())
    driver.run(_spec(shapes_data, epochs=2, **spec), tmp_path / "cut", ListReporter())
    reporter = ListReporter()
    resumed = driver.run(
        _spec(shapes_data, epochs=3, **spec), tmp_path / "cut", reporter, resume=True
    )
    assert [e["epoch"] for e in _kinds(reporter, "epoch")] == [3]
    assert resumed["test"]["miou"] == pytest.approx(whole["test"]["miou"], abs=1e-9)
    assert resumed["test"]["loss"] == pytest.approx(whole["test"]["loss"], rel=1e-5)


def test_transfer_keeps_the_output_rows_only_for_the_same_classes(trained, shapes_data, tmp_path):
    out, _, _ = trained
    source = str(out / "model.safetensors")
    for classes, head in (
        (shapes_data["classes"], "kept"),
        (list(reversed(shapes_data["classes"])), "reordered"),
        (["a", "b", "c"], "new"),
    ):
        data = {**shapes_data, "classes": classes}
        # The spec's architecture check builds the U-Net at the spec's width (8, the source's).
        transfer = {"source": source, "mode": "fine_tuning"}
        spec = _spec(data, epochs=1, transfer=transfer)
        reporter = ListReporter()
        driver.run(spec, tmp_path / head, reporter)
        assert _kinds(reporter, "started")[0]["head"] == head


@pytest.mark.slow
def test_the_unet_learns_shapes(tmp_path):
    # Learning, not a target (the benchmark measures that): a small U-Net on few small
    # pictures ends far better than it began.
    data = shapes.write_shapes(tmp_path, 320, size=32, splits=(0.8, 0.0))
    spec = _spec(data, input_size=32, epochs=15, batch_size=8, schedule="onecycle", lr=3e-3,
                 width=8)  # fmt: skip
    reporter = ListReporter()
    result = driver.run(spec, tmp_path / "out", reporter)
    first = reporter.of_kind("epoch")[0]["val_miou"] or 0.0
    assert result["test"]["miou"] >= max(0.4, first + 0.15), (first, result["test"])
