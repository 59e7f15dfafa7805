"""Keypoints: heat-map targets decode back, a mirror image swaps left and right, points move with
the pixels, and a run through the driver emits the typed events, writes its predictions and
artifacts, transfers by keypoint name, predicts and scores."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from trainer import driver, events, kinds
from trainer.events import ListReporter
from trainer.keypoints import KeypointAugment, flip_pairs, load_split
from trainer.keypoints.figures import NAMES, SKELETON, write_figures
from trainer.loops import keypoints as loop
from trainer.models.pose_net import PoseUNet, decode, gaussian_targets, heatmap_loss
from trainer.spec import Augmentation, load_spec


def test_flip_pairs_come_from_the_names():
    names = ["head", "left_hand", "right_hand", "hand_left", "hand_right", "LeftEye", "RightEye",
             "左手", "右手", "left_only"]  # fmt: skip
    assert flip_pairs(names) == [0, 2, 1, 4, 3, 6, 5, 8, 7, 9]
    assert flip_pairs(NAMES) == [0, 1, 3, 2, 4, 6, 5, 8, 7]


def test_flip_pairs_read_one_letter_sides_and_camel_case():
    names = ["nose", "l_eye", "r_eye", "L_ear", "R_ear", "knee_l", "knee_r", "leftWrist",
             "rightWrist", "ankle_L", "ankle_R", "l-hip", "r-hip"]  # fmt: skip
    assert flip_pairs(names) == [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11]
    # A lone side letter pairs only with its other side; letters inside a word are not sides.
    alone = ["l_hand", "tail_l", "bowl", "roll_r", "lr", "mid_l_joint"]
    assert flip_pairs(alone) == [0, 1, 2, 3, 4, 5]
    assert flip_pairs(["left_l", "right_l", "left_r"]) == [1, 0, 0]  # words first, then letters


def test_the_model_gives_one_heat_map_per_keypoint_at_stride_2():
    model = PoseUNet(9).eval()
    assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 9, 32, 32)
    assert model(torch.zeros(1, 3, 67, 67)).shape == (1, 9, 34, 34)  # padded inside, cut back


def test_gaussian_targets_decode_back_to_their_points_below_a_pixel():
    points = torch.tensor([[[10.3, 20.8, 2], [33.0, 5.5, 2], [47.9, 40.2, 1]]])  # (1, 3, 3)
    targets = gaussian_targets(points, 32, 32, sigma=2.0)  # (1, 3, 32, 32)
    assert targets.sum(dim=(-2, -1)).tolist() == [pytest.approx([1.0, 1.0, 1.0])]
    found = decode(torch.log(targets + 1e-30))  # a model whose softmax is the target
    assert torch.allclose(found[..., :2], points[..., :2], atol=0.02)
    assert ((found[..., 2] > 0.2) & (found[..., 2] <= 1)).all()


def test_the_loss_is_zero_for_the_target_and_ignores_unlabelled_points():
    points = torch.tensor([[[10.0, 20.0, 2], [30.0, 30.0, 0]]])  # the second has no label
    perfect = torch.log(gaussian_targets(points, 32, 32, 2.0)[:, :1] + 1e-30)
    logits = torch.cat([perfect, torch.randn(1, 1, 32, 32)], dim=1)
    assert float(heatmap_loss(logits, points, 2.0)) == pytest.approx(0.0, abs=1e-4)
    assert float(heatmap_loss(torch.zeros(1, 2, 32, 32), points, 2.0)) > 1.0
    nothing = torch.zeros(1, 2, 3)
    assert float(heatmap_loss(logits, nothing, 2.0)) == 0.0  # no label: no loss (no NaN)


def _dots(points, size=64):
    """An image with a white 3×3 dot under each (x, y)."""
    image = torch.zeros(3, size, size, dtype=torch.uint8)
    for x, y in points:
        image[:, int(y) - 1 : int(y) + 2, int(x) - 1 : int(x) + 2] = 255
    return image


def test_a_horizontal_flip_moves_the_points_and_swaps_left_and_right():
    names = ["head", "left_hand", "right_hand"]
    where = [(32.5, 10.5), (50.5, 20.5), (10.5, 40.5)]  # the figure faces us: left on the right
    people = torch.tensor([[[x, y, 2.0] for x, y in where]])  # (1, 3, 3)
    augment = KeypointAugment(Augmentation(hflip=True), 64, names)
    image = _dots(where)
    flipped = 0
    for seed in range(8):  # a flip half the time
        out, moved, _ = augment(image[None], [people], [torch.zeros(0, 4)],
                                torch.Generator().manual_seed(seed))  # fmt: skip
        if torch.equal(out[0], image):
            assert torch.equal(moved[0], people)
            continue
        flipped += 1
        assert torch.equal(out[0], image.flip(-1))
        head, left, right = moved[0][0].tolist()
        assert head == [31.5, 10.5, 2.0]  # 64 − 32.5: the middle of the mirrored pixel
        assert left == [53.5, 40.5, 2.0]  # the old right hand, mirrored: now the left one
        assert right == [13.5, 20.5, 2.0]
    assert 0 < flipped < 8


def test_rotation_zoom_and_crop_move_the_points_with_their_pixels():
    where = [(20.5, 20.5), (44.5, 24.5), (30.5, 46.5)]
    people = torch.tensor([[[x, y, 2.0] for x, y in where]])
    augment = KeypointAugment(Augmentation(rotation=30, zoom=0.2, random_crop=4), 64, NAMES[:3])
    for seed in range(4):
        out, moved, _ = augment(_dots(where)[None], [people], [torch.zeros(0, 4)],
                                torch.Generator().manual_seed(seed))  # fmt: skip
        lit = out[0, 0] > 60
        for x, y, v in moved[0][0].tolist():
            if v > 0:  # still on the image: a dot is there, within a pixel
                near = lit[max(int(y) - 1, 0) : int(y) + 2, max(int(x) - 1, 0) : int(x) + 2]
                assert near.any(), (seed, x, y)
    again = augment(_dots(where)[None], [people], [torch.zeros(0, 4)],
                    torch.Generator().manual_seed(3))  # fmt: skip
    first = augment(_dots(where)[None], [people], [torch.zeros(0, 4)],
                    torch.Generator().manual_seed(3))  # fmt: skip
    assert torch.equal(first[0], again[0]) and torch.equal(first[1][0], again[1][0])


def test_points_off_the_image_lose_their_label():
    people = torch.tensor([[[1.0, 32.0, 2.0], [32.0, 32.0, 2.0]]])
    augment = KeypointAugment(Augmentation(random_crop=8), 64, ["a", "b"])
    labels = set()
    for seed in range(12):
        _, moved, _ = augment(torch.zeros(1, 3, 64, 64, dtype=torch.uint8), [people],
                              [torch.zeros(0, 4)], torch.Generator().manual_seed(seed))  # fmt: skip
        x, _, v = moved[0][0, 0].tolist()
        assert (v == 0) == (not 0 <= x < 64)
        labels.add(v)
        assert moved[0][0, 1, 2] == 2.0
    assert labels == {0.0, 2.0}


# --- a run through the driver ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def figures(tmp_path_factory):
    return write_figures(tmp_path_factory.mktemp("figures"), 24, size=64, splits=(0.5, 0.25))


def _spec(data, **settings):
    return load_spec(
        {"kind": "keypoints", "data": data, "input_size": 64, "batch_size": 8, "epochs": 2,
         "lr": 0.003, "device": "cpu", **settings},
        local_files=True,
    )  # fmt: skip


def _kinds(reporter, kind):
    return [event["data"] for event in reporter.events if event["kind"] == kind]


@pytest.fixture(scope="module")
def trained(figures, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    reporter = ListReporter()
    spec = _spec(figures, augmentation={"rotation": 10, "zoom": 0.1})
    result = driver.run(spec, out, reporter)
    return out, reporter, result


def test_a_run_speaks_the_typed_keypoint_events(trained):
    _, reporter, result = trained
    started = events.StartedEvent.model_validate(_kinds(reporter, "started")[0])
    assert started.kind == "keypoints" and started.model == "pose_unet"
    assert started.classes == ["person"] and started.sizes == {"train": 12, "val": 6, "test": 6}
    epochs = [events.EpochEvent.model_validate(e) for e in _kinds(reporter, "epoch")]
    assert [e.epoch for e in epochs] == [1, 2]
    figures = epochs[-1].figures()
    assert set(kinds.EPOCH_FIGURES["keypoints"]) <= set(figures)
    assert figures["train_loss"] > 0 and figures["val_loss"] > 0
    assert 0 <= figures["val_pck"] <= 1 and 0 <= figures["val_oks_ap"] <= 1
    (finished,) = _kinds(reporter, "finished")
    typed = events.FinishedEvent.model_validate(finished).evaluation("test")
    assert isinstance(typed, events.KeypointsEvaluation)
    assert [row.name for row in typed.per_keypoint] == NAMES
    assert typed.images == 6 and typed.people == 6
    assert all(row.labelled == 6 for row in typed.per_keypoint)
    assert result["test"] == finished["test"] and 0 <= result["test"]["oks_ap50"] <= 1


def test_predictions_are_one_figure_per_image_in_original_pixels(trained, figures):
    out, _, _ = trained
    rows = json.loads((out / driver.TEST_PREDICTIONS).read_text())
    test_items = [item for item in figures["items"] if item["split"] == "test"]
    assert [row["id"] for row in rows] == [item["id"] for item in test_items]
    for row, item in zip(rows, test_items, strict=True):
        assert set(row) == {"id", "width", "height", "pck", "oks", "error", "truth", "predicted",
                            "errors", "box"}  # fmt: skip
        assert (row["width"], row["height"]) == (64, 64)
        (annotation,) = item["annotations"]
        flat = [v for point in row["truth"] for v in point]
        assert flat == pytest.approx(annotation["keypoints"], abs=0.02)
        assert row["box"] == pytest.approx(annotation["bbox"], abs=0.02)
        assert len(row["predicted"]) == len(row["errors"]) == 9
        assert all(0 <= x <= 64 and 0 <= y <= 64 and 0 <= s <= 1 for x, y, s in row["predicted"])
        assert 0 <= row["pck"] <= 1 and 0 <= row["oks"] <= 1 and row["error"] >= 0
    assert json.loads((out / driver.VAL_PREDICTIONS).read_text())


def test_artifacts_and_card_describe_the_keypoints(trained):
    import onnx

    out, _, _ = trained
    card = json.loads((out / "model_card.json").read_text())
    assert card["kind"] == "keypoints" and card["classes"] == ["person"]
    assert card["build"] == {"num_classes": 9}
    points = card["keypoints"]
    assert points["names"] == NAMES and points["skeleton"] == SKELETON
    assert points["edges"] == [[a - 1, b - 1] for a, b in SKELETON]
    assert points["sigmas"] == [0.05] * 9 and "heat-map logits" in points["outputs"]
    assert card["exports"] == {
        "safetensors": "model.safetensors",
        "torchscript": "model.torchscript.pt",
        "onnx": "model.onnx",
    }
    onnx.checker.check_model(str(out / "model.onnx"))
    assert [o.name for o in onnx.load(str(out / "model.onnx")).graph.output] == ["heatmaps"]
    traced = torch.jit.load(str(out / "model.torchscript.pt"))
    assert traced(torch.zeros(2, 3, 64, 64)).shape == (2, 9, 32, 32)


def test_predict_answers_in_the_photos_pixels(trained, figures):
    out, _, _ = trained
    first = figures["items"][0]
    photo = Image.open(f"{figures['root']}/{first['path']}").resize((128, 96))
    (answer,) = loop.predict(out, [photo])
    assert (answer["width"], answer["height"]) == (128, 96)
    assert answer["names"] == NAMES and answer["skeleton"] == [[a - 1, b - 1] for a, b in SKELETON]
    (person,) = answer["people"]  # the heat-map model's one figure
    assert set(person) == {"score", "box", "keypoints"} and 0 <= person["score"] <= 1
    assert [k["name"] for k in person["keypoints"]] == NAMES
    assert all(0 <= k["x"] <= 128 and 0 <= k["y"] <= 96 for k in person["keypoints"])
    assert loop.predict(out, []) == []


def test_scoring_matches_keypoints_by_name(trained, figures):
    from trainer.spec import DataSpec

    out, _, result = trained
    items = [item for item in _spec(figures).data.items if item.split == "test"]
    for item in items:
        item.path = f"{figures['root']}/{item.path}"
    score = loop.score(out, items, ["person"], None)
    assert score.to_dict()["oks_ap"] == pytest.approx(result["test"]["oks_ap"], abs=1e-9)
    # The hidden set lists its keypoints in another order: matched by name, the same figures.
    order = list(reversed(range(9)))
    for item in items:
        flat = item.annotations[0].keypoints
        item.annotations[0].keypoints = [v for k in order for v in flat[3 * k : 3 * k + 3]]
    schema = {"names": [NAMES[k] for k in order], "skeleton": []}
    data = DataSpec(classes=["person"], items=items, keypoints=schema)
    reordered = loop.score(out, items, ["person"], data)
    assert reordered.oks_ap == pytest.approx(result["test"]["oks_ap"], abs=1e-9)
    assert reordered.pck == pytest.approx(result["test"]["pck"], abs=1e-9)
    assert [row["name"] for row in reordered.per_keypoint] == schema["names"]


def test_transfer_keeps_the_heat_maps_for_the_same_names_in_any_order(trained, figures, tmp_path):
    from trainer import export as artifacts

    out, _, _ = trained
    source = str(out / "model.safetensors")
    stored = artifacts.load_tensors(source, ["head.weight"])["head.weight"]  # (9, 32, 1, 1)
    for names, head in ((NAMES, "kept"), (list(reversed(NAMES)), "reordered"),
                        ([f"p{i}" for i in range(9)], "new")):  # fmt: skip
        model = PoseUNet(9)
        plan = loop.load_transfer_source(model, source, names)
        assert plan.head == head
        weights = model.state_dict()["head.weight"]
        if head == "new":
            assert not weights.any()  # flat heat maps: no place favoured
        else:
            assert torch.equal(weights, stored[[NAMES.index(n) for n in names]])
    transfer = {"source": source, "mode": "fine_tuning"}
    reporter = ListReporter()
    driver.run(_spec(figures, epochs=1, transfer=transfer), tmp_path / "again", reporter)
    assert _kinds(reporter, "started")[0]["head"] == "kept"


def test_keypoints_without_a_schema_are_named_by_position_and_boxless_people_get_an_extent(
    tmp_path,
):
    Image.fromarray(np.zeros((30, 80, 3), np.uint8)).save(tmp_path / "wide.png")
    data = {"classes": ["person"], "root": str(tmp_path), "items": [
        {"path": "wide.png", "annotations": [
            {"category": 0, "keypoints": [40, 15, 2, 0, 0, 0, 60, 25, 1]},
            {"category": 0, "keypoints": [10, 5, 2, 12, 6, 2, 14, 7, 2]},
        ]},
    ]}  # fmt: skip
    spec = _spec(data)
    assert loop._schema(spec, spec.data.items)["names"] == ["k1", "k2", "k3"]
    split = load_split(spec.data.items, str(tmp_path), 64, 3, 3)
    assert split.sizes.tolist() == [[80.0, 30.0]]
    assert split.truth[0][0]["box"] == [40.0, 15.0, 20.0, 10.0]  # the labelled points' extent
    assert split.points[0].tolist() == [  # the first figure, in input pixels
        pytest.approx([32.0, 32.0, 2.0]),
        [0.0, 0.0, 0.0],
        pytest.approx([48.0, 53.33, 1.0], abs=0.01),
    ]
    assert split.people[0].shape == (2, 3, 3) and split.boxes[0].shape == (2, 4)
